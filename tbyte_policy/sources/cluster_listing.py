"""Reading a list answer of the API server as it arrives, one object at a time, and checking its shape.

A namespace of 50,000 pods is a 225 MiB list answer; parsed whole it is 1.2 GiB of Python objects before
a single field is dropped. Here the answer is never held: its bytes are decoded chunk by chunk and each
item is parsed (by the standard library's C decoder) and handed on as soon as it is complete, so the
caller keeps only the fields it needs of one item before the next is read. Only the list's own
envelope — ``{"kind": ..., "metadata": {...}, "items": [...]}`` — is walked here; every value in it is
decoded by ``json``. (``ijson`` streams too, but it cannot build the items in C and also report the
envelope's shape in the same pass: measured on that 225 MiB answer, 6.9 s for the items plus 5.9 s for
a second pass over the metadata, against 3.8 s for ``json.loads``; this reader takes about as long as
``json.loads``.)

A 200 answer that is not a list of the kind asked for (``{}``, a ``Status``, ``items`` that are not a
list, items that are not objects or have no metadata) raises :class:`MalformedAnswer`: the collector then
reports the kind as unreadable, never as empty. No message quotes the answer's content (it could be a
Secret's).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

_WHITESPACE = " \t\n\r"
_VALUE_STARTS = frozenset('{["-0123456789tfnNI')  # NaN and Infinity: json decodes them
_DECODER = json.JSONDecoder()
# No one value (an item, or the envelope's metadata) is read past this: etcd stores objects of at most
# 1.5 MiB, so a larger value is no Kubernetes object, and a body that is not JSON is not buffered whole.
MAX_VALUE_CHARS = 16 << 20
# Keys of the envelope that are kept (a Status answer's too, to say what it was); any other key's value
# is decoded and dropped.
_ENVELOPE_KEYS = frozenset({"kind", "apiVersion", "metadata", "status", "message", "reason", "code"})


class MalformedAnswer(Exception):
    """The answer is not a list of the kind asked for; the message says how, in one line."""


class ListPage(NamedTuple):
    kind: Any  # the envelope's kind, as sent
    continue_token: str | None  # None (or "") when the list is complete
    items: int


# A Status message a server sent, as any message quotes it: short enough that the sentence around it (status,
# reason, the request, a retry note) stays within two terminal rows.
STATUS_MESSAGE_CHARS = 200


def one_line(text: BaseException | str, limit: int = 300) -> str:
    """Text for a one-line message, as the live mode quotes whatever a server sent: runs of whitespace (line
    breaks included) become a space, characters that do not print (control characters, which could drive a
    terminal, and bidi overrides) U+FFFD, and the text is cut at ``limit`` characters."""
    text = " ".join(str(text).split())
    if not text.isprintable():
        text = "".join(char if char.isprintable() else "\ufffd" for char in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def named_object(body: Any, kind: str, name: str, shown: str) -> dict:
    """The object of ``kind`` named ``name`` that a GET answered, checked (``shown``: how messages name it, e.g.
    ``Namespace tbyte``); raises MalformedAnswer for anything else, which must not be taken for it."""
    if not isinstance(body, dict):
        raise MalformedAnswer(f"{describe(body)}, not a {kind}" if body is not None else "not JSON")
    if body.get("kind") not in (None, kind):
        raise MalformedAnswer(f"a {one_line(str(body['kind']), 60)}, not a {kind}")
    metadata = body.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("name") != name:
        raise MalformedAnswer(f"not the {shown} (its metadata "
                              f"{'names another' if isinstance(metadata, dict) else 'is ' + describe(metadata)})")
    return body


def describe(value: Any) -> str:
    """What a JSON value is, in words, without its content."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    for python_type, words in ((dict, "an object"), (list, "a list"), (str, "a string"), (int, "an integer"),
                               (float, "a number")):
        if isinstance(value, python_type):
            return words
    return type(value).__name__


