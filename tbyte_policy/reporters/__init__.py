"""Reporters: each is a pure function of the report that returns the text to write."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from tbyte_policy.audit import cyclic_gc_paused
from tbyte_policy.findings import SEVERITIES, Finding, Rendered, Report

# format name -> "module:function"; imported only when that format is asked for.
FORMATS: dict[str, str] = {
    "table": "tbyte_policy.reporters.table:render",
    "text": "tbyte_policy.reporters.text:render",
    "html": "tbyte_policy.reporters.html_report:render",
    "json": "tbyte_policy.reporters.json_report:render",
    "sarif": "tbyte_policy.reporters.sarif:render",
    "junit": "tbyte_policy.reporters.junit:render",
    "markdown": "tbyte_policy.reporters.markdown:render",
    "github": "tbyte_policy.reporters.github:render",
    "policyreport": "tbyte_policy.reporters.policyreport:render",
}


def reporter(name: str) -> Callable[..., str]:
    module, _, function = FORMATS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def render(name: str, report: Report, **options) -> str:
    # Without the cycle collector: a reporter makes many short-lived objects (tables, parsed snippets), and
    # each collection would walk the whole report and the run's resources, still alive.
    with cyclic_gc_paused():
        return reporter(name)(report, **options)


def location_text(finding: Finding) -> str:
    """``path:line`` of a finding, or the object itself (``Kind/namespace/name``) when it has no file (live)."""
    location = finding.location
    if not location.path:
        return finding.resource.ref
    return f"{location.path}:{location.line}" if location.line else location.path


def summary_line(report: Report) -> str:
    """The closing line of the terminal formats: counts of findings, resources, skipped documents and errors."""
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


def rendered_text(rendered: Rendered) -> str:
    """Where a rendered object's field is in the render output: ``line 31 of helm template charts/shop``."""
    command = "helm template" if rendered.tool == "helm" else "kustomize build"
    return f"line {rendered.line} of {command} {rendered.input}" if rendered.line else f"{command} {rendered.input}"
