"""Which of ``scan``'s paths are Helm charts, kustomizations or plain files.

- A chart is a folder with ``Chart.yaml`` (or a packaged ``.tgz`` named on the command line); everything in
  its folder belongs to it (templates, values, subcharts), so none of it is read as a manifest.
- A kustomization is a folder with ``kustomization.yaml``, ``kustomization.yml`` or ``Kustomization``. Its
  folder, and every local file it names, belong to it. Of the kustomizations a scan finds, only the
  top-level ones are built: those no other kustomization of the run refers to (an overlay's base is built
  as part of each overlay, not once more on its own). Components are only built by what includes them.
- Whatever is left is a plain file, read as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from tbyte_policy.findings import ReportError
from tbyte_policy.sources import CHART_FILE, KUSTOMIZATION_FILES, PACKAGED_CHART_SUFFIXES
from tbyte_policy.sources.files import YAML_SUFFIXES

# Kustomization fields that name other kustomizations (folders) or files; kustomize reads nothing else
# from disk without plugins.
_TARGET_FIELDS = ("resources", "bases", "components")
_FILE_LIST_FIELDS = ("patchesStrategicMerge", "crds", "configurations", "generators", "transformers", "validators")
_PATH_ITEM_FIELDS = ("patches", "patchesJson6902", "replacements")
_GENERATOR_FIELDS = ("configMapGenerator", "secretGenerator")


class Kustomization(NamedTuple):
    """A kustomization folder and what it refers to on disk."""

    folder: str  # as the scan names it
    file: str  # its kustomization file
    is_component: bool
    targets: list[str]  # resolved folders its resources/bases/components name
    files: list[str]  # resolved files it names (resources, patches, generator inputs...)
    unreachable: list[tuple[int | None, str]]  # (line, entry) of resources that are not on disk (remote bases)


class InputPlan(NamedTuple):
    files: list[str]  # plain files (and "-"), in the order they are read
    charts: list[str]  # chart folders and packaged charts
    kustomizations: list[Kustomization]  # the top-level kustomizations, to build
    errors: list[ReportError]


def kustomization_file(folder: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def plan_inputs(paths: Iterable[str], exclude: Iterable[str] = ()) -> InputPlan:
    patterns = list(exclude)
    files: list[tuple[bool, Path | str]] = []  # (found by walking a folder, path)
    charts: list[str] = []
    folders: dict[str, str] = {}  # real path -> folder as named, for every kustomization found
    errors: list[ReportError] = []
    for raw in paths:
        if raw == "-":
            files.append((False, "-"))
            continue
        path = Path(raw)
        if path.is_dir():
            for kind, found in _walk(path, patterns):
                if kind == "chart":
                    charts.append(str(found))
                elif kind == "kustomization":
                    folders.setdefault(os.path.realpath(found), str(found))
                else:
                    files.append((True, found))
        elif path.is_file():
            if _excluded(path, patterns):
                continue
            if path.name == CHART_FILE:
                charts.append(str(path.parent))
            elif path.name in KUSTOMIZATION_FILES:
                folders.setdefault(os.path.realpath(path.parent), str(path.parent))
            elif path.name.lower().endswith(PACKAGED_CHART_SUFFIXES):
                charts.append(str(path))
            else:
                files.append((False, path))
        else:
            errors.append(ReportError(str(path), None, "no such file or directory"))
    kustomizations = [read_kustomization(folder) for folder in folders.values()]
    owned = _owned(kustomizations)
    plain = [str(path) for walked, path in files if path == "-" or _plain(path, walked, owned)]
    return InputPlan(plain, _unique(charts), _top_level(kustomizations), errors)


def _walk(root: Path, patterns: list[str]) -> Iterator[tuple[str, Path]]:
    """("chart" | "kustomization" | "file", path) under root, files in the order ``files.discover`` has them."""
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if name != ".git")
        here = Path(folder)
        if CHART_FILE in names:
            subfolders[:] = []  # a chart's subcharts render with it
            if not _excluded(here / CHART_FILE, patterns):
                yield "chart", here
            continue
        if any(name in names for name in KUSTOMIZATION_FILES) \
                and not _excluded(here / next(name for name in KUSTOMIZATION_FILES if name in names), patterns):
            yield "kustomization", here
        found.extend(here / name for name in names
                     if Path(name).suffix.lower() in YAML_SUFFIXES and not _excluded(here / name, patterns))
    for path in sorted(found):
        yield "file", path


def _excluded(path: Path, patterns: list[str]) -> bool:
    text = path.as_posix()
    return any(fnmatch(text, pattern) or path.match(pattern) for pattern in patterns)


def _unique(items: list[str]) -> list[str]:
    """``items`` without the ones that name the same file as an earlier one."""
    firsts: dict[str, str] = {}
    for item in items:
        firsts.setdefault(os.path.realpath(item), item)
    return list(firsts.values())


class _Owned(NamedTuple):
    folders: list[str]  # real paths whose whole tree belongs to a kustomization
    files: set[str]  # real paths of files named by one


def _owned(kustomizations: list[Kustomization]) -> _Owned:
    folders = [os.path.realpath(kustomization.folder) for kustomization in kustomizations]
    named = {file for kustomization in kustomizations for file in kustomization.files}
    return _Owned(folders, named)


def _plain(path: Path | str, walked: bool, owned: _Owned) -> bool:
    """Not a kustomization's: neither named by one nor, when a folder's walk found it, in one's folder."""
    real = os.path.realpath(path)
    return real not in owned.files and not (walked and _under_any(real, owned))


