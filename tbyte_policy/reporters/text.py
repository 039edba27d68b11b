"""Compiler-style text: one line per finding, the offending source line under it, a closing summary.

    multi.yaml:20:37: PRB003 probe-port-undeclared [high] readinessProbe of container web targets ...
       |
    19 |           readinessProbe:
    20 |             httpGet: {path: /ready, port: web}
       |                                     ^^^^ Deployment/shop/web
    svc.yaml:3: note: related object Service/shop/web

Findings are sorted by path, line and column, with input errors and warnings among them at their own
lines; live findings are located as ``Kind/namespace/name`` and have no source. Secret values are
masked in the source lines (see ``snippets``). The pre-commit hook's format, so it stays light: ANSI
colour is written here rather than through rich, whose import would add a third to the hook's start-up.
"""

from __future__ import annotations

import re
from itertools import groupby

from tbyte_policy.findings import SEVERITY_RANK, Finding, Report, ReportError
from tbyte_policy.reporters import summary_line
from tbyte_policy.reporters.snippets import SourceLines

# SGR codes
SEVERITY_COLORS = {"critical": "1;37;41", "high": "1;31", "medium": "1;33", "low": "1;36", "info": "2"}
BOLD, GUTTER, NOTE, ERROR, WARNING = "1", "1;34", "1;36", "1;31", "1;33"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # never let input drive the terminal
_LINE_BREAKS = re.compile(r"\s*[\r\n\x85\u2028\u2029]+\s*")


class _Paint:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, text: str, codes: str) -> str:
        return f"\x1b[{codes}m{text}\x1b[0m" if self.enabled and text else text


def render(report: Report, *, color: bool = False, source: bool = True) -> str:
    paint = _Paint(color)
    lines = SourceLines(report.source_texts) if source else None
    # (what sorts it, the finding or the problem's line): files by path, line and column, then objects
    # without a file (live), then errors without a file
    entries: list[tuple[tuple, Finding | str]] = []
    for finding in report.active_findings:
        where = finding.location
        key = (0, where.path, where.line or 0, where.column or 0) if where.path else (1, _ref(finding), 0, 0)
        entries.append(((*key, 0, finding.sort_key()), finding))
    for label, color_code, problems in (("error", ERROR, report.all_errors),
                                        ("warning", WARNING, report.warnings)):
        for problem in problems:
            key = (0, problem.path, problem.line or 0, 0) if problem.path else (2, "", 0, 0)
            entries.append(((*key, 1, problem.sort_key()), _problem(label, color_code, problem, paint)))
    entries.sort(key=lambda entry: entry[0])
    out: list[str] = []
    # Findings at the same position (a container item missing several fields) share one snippet.
    for _, group in groupby(entries, key=lambda entry: entry[0][:4] if isinstance(entry[1], Finding) else entry):
        items = [item for _, item in group]
        findings = [item for item in items if isinstance(item, Finding)]
        out += _findings(findings, paint, lines) if findings else [item for item in items if isinstance(item, str)]
    out += [f"{paint('error:', ERROR)} could not read {_clean(kind)}: {_clean(reason)}"
            for kind, reason in sorted(report.unreadable_kinds.items())]
    if out and out[-1]:
        out.append("")
    out.append(paint(summary_line(report), BOLD))
    return "\n".join(out) + "\n"


def _ref(finding: Finding) -> str:
    return finding.resource.ref


def _findings(findings: list[Finding], paint: _Paint, lines: SourceLines | None) -> list[str]:
    """Findings at one position: a line each, the source under them, then the objects they relate to."""
    block = [_headline(finding, paint) for finding in findings]
    where = findings[0].location
    snippet = _snippet(findings, where.path, where.line, paint, lines) \
        if lines is not None and where.path and where.line else []
    block += snippet
    notes: dict[str, None] = {}
    for related in (related for finding in findings for related in finding.related):
        other = related.ref
        at = f"{related.path}:{related.line}" if related.path and related.line else related.path
        prefix = f"{paint(_clean(at) + ':', BOLD)} " if at else ""
        notes[f"{prefix}{paint('note:', NOTE)} related object {_clean(other)}"] = None
    block += notes
    if snippet:
        block.append("")
    return block


def _headline(finding: Finding, paint: _Paint) -> str:
    where = finding.location
    if where.path:
        location = ":".join(str(part) for part in (where.path, where.line, where.column) if part)
    else:
        location = _ref(finding)
    severity = SEVERITY_COLORS[finding.severity]
    return (f"{paint(_clean(location) + ':', BOLD)} {paint(finding.rule_id, severity)} {finding.rule_name} "
            f"{paint(f'[{finding.severity}]', severity)} {_clean(finding.message)}")


def _snippet(findings: list[Finding], path: str, number: int, paint: _Paint, lines: SourceLines) -> list[str]:
    """The findings' line with a caret under their column, and the line before it for context."""
    finding = findings[0]
    target = lines.line(path, number, finding.location.column or 1)
    if target is None:
        return []
    context = lines.line(path, number - 1) if number > 1 else None
    width = len(str(number))
    gutter = paint(" " * width + " |", GUTTER)
    shown = [gutter]
    if context is not None:
        shown.append(_numbered(number - 1, context.text, width, paint))
    shown.append(_numbered(number, target.text, width, paint))
    text = _clean(target.text)
    column = target.column or 1
    # The caret's indent copies the line's tabs, so that it stands under the column whatever the tab width.
    indent = "".join("\t" if char == "\t" else " " for char in text[:column - 1])
    severity = SEVERITY_COLORS[max(findings, key=lambda item: SEVERITY_RANK[item.severity]).severity]
    shown.append(f"{gutter} {indent}{paint('^' * target.width + ' ' + _clean(_ref(finding)), severity)}")
    helm_source = finding.location.helm_source
    if helm_source:
        shown.append(f"{' ' * width} {paint('=', GUTTER)} {paint('note:', NOTE)} rendered from the Helm template "
                     f"{_clean(helm_source)}")
    return shown


def _numbered(number: int, text: str, width: int, paint: _Paint) -> str:
    return f"{paint(f'{number:>{width}} |', GUTTER)} {_clean(text)}".rstrip()


def _problem(label: str, color_code: str, problem: ReportError, paint: _Paint) -> str:
    where = f"{problem.path}:{problem.line}" if problem.path and problem.line else (problem.path or "")
    prefix = f"{paint(_clean(where) + ':', BOLD)} " if where else ""
    return f"{prefix}{paint(label + ':', color_code)} {_clean(problem.message)}"


def _clean(text: str) -> str:
    """One line of printable text: line breaks become spaces, other control characters U+FFFD."""
    return _CONTROL.sub("\ufffd", _LINE_BREAKS.sub(" ", text))

