"""A ``wgpolicyk8s.io/v1alpha2`` PolicyReport, as Kyverno's Policy Reporter and Kubescape read it.

One report per run, listing findings only: ``fail`` for an active finding, ``skip`` for a suppressed one
(``pass`` results would need every evaluated (rule, resource) pair, which the report does not keep).
The report lives in the namespace of its findings when they all share one; otherwise ``metadata.namespace``
is left out and ``kubectl apply -n`` chooses.
"""

from __future__ import annotations

from typing import Any

import yaml

from tbyte_policy.findings import Finding, Report
from tbyte_policy.reporters import rendered_text

API_VERSION = "wgpolicyk8s.io/v1alpha2"
REPORT_NAME = "tbyte-policy"


def render(report: Report) -> str:
    document = as_document(report)
    options: dict[str, Any] = {"sort_keys": False, "allow_unicode": True, "default_flow_style": False, "width": 1000}
    try:
        return yaml.dump(document, Dumper=yaml.CSafeDumper, **options)
    except UnicodeEncodeError:
        # libyaml's emitter cannot take a lone surrogate (an undecodable byte of a file name, as Python keeps it);
        # PyYAML's own emitter writes it as a \u escape, which reads back as the same string.
        return yaml.dump(document, Dumper=yaml.SafeDumper, **options)


def as_document(report: Report) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": REPORT_NAME,
                                "labels": {"app.kubernetes.io/managed-by": "tbyte-policy"},
                                "annotations": {"tbyte-policy.io/version": report.tool_version}}
    namespaces = {finding.resource.namespace for finding in report.findings if finding.resource.namespace}
    if len(namespaces) == 1:
        metadata["namespace"] = namespaces.pop()
    results = [_result(finding) for finding in report.findings]
    results += [_error(error.message, error.path, error.line) for error in report.all_errors]
    results += [_error(f"could not read {kind}: {reason}", None, None)
                for kind, reason in sorted(report.unreadable_kinds.items())]
    summary = dict.fromkeys(("pass", "fail", "warn", "error", "skip"), 0)
    for result in results:
        summary[result["result"]] += 1
    return {"apiVersion": API_VERSION, "kind": "PolicyReport", "metadata": metadata, "summary": summary,
            "results": results}


def _result(finding: Finding) -> dict[str, Any]:
    resource: dict[str, str] = {"kind": finding.resource.kind, "name": finding.resource.name}
    if finding.resource.api_version:
        resource = {"apiVersion": finding.resource.api_version, **resource}
    if finding.resource.namespace:
        resource["namespace"] = finding.resource.namespace
    properties = {"pointer": finding.location.pointer, **_where(finding.location.path, finding.location.line)}
    if finding.container:
        properties["container"] = finding.container
    if finding.location.helm_source:
        properties["helmSource"] = finding.location.helm_source
    if finding.location.rendered is not None:
        properties["rendered"] = rendered_text(finding.location.rendered)
    if finding.suppressed:
        properties["suppressionReason"] = finding.suppression_reason or ""
    return {"policy": finding.rule_name, "rule": finding.rule_id, "result": "skip" if finding.suppressed else "fail",
            "severity": finding.severity, "category": finding.family, "source": "tbyte-policy", "scored": True,
            "message": finding.message, "resources": [resource], "properties": properties}


def _error(message: str, path: str | None, line: int | None) -> dict[str, Any]:
    """An input error (unreadable file, invalid YAML...): it is no rule's result, so its policy is ``input``."""
    result: dict[str, Any] = {"policy": "input", "result": "error", "source": "tbyte-policy", "message": message}
    where = _where(path, line)
    if where:
        result["properties"] = where
    return result


def _where(path: str | None, line: int | None) -> dict[str, str]:
    if not path:
        return {}
    return {"file": path, "line": str(line)} if line else {"file": path}
