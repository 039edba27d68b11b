"""The stable JSON findings contract (``version: 1``), documented in the README."""

from __future__ import annotations

import json
from typing import Any

from tbyte_policy.findings import Finding, Rendered, Report, ReportError

CONTRACT_VERSION = 1


def render(report: Report) -> str:
    return json.dumps(as_document(report), indent=2, ensure_ascii=False) + "\n"


def as_document(report: Report) -> dict[str, Any]:
    document: dict[str, Any] = {
        "version": CONTRACT_VERSION,
        "tool": {"name": "tbyte-policy", "version": report.tool_version},
        "mode": report.mode,
        "summary": {
            "files": report.files,
            "resources": report.resources,
            "skipped_documents": report.skipped_documents,
            "findings": len(report.active_findings),
            "suppressed": len(report.findings) - len(report.active_findings),
            "by_severity": report.by_severity(),
        },
        "findings": [finding_document(finding) for finding in report.findings],
        "errors": [_error(error) for error in report.all_errors],
        "warnings": [_error(warning) for warning in report.warnings],
    }
    if report.unreadable_kinds:
        document["unreadable_kinds"] = dict(sorted(report.unreadable_kinds.items()))
    return document


def finding_document(finding: Finding) -> dict[str, Any]:
    return {
        "rule_id": finding.rule_id,
        "rule_name": finding.rule_name,
        "family": finding.family,
        "severity": finding.severity,
        "message": finding.message,
        "resource": {"apiVersion": finding.resource.api_version, "kind": finding.resource.kind,
                     "name": finding.resource.name, "namespace": finding.resource.namespace},
        "container": finding.container,
        "location": {"path": finding.location.path, "line": finding.location.line,
                     "column": finding.location.column, "pointer": finding.location.pointer,
                     "helm_source": finding.location.helm_source, "rendered": _rendered(finding.location.rendered)},
        "related": [{"kind": ref.kind, "name": ref.name, "namespace": ref.namespace, "path": ref.path,
                     "line": ref.line} for ref in finding.related],
        "remediation": finding.remediation,
        "suppressed": finding.suppressed,
        "suppression_reason": finding.suppression_reason,
    }


def _rendered(rendered: Rendered | None) -> dict[str, Any] | None:
    if rendered is None:
        return None
    return {"tool": rendered.tool, "input": rendered.input, "line": rendered.line, "column": rendered.column}


def _error(error: ReportError) -> dict[str, Any]:
    return {"path": error.path, "line": error.line, "message": error.message}
