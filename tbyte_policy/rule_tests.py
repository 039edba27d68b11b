"""Rule fixtures: manifests whose header lists, exactly, the findings one rule reports on them.

    # expect: PRB001 Deployment/web 14
    # expect: PRB001 Deployment/api -        (``-``: an object without a line, e.g. a live fixture's)

The header is the file's leading ``# expect:`` lines; a fixture without any expects the rule to find
nothing. The catalogue's own tests (tests/test_rules.py) read fixtures this way; ``rewrite_expectations``
writes the header from what the rule finds, for a reviewer to read in the diff.

A drift rule's fixture (``modes: [drift]``) holds the live objects, as the API server returns them; the
rendered manifests they are compared with are in ``<fixture>.rendered.yaml`` beside it, which is no fixture
of its own. Its expected lines are those of the finding's object, in whichever file that is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from tbyte_policy.audit import AuditOptions, audit_documents, audit_resources, build_resources, scan_paths
from tbyte_policy.catalogue import Rule
from tbyte_policy.findings import Report, ReportError
from tbyte_policy.sources.files import load_paths

EXPECT = re.compile(r"^#\s*expect:\s*(\S+)\s+(\S+)\s+(\d+|-)\s*$")
RENDERED_SUFFIX = ".rendered.yaml"


class Expectation(NamedTuple):
    rule_id: str
    object: str  # Kind/name
    line: int | None

    def header_line(self) -> str:
        return f"# expect: {self.rule_id} {self.object} {'-' if self.line is None else self.line}\n"


def expected_findings(text: str) -> set[Expectation]:
    return {Expectation(match[1], match[2], None if match[3] == "-" else int(match[3]))
            for match in map(EXPECT.match, text.splitlines()) if match}


def fixture_files(directory: Path) -> list[Path]:
    """A rule's fixtures, in order (not the rendered manifests beside a drift rule's)."""
    return sorted(path for path in directory.glob("*.yaml") if not path.name.endswith(RENDERED_SUFFIX))


def rendered_beside(path: Path) -> Path:
    """The rendered manifests a drift rule's fixture is compared with."""
    return path.with_suffix(RENDERED_SUFFIX)


def _drift_report(rule: Rule, path: Path) -> Report:
    from tbyte_policy.drift import RenderedManifests

    errors: list[ReportError] = []
    live = build_resources(load_paths([str(path)]).documents, "default", errors)
    loaded = load_paths([str(rendered_beside(path))])
    manifests = build_resources(loaded.documents, "default", errors)
    rendered = RenderedManifests(manifests, namespace=None, default_namespace="default")
    return audit_resources(live, AuditOptions(rules=[rule]), "live", [*loaded.errors, *errors], rendered=rendered)


def actual_findings(rule: Rule, path: Path) -> tuple[set[Expectation], list[ReportError]]:
    """What ``rule`` (enabled, whatever its default) reports on the fixture, and the internal errors it met.

    A rule that does not run in scan mode (the runtime family) is audited as live mode audits: its
    fixtures hold objects as the API server returns them, status included. A drift rule compares them with
    the rendered manifests beside the fixture.
    """
    rule = rule.with_overrides(enabled=True)
    if "drift" in rule.modes:
        report = _drift_report(rule, path)
    elif "scan" in rule.modes:
        report = scan_paths([str(path)], AuditOptions(rules=[rule]))
    else:
        report = audit_documents(load_paths([str(path)]), AuditOptions(rules=[rule]), mode="live")
    found = {Expectation(finding.rule_id, f"{finding.resource.kind}/{finding.resource.name}", finding.location.line)
             for finding in report.findings}
    return found, list(report.internal_errors)


def rewrite_expectations(rule: Rule, path: Path) -> bool:
    """Replace the fixture's header with what ``rule`` finds in it; whether the file changed.

    The header's own lines shift every line below it, so the header is rewritten until what the rule
    finds in the file is what its header says (twice at most: the count of lines does not depend on them).
    """
    original = path.read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)
    start = next((index for index, line in enumerate(lines) if not EXPECT.match(line)), len(lines))
    body = "".join(lines[start:])
    listed = [expectation for line in lines[:start] for expectation in expected_findings(line)]
    text = body
    for _ in range(3):
        path.write_text(text, encoding="utf-8")
        found, _errors = actual_findings(rule, path)
        # Entries that still hold keep their place, so that the diff shows only what changed.
        kept = [expectation for expectation in listed if expectation in found]
        added = sorted(found - set(kept), key=lambda item: (item.line is None, item.line or 0, item.object))
        header = "".join(expectation.header_line() for expectation in [*kept, *added])
        if text == header + body:
            return text != original
        text = header + body
    path.write_text(original, encoding="utf-8")
    raise RuntimeError(f"{path}: the findings of {rule.id} do not settle while its header is rewritten")
