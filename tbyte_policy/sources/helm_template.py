"""Finding the line of a Helm template that wrote a field of a rendered object.

There is no source map from Helm: this reads the template's own YAML structure from its indentation (the
keys written literally, the list items, the ``---`` between documents) and matches it with the field's path
in the rendered object. A line is given only when one template line fits the path for certain:

- the template's keys above it (its parents, judged by indentation) are the field's parent keys, and
- when several lines fit (a container list's ``image:`` keys), the list items of the template and of the
  rendered object correspond one to one: as many items written as rendered, the field's item being the
  same in both.

Keys from ``include``, ``toYaml`` or ``tpl`` are not in the template's text, and the same key written on
both sides of an ``if``/``else`` is ambiguous: the caller then falls back to the field's nearest parent
that can be found, and finally to the document's first line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from tbyte_policy.model import is_number_text

_KEY = re.compile(r"""(?P<quote>["']?)(?P<key>[^\s"'{}#:\[\],&*!|>%@`][^"'{}#:]*?)(?P=quote)[ \t]*:(?:[ \t]|$)""")
_DOCUMENT_START = re.compile(r"^---(?:[ \t]|$)")


class _Counter:
    """How many items a list of the template has, and whether a template action (``if``, ``range``, ``include``)
    stands among them so far: after one, an item's place in the list is no longer the place it renders at."""

    __slots__ = ("actions", "items")

    def __init__(self) -> None:
        self.items = 0
        self.actions = False


class Entry(NamedTuple):
    path: tuple[str | int, ...]  # keys and item ordinals from the document root
    lists: tuple[_Counter, ...]  # for each ordinal in path, the list it counts in
    anchored: tuple[bool, ...]  # for each ordinal in path, whether no action came before the item in its list
    line: int  # 1-based
    column: int  # 1-based


class Segment(NamedTuple):
    """One ``---``-separated document of a template."""

    start: int  # first line with content
    kind: str | None  # the literal value of its top-level ``kind:`` (None when templated or absent)
    entries: list[Entry]


class _Frame:
    __slots__ = ("anchored", "counter", "indent", "key", "ordinal")

    def __init__(self, indent: int, key: str | None, ordinal: int | None, anchored: bool = True) -> None:
        self.indent = indent
        self.key = key
        self.ordinal = ordinal
        self.anchored = anchored
        self.counter = _Counter()

    @property
    def is_item(self) -> bool:
        return self.key is None


class TemplateIndex:
    """The literal YAML structure of one template file."""

    def __init__(self, text: str) -> None:
        self.segments = _segments(text.splitlines())

    def segment_for(self, kind: str, index: int, count: int) -> Segment | None:
        """The document of the template that wrote the ``index``-th of the ``count`` objects of ``kind`` it
        rendered: the only one written with that kind (a ``range`` writes many objects from one), else the
        ``index``-th when as many are written as were rendered."""
        written = [segment for segment in self.segments if segment.kind == kind]
        if not written:
            written = [segment for segment in self.segments if segment.kind is None]
        if len(written) == 1:
            return written[0]
        if len(written) == count and index < count:
            return written[index]
        return None

    @staticmethod
    def locate(segment: Segment, body: Any, parts: Sequence[str]) -> tuple[int, int] | None:
        """Line and column of the field at ``parts`` (a split JSON pointer into ``body``, the rendered object), or
        of its nearest parent that can be placed for certain; None when not even the first part can."""
        path, lengths = _rendered_path(body, parts)
        for size in range(len(path), 0, -1):
            found = _unique_match(segment.entries, path[:size], lengths[:size])
            if found is not None:
                return found.line, found.column
        return None


def _rendered_path(body: Any, parts: Sequence[str]) -> tuple[list[str | int], list[int | None]]:
    """The pointer's parts that are in the rendered object (its nearest parent present there, when it is not) as
    keys and list indexes, with the rendered length of the list an index is in."""
    path: list[str | int] = []
    lengths: list[int | None] = []
    node = body
    for part in parts:
        if isinstance(node, list) and is_number_text(part) and int(part) < len(node):
            path.append(int(part))
            lengths.append(len(node))
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            path.append(part)
            lengths.append(None)
            node = node[part]
        else:
            break
    return path, lengths


def _unique_match(entries: list[Entry], path: Sequence[str | int], lengths: Sequence[int | None]) -> Entry | None:
    """The one template line written for this path: its keys, and at each list either the only item the list
    writes (``range`` writes every rendered item from it) or the item at the same place, with no action before
    it in the list that could add or drop items (or as many items written as rendered)."""
    indexes = [step for step in path if isinstance(step, int)]
    rendered = [length for step, length in zip(path, lengths, strict=True) if isinstance(step, int)]
    matching = []
    for entry in entries:
        if not _same_keys(entry.path, path):
            continue
        ordinals = [step for step in entry.path if isinstance(step, int)]
        if all(written.items == 1 or (ordinal == index and (anchored or written.items == length))
               for ordinal, index, length, written, anchored in zip(ordinals, indexes, rendered, entry.lists,
                                                                    entry.anchored, strict=True)):
            matching.append(entry)
    return matching[0] if len(matching) == 1 else None


def _same_keys(written: tuple[str | int, ...], rendered: Sequence[str | int]) -> bool:
    if len(written) != len(rendered):
        return False
    for mine, theirs in zip(written, rendered, strict=True):
        if isinstance(theirs, int):
            if not isinstance(mine, int):
                return False
        elif mine != theirs:
            return False
    return True


def _segments(lines: list[str]) -> list[Segment]:
    segments: list[Segment] = []
    start = 0
    for number, line in enumerate(lines):
        if _DOCUMENT_START.match(line):
            segments.append(_segment(lines, start, number))
            start = number + 1
    segments.append(_segment(lines, start, len(lines)))
    return [segment for segment in segments if segment.entries]


def _segment(lines: list[str], begin: int, end: int) -> Segment:
    entries: list[Entry] = []
    stack: list[_Frame] = []
    top_level_items = _Counter()  # a document that is a list (rare) counts its items here
    block_indent: int | None = None  # inside a block scalar (| or >) whose key stands at this indent
    kind: str | None = None
    for number in range(begin, end):
        raw = lines[number].rstrip()
        content = raw.lstrip(" ")
        if not content:
            continue
        indent = len(raw) - len(content)
        if block_indent is not None:
            if indent > block_indent:
                continue
            block_indent = None
        if content.startswith("#"):
            continue
        if content.startswith("{{"):
            # An action at a list's item level (or before its first item) may add or drop items.
            for position, frame in enumerate(stack):
                if frame.is_item and indent <= frame.indent and position:
                    stack[position - 1].counter.actions = True
            if stack and not stack[-1].is_item and indent >= stack[-1].indent:
                stack[-1].counter.actions = True
            continue
        while content.startswith("- ") or content == "-":
            while stack and (stack[-1].indent > indent or (stack[-1].is_item and stack[-1].indent == indent)):
                stack.pop()
            parent = stack[-1] if stack else None
            counter = parent.counter if parent else top_level_items
            ordinal = counter.items
            counter.items += 1
            stack.append(_Frame(indent, None, ordinal, anchored=not counter.actions))
            rest = content[1:].lstrip(" ")
            # An item stands where its content starts, as the parser places a list item.
            entries.append(Entry(*_path(stack), number + 1, indent + len(content) - len(rest) + 1))
            indent += len(content) - len(rest)
            content = rest
        match = _KEY.match(content)
        if not match or "{{" in match.group("key"):
            continue
        key = match.group("key")
        while stack and stack[-1].indent >= indent:
            stack.pop()
        stack.append(_Frame(indent, key, None))
        entries.append(Entry(*_path(stack), number + 1, indent + 1))
        value = content[match.end():].strip()
        if value.startswith(("|", ">")):
            block_indent = indent
        if len(stack) == 1 and key == "kind" and value and "{{" not in value:
            kind = value.strip("'\"")
    return Segment(entries[0].line if entries else begin + 1, kind, entries)


def _path(stack: list[_Frame]) -> tuple[tuple[str | int, ...], tuple[_Counter, ...], tuple[bool, ...]]:
    path: list[str | int] = []
    lists: list[_Counter] = []
    anchored: list[bool] = []
    for position, frame in enumerate(stack):
        if frame.is_item:
            assert frame.ordinal is not None
            path.append(frame.ordinal)
            # The list this item counts in: its parent's (the key that holds the list).
            lists.append(stack[position - 1].counter if position else _Counter())
            anchored.append(frame.anchored)
        else:
            path.append(frame.key or "")
    return tuple(path), tuple(lists), tuple(anchored)
