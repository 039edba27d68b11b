"""Findings and the report: the contract every reporter reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tbyte_policy.exit_codes import EXIT_FINDINGS, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK
from tbyte_policy.model import ObjectRef

if TYPE_CHECKING:
    from tbyte_policy.catalogue import Rule

SEVERITIES = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}  # info=0 … critical=4
FAMILIES = ("probes", "resources", "security-context", "images", "pdb", "hpa", "network-policy", "secrets",
            "replicas", "rollout", "services", "ingress", "schema", "runtime")


def at_least(severity: str, threshold: str) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]


@dataclass(frozen=True, slots=True)
class ResourceId:
    api_version: str | None
    kind: str
    name: str
    namespace: str | None


@dataclass(frozen=True, slots=True)
class Location:
    path: str | None
    line: int | None
    column: int | None
    pointer: str
    helm_source: str | None = None


@dataclass(slots=True)
class Finding:
    rule_id: str
    rule_name: str
    family: str
    severity: str
    message: str
    resource: ResourceId
    container: str | None
    location: Location
    related: list[ObjectRef] = field(default_factory=list)
    remediation: str = ""
    suppressed: bool = False
    suppression_reason: str | None = None

    @property
    def identity(self) -> tuple:
        """What survives edits that only move lines: used by baselines."""
        return (self.rule_id, self.resource.kind, self.resource.namespace, self.resource.name, self.container,
                self.location.pointer)

    def sort_key(self) -> tuple:
        return (self.location.path or "", self.location.line or 0, self.resource.kind, self.resource.namespace or "",
                self.resource.name, self.rule_id, self.container or "", self.location.pointer, self.message)


@dataclass(frozen=True, slots=True)
class ReportError:
    path: str | None
    line: int | None
    message: str

    def sort_key(self) -> tuple:
        return (self.path or "", self.line or 0, self.message)


@dataclass
class Report:
    tool_version: str
    rules: list["Rule"]
    findings: list[Finding] = field(default_factory=list)
    errors: list[ReportError] = field(default_factory=list)
    warnings: list[ReportError] = field(default_factory=list)
    internal_errors: list[ReportError] = field(default_factory=list)
    files: int = 0
    resources: int = 0
    skipped_documents: int = 0
    unreadable_kinds: dict[str, str] = field(default_factory=dict)
    mode: str = "scan"

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
