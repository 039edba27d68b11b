"""Sources: where the documents a run audits come from, each with its position in the source.

Every source yields the same thing, a ``LoadResult`` of ``Document``s (one Kubernetes object each, with the
file, line and column it came from) plus the input errors met on the way:

- ``files``: files, directories and stdin (YAML, JSON, ``kind: List``), parsed by ``yaml_documents``;
- ``cluster``: the objects of a live namespace, read from the API server (no file: findings locate them
  as ``Kind/namespace/name``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from tbyte_policy.findings import ReportError


class Document(NamedTuple):
    """One Kubernetes object as it came from a source."""

    path: str | None  # None for an object read from a cluster
    line: int | None
    column: int | None
    body: dict
    helm_source: str | None = None
    list_pointer: str = ""  # "/items/3" for an item of a kind: List, else ""


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


def scan_inputs(paths: list[str], *, max_file_bytes: int | None = None, exclude: list[str] | tuple[str, ...] = (),
                jobs: int = 1) -> list[Source]:
    """The sources that ``scan``'s paths name (what ``live --against`` compares with, too)."""
    from tbyte_policy.sources.files import DEFAULT_MAX_FILE_BYTES, FileSource

    return [FileSource(paths, max_file_bytes=max_file_bytes or DEFAULT_MAX_FILE_BYTES, exclude=exclude, jobs=jobs)]


def load_all(sources: list[Source]) -> LoadResult:
    """The documents of every source, in order."""
    result = LoadResult()
    for source in sources:
        result.absorb(source.load())
    return result
