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
from collections.abc import Iterable, Sequence
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
    if "drift" in rule.modes:
        report = _drift_report(rule.with_overrides(enabled=True), path)
        found = {Expectation(finding.rule_id, f"{finding.resource.kind}/{finding.resource.name}",
                             finding.location.line) for finding in report.findings}
        return found, list(report.internal_errors)
    found, _errors, internal = findings_of([rule], path)
    return found, internal


def findings_of(rules: Sequence[Rule], path: Path) -> tuple[set[Expectation], list[ReportError], list[ReportError]]:
    """What ``rules`` (enabled, whatever their default) report on the fixture; its input and internal errors."""
    found: set[Expectation] = set()
    errors: list[ReportError] = []
    internal: list[ReportError] = []
    enabled = [rule.with_overrides(enabled=True) for rule in rules]
    for mode in ("scan", "live"):
        # A rule that does not run in scan mode is audited in live mode (its fixture holds API objects).
        selected = [rule for rule in enabled if (mode == "scan") == ("scan" in rule.modes)]
        if not selected:
            continue
        if mode == "scan":
            report = scan_paths([str(path)], AuditOptions(rules=selected))
        else:
            report = audit_documents(load_paths([str(path)]), AuditOptions(rules=selected), mode="live")
        found |= {Expectation(finding.rule_id, f"{finding.resource.kind}/{finding.resource.name}",
                              finding.location.line) for finding in report.findings}
        errors.extend(report.errors)
        internal.extend(report.internal_errors)
    return found, errors, internal


def rewrite_expectations(rule: Rule | Sequence[Rule], path: Path) -> bool:
    """Replace the fixture's header with what ``rule`` (or each of a list of rules) finds in it; whether the
    file changed.

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
        found = actual_findings(rule, path)[0] if isinstance(rule, Rule) else findings_of(rule, path)[0]
        # Entries that still hold keep their place, so that the diff shows only what changed.
        kept = [expectation for expectation in listed if expectation in found]
        added = sorted(found - set(kept), key=lambda item: (item.line is None, item.line or 0, item.object))
        header = "".join(expectation.header_line() for expectation in [*kept, *added])
        if text == header + body:
            return text != original
        text = header + body
    path.write_text(original, encoding="utf-8")
    named = rule.id if isinstance(rule, Rule) else ", ".join(item.id for item in rule)
    raise RuntimeError(f"{path}: the findings of {named} do not settle while its header is rewritten")


FIXTURE_SUFFIXES = (".yaml", ".yml", ".json")


def _order(item: Expectation) -> tuple:
    return (item.line is None, item.line or 0, item.rule_id, item.object)


class FixtureRun(NamedTuple):
    """What `tbyte-policy rules test` prints, and its exit code (0 all hold, 1 a difference, 2 an error)."""

    text: str
    exit_code: int


def fixture_paths(paths: Iterable[Path]) -> list[Path]:
    """The fixture files of ``paths``: files as given, folders' *.yaml, *.yml and *.json (recursively, sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(child for child in path.rglob("*") if child.suffix in FIXTURE_SUFFIXES
                                and child.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such fixture file or folder")
    return files


def run_fixture_tests(rules: Sequence[Rule], paths: Iterable[Path], *, update: bool = False) -> FixtureRun:
    """Run the CEL rules of ``rules`` (the config's custom_rules and --rules) on every fixture and compare what
    they find with the fixture's ``# expect:`` header; with ``update``, rewrite the headers instead.

    A fixture in a folder named after one of the rules (``tests/policies/ORG001/fail.yaml``) is a fixture of
    that rule alone; any other fixture is one of every tested rule, so its header lists what all of them find.
    """
    tested = [rule for rule in rules if rule.check.name == "cel"]
    if not tested:
        return FixtureRun("tbyte-policy: no CEL rules to test: give --rules PATH or list custom_rules in the "
                          "config\n", 2)
    by_id = {rule.id: rule for rule in tested}
    lines: list[str] = []
    passed = failed = 0
    erred = False
    for path in fixture_paths(paths):
        selected = [by_id[path.parent.name]] if path.parent.name in by_id else tested
        if update:
            changed = rewrite_expectations(selected, path)
            lines.append(f"{'rewrote' if changed else 'kept   '} {path}\n")
            continue
        expected = expected_findings(path.read_text(encoding="utf-8"))
        strangers = sorted({item.rule_id for item in expected} - {rule.id for rule in selected})
        found, errors, internal = findings_of(selected, path)
        problems = [f"  expects findings of {rule_id}, which is not among the rules tested on this file\n"
                    for rule_id in strangers]
        problems += [f"  missing:    {item.header_line()[len('# expect: '):]}"
                     for item in sorted(expected - found, key=_order)]
        problems += [f"  unexpected: {item.header_line()[len('# expect: '):]}"
                     for item in sorted(found - expected, key=_order)]
        problems += [f"  error:      {error.path}:{error.line}: {error.message}\n" for error in [*errors, *internal]]
        if problems:
            failed += 1
            erred = erred or bool(errors or internal)
            lines.append(f"FAIL {path}\n" + "".join(problems))
        else:
            passed += 1
            lines.append(f"ok   {path}\n")
    if update:
        return FixtureRun("".join(lines), 0)
    summary = f"{passed} passed, {failed} failed\n"
    return FixtureRun("".join(lines) + summary, 2 if erred else 1 if failed else 0)
