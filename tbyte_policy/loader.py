"""Sources → documents: read files, directories and stdin into Kubernetes objects with positions.

Positions come from the parse itself: a constructor of ours, on top of libyaml's C parser, records
the line and column of every mapping key and sequence item as it builds the objects (``Marked*``).
Nothing is re-read or parsed twice to find a line.
"""

from __future__ import annotations

import json
import re
import sys
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import yaml
from yaml._yaml import CParser
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

YAML_SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024
# A legitimate manifest has tens of thousands of nodes at most; aliases that expand beyond this
# are a "billion laughs" bomb, not configuration.
MAX_EXPANDED_NODES = 1_000_000
STDIN_PATH = "<stdin>"

_HELM_ACTION = re.compile(r"\{\{-?\s*[-.$a-zA-Z(/\"]")
_HELM_SOURCE = re.compile(r"^# Source: (.+?)\s*$", re.MULTILINE)
_HELM_HINT = "looks like an unrendered Helm template: render it with helm template first"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# A position is packed into one int (line * _LINE + column, both 0-based) to keep the per-key cost small.
_LINE = 1 << 24


def unpack_position(packed: int) -> tuple[int, int]:
    line, column = divmod(packed, _LINE)
    return line + 1, column + 1


class MarkedDict(dict):
    """A mapping that remembers where each of its keys stands in the source."""

    __slots__ = ("marks",)

    def key_position(self, key: Any) -> tuple[int, int] | None:
        marks = getattr(self, "marks", None)
        packed = marks.get(key) if marks else None
        return unpack_position(packed) if packed is not None else None


class MarkedList(list):
    """A sequence that remembers where each of its items stands in the source."""

    __slots__ = ("marks",)

    def item_position(self, index: int) -> tuple[int, int] | None:
        marks = getattr(self, "marks", None)
        if marks and 0 <= index < len(marks):
            return unpack_position(marks[index])
        return None


class _MarkingConstructor(SafeConstructor):
    line_offset = 0

    def construct_marked_map(self, node: MappingNode):
        data = MarkedDict()
        yield data
        if any(key_node.tag == _MERGE_TAG for key_node, _ in node.value):
            self.flatten_mapping(node)
        marks = {}
        offset = self.line_offset
        construct = self.construct_object
        for key_node, value_node in node.value:
            # Plain strings are most of a manifest: they are taken from the node without a constructor call.
            key = key_node.value if key_node.tag == _STR_TAG and key_node.__class__ is ScalarNode \
                else construct(key_node)
            try:
                data[key] = value_node.value if value_node.tag == _STR_TAG and value_node.__class__ is ScalarNode \
                    else construct(value_node)
            except TypeError:
                raise ConstructorError(
                    "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
                ) from None
            mark = key_node.start_mark
            marks[key] = (mark.line + offset) * _LINE + mark.column
        data.marks = marks

    def construct_marked_seq(self, node: SequenceNode):
        data = MarkedList()
        yield data
        offset = self.line_offset
        construct = self.construct_object
        data.extend(child.value if child.tag == _STR_TAG and child.__class__ is ScalarNode else construct(child)
                    for child in node.value)
        data.marks = [(child.start_mark.line + offset) * _LINE + child.start_mark.column for child in node.value]

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, KeyError):
            # A value that does not fit its explicit tag (`!!int abc`); the exception's text would quote it.
            raise ConstructorError(None, None, "a value does not fit its explicit YAML tag", node.start_mark) from None

    def construct_timestamp_as_text(self, node):
        # Kubernetes decodes YAML through JSON: a timestamp-looking value is a string there.
        return self.construct_scalar(node)


_MarkingConstructor.add_constructor("tag:yaml.org,2002:map", _MarkingConstructor.construct_marked_map)
_MarkingConstructor.add_constructor("tag:yaml.org,2002:seq", _MarkingConstructor.construct_marked_seq)
_MarkingConstructor.add_constructor("tag:yaml.org,2002:timestamp", _MarkingConstructor.construct_timestamp_as_text)


