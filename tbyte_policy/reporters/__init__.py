"""Reporters: each is a pure function of the report that returns the text to write."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from tbyte_policy.findings import Finding, Rendered, Report

# format name -> "module:function"; imported only when that format is asked for.
FORMATS: dict[str, str] = {
    "table": "tbyte_policy.reporters.table:render",
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
    return reporter(name)(report, **options)


def location_text(finding: Finding) -> str:
    """``path:line`` of a finding, or the object itself (``Kind/namespace/name``) when it has no file (live)."""
    location = finding.location
    if not location.path:
        return finding.resource.ref
    return f"{location.path}:{location.line}" if location.line else location.path


def rendered_text(rendered: Rendered) -> str:
    """Where a rendered object's field is in the render output: ``line 31 of helm template charts/shop``."""
    command = "helm template" if rendered.tool == "helm" else "kustomize build"
    return f"line {rendered.line} of {command} {rendered.input}" if rendered.line else f"{command} {rendered.input}"
