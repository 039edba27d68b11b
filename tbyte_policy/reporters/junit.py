"""JUnit XML, as GitLab's test reports, Jenkins and other CI test viewers read it.

One testsuite per file (per resource for findings without a file). Each finding is a testcase named by
its rule (and container), with the resource as classname: a failure when active, skipped when suppressed.
Every active rule without findings is a passing testcase, so a clean run still reports its tests; input
errors are testcases with an ``<error>``. Counts therefore match the JSON report: failures = findings,
skipped = suppressed, errors = errors.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from tbyte_policy.findings import Finding, Report, ReportError
from tbyte_policy.reporters import location_text, rendered_text

TOOL_SUITE = "tbyte-policy"
# Characters XML 1.0 cannot carry, even escaped; they could come from names in the scanned input.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Suite:
    def __init__(self, name: str):
        self.element = ET.Element("testsuite", name=_clean(name))
        self.names: set[tuple[str, str]] = set()
        self.counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    def case(self, classname: str, name: str, disambiguator: str, *, file: str | None = None,
             line: int | None = None) -> ET.Element:
        if disambiguator and (classname, name) in self.names:
            name = f"{name} ({disambiguator})"
        suffix = 2
        unique = name
        while (classname, unique) in self.names:
            unique, suffix = f"{name} #{suffix}", suffix + 1
        self.names.add((classname, unique))
        attributes = {"classname": _clean(classname), "name": _clean(unique)}
        if file:
            attributes["file"] = _clean(file)
        if line:
            attributes["line"] = str(line)
        self.counts["tests"] += 1
        return ET.SubElement(self.element, "testcase", attributes)

    def outcome(self, case: ET.Element, tag: str, message: str, text: str | None = None, **attributes: str) -> None:
        self.counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]] += 1
        element = ET.SubElement(case, tag, {"message": _clean(message), **attributes})
        if text:
            element.text = _clean(text)


def render(report: Report) -> str:
    suites: dict[str, _Suite] = {}

    def suite(name: str) -> _Suite:
        return suites.setdefault(name, _Suite(name))

    for finding in report.findings:
        resource = finding.resource.ref
        name = f"{finding.rule_id} {finding.rule_name}" + (f" [{finding.container}]" if finding.container else "")
        target = suite(finding.location.path or resource)
        case = target.case(resource, name, finding.location.pointer or "/", file=finding.location.path,
                           line=finding.location.line)
        if finding.suppressed:
            target.outcome(case, "skipped", f"suppressed: {finding.suppression_reason}")
        else:
            target.outcome(case, "failure", finding.message, _details(finding), type=finding.severity)
    for error in report.all_errors:
        _error(suite(error.path or TOOL_SUITE), error)
    for kind, reason in sorted(report.unreadable_kinds.items()):
        tool = suite(TOOL_SUITE)
        tool.outcome(tool.case(TOOL_SUITE, f"read {kind}", kind), "error", f"could not read {kind}: {reason}")
    flagged = {finding.rule_id for finding in report.findings}
    for rule in report.rules:
        if rule.id not in flagged:
            suite(TOOL_SUITE).case(TOOL_SUITE, f"{rule.id} {rule.name}", rule.id)

    root = ET.Element("testsuites", name=TOOL_SUITE)
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for entry in suites.values():
        for key, value in entry.counts.items():
            entry.element.set(key, str(value))
            totals[key] += value
        root.append(entry.element)
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _details(finding: Finding) -> str:
    location = location_text(finding) + (f":{finding.location.column}" if finding.location.path
                                         and finding.location.line and finding.location.column else "")
    resource = finding.resource.ref
    lines = [f"{finding.severity} {finding.rule_id} {finding.rule_name}: {finding.message}",
             f"resource: {resource}" + (f" (container {finding.container})" if finding.container else ""),
             f"location: {location} ({finding.location.pointer or '/'})"]
    if finding.location.helm_source:
        lines.append(f"helm source: {finding.location.helm_source}")
    if finding.location.rendered:
        lines.append(f"rendered: {rendered_text(finding.location.rendered)}")
    for ref in finding.related:
        at = f" ({ref.path}:{ref.line})" if ref.path and ref.line else (f" ({ref.path})" if ref.path else "")
        lines.append(f"related: {ref.ref}{at}")
    if finding.remediation:
        lines.append(f"fix: {finding.remediation}")
    return "\n".join(lines)


def _error(target: _Suite, error: ReportError) -> None:
    name = f"error at line {error.line}" if error.line else "error"
    case = target.case(error.path or TOOL_SUITE, name, "", file=error.path, line=error.line)
    target.outcome(case, "error", error.message)


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
