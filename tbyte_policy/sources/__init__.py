"""Sources: where the documents a run audits come from, each with its position in the source.

Every source yields the same thing, a ``LoadResult`` of ``Document``s (one Kubernetes object each, with the
file, line and column it came from) plus the input errors met on the way:

- ``files``: files, directories and stdin (YAML, JSON, ``kind: List``), parsed by ``yaml_documents``;
- ``helm``: Helm charts (folders with ``Chart.yaml``, packaged ``.tgz``), rendered as ``helm template`` renders
  them (``helm_sdk`` is the one module that imports the Helm SDK), each object placed on its template;
- ``kustomize``: kustomizations, built with ``kustomize build`` or ``kubectl kustomize``, each object placed on
  the file kustomize took it from;
- ``cluster``: the objects of a live namespace, read from the API server (no file: findings locate them
  as ``Kind/namespace/name``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from tbyte_policy.findings import ReportError
    from tbyte_policy.model import Origin


class Document(NamedTuple):
    """One Kubernetes object as it came from a source."""

    path: str | None  # None for an object read from a cluster
    line: int | None
    column: int | None
    body: dict
    helm_source: str | None = None
    list_pointer: str = ""  # "/items/3" for an item of a kind: List, else ""
    origin: Origin | None = None  # a rendered object: path, line and column are then in its source file
    namespace: str | None = None  # where the object goes when it names no namespace (a chart's release namespace)


class LoadResult:
    """What loading produced, filled in as a source is read."""

    __slots__ = ("documents", "errors", "files", "skipped_documents", "texts")

    def __init__(self, errors: list[ReportError] | None = None) -> None:
        self.documents: list[Document] = []
        self.errors: list[ReportError] = errors if errors is not None else []
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


class Source(Protocol):
    """Anything a run can read documents from."""

    def load(self) -> LoadResult: ...


CHART_FILE = "Chart.yaml"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
PACKAGED_CHART_SUFFIXES = (".tgz", ".tar.gz")


class ToolMissing(Exception):
    """Nothing here can render what the scan was given (no Helm, no kustomize): a one-line message, exit 2."""


class RenderOptions(NamedTuple):
    """How the charts and kustomizations among the paths are rendered: ``helm template``'s flags, the tools."""

    values: tuple[str, ...] = ()  # --values files, merged in order
    set_values: tuple[str, ...] = ()  # --set
    set_string_values: tuple[str, ...] = ()  # --set-string
    release: str = "release-name"
    namespace: str | None = None  # the release namespace; None: the scan's --namespace
    include_tests: bool = False  # Helm test hooks (and templates/tests/) are left out unless asked for
    kubernetes_version: str | None = None  # .Capabilities.KubeVersion; None: the newest the schema rules know
    helm_bin: str | None = None  # a helm binary instead of the Helm SDK
    kustomize_bin: str | None = None  # kustomize or kubectl; None: whichever is on PATH
    timeout: float = 120.0  # seconds for one helm or kustomize process


def scan_inputs(paths: list[str], *, max_file_bytes: int | None = None, exclude: list[str] | tuple[str, ...] = (),
                jobs: int = 1, render: RenderOptions | None = None) -> list[Source]:
    """The sources that ``scan``'s paths name (what ``live --against`` compares with, too): plain files, charts
    (``Chart.yaml`` folders, packaged ``.tgz``) and top-level kustomizations; see ``inputs``.

    Raises ``ToolMissing`` (a one-line message) when charts or kustomizations are among the paths and
    nothing here can render them.
    """
    from tbyte_policy.sources.files import DEFAULT_MAX_FILE_BYTES, FileSource

    if all(_plain_file(path) for path in paths):  # staged files in a pre-commit hook: nothing to plan
        return [FileSource(paths, max_file_bytes=max_file_bytes or DEFAULT_MAX_FILE_BYTES, exclude=exclude, jobs=jobs)]
    from tbyte_policy.sources.inputs import plan_inputs

    render = render or RenderOptions()
    plan = plan_inputs(paths, exclude)
    sources: list[Source] = [FileSource(plan.files, max_file_bytes=max_file_bytes or DEFAULT_MAX_FILE_BYTES,
                                        exclude=exclude, jobs=jobs, errors=plan.errors)]
    if plan.charts:
        from tbyte_policy.sources.helm import HelmChartSource, check_values_files, helm_renderer

        renderer = helm_renderer(render)
        check_values_files(render)
        sources += [HelmChartSource(chart, render, renderer) for chart in plan.charts]
    if plan.kustomizations:
        from tbyte_policy.sources.kustomize import KustomizeSource, kustomize_command

        command = kustomize_command(render)
        sources += [KustomizeSource(kustomization, render, command) for kustomization in plan.kustomizations]
    return sources


def _plain_file(path: str) -> bool:
    """Neither a folder nor a file that names a chart or a kustomization."""
    name = os.path.basename(path)
    return path == "-" or not (os.path.isdir(path) or name == CHART_FILE or name in KUSTOMIZATION_FILES
                               or name.lower().endswith(PACKAGED_CHART_SUFFIXES))


def load_all(sources: list[Source]) -> LoadResult:
    """The documents of every source, in order."""
    result = LoadResult()
    for source in sources:
        result.absorb(source.load())
    return result