class _CachingResolver(yaml.resolver.Resolver):
    """The standard implicit resolution, remembered per (value, style): manifests repeat their scalars.

    There are no path resolvers here, so the per-node path bookkeeping is skipped.
    """

    _scalar_tags: ClassVar[dict[tuple[str, tuple[bool, bool]], str]] = {}
    _MAX_CACHED = 200_000

    def resolve(self, kind, value, implicit):
        if kind is not ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._scalar_tags.get(key)
        if tag is None:
            if len(self._scalar_tags) >= self._MAX_CACHED:
                self._scalar_tags.clear()
            tag = self._scalar_tags[key] = super().resolve(kind, value, implicit)
        return tag

    def descend_resolver(self, current_node, current_index):
        pass

    def ascend_resolver(self):
        pass


class MarkingLoader(CParser, _MarkingConstructor, _CachingResolver):
    """libyaml's parser and composer, with our position-keeping constructor."""

    def __init__(self, stream: str, line_offset: int = 0):
        CParser.__init__(self, stream)
        _MarkingConstructor.__init__(self)
        _CachingResolver.__init__(self)
        self.line_offset = line_offset


class LoadError(NamedTuple):
    path: str
    line: int | None
    message: str


class Document(NamedTuple):
    """One Kubernetes object as it came from a source."""

    path: str
    line: int
    column: int
    body: dict
    helm_source: str | None = None
    list_pointer: str = ""  # "/items/3" for an item of a kind: List, else ""


class LoadResult:
    """What loading produced, filled in as files are read."""

    __slots__ = ("documents", "errors", "files", "skipped_documents", "texts")

    def __init__(self, errors: list[LoadError] | None = None) -> None:
        self.documents: list[Document] = []
        self.errors: list[LoadError] = errors if errors is not None else []
        self.files = 0
        self.skipped_documents = 0  # documents that are not Kubernetes objects (no apiVersion and kind)
        # The text of the inputs that cannot be read again (stdin, in-memory texts), by path: what a report
        # needs to show their source lines. Files are not kept: they stay on disk.
        self.texts: dict[str, str] = {}

    def absorb(self, other: LoadResult) -> None:
        self.documents.extend(other.documents)
        self.errors.extend(other.errors)
        self.files += other.files
        self.skipped_documents += other.skipped_documents
        self.texts.update(other.texts)


def discover(paths: Iterable[str], exclude: Iterable[str] = ()) -> tuple[list[str], list[LoadError]]:
    """Expand the command-line paths into files, in a stable order."""
    patterns = list(exclude)
    found: list[str] = []
    errors: list[LoadError] = []
    for raw in paths:
        if raw == "-":
            found.append("-")
            continue
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if ".git" in candidate.parts or not candidate.is_file():
                    continue
                if candidate.suffix.lower() in YAML_SUFFIXES and not _excluded(candidate, patterns):
                    found.append(str(candidate))
        elif path.is_file():
            if not _excluded(path, patterns):
                found.append(str(path))
        else:
            errors.append(LoadError(str(path), None, "no such file or directory"))
    return found, errors


def _excluded(path: Path, patterns: list[str]) -> bool:
    text = path.as_posix()
    return any(fnmatch(text, pattern) or path.match(pattern) for pattern in patterns)


