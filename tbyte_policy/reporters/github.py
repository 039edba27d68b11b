"""GitHub Actions workflow commands: one annotation per active finding, on its file and line.

critical/high are errors, medium warnings, low/info notices; input errors and warnings are annotated too.
Escaping follows the workflow-command syntax: ``%``, CR and LF in the message; also ``:`` and ``,`` in
property values.
"""

from __future__ import annotations

from tbyte_policy.findings import Report, ReportError

COMMANDS = {"critical": "error", "high": "error", "medium": "warning", "low": "notice", "info": "notice"}


def render(report: Report) -> str:
    lines = []
    for finding in report.active_findings:
        resource = finding.resource.ref
        properties = _position(finding.location.path, finding.location.line, finding.location.column)
        properties.append(("title", f"{finding.rule_id} {finding.rule_name}"))
        lines.append(_command(COMMANDS[finding.severity], properties, f"{resource}: {finding.message}"))
    for command, entries in (("error", report.all_errors), ("warning", report.warnings)):
        lines.extend(_entry(command, entry) for entry in entries)
    lines.extend(_command("error", [("title", "tbyte-policy")], f"could not read {kind}: {reason}")
                 for kind, reason in sorted(report.unreadable_kinds.items()))
    return "".join(line + "\n" for line in lines)


def _entry(command: str, entry: ReportError) -> str:
    return _command(command, [*_position(entry.path, entry.line, None), ("title", "tbyte-policy")], entry.message)


def _position(path: str | None, line: int | None, column: int | None) -> list[tuple[str, str]]:
    if not path:
        return []
    properties = [("file", path)]
    if line:
        properties.append(("line", str(line)))
        if column:
            properties.append(("col", str(column)))
    return properties


def _command(command: str, properties: list[tuple[str, str]], message: str) -> str:
    rendered = ",".join(f"{key}={escape_property(value)}" for key, value in properties)
    return f"::{command} {rendered}::{escape_data(message)}" if rendered else f"::{command}::{escape_data(message)}"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
