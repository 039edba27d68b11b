"""Kustomizations → documents: built with ``kustomize build`` (or ``kubectl kustomize``), each object placed on the
file kustomize took it from.

kustomize says where each object came from when the kustomization asks for ``buildMetadata:
[originAnnotations]``. The user's files are not touched for that: the build runs on a wrapper kustomization
in a temporary folder that names the user's folder as its only resource and asks for the annotations. They
are taken out of the output text before it is parsed, so the rules never see them and the rendered line
numbers are those of a plain ``kustomize build`` of the folder.

Remote bases (a ``resources`` entry that is a URL or a git repository) are not fetched: a scan does not use
the network. Such a kustomization is an input error naming the entry; the build also runs with proxies
that lead nowhere and git limited to local repositories, so nothing is fetched even by accident.
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml

from tbyte_policy.findings import Rendered, ReportError
from tbyte_policy.marked import MarkedDict, MarkedList, MarkingLoader
from tbyte_policy.model import is_number_text, mapping, split_pointer
from tbyte_policy.sources import Document, LoadResult, RenderOptions
from tbyte_policy.sources.inputs import Kustomization, kustomization_file, read_kustomization
from tbyte_policy.sources.tools import ToolFailed, ToolMissing, find_executable, run_tool
from tbyte_policy.sources.yaml_documents import load_text

if TYPE_CHECKING:
    from tbyte_policy.model import Resource

KUSTOMIZE_MISSING = ("kustomizations need kustomize to build: put kustomize or kubectl (its `kubectl kustomize`) "
                     "on PATH, or name one with --kustomize-bin")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
_ORIGIN_LINE = re.compile(r"^(?P<indent> +)config\.kubernetes\.io/origin: *(?P<value>.*)$")
_KUBECTL_ERROR = re.compile(r'err="(?P<message>(?:[^"\\]|\\.)*)"')
_GENERATOR_FIELDS = {"ConfigMapGenerator": "configMapGenerator", "SecretGenerator": "secretGenerator"}


class KustomizeCommand(NamedTuple):
    argv: tuple[str, ...]  # ("/usr/bin/kustomize", "build") or ("/usr/bin/kubectl", "kustomize")


def kustomize_command(options: RenderOptions) -> KustomizeCommand:
    """``--kustomize-bin`` (kustomize or kubectl), else kustomize on PATH, else kubectl; ToolMissing when none."""
    if options.kustomize_bin:
        found = find_executable(options.kustomize_bin)
        if found is None:
            raise ToolMissing(f"--kustomize-bin {options.kustomize_bin}: no such executable")
        return KustomizeCommand((found, "kustomize" if "kubectl" in os.path.basename(found) else "build"))
    for name, verb in (("kustomize", "build"), ("kubectl", "kustomize")):
        found = find_executable(name)
        if found is not None:
            return KustomizeCommand((found, verb))
    raise ToolMissing(KUSTOMIZE_MISSING)


class KustomizeSource:
    """One top-level kustomization, built once."""

    def __init__(self, kustomization: Kustomization, options: RenderOptions, command: KustomizeCommand) -> None:
        self.kustomization = kustomization
        self.options = options
        self.command = command

    def load(self) -> LoadResult:
        result = LoadResult()
        folder = self.kustomization.folder
        remote = list(_unreachable_entries(self.kustomization))
        if remote:
            result.errors.extend(
                ReportError(file, line, f"kustomization {folder} is not built: {entry!r} is not a file or folder "
                                        "here, and a scan never fetches remote bases (vendor it into the "
                                        "repository, or scan kustomize build's output)")
                for file, line, entry in remote)
            return result
        try:
            built, wrapper = self._build()
        except _BuildError as exc:
            result.errors.append(ReportError(self.kustomization.file, None,
                                             f"kustomization {folder} does not build: {exc}"))
            return result
        text, origins = strip_origins(built)
        parsed = load_text(text, folder)
        result.errors.extend(ReportError(self.kustomization.file, None, f"kustomization {folder}: the build output "
                                                                        f"is not valid YAML: {error.message}")
                             for error in parsed.errors)
        result.skipped_documents += parsed.skipped_documents
        sources = _SourceFiles(wrapper, relative=not os.path.isabs(folder))
        for document in parsed.documents:
            origin = _origin_at(origins, document.line)
            if origin is None:
                origin = _take_origin_annotation(document.body)
            place = sources.place(document.body, origin, self.kustomization.file)
            result.documents.append(document._replace(
                path=place.path, line=place.start[0], column=place.start[1],
                origin=KustomizeOrigin(folder, place.body, place.start, (document.line, document.column))))
        result.files += len(sources.used)
        return result

    def _build(self) -> tuple[str, str]:
        """The build's output, and the wrapper folder its origin paths are relative to."""
        target = os.path.realpath(self.kustomization.folder)
        with tempfile.TemporaryDirectory(prefix="tbyte-policy-kustomize-") as wrapper:
            wrapper = os.path.realpath(wrapper)
            relative = os.path.relpath(target, wrapper)
            Path(wrapper, "kustomization.yaml").write_text(
                yaml.safe_dump({"resources": [relative], "buildMetadata": ["originAnnotations"]}), encoding="utf-8")
            try:
                completed = run_tool([*self.command.argv, wrapper], timeout=self.options.timeout)
            except ToolFailed as exc:
                raise _BuildError(str(exc)) from None
            if completed.returncode != 0:
                message = _tool_error(completed.stderr, target) or f"exited with status {completed.returncode}"
                raise _BuildError(message.replace(wrapper + os.sep, "").replace(relative, self.kustomization.folder))
            return completed.stdout, wrapper


