"""Every rule against its fixtures, with exact (rule, object, line) sets; and the catalogue's meta-tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tbyte_policy.catalogue import DOC_SECTIONS, find_rule, load_catalogue
from tbyte_policy.findings import FAMILIES, SEVERITIES
from tbyte_policy.rule_tests import actual_findings, expected_findings, fixture_files, rendered_beside

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
CATALOGUE = load_catalogue()


CASES = sorted((rule_dir.name, fixture) for rule_dir in FIXTURES.iterdir() if rule_dir.is_dir()
               for fixture in fixture_files(rule_dir))


@pytest.mark.parametrize(("rule_id", "fixture"), CASES, ids=[f"{rule}-{path.stem}" for rule, path in CASES])
def test_rule_fixture(rule_id, fixture):
    expected = expected_findings(fixture.read_text(encoding="utf-8"))
    if fixture.stem.startswith("pass"):
        assert not expected, "a pass fixture expects no findings"
    else:
        assert expected, "a fail fixture must expect at least one finding"
    found, internal_errors = actual_findings(find_rule(CATALOGUE, rule_id), fixture)
    assert not internal_errors
    assert found == expected


def test_every_rule_has_docs_and_both_fixtures():
    for rule in CATALOGUE:
        assert rule.family in FAMILIES and rule.severity in SEVERITIES
        assert all(rule.docs[section].strip() for section in DOC_SECTIONS), rule.id
        assert "TODO" not in rule.title and not any("TODO" in text for text in rule.docs.values()), \
            f"{rule.id}: finish what `rules new` started"
        fixtures = {path.stem.rstrip("0123456789") for path in fixture_files(FIXTURES / rule.id)}
        assert {"pass", "fail"} <= fixtures, f"{rule.id} needs pass.yaml and fail.yaml fixtures"
        if "drift" in rule.modes:
            assert all(rendered_beside(path).is_file() for path in fixture_files(FIXTURES / rule.id)), \
                f"{rule.id}: a drift rule's fixture needs its .rendered.yaml"


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
