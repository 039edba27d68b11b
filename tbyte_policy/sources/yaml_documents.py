"""YAML and JSON text → Kubernetes object documents, with the line and column of every key and item.

Positions come from the parse itself: a constructor of ours, on top of libyaml's C parser, records
the line and column of every mapping key and sequence item as it builds the objects (``marked``).
Nothing is re-read or parsed twice to find a line.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, SequenceNode
from yaml.reader import ReaderError

from tbyte_policy.findings import ReportError
from tbyte_policy.lazyre import lazy_compile
from tbyte_policy.marked import MarkedDict, MarkedList, MarkingLoader
from tbyte_policy.sources import Document, LoadResult

# A legitimate manifest has tens of thousands of nodes at most; aliases that expand beyond this
# are a "billion laughs" bomb, not configuration.
MAX_EXPANDED_NODES = 1_000_000

_HELM_ACTION = re.compile(r"\{\{-?\s*[-.$a-zA-Z(/\"]")
_HELM_SOURCE = re.compile(r"^# Source: (.+?)\s*$", re.MULTILINE)
_HELM_HINT = "looks like an unrendered Helm template: render it with helm template first"


def load_text(text: str, path: str, result: LoadResult | None = None) -> LoadResult:
    """An in-memory YAML or JSON text (tests, the reference bundle) as ``path``: its documents, and the text
    itself, which reporters that show source lines cannot read again; added to ``result`` when one is given."""
    result = result if result is not None else LoadResult()
    result.texts[path] = text
    return parse_text(text, path, result)


def parse_text(text: str, path: str, result: LoadResult) -> LoadResult:
    """Add the Kubernetes objects of one YAML or JSON text to ``result``, with its errors and the count of
    its documents that are not Kubernetes objects."""
    parsed = LoadResult()
    documents = list(_parse_documents(text, path, parsed))
    if parsed.errors and path.lower().endswith(".json"):
        # JSON that libyaml refuses (tabs in odd places, say) still loads, only without positions.
        try:
            documents, parsed.errors = [(_load_json(text), 1, 1)], []
        except RecursionError:
            pass  # nested too deeply for the JSON parser too: libyaml's error says so, with its line
        except ValueError as exc:
            parsed.errors = [ReportError(path, getattr(exc, "lineno", None),
                                         f"invalid JSON: {getattr(exc, 'msg', exc)}")]
    result.errors.extend(parsed.errors)
    sources = _helm_sources(text)
    previous_line = 0
    for body, line, column in documents:
        _accept(body, path, line, column, _helm_source_at(sources, line, previous_line), result)
        previous_line = line
    return result


# Only the JSON fallback uses these: compiled on first use.
_SURROGATE_ESCAPE = lazy_compile(r"\\u[dD][89a-fA-F]")
_SURROGATES = lazy_compile("[\ud800-\udfff]")


def _load_json(text: str) -> Any:
    """JSON as Go's encoding/json (and so the API server) decodes it: a lone surrogate escape (``\\ud800``), which
    no UTF-8 text can carry and Python keeps, reads as U+FFFD."""
    value = json.loads(text)
    if not _SURROGATE_ESCAPE.search(text):
        return value
    stack = [value]
    while stack:  # not recursive: the document may be nested as deeply as the JSON parser allows
        node = stack.pop()
        if isinstance(node, dict):
            items = list(node.items())
            node.clear()
            for key, item in items:
                node[_SURROGATES.sub("\ufffd", key) if isinstance(key, str) else key] = _replaced(item, stack)
        elif isinstance(node, list):
            node[:] = [_replaced(item, stack) for item in node]
    return _replaced(value, [])


def _replaced(item: Any, stack: list) -> Any:
    if isinstance(item, str):
        return _SURROGATES.sub("\ufffd", item)
    if isinstance(item, (dict, list)):
        stack.append(item)
    return item


def _parse_documents(text: str, path: str, result: LoadResult) -> Iterator[tuple[Any, int, int]]:
    """Yield (object, line, column) per document; on a syntax error, report it and resume at the next ``---``."""
    offset_chars, offset_lines = 0, 0
    check_aliases = "&" in text and "*" in text
    while True:
        chunk = text[offset_chars:] if offset_chars else text
        loader = MarkingLoader(chunk, offset_lines)
        try:
            while loader.check_node():
                node = loader.get_node()
                if node is None:
                    continue
                if check_aliases:
                    _bound_aliases(node)
                body = loader.construct_document(node)
                yield body, node.start_mark.line + offset_lines + 1, node.start_mark.column + 1
            return
        except (yaml.YAMLError, _AliasBomb, RecursionError) as exc:
            line = _error_line(exc, chunk, offset_lines)
            result.errors.append(ReportError(path, line, _describe_yaml_error(exc, text)))
            resume = _next_document_start(text, offset_chars, line)
            if resume is None:
                return
            offset_chars, offset_lines = resume
        finally:
            loader.dispose()


class _AliasBomb(Exception):
    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def _bound_aliases(root: yaml.Node) -> None:
    """Refuse documents whose aliases expand past MAX_EXPANDED_NODES or refer to themselves."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            children = _children(node)
            total = 1 + sum(sizes[id(child)] for child in children)
            if total > MAX_EXPANDED_NODES:
                raise _AliasBomb(
                    f"YAML aliases expand to more than {MAX_EXPANDED_NODES} nodes (an alias bomb?)",
                    root.start_mark.line)
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _AliasBomb("a YAML alias refers to a node that contains it (a recursive document)",
                             node.start_mark.line)
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) not in sizes:
                if id(child) in on_path:
                    raise _AliasBomb("a YAML alias refers to a node that contains it (a recursive document)",
                                     child.start_mark.line)
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _error_line(exc: BaseException, chunk: str, offset_lines: int) -> int | None:
    if isinstance(exc, _AliasBomb):
        return exc.line + offset_lines + 1
    if isinstance(exc, ReaderError):
        # A character libyaml refuses (a control character) has no mark, only its offset in the UTF-8 bytes.
        prefix = chunk.encode("utf-8", "surrogatepass")[:exc.position]
        return prefix.count(b"\n") + offset_lines + 1
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + offset_lines + 1 if mark is not None else None