class _BuildError(Exception):
    pass


def _unreachable_entries(top: Kustomization):
    """(kustomization file, line, entry) of every resource that is not on disk, in the folders the build reads."""
    seen: set[str] = set()
    stack = [top]
    while stack:
        kustomization = stack.pop()
        real = os.path.realpath(kustomization.folder)
        if real in seen:
            continue
        seen.add(real)
        for line, entry in kustomization.unreachable:
            yield kustomization.file, line, entry
        stack.extend(read_kustomization(target) for target in kustomization.targets
                     if os.path.realpath(target) not in seen and kustomization_file(Path(target)) is not None)


def _tool_error(stderr: str, target: str) -> str:
    """kustomize's ``Error: ...`` line, or kubectl's ``err="..."`` field (or its multi-line ``err=<`` form), without
    the wrapper kustomization's own part of the story."""
    lines = stderr.splitlines()
    message = ""
    for index, line in enumerate(lines):
        if line.startswith("Error: "):
            message = line[len("Error: "):]
            break
        if line.rstrip().endswith("err=<"):
            message = " ".join(part.strip() for part in itertools.takewhile(lambda part: part.strip() != ">",
                                                                              lines[index + 1:]))
            break
        match = _KUBECTL_ERROR.search(line)
        if match:
            message = match.group("message").replace('\\"', '"').replace("\\\\", "\\")
            break
    else:
        rest = [line for line in lines if line.strip() and not line.startswith("# Warning")]
        message = rest[-1] if rest else ""
    _, found, inner = message.partition(f"recursed accumulation of path '{target}': ")
    return " ".join((inner if found else message).split())


# --- origin annotations ---

class _Origin(NamedTuple):
    first_line: int  # the document's first line in the stripped text
    fields: dict[str, Any]