class _Text:
    """The answer's text, decoded from UTF-8 as its chunks arrive; ``pos`` is the reading position."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks: Iterator[bytes] = iter(chunks)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.pos = 0
        self.eof = False
        self.consumed = 0  # characters dropped from the front of ``text``, for error positions

    def more(self, at_least: int = 1) -> None:
        """Read on until ``at_least`` more characters are buffered, or the answer ends."""
        self.consumed += self.pos
        self.text, self.pos = self.text[self.pos:], 0
        wanted = len(self.text) + at_least
        parts = [self.text]
        length = len(self.text)
        while length < wanted and not self.eof:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                chunk, self.eof = b"", True
            try:
                part = self._utf8.decode(chunk, final=self.eof)
            except UnicodeDecodeError:
                raise MalformedAnswer("the answer is not UTF-8 text") from None
            parts.append(part)
            length += len(part)
        self.text = "".join(parts)

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end of the answer), not consumed."""
        while True:
            text, pos = self.text, self.pos
            while pos < len(text) and text[pos] in _WHITESPACE:
                pos += 1
            self.pos = pos
            if pos < len(text):
                return text[pos]
            if self.eof:
                return ""
            self.more()

    def expect(self, allowed: str, where: str) -> str:
        found = self.peek()
        if not found or found not in allowed:
            raise MalformedAnswer(f"not JSON: {'the answer ends' if not found else 'unexpected text'} "
                                  f"{where} (at character {self.consumed + self.pos})")
        self.pos += 1
        return found

    def value(self) -> Any:
        """The next JSON value, decoded whole by ``json``."""
        if self.peek() not in _VALUE_STARTS:
            raise MalformedAnswer(f"not JSON (at character {self.consumed + self.pos})")
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError:
                if self.eof:
                    raise MalformedAnswer(f"not JSON (at character {self.consumed + self.pos})") from None
                if len(self.text) - self.pos > MAX_VALUE_CHARS:
                    raise MalformedAnswer(f"a value larger than {MAX_VALUE_CHARS >> 20} MiB (at character "
                                          f"{self.consumed + self.pos}): no Kubernetes object is that large") \
                        from None
                # Incomplete: read as much again as is buffered, so a large value is re-tried a few times,
                # not once per chunk.
                self.more(max(len(self.text) - self.pos, 1 << 16))
                continue
            if end == len(self.text) and not self.eof:
                self.more()  # a number may go on in the next chunk; any other value is followed by , ] or }
                continue
            self.pos = end
            return value


def read_list(chunks: Iterable[bytes], expected_kinds: Iterable[str], on_item: Callable[[Any, int], None]) -> ListPage:
    """Stream one list answer: ``on_item(item, index)`` for each item as soon as it is parsed (it may raise
    MalformedAnswer), then check the envelope. ``expected_kinds``: the list kinds that may answer
    (``PodList``; ``PartialObjectMetadataList`` for a metadata-only list)."""
    text = _Text(chunks)
    expected = tuple(expected_kinds)
    first = text.peek()
    if not first:
        raise MalformedAnswer(f"an empty answer, not a {expected[0]}")
    if first != "{":
        raise MalformedAnswer(f"{describe(text.value())}, not a {expected[0]}")
    text.pos += 1
    envelope: dict[str, Any] = {}
    items: int | None = None
    if text.peek() == "}":
        text.pos += 1
    else:
        while True:
            key = text.value()
            if not isinstance(key, str):
                raise MalformedAnswer("not JSON: an object key that is not a string")
            text.expect(":", "after an object key")
            if key == "items":
                items = _read_items(text, on_item)
            else:
                value = text.value()
                if key in _ENVELOPE_KEYS:
                    envelope[key] = value
            if text.expect(",}", "in the list object") == "}":
                break
    if text.peek():
        raise MalformedAnswer("not JSON: text after the list object")
    return _page(envelope, items, expected)


def _read_items(text: _Text, on_item: Callable[[Any, int], None]) -> int:
    if text.peek() != "[":
        value = text.value()
        if value is None:  # a Go server's nil slice: an empty list
            return 0
        raise MalformedAnswer(f"its items are {describe(value)}, not a list")
    text.pos += 1
    count = 0
    if text.peek() == "]":
        text.pos += 1
        return 0
    while True:
        on_item(text.value(), count)
        count += 1
        if text.expect(",]", "in the items list") == "]":
            return count


def _page(envelope: dict[str, Any], items: int | None, expected: tuple[str, ...]) -> ListPage:
    kind = envelope.get("kind")
    if kind == "Status":
        details = ", ".join(one_line(value, 60 if key != "message" else STATUS_MESSAGE_CHARS)
                            for key in ("status", "reason", "message")
                            if isinstance(value := envelope.get(key), str) and value)
        raise MalformedAnswer(f"a Status{f' ({details})' if details else ''}, not a {expected[0]}")
    if kind not in expected:
        if kind is None:
            what = "an object without kind" + (" or items" if items is None else "")
        elif isinstance(kind, str):
            what = f"a {one_line(kind, 60)}"
        else:
            what = f"an object whose kind is {describe(kind)}"
        raise MalformedAnswer(f"{what}, not a {expected[0]}")
    if items is None:
        raise MalformedAnswer(f"a {one_line(kind, 60)} without items")
    metadata = envelope.get("metadata", {})
    if not isinstance(metadata, dict):
        raise MalformedAnswer(f"its metadata is {describe(metadata)}, not an object")
    token = metadata.get("continue")
    if token is not None and not isinstance(token, str):
        raise MalformedAnswer(f"its metadata.continue is {describe(token)}, not a string")
    return ListPage(kind, token or None, items)
