"""The bundled reference manifests: variants made of shared folders (``reference_manifests/variants.yaml``)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import yaml

from tbyte_policy.bundle import bundled_dir

REFERENCE_NAMESPACE = "tbyte"
_NAMESPACE_LINE = re.compile(r"^(\s*namespace:\s*)tbyte\s*$", re.MULTILINE)
_NAMESPACE_NAME = re.compile(r"^(kind: Namespace\nmetadata:\n  name: )tbyte$", re.MULTILINE)
_NAMESPACE_LABEL = re.compile(r"(kubernetes\.io/metadata\.name:\s*)tbyte\b")
_SERVICE_DNS = re.compile(r"\.tbyte\.svc\b")
_QUERY_LABEL = re.compile(r'(namespace=")tbyte(")')  # PromQL label matchers in the canary analysis


class UnknownVariant(Exception):
    pass


class WouldOverwrite(Exception):
    pass


def _catalogue() -> tuple[Path, dict]:
    root = bundled_dir("reference_manifests")
    with (root / "variants.yaml").open(encoding="utf-8") as handle:
        return root, yaml.load(handle, Loader=yaml.CSafeLoader)


def variants() -> dict[str, dict]:
    return _catalogue()[1]["variants"]


def default_variant() -> str:
    return _catalogue()[1]["default"]


def variant_files(variant: str | None) -> list[Path]:
    root, data = _catalogue()
    name = variant or data["default"]
    if name not in data["variants"]:
        raise UnknownVariant(f"no variant {name!r}; variants: {', '.join(data['variants'])}")
    files = []
    for folder in data["variants"][name]["folders"]:
        files.extend(sorted(path for path in (root / folder).glob("*.y*ml") if path.is_file()))
    return files


def relative_name(path: Path) -> str:
    return path.relative_to(bundled_dir("reference_manifests")).as_posix()


def describe() -> str:
    _root, data = _catalogue()
    lines = []
    for name, variant in data["variants"].items():
        marker = " (default)" if name == data["default"] else ""
        lines.append(f"{name}{marker}: {' '.join(str(variant.get('description', '')).split())}")
        lines.extend(f"  {relative_name(path)}" for path in variant_files(name))
    return "\n".join(lines) + "\n"


def show(variant: str | None) -> str:
    parts = []
    for path in variant_files(variant):
        parts.append(f"# File: {relative_name(path)}\n{path.read_text(encoding='utf-8').strip()}\n")
    return "---\n".join(parts)


def retarget(text: str, namespace: str | None) -> str:
    """The manifest text with the ``tbyte`` namespace renamed (metadata and the Namespace object)."""
    if not namespace or namespace == REFERENCE_NAMESPACE:
        return text
    for pattern in (_NAMESPACE_LINE, _NAMESPACE_NAME, _NAMESPACE_LABEL):
        text = pattern.sub(lambda match: match.group(1) + namespace, text)
    text = _QUERY_LABEL.sub(lambda match: match.group(1) + namespace + match.group(2), text)
    return _SERVICE_DNS.sub(f".{namespace}.svc", text)


def _export_targets(directory: Path, variant: str | None) -> list[tuple[Path, Path]]:
    return [(path, directory / relative_name(path)) for path in variant_files(variant)]


def export(directory: Path, variant: str | None, namespace: str | None, *, force: bool) -> list[Path]:
    targets = _export_targets(directory, variant)
    existing = [target for _, target in targets if target.exists()]
    if existing and not force:
        raise WouldOverwrite(f"{existing[0]} exists (and {len(existing) - 1} more); use --force to overwrite")
    for source, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(retarget(source.read_text(encoding="utf-8"), namespace), encoding="utf-8")
    return [target for _, target in targets]


def drift(directory: Path, variant: str | None, namespace: str | None) -> list[str]:
    """How the files `export` would write into ``directory`` differ from what is there: one unified diff
    (or a "missing" line) per drifting file; empty when all match. Other files in ``directory`` are ignored."""
    drifted = []
    for source, target in _export_targets(directory, variant):
        expected = retarget(source.read_text(encoding="utf-8"), namespace)
        try:
            actual = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            drifted.append(f"{target}: missing or unreadable\n")
            continue
        if actual != expected:
            diff = difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                        f"bundled/{relative_name(source)}", str(target))
            drifted.append("".join(line if line.endswith("\n") else line + "\n" for line in diff))
    return drifted