def strip_origins(text: str) -> tuple[str, list[_Origin]]:
    """The build output without its origin annotations (and without an ``annotations:`` they leave empty),
    and each document's origin, by the line the document starts on in the text returned."""
    lines = text.split("\n")
    kept: list[str] = []
    origins: list[_Origin] = []
    document_start = 1
    index = 0
    while index < len(lines):
        line = lines[index]
        if line == "---":
            kept.append(line)
            document_start = len(kept) + 1
            index += 1
            continue
        match = _ORIGIN_LINE.match(line)
        if match is None:
            kept.append(line)
            index += 1
            continue
        indent = len(match.group("indent"))
        block = [match.group("value")]
        index += 1
        while index < len(lines) and (not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip())
                                      > indent):
            block.append(lines[index])
            index += 1
        fields = _origin_fields(block)
        # An `annotations:` that held only the origin goes too, as a plain build would not write it.
        if kept and kept[-1].strip() == "annotations:" and len(kept[-1]) - len(kept[-1].lstrip()) == indent - 2 \
                and (index >= len(lines) or len(lines[index]) - len(lines[index].lstrip()) < indent
                     or lines[index] == "---"):
            kept.pop()
        origins.append(_Origin(document_start, fields))
    return "\n".join(kept), origins


def _origin_fields(block: list[str]) -> dict[str, Any]:
    """The origin annotation's value (a YAML text: ``path: ../base/x.yaml`` or ``configuredIn: ...``)."""
    head = block[0].strip()
    try:
        if head.startswith(("|", ">")):
            value = yaml.load(textwrap.dedent("\n".join(block[1:])), Loader=yaml.CSafeLoader)
        else:
            text = yaml.load(head, Loader=yaml.CSafeLoader)
            value = yaml.load(text, Loader=yaml.CSafeLoader) if isinstance(text, str) else None
    except yaml.YAMLError:
        return {}
    return value if isinstance(value, dict) else {}


def _origin_at(origins: list[_Origin], line: int | None) -> dict[str, Any] | None:
    found = None
    for origin in origins:
        if line is not None and origin.first_line <= line:
            found = origin.fields
        else:
            break
    return found


def _take_origin_annotation(body: dict) -> dict[str, Any] | None:
    """The origin annotation still in ``body`` (should the output's layout be new to us), taken out of it."""
    annotations = mapping(body.get("metadata")).get("annotations")
    if not isinstance(annotations, dict) or ORIGIN_ANNOTATION not in annotations:
        return None
    value = annotations.pop(ORIGIN_ANNOTATION)
    if not annotations:
        del body["metadata"]["annotations"]
    try:
        parsed = yaml.load(value, Loader=yaml.CSafeLoader) if isinstance(value, str) else None
    except yaml.YAMLError:
        return None
    return parsed if isinstance(parsed, dict) else None


# --- placing objects on their source files ---

class _Place(NamedTuple):
    path: str
    start: tuple[int | None, int | None]
    body: Any  # the object as written in path (positions for its fields), or None


class _SourceFiles:
    """The files kustomize read, parsed once each, and the object each built object was written as."""

    def __init__(self, wrapper: str, *, relative: bool) -> None:
        self.wrapper = wrapper
        self.relative = relative
        self.parsed: dict[str, list[Document]] = {}
        self.used: set[str] = set()

    def display(self, absolute: str) -> str:
        return os.path.relpath(absolute) if self.relative else absolute

    def place(self, body: dict, origin: dict[str, Any] | None, fallback: str) -> _Place:
        if origin and isinstance(origin.get("path"), str) and not origin.get("repo"):
            absolute = os.path.normpath(os.path.join(self.wrapper, origin["path"]))
            path = self.display(absolute)
            self.used.add(path)
            written = _written_as(body, self._documents(absolute, path))
            if written is None:
                return _Place(path, (None, None), None)
            return _Place(path, (written.line, written.column), written.body)
        if origin and isinstance(origin.get("configuredIn"), str):
            absolute = os.path.normpath(os.path.join(self.wrapper, origin["configuredIn"]))
            path = self.display(absolute)
            self.used.add(path)
            return _Place(path, _generator_position(absolute, body, mapping(origin.get("configuredBy"))), None)
        self.used.add(fallback)
        return _Place(fallback, (None, None), None)

    def _documents(self, absolute: str, path: str) -> list[Document]:
        if absolute not in self.parsed:
            try:
                text = Path(absolute).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""
            self.parsed[absolute] = load_text(text, path).documents
        return self.parsed[absolute]


