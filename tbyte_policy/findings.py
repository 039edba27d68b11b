"""Findings and the report: the contract every reporter reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from tbyte_policy.exit_codes import EXIT_FINDINGS, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK
from tbyte_policy.model import ObjectRef, ref_text

if TYPE_CHECKING:
    from tbyte_policy.catalogue import Rule

SEVERITIES = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}  # info=0 … critical=4
FAMILIES = ("probes", "resources", "security-context", "images", "pdb", "hpa", "network-policy", "secrets",
            "replicas", "rollout", "services", "ingress", "schema", "runtime", "drift")


def at_least(severity: str, threshold: str) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]


class ResourceId(NamedTuple):
    api_version: str | None
    kind: str
    name: str
    namespace: str | None

    @property
    def ref(self) -> str:
        return ref_text(self.kind, self.namespace, self.name)


class Rendered(NamedTuple):
    """Where a rendered object's field stands in the output of the tool that rendered it.

    ``line``/``column`` count in the output of ``helm template`` or ``kustomize build`` run on ``input``
    with the scan's render options, so that output can be printed to look at them.
    """

    tool: str  # "helm" or "kustomize"
    input: str  # the chart or kustomization folder (or packaged chart) as the scan was given it
    line: int | None
    column: int | None


class Location(NamedTuple):
    """Where to look in the repository: the file, and the line and column of the offending field (or of its
    nearest parent found there). For a rendered object the file is its source (a chart's template, the file
    a kustomization took it from) and ``rendered`` keeps the position in the render output."""

    path: str | None
    line: int | None
    column: int | None
    pointer: str
    helm_source: str | None = None
    rendered: Rendered | None = None


class Finding(NamedTuple):
    rule_id: str
    rule_name: str
    family: str
    severity: str
    message: str
    resource: ResourceId
    container: str | None
    location: Location
    related: Sequence[ObjectRef] = ()
    remediation: str = ""
    suppressed: bool = False
    suppression_reason: str | None = None

    def suppressed_because(self, reason: str) -> Finding:
        return self._replace(suppressed=True, suppression_reason=reason)

    @property
    def identity(self) -> tuple:
        """What survives edits that only move lines: used by baselines."""
        return (self.rule_id, self.resource.kind, self.resource.namespace, self.resource.name, self.container,
                self.location.pointer)

    def sort_key(self) -> tuple:
        return (self.location.path or "", self.location.line or 0, self.resource.kind, self.resource.namespace or "",
                self.resource.name, self.rule_id, self.container or "", self.location.pointer, self.message)


class ReportError(NamedTuple):
    path: str | None
    line: int | None
    message: str

    def sort_key(self) -> tuple:
        return (self.path or "", self.line or 0, self.message)


class Report(NamedTuple):
    tool_version: str
    rules: Sequence[Rule]
    findings: Sequence[Finding]
    errors: Sequence[ReportError] = ()
    warnings: Sequence[ReportError] = ()
    internal_errors: Sequence[ReportError] = ()
    files: int = 0
    resources: int = 0
    skipped_documents: int = 0
    unreadable_kinds: Mapping[str, str] = MappingProxyType({})  # kind -> why a live run could not read it
    mode: str = "scan"
    # The text of inputs that cannot be read again (stdin, in-memory documents), by path; the files a
    # report names are read from disk by the reporters that show source lines.
    source_texts: Mapping[str, str] = MappingProxyType({})

    @property
    def all_errors(self) -> list[ReportError]:
        """Input errors, then internal errors: every error a reporter lists."""
        return [*self.errors, *self.internal_errors]

    @property
    def active_findings(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.suppressed]

    def by_severity(self) -> dict[str, int]:
        counts = dict.fromkeys(SEVERITIES, 0)
        for finding in self.active_findings:
            counts[finding.severity] += 1
        return counts

    def exit_code(self, fail_on: str) -> int:
        """The run's exit code under the contract of ``exit_codes``."""
        if self.internal_errors:
            return EXIT_INTERNAL
        if self.errors or self.unreadable_kinds:
            return EXIT_INPUT
        if any(at_least(finding.severity, fail_on) for finding in self.active_findings):
            return EXIT_FINDINGS
        return EXIT_OK
