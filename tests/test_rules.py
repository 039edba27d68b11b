"""Every rule against its fixtures, with exact (rule, object, line) sets; and the catalogue's meta-tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tbyte_policy.audit import AuditOptions, audit_documents, scan_paths
from tbyte_policy.catalogue import DOC_SECTIONS, load_catalogue
from tbyte_policy.findings import FAMILIES, SEVERITIES
from tbyte_policy.sources.files import load_paths

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
CATALOGUE = load_catalogue()
_EXPECT = re.compile(r"^#\s*expect:\s*(\S+)\s+(\S+)\s+(\d+|-)\s*$")


def expected_findings(path: Path) -> set[tuple[str, str, int | None]]:
    expected = set()
    for line in path.read_text().splitlines():
        match = _EXPECT.match(line)
        if match:
            rule_id, obj, where = match.groups()
            expected.add((rule_id, obj, None if where == "-" else int(where)))
    return expected


def actual_findings(rule_id: str, path: Path) -> set[tuple[str, str, int | None]]:
    rule = next(rule for rule in CATALOGUE if rule.id == rule_id).with_overrides(enabled=True)
    if "scan" in rule.modes:
        report = scan_paths([str(path)], AuditOptions(rules=[rule]))
    else:  # a live-only rule: the fixture holds objects as the API server returns them, status included
        report = audit_documents(load_paths([str(path)]), AuditOptions(rules=[rule]), mode="live")
    assert not report.internal_errors, report.internal_errors
    return {(finding.rule_id, f"{finding.resource.kind}/{finding.resource.name}", finding.location.line)
            for finding in report.findings}


CASES = sorted((rule_dir.name, fixture) for rule_dir in FIXTURES.iterdir() if rule_dir.is_dir()
               for fixture in sorted(rule_dir.glob("*.yaml")))


@pytest.mark.parametrize(("rule_id", "fixture"), CASES, ids=[f"{rule}-{path.stem}" for rule, path in CASES])
def test_rule_fixture(rule_id, fixture):
    expected = expected_findings(fixture)
    if fixture.stem.startswith("pass"):
        assert not expected, "a pass fixture expects no findings"
    else:
        assert expected, "a fail fixture must expect at least one finding"
    assert actual_findings(rule_id, fixture) == expected


def test_every_rule_has_docs_and_both_fixtures():
    for rule in CATALOGUE:
        assert rule.family in FAMILIES and rule.severity in SEVERITIES
        assert all(rule.docs[section].strip() for section in DOC_SECTIONS), rule.id
        fixtures = {path.stem.rstrip("0123456789") for path in (FIXTURES / rule.id).glob("*.yaml")}
        assert {"pass", "fail"} <= fixtures, f"{rule.id} needs pass.yaml and fail.yaml fixtures"


def test_ids_and_names_are_unique_and_fixtures_name_real_rules():
    assert len({rule.id for rule in CATALOGUE}) == len(CATALOGUE)
    assert len({rule.name for rule in CATALOGUE}) == len(CATALOGUE)
    assert {path.name for path in FIXTURES.iterdir() if path.is_dir()} <= {rule.id for rule in CATALOGUE}


def test_the_family_lists_agree():
    """A family is named in findings.FAMILIES, has its rules file and its checks module, and the README lists it."""
    from tbyte_policy.bundle import bundled_dir
    from tbyte_policy.checks import FAMILY_MODULES

    as_module = {family: family.replace("-", "_") for family in FAMILIES}
    rule_files = {path.stem: yaml.safe_load(path.read_text())["family"] for path in bundled_dir("rules").glob("*.yaml")}
    assert rule_files == {module: family for family, module in as_module.items()}
    assert sorted(FAMILY_MODULES) == sorted(as_module.values())
    assert {rule.family for rule in CATALOGUE} == set(FAMILIES)
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    listed = readme.split("Families: ", 1)[1].split(".", 1)[0]
    assert re.findall(r"`([a-z-]+)`", listed) == list(FAMILIES)