def _written_as(body: dict, documents: list[Document]) -> Document | None:
    """The document of the source file a built object comes from: same kind, and the name kustomize kept or
    wrapped in a prefix or suffix (the longest such name), or the file's only object of that kind."""
    kind = body.get("kind")
    name = mapping(body.get("metadata")).get("name")
    same_kind = [document for document in documents if document.body.get("kind") == kind]
    named = [(len(written), document) for document in same_kind
             if isinstance(name, str) and isinstance(written := mapping(document.body.get("metadata")).get("name"), str)
             and written and written in name]
    if named:
        named.sort(key=lambda entry: -entry[0])
        if len(named) == 1 or named[0][0] > named[1][0]:
            return named[0][1]
        return None
    return same_kind[0] if len(same_kind) == 1 else None


def _generator_position(kustomization: str, body: dict, configured_by: dict) -> tuple[int | None, int | None]:
    """The generator entry (``configMapGenerator: - name: x``) that made a ConfigMap or Secret."""
    field = _GENERATOR_FIELDS.get(str(configured_by.get("kind")))
    try:
        loader = MarkingLoader(Path(kustomization).read_text(encoding="utf-8"))
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None, None
    if not isinstance(document, MarkedDict) or field is None or field not in document:
        return (1, 1) if isinstance(document, dict) else (None, None)
    entries = document[field]
    name = mapping(body.get("metadata")).get("name")
    if isinstance(entries, MarkedList) and isinstance(name, str):
        for index, entry in enumerate(entries):
            generated = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(generated, str) and generated and generated in name:
                return entries.item_position(index) or (None, None)
    return document.key_position(field) or (None, None)


class KustomizeOrigin:
    """Places the fields of one built object on the object its source file wrote."""

    __slots__ = ("folder", "rendered_start", "start", "written")

    def __init__(self, folder: str, written: Any, start: tuple[int | None, int | None],
                 rendered_start: tuple[int | None, int | None]) -> None:
        self.folder = folder
        self.written = written
        self.start = start
        self.rendered_start = rendered_start

    def position(self, resource: Resource, pointer: str) -> tuple[int | None, int | None]:
        """The field as the source file wrote it, or its nearest parent there (a patch may have added it). A list
        item is followed only when it is the same item (same ``name``): patches add and reorder items."""
        line, column = self.start
        written: Any = self.written
        built: Any = resource.raw
        for part in split_pointer(pointer):
            found = None
            if isinstance(written, dict) and isinstance(built, dict):
                if part not in written:
                    break
                found = written.key_position(part) if isinstance(written, MarkedDict) else None
                written, built = written[part], built.get(part)
            elif (isinstance(written, list) and isinstance(built, list) and is_number_text(part)
                  and int(part) < len(built)):
                item = built[int(part)]
                index = _same_item(written, built, int(part))
                if index is None:
                    break
                found = written.item_position(index) if isinstance(written, MarkedList) else None
                written, built = written[index], item
            else:
                break
            if found:
                line, column = found
        return line, column

    def rendered(self, resource: Resource, pointer: str) -> Rendered:
        line, column = resource.parsed_position(pointer, self.rendered_start)
        return Rendered("kustomize", self.folder, line, column)


def _same_item(written: list, built: list, index: int) -> int | None:
    """Where the built list's item ``index`` is in the written list: by its ``name`` when it has one, else at the
    same index when both lists are as long (nothing added or removed)."""
    name = built[index].get("name") if isinstance(built[index], dict) else None
    if isinstance(name, str):
        return next((position for position, candidate in enumerate(written)
                     if isinstance(candidate, dict) and candidate.get("name") == name), None)
    return index if len(written) == len(built) else None
