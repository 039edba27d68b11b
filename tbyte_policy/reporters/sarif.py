"""SARIF 2.1.0, as GitHub code scanning and other SARIF viewers read it.

Paths become URIs relative to ``%SRCROOT%`` (the current directory, which CI sets to the checkout), so
code scanning places each result on the offending field's line and column; ``partialFingerprints`` carry
the finding's identity, which survives edits that only move lines.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tbyte_policy.findings import Finding, Report, ReportError, ResourceId
from tbyte_policy.model import ObjectRef
from tbyte_policy.ruledocs import rule_markdown
from tbyte_policy.sources.files import STDIN_PATH

if TYPE_CHECKING:
    from tbyte_policy.catalogue import Rule

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "tbytePolicyIdentity/v1"
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub code scanning shows a rule's severity from this CVSS-like score (over 9 critical, 7 high, 4 medium,
# else low); info rules carry none and show as notes.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


def render(report: Report, *, base: Path | None = None) -> str:
    return json.dumps(as_document(report, base=base), indent=2, ensure_ascii=False) + "\n"


def as_document(report: Report, *, base: Path | None = None) -> dict[str, Any]:
    base = base or Path.cwd()
    rule_index = {rule.id: index for index, rule in enumerate(report.rules)}
    failed = bool(report.all_errors or report.unreadable_kinds)
    notifications = [_notification("error", error, base) for error in report.all_errors]
    notifications += [{"level": "error", "message": {"text": f"could not read {kind}: {reason}"}}
                      for kind, reason in sorted(report.unreadable_kinds.items())]
    notifications += [_notification("warning", warning, base) for warning in report.warnings]
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "tbyte-policy", "version": report.tool_version,
                            "semanticVersion": report.tool_version,
                            "rules": [_descriptor(rule) for rule in report.rules]}},
        "invocations": [{"executionSuccessful": not failed, "toolExecutionNotifications": notifications}],
        "columnKind": "unicodeCodePoints",
        "results": [_result(finding, rule_index, base) for finding in report.findings],
        "properties": {"mode": report.mode, "files": report.files, "resources": report.resources,
                       "skippedDocuments": report.skipped_documents},
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _descriptor(rule: Rule) -> dict[str, Any]:

    docs = rule.docs
    sections = [("What it checks: ", docs["what"]), ("Why it matters: ", docs["why"]), ("Example:\n", docs["example"]),
                ("Fix: ", docs["fix"])]
    text = rule.title + "".join(f"\n\n{label}{body.strip()}" for label, body in sections if body.strip())
    descriptor: dict[str, Any] = {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": docs["what"].strip()},
        "help": {"text": text, "markdown": rule_markdown(rule)},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": [rule.family, "kubernetes"], "severity": rule.severity, "precision": "high"},
    }
    if rule.severity in SECURITY_SEVERITY:
        descriptor["properties"]["security-severity"] = SECURITY_SEVERITY[rule.severity]
    return descriptor


def _result(finding: Finding, rule_index: dict[str, int], base: Path) -> dict[str, Any]:
    resource = finding.resource
    location: dict[str, Any] = {}
    physical = _physical(finding.location.path, finding.location.line, finding.location.column, base)
    if physical:
        location["physicalLocation"] = physical
    location["logicalLocations"] = [_logical(resource)]
    result: dict[str, Any] = {"ruleId": finding.rule_id}
    if finding.rule_id in rule_index:
        result["ruleIndex"] = rule_index[finding.rule_id]
    result.update({
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(finding)},
    })
    related = [_related(index, ref, base) for index, ref in enumerate(finding.related)]
    if related:
        result["relatedLocations"] = related
    if finding.suppressed:
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": finding.suppression_reason or ""}]
    properties: dict[str, Any] = {"severity": finding.severity, "pointer": finding.location.pointer}
    if finding.container:
        properties["container"] = finding.container
    if finding.location.helm_source:
        properties["helmSource"] = finding.location.helm_source
    rendered = finding.location.rendered
    if rendered is not None:
        properties["rendered"] = {"tool": rendered.tool, "input": rendered.input, "line": rendered.line,
                                  "column": rendered.column}
    result["properties"] = properties
    return result


def fingerprint(finding: Finding) -> str:
    identity = "\x1f".join("" if part is None else str(part) for part in finding.identity)
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def _related(index: int, ref: ObjectRef, base: Path) -> dict[str, Any]:
    related: dict[str, Any] = {"id": index}
    physical = _physical(ref.path, ref.line, None, base)
    if physical:
        related["physicalLocation"] = physical
    related["logicalLocations"] = [_logical(ref)]
    related["message"] = {"text": ref.ref}
    return related


def _notification(level: str, entry: ReportError, base: Path) -> dict[str, Any]:
    notification: dict[str, Any] = {"level": level, "message": {"text": entry.message}}
    physical = _physical(entry.path, entry.line, None, base)
    if physical:
        notification["locations"] = [{"physicalLocation": physical}]
    return notification


def _physical(path: str | None, line: int | None, column: int | None, base: Path) -> dict[str, Any] | None:
    if not path or path == STDIN_PATH:
        return None
    physical: dict[str, Any] = {"artifactLocation": artifact_location(path, base)}
    if line:
        region = {"startLine": line}
        if column:
            region["startColumn"] = column
        physical["region"] = region
    return physical


def artifact_location(path: str, base: Path) -> dict[str, str]:
    """A URI relative to %SRCROOT% when the file is under ``base``, else an absolute file URI."""
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            candidate = candidate.relative_to(base)
        except ValueError:
            return {"uri": candidate.as_uri()}
    return {"uri": quote(candidate.as_posix()), "uriBaseId": SRCROOT}


def _logical(named: ResourceId | ObjectRef) -> dict[str, str]:
    return {"name": named.name, "fullyQualifiedName": named.ref, "kind": "resource"}