def _under_any(path: str, owned: _Owned) -> bool:
    return any(path == folder or path.startswith(folder + os.sep) for folder in owned.folders)


def _top_level(kustomizations: list[Kustomization]) -> list[Kustomization]:
    """The kustomizations no other one of the run refers to; a cycle's first member stands for the cycle."""
    by_folder = {os.path.realpath(kustomization.folder): kustomization for kustomization in kustomizations}
    referred = {target for kustomization in kustomizations for target in kustomization.targets
                if target != os.path.realpath(kustomization.folder)}
    top = [folder for folder in sorted(by_folder) if folder not in referred]
    reached = _reachable(top, by_folder)
    for folder in sorted(by_folder):
        if folder not in reached:
            top.append(folder)
            reached |= _reachable([folder], by_folder)
    return sorted((by_folder[folder] for folder in top if not by_folder[folder].is_component),
                  key=lambda kustomization: kustomization.folder)


def _reachable(starts: list[str], by_folder: dict[str, Kustomization]) -> set[str]:
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        folder = stack.pop()
        if folder in seen:
            continue
        seen.add(folder)
        kustomization = by_folder.get(folder)
        if kustomization is not None:
            stack.extend(kustomization.targets)
    return seen


def read_kustomization(folder: str) -> Kustomization:
    """What a kustomization names on disk. One that cannot be parsed names nothing: kustomize reports it."""
    from tbyte_policy.marked import MarkedList, MarkingLoader

    file = kustomization_file(Path(folder))
    assert file is not None
    base = Path(folder)
    document: Any = None
    try:
        loader = MarkingLoader(file.read_text(encoding="utf-8"))
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        document = None  # kustomize reports what is wrong with it
    if not isinstance(document, dict):
        document = {}
    targets: list[str] = []
    files: list[str] = [os.path.realpath(file)]
    unreachable: list[tuple[int | None, str]] = []
    for field in _TARGET_FIELDS:
        entries = document.get(field)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, str):
                continue
            resolved = base / entry
            position = entries.item_position(index) if isinstance(entries, MarkedList) else None
            if resolved.is_dir():
                targets.append(os.path.realpath(resolved))
            elif resolved.is_file():
                files.append(os.path.realpath(resolved))
            else:
                unreachable.append((position[0] if position else None, entry))
    for entry in _named_files(document):
        files.append(os.path.realpath(base / entry))
    kind = document.get("kind")
    return Kustomization(folder, str(file), kind == "Component", targets, files, unreachable)


def _named_files(document: dict) -> Iterator[str]:
    for field in _FILE_LIST_FIELDS:
        entries = document.get(field)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, str) and "\n" not in entry:  # patchesStrategicMerge may hold inline patches
                yield entry
    for field in _PATH_ITEM_FIELDS:
        entries = document.get(field)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                yield entry["path"]
    for field in _GENERATOR_FIELDS:
        entries = document.get(field)
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            names = [*_strings(entry.get("files")), *_strings(entry.get("envs"))]
            if isinstance(entry.get("env"), str):
                names.append(entry["env"])
            yield from (name.partition("=")[2] or name for name in names)
    openapi = document.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield openapi["path"]


def _strings(value: Any) -> list[str]:
    return [entry for entry in value if isinstance(entry, str)] if isinstance(value, list) else []
