"""The terminal table: findings grouped by resource, worst first, with ``path:line`` per finding."""

from __future__ import annotations

import io
from itertools import groupby

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tbyte_policy.findings import SEVERITIES, SEVERITY_RANK, Finding, Report
from tbyte_policy.reporters import location_text

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


def summary_line(report: Report) -> str:
    counts = report.by_severity()
    severities = ", ".join(f"{counts[name]} {name}" for name in SEVERITIES)
    suppressed = len(report.findings) - len(report.active_findings)
    parts = [f"{len(report.active_findings)} findings ({severities})"]
    if suppressed:
        parts.append(f"{suppressed} suppressed")
    parts.append(f"{report.resources} resources read from the cluster" if report.mode == "live"
                 else f"{report.resources} resources in {report.files} files")
    if report.skipped_documents:
        parts.append(f"{report.skipped_documents} non-Kubernetes documents skipped")
    errors = len(report.all_errors) + len(report.unreadable_kinds)
    if errors:
        parts.append(f"{errors} errors")
    return "; ".join(parts)


def _resource_key(finding: Finding) -> tuple:
    return (finding.location.path or "", finding.resource.kind, finding.resource.namespace or "",
            finding.resource.name)


def _message(finding: Finding) -> str:
    if finding.container and f"container {finding.container}" not in finding.message:
        return f"[{finding.container}] {finding.message}"
    return finding.message