def _describe_yaml_error(exc: BaseException, text: str) -> str:
    if isinstance(exc, RecursionError):
        return "document is nested too deeply to process"
    if isinstance(exc, _AliasBomb):
        return str(exc)
    if _HELM_ACTION.search(text):
        return _HELM_HINT
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    if isinstance(exc, ConstructorError) and "python/" in str(problem):
        return "unsafe YAML tag refused (only plain YAML is loaded): " + _tag_of(str(problem))
    if isinstance(exc, ConstructorError) and str(problem).startswith("could not determine a constructor"):
        # The "tag" is usually an unquoted value that starts with "!" (a password, say): never quote it.
        return "invalid YAML: unknown tag (quote a value that starts with !)"
    prefix = "invalid YAML: "
    return prefix + (f"{context}: {problem}" if context else str(problem))


def _tag_of(problem: str) -> str:
    match = re.search(r"'(tag:[^']+)'", problem)
    return match.group(1) if match else "python tag"


_DOC_START = re.compile(r"^---", re.MULTILINE)


def _next_document_start(text: str, offset_chars: int, error_line: int | None) -> tuple[int, int] | None:
    """Where to resume after a broken document: the first ``---`` from the error's line on."""
    if error_line is None:
        return None
    position, line = offset_chars, text.count("\n", 0, offset_chars) + 1
    while line < error_line:
        newline = text.find("\n", position)
        if newline == -1:
            return None
        position, line = newline + 1, line + 1
    match = _DOC_START.search(text, max(position, offset_chars + 1))
    if match is None:
        return None
    return match.start(), text.count("\n", 0, match.start())


def _helm_sources(text: str) -> tuple[list[int], list[str]]:
    if "# Source: " not in text:
        return [], []
    lines, names, last_pos, last_line = [], [], 0, 1
    for match in _HELM_SOURCE.finditer(text):
        last_line += text.count("\n", last_pos, match.start())
        last_pos = match.start()
        lines.append(last_line)
        names.append(match.group(1))
    return lines, names


def _helm_source_at(sources: tuple[list[int], list[str]], line: int, previous_line: int) -> str | None:
    """The ``# Source:`` comment between the previous document and this one, if any."""
    lines, names = sources
    index = bisect_right(lines, line) - 1
    return names[index] if index >= 0 and lines[index] > previous_line else None


def _accept(body: Any, path: str, line: int, column: int, helm_source: str | None, result: LoadResult) -> None:
    if body is None:
        return
    if not isinstance(body, dict) or "apiVersion" not in body or "kind" not in body:
        result.skipped_documents += 1
        return
    kind = body.get("kind")
    if not isinstance(kind, str) or not isinstance(body.get("apiVersion"), str):
        result.errors.append(ReportError(path, line, "apiVersion and kind must be strings"))
        return
    if _HELM_ACTION.search(kind + " " + str(_name_of(body))):
        result.errors.append(ReportError(path, line, _HELM_HINT))
        return
    if kind.endswith("List") and "items" in body:
        _accept_list(body, path, line, column, helm_source, result)
        return
    result.documents.append(Document(path, line, column, body, helm_source))


def _accept_list(body: dict, path: str, line: int, column: int, helm_source: str | None, result: LoadResult) -> None:
    items = body["items"]
    if items is None:
        return
    if not isinstance(items, list):
        result.errors.append(ReportError(path, _position(body, "items", line), f"{body['kind']}.items must be a list"))
        return
    for index, item in enumerate(items):
        position = items.item_position(index) if isinstance(items, MarkedList) else None
        item_line, item_column = position or (line, column)
        if not isinstance(item, dict):
            result.errors.append(ReportError(path, item_line, f"item {index} of {body['kind']} is not a mapping"))
        elif "apiVersion" not in item or "kind" not in item:
            result.errors.append(ReportError(path, item_line,
                                           f"item {index} of {body['kind']} has no apiVersion or kind"))
        else:
            result.documents.append(Document(path, item_line, item_column, item, helm_source, f"/items/{index}"))


def _position(mapping: dict, key: str, default: int) -> int:
    position = mapping.key_position(key) if isinstance(mapping, MarkedDict) else None
    return position[0] if position else default


def _name_of(body: dict) -> Any:
    metadata = body.get("metadata")
    return metadata.get("name") if isinstance(metadata, dict) else None
