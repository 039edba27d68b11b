"""Source lines for reporters that show them, with every value that may be a secret masked.

A report names the files its findings are in; their text is read again here, when a reporter asks for a
line (only the files that have findings, only for the formats that show source). Inputs that cannot be
read again (stdin, in-memory texts) travel in ``Report.source_texts``.

What is masked is decided from the YAML structure, not from the look of a line: the file is composed
again with libyaml (nodes only: nothing is constructed, so no tag is ever acted upon), and the text of
every value node that may hold a secret is replaced by ``***``, wherever it stands (block scalars over
several lines, flow mappings on the line, anchors used elsewhere):

- a Secret's ``data`` and ``stringData`` values, a ConfigMap's ``data`` and ``binaryData`` values (the
  whole section when it is not a mapping);
- ``env[].value`` anywhere (containers of every kind, CRDs included), the whole ``env`` when it is not a
  list;
- the ``kubectl.kubernetes.io/last-applied-configuration`` annotation, which repeats an object's data.

Lines of a document libyaml cannot parse are never shown: their structure is unknown. Only the documents
whose lines are asked for are composed.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from yaml._yaml import CParser
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MASK = "***"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# kind -> the top-level sections whose values are data
DATA_SECTIONS = {"Secret": ("data", "stringData"), "ConfigMap": ("data", "binaryData")}
# What libyaml counts as a line break, so that line numbers agree with the parse.
_LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
_DOCUMENT_START = re.compile(r"---(?=\s|$)")
_TOKEN = re.compile(r"\"[^\"]*\"|'[^']*'|[^\s:,\[\]{}#]+")


class Snippet(NamedTuple):
    """One line as it may be shown, and the 1-based column of a position in it (None when not asked)."""

    text: str
    column: int | None
    width: int  # characters to underline at ``column`` (the token that starts there, at least 1)


class SourceLines:
    """The lines of the files a report names, read on first use and masked."""

    def __init__(self, texts: Mapping[str, str] | None = None):
        self._texts = texts or {}
        self._files: dict[str, _MaskedFile | None] = {}

    def line(self, path: str, number: int, column: int | None = None) -> Snippet | None:
        """Line ``number`` (1-based) of ``path`` with secret values masked; None when it cannot be shown."""
        if path not in self._files:
            self._files[path] = self._load(path)
        masked = self._files[path]
        return masked.line(number, column) if masked is not None else None

    def _load(self, path: str) -> _MaskedFile | None:
        text = self._texts.get(path)
        if text is None:
            try:
                text = Path(path).read_bytes().decode("utf-8-sig")
            except (OSError, UnicodeDecodeError):
                return None
        return _MaskedFile(text)


class _StructureParser(CParser):
    """libyaml's parser and composer alone: no tag is resolved and nothing is constructed."""

    def resolve(self, kind, value, implicit):
        return ""

    def descend_resolver(self, current_node, current_index):
        pass

    def ascend_resolver(self):
        pass


class _MaskedFile:
    """A file's lines, composed one document at a time, when a line of that document is first asked for:
    a rendered chart of hundreds of documents with a finding in one composes one."""

    def __init__(self, text: str):
        self.lines = _LINE_BREAK.split(text)
        # Where each document starts: a --- line always starts one (libyaml ends any scalar there), so a
        # document that does not parse stops at the next, as the loader resumes there.
        self.starts = [0, *(index for index, line in enumerate(self.lines) if index and _DOCUMENT_START.match(line))]
        # line index (0-based) -> (start, end) column ranges to mask; start -1 = from the first non-blank,
        # end None = to the end of the line
        self.masks: dict[int, list[tuple[int, int | None]]] = {}
        self.parsed: dict[int, bool] = {}  # document index -> whether it parsed (its lines can be shown)

    def line(self, number: int, column: int | None) -> Snippet | None:
        index = number - 1
        if not 0 <= index < len(self.lines):
            return None
        document = bisect_right(self.starts, index) - 1
        if document not in self.parsed:
            self.parsed[document] = self._compose(document)
        if not self.parsed[document]:
            return None
        text, shifted = _apply_masks(self.lines[index], self.masks.get(index, ()), column)
        width = 1
        if shifted is not None:
            token = _TOKEN.match(text, shifted - 1)
            width = max(1, len(token.group())) if token else 1
        return Snippet(text, shifted, width)

    def _compose(self, document: int) -> bool:
        first = self.starts[document]
        last = self.starts[document + 1] if document + 1 < len(self.starts) else len(self.lines)
        parser = _StructureParser("\n".join(self.lines[first:last]))
        roots = []
        try:
            while parser.check_node():
                roots.append(parser.get_node())
        except Exception:  # whatever libyaml refuses (a syntax error, a recursive alias): its structure is unknown
            return False
        finally:
            parser.dispose()
        for root in roots:
            if root is not None:
                for value in _secret_values(root):
                    self._mask(value, first)
        return True

    def _mask(self, node: Node, offset: int) -> None:
        first, last = node.start_mark.line + offset, node.end_mark.line + offset
        start, end = node.start_mark.column, node.end_mark.column
        if first == last:
            self.masks.setdefault(first, []).append((start, end))
            return
        self.masks.setdefault(first, []).append((start, None))
        for index in range(first + 1, last):
            self.masks.setdefault(index, []).append((-1, None))
        if end:
            self.masks.setdefault(last, []).append((-1, end))


def _apply_masks(line: str, masks, column: int | None) -> tuple[str, int | None]:
    """The line with each masked range replaced by MASK, and ``column`` moved to where its text now is
    (to the mask, when it falls inside a masked value)."""
    if not masks:
        return line, column
    indent = len(line) - len(line.lstrip())
    merged: list[list[int]] = []
    for start, end in sorted((indent if start < 0 else start, len(line) if end is None else min(end, len(line)))
                             for start, end in masks):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    built, position, moved = "", 0, None
    target = column - 1 if column is not None else -1  # 0-based
    for start, end in [*merged, [len(line), len(line)]]:
        if position <= target < start:
            moved = len(built) + target - position + 1
        elif start <= target < end:
            moved = len(built) + start - position + 1
        built += line[position:start] + (MASK if end > start else "")
        position = end
    if column is not None and moved is None:  # at or past the end of the line
        moved = len(built) + target - len(line) + 1
    return built, moved


def _secret_values(root: Node) -> Iterator[Node]:
    """The value nodes of a document that may hold a secret (see the module's docstring)."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias: the same node again (alias bombs stay linear)
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            kind = next((value.value for key, value in node.value if isinstance(key, ScalarNode)
                         and key.value == "kind" and isinstance(value, ScalarNode)), None)
            sections = DATA_SECTIONS.get(kind, ()) if isinstance(kind, str) else ()
            for key, value in node.value:
                name = key.value if isinstance(key, ScalarNode) else None
                if name is None:
                    stack.extend((key, value))
                elif name in sections:
                    yield from _data_values(value)
                elif name == "env":
                    yield from _env_values(value)
                elif name == LAST_APPLIED:
                    yield value
                else:
                    stack.append(value)


def _data_values(section: Node) -> Iterator[Node]:
    if not isinstance(section, MappingNode):
        yield section
        return
    for key, value in section.value:
        if not isinstance(key, ScalarNode):
            yield key
        yield value


def _env_values(env: Node) -> Iterator[Node]:
    if not isinstance(env, SequenceNode):
        yield env
        return
    for item in env.value:
        if not isinstance(item, MappingNode):
            yield item
            continue
        for key, value in item.value:
            if not isinstance(key, ScalarNode):
                yield key
                yield value
            elif key.value == "value":
                yield value