def load_paths(paths: Iterable[str], *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
               exclude: Iterable[str] = (), jobs: int = 1) -> LoadResult:
    """Load every file the paths name, in order; ``jobs`` > 1 parses files in that many processes, with
    the same result in the same order."""
    files, errors = discover(paths, exclude)
    result = LoadResult(errors=errors)
    if jobs > 1 and len(files) > 1 and "-" not in files:
        from concurrent.futures import ProcessPoolExecutor

        size = -(-len(files) // (jobs * 4))  # a few chunks per process evens out uneven files
        chunks = [files[start:start + size] for start in range(0, len(files), size)]
        with ProcessPoolExecutor(jobs) as pool:
            for part in pool.map(_load_files, chunks, [max_file_bytes] * len(chunks)):
                result.absorb(part)
    else:
        result.absorb(_load_files(files, max_file_bytes))
    return result


def _load_files(files: list[str], max_file_bytes: int) -> LoadResult:
    result = LoadResult()
    for file in files:
        result.files += 1
        if file == "-":
            _load_bytes(sys.stdin.buffer.read(max_file_bytes + 1), STDIN_PATH, result, max_file_bytes,
                        keep_text=True)
            continue
        try:
            size = Path(file).stat().st_size
            if size > max_file_bytes:
                result.errors.append(LoadError(file, None,
                                               f"file is {size} bytes, over the {max_file_bytes}-byte limit"))
                continue
            data = Path(file).read_bytes()
        except OSError as exc:
            result.errors.append(LoadError(file, None, f"cannot read file: {exc.strerror or exc}"))
            continue
        _load_bytes(data, file, result, max_file_bytes)
    return result


def load_text(text: str, path: str, result: LoadResult | None = None) -> LoadResult:
    """Load one in-memory YAML/JSON text (used by tests and the reference bundle)."""
    result = result or LoadResult()
    result.texts[path] = text
    _load_str(text, path, result)
    return result


def _load_bytes(data: bytes, path: str, result: LoadResult, max_file_bytes: int, *, keep_text: bool = False) -> None:
    if len(data) > max_file_bytes:
        result.errors.append(LoadError(path, None, f"input is over the {max_file_bytes}-byte limit"))
        return
    if b"\x00" in data:
        result.errors.append(LoadError(path, None, "binary file (contains NUL bytes), not YAML or JSON"))
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        result.errors.append(LoadError(path, line, "not valid UTF-8 text (binary file?)"))
        return
    if keep_text:
        result.texts[path] = text
    _load_str(text, path, result)


def _load_str(text: str, path: str, result: LoadResult) -> None:
    parsed = LoadResult()
    documents = list(_parse_documents(text, path, parsed))
    if parsed.errors and path.lower().endswith(".json"):
        # JSON that libyaml refuses (tabs in odd places, say) still loads, only without positions.
        try:
            documents, parsed.errors = [(json.loads(text), 1, 1)], []
        except ValueError as exc:
            parsed.errors = [LoadError(path, getattr(exc, "lineno", None), f"invalid JSON: {getattr(exc, 'msg', exc)}")]
    result.errors.extend(parsed.errors)
    sources = _helm_sources(text)
    previous_line = 0
    for body, line, column in documents:
        _accept(body, path, line, column, _helm_source_at(sources, line, previous_line), result)
        previous_line = line


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
            line = _error_line(exc, offset_lines)
            result.errors.append(LoadError(path, line, _describe_yaml_error(exc, text)))
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


def _error_line(exc: BaseException, offset_lines: int) -> int | None:
    if isinstance(exc, _AliasBomb):
        return exc.line + offset_lines + 1
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
        result.errors.append(LoadError(path, line, "apiVersion and kind must be strings"))
        return
    if _HELM_ACTION.search(kind + " " + str(_name_of(body))):
        result.errors.append(LoadError(path, line, _HELM_HINT))
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
        result.errors.append(LoadError(path, _position(body, "items", line), f"{body['kind']}.items must be a list"))
        return
    for index, item in enumerate(items):
        position = items.item_position(index) if isinstance(items, MarkedList) else None
        item_line, item_column = position or (line, column)
        if not isinstance(item, dict):
            result.errors.append(LoadError(path, item_line, f"item {index} of {body['kind']} is not a mapping"))
        elif "apiVersion" not in item or "kind" not in item:
            result.errors.append(LoadError(path, item_line,
                                           f"item {index} of {body['kind']} has no apiVersion or kind"))
        else:
            result.documents.append(Document(path, item_line, item_column, item, helm_source, f"/items/{index}"))


def _position(mapping: dict, key: str, default: int) -> int:
    position = mapping.key_position(key) if isinstance(mapping, MarkedDict) else None
    return position[0] if position else default


def _name_of(body: dict) -> Any:
    metadata = body.get("metadata")
    return metadata.get("name") if isinstance(metadata, dict) else None
