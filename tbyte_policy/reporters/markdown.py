"""Markdown for a pull-request comment or a CI job summary: totals, then one collapsed table per resource."""

from __future__ import annotations

import html
from collections import Counter
from itertools import groupby

from tbyte_policy.findings import SEVERITIES, SEVERITY_RANK, Finding, Report
from tbyte_policy.reporters import location_text, summary_line
from tbyte_policy.reporters.table import _resource_key


def render(report: Report) -> str:
    active = report.active_findings
    suppressed = [finding for finding in report.findings if finding.suppressed]
    counts = report.by_severity()
    parts = [f"## tbyte-policy: {len(active)} finding{'' if len(active) == 1 else 's'}\n",
             "| " + " | ".join(SEVERITIES) + " | suppressed |",
             "| " + " | ".join("---:" for _ in range(len(SEVERITIES) + 1)) + " |",
             "| " + " | ".join(str(counts[name]) for name in SEVERITIES) + f" | {len(suppressed)} |\n",
             _cell(summary_line(report)) + "\n"]
    for _, group in groupby(sorted(active, key=_resource_key), key=_resource_key):
        findings = sorted(group, key=lambda finding: (-SEVERITY_RANK[finding.severity], finding.sort_key()))
        parts.append(_resource_block(findings))
    if suppressed:
        rows = [f"| {_code(_ref(finding))} | {_code(finding.rule_id)} {finding.rule_name} | {_cell(finding.message)} "
                f"| {_cell(finding.suppression_reason or '')} |"
                for finding in sorted(suppressed, key=Finding.sort_key)]
        parts.append(f"<details>\n<summary>{len(suppressed)} suppressed</summary>\n\n"
                     "| resource | rule | message | reason |\n| --- | --- | --- | --- |\n" + "\n".join(rows)
                     + "\n\n</details>\n")
    problems = [("Error", entry) for entry in report.all_errors]
    problems += [("Warning", entry) for entry in report.warnings]
    if problems or report.unreadable_kinds:
        lines = ["### Errors and warnings\n"]
        for label, entry in problems:
            where = f"{entry.path}:{entry.line}" if entry.path and entry.line else (entry.path or "")
            lines.append(f"- **{label}**" + (f" {_code(where)}" if where else "") + f": {_cell(entry.message)}")
        lines += [f"- **Error**: could not read {_cell(kind)}: {_cell(reason)}"
                  for kind, reason in sorted(report.unreadable_kinds.items())]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _resource_block(findings: list[Finding]) -> str:
    first = findings[0]
    tally = Counter(finding.severity for finding in findings)
    counts = ", ".join(f"{tally[name]} {name}" for name in SEVERITIES if name in tally)
    where = f" · {_code(first.location.path)}" if first.location.path else ""
    rows = [f"| {finding.severity} | {_code(finding.rule_id)} {finding.rule_name} | {_cell(finding.message)} "
            f"| {_code(location_text(finding))} |" for finding in findings]
    return (f"<details>\n<summary><strong>{_cell(_ref(first))}</strong> · {counts}{where}</summary>\n\n"
            "| severity | rule | message | location |\n| --- | --- | --- | --- |\n" + "\n".join(rows)
            + "\n\n</details>\n")


def _ref(finding: Finding) -> str:
    return finding.resource.ref



def _cell(text: str) -> str:
    """Text safe inside a table cell and inside the HTML of a <details> block."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _code(text: str) -> str:
    return f"<code>{_cell(text)}</code>"
