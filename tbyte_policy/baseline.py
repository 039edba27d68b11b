"""Baselines: findings accepted earlier, so a run fails only on new ones.

A baseline records each finding's identity (rule, resource, container, JSON pointer), never its file or
line, so moving code around keeps matching. Entries also carry the rule name and message for the humans
who review the file; messages never hold secret values, and nothing else from the manifests is stored.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tbyte_policy.findings import Finding, Report

BASELINE_VERSION = 1
IDENTITY_FIELDS = ("rule_id", "kind", "namespace", "name", "container", "pointer")


class BaselineError(Exception):
    pass


def baseline_document(report: Report) -> dict[str, Any]:
    """The baseline of a report: its active findings (suppressed ones need no baseline)."""
    entries = []
    for finding in sorted(report.active_findings, key=_order):
        entry = dict(zip(IDENTITY_FIELDS, finding.identity, strict=False))
        entry.update(rule_name=finding.rule_name, message=finding.message)
        entries.append(entry)
    return {"version": BASELINE_VERSION, "tool": {"name": "tbyte-policy", "version": report.tool_version},
            "entries": entries}


def write_baseline(report: Report, path: Path) -> None:
    path.write_text(json.dumps(baseline_document(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_baseline(path: Path) -> Counter:
    """The identities a baseline accepts, each with how many findings it accepts."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read baseline: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError):
        raise BaselineError(f"{path}: the baseline is not valid JSON") from None
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION \
            or not isinstance(data.get("entries"), list):
        raise BaselineError(f"{path}: not a tbyte-policy baseline (version {BASELINE_VERSION} with entries)")
    accepted: Counter = Counter()
    for index, entry in enumerate(data["entries"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("rule_id"), str) \
                or not isinstance(entry.get("kind"), str) or not isinstance(entry.get("name"), str):
            raise BaselineError(f"{path}: entry {index} needs rule_id, kind and name")
        accepted[tuple(entry.get(field) for field in IDENTITY_FIELDS)] += 1
    return accepted


def apply_baseline(report: Report, accepted: Counter, label: str) -> Report:
    """The report with the active findings the baseline accepts suppressed."""
    remaining = Counter(accepted)
    marked: set[int] = set()  # id() of the findings the baseline accepts
    for finding in sorted(report.active_findings, key=_order):
        if remaining[finding.identity] > 0:
            remaining[finding.identity] -= 1
            marked.add(id(finding))
    return report._replace(findings=[finding.suppressed_because(f"in baseline {label}") if id(finding) in marked
                                     else finding for finding in report.findings])


def _order(finding: Finding) -> tuple:
    return (*tuple("" if part is None else part for part in finding.identity), finding.message)
