"""The terminal table: findings grouped by resource, worst first, with ``path:line`` per finding."""

from __future__ import annotations

import io
from itertools import groupby

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tbyte_policy.findings import SEVERITY_RANK, Finding, Report
from tbyte_policy.reporters import location_text, summary_line

SEVERITY_STYLES = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan",
                   "info": "dim"}


def render(report: Report, *, color: bool = False, width: int = 120) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width, highlight=False,
                      soft_wrap=False)
    active = sorted(report.active_findings, key=_resource_key)
    for _, group in groupby(active, key=_resource_key):
        findings = sorted(group, key=lambda finding: (-SEVERITY_RANK[finding.severity], finding.sort_key()))
        first = findings[0]
        title = f"{first.resource.kind} {first.resource.namespace + '/' if first.resource.namespace else ''}" \
                f"{first.resource.name}"
        table = Table(title=title, title_justify="left", show_header=True, header_style="bold", expand=False,
                      show_lines=False)
        table.add_column("severity", no_wrap=True)
        table.add_column("rule", no_wrap=True)
        table.add_column("message", overflow="fold")
        table.add_column("location", overflow="fold", min_width=12)
        for finding in findings:
            table.add_row(Text(finding.severity, style=SEVERITY_STYLES[finding.severity]),
                          f"{finding.rule_id} {finding.rule_name}", Text(_message(finding)),
                          Text(location_text(finding)))
        console.print(table)
    for label, entries in (("error", report.all_errors), ("warning", report.warnings)):
        for entry in entries:
            where = f"{entry.path}:{entry.line}" if entry.line else (entry.path or "")
            console.print(Text(f"{label}: {where}: {entry.message}" if where else f"{label}: {entry.message}",
                               style="red" if label == "error" else "yellow"))
    for kind, reason in sorted(report.unreadable_kinds.items()):
        console.print(Text(f"error: could not read {kind}: {reason}", style="red"))
    console.print(Text(summary_line(report), style="bold"))
    return buffer.getvalue()


def _resource_key(finding: Finding) -> tuple:
    return (finding.location.path or "", finding.resource.kind, finding.resource.namespace or "",
            finding.resource.name)


def _message(finding: Finding) -> str:
    if finding.container and f"container {finding.container}" not in finding.message:
        return f"[{finding.container}] {finding.message}"
    return finding.message
