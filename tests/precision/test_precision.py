"""Precision on real manifests (issue 18): the findings on the corpus of corpus.yaml are exactly the judged
ones of verdicts.yaml, and at least 95% of them are findings a reviewer keeps.

A new finding on the corpus (a new rule, a changed check) fails here until someone judges it in
verdicts.yaml (`python scripts/precision.py --stubs` prints the entries to fill in); a finding that goes away
fails until its verdict is removed, so the file never goes stale and a lost `keep` is seen as lost recall.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("precision", REPO / "scripts" / "precision.py")
precision = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(precision)

PRESENT, MISSING = precision.available_projects()
FLOOR = 0.95
needs_corpus = pytest.mark.skipif(not PRESENT, reason="no root of the precision corpus is here "
                                                      "(../shared/realworld, tests/precision/corpus)")


@pytest.fixture(scope="module")
def result():
    return precision.evaluate()


def test_the_verdicts_file_is_well_formed():
    entries = yaml.safe_load(precision.VERDICTS_FILE.read_text())
    names = {project.name for project in precision.projects()}
    for entry in entries:
        assert set(entry) == {"rule", "project", "verdict", "reason", "objects"}, entry
        assert entry["project"] in names, entry["project"]
        assert entry["verdict"] in precision.VERDICTS and entry["reason"].strip() and entry["objects"], entry
    keys = [(entry["rule"], entry["project"], entry["verdict"], entry["reason"]) for entry in entries]
    assert len(keys) == len(set(keys)), "one entry per (rule, project, verdict, reason)"


def test_every_corpus_path_exists_where_its_root_is_present():
    roots = precision.roots()
    for project in PRESENT:
        for path in project.paths:
            assert (roots[project.root] / path).exists(), f"{project.name}: {path}"


@needs_corpus
def test_the_findings_are_exactly_the_judged_ones(result):
    unjudged = sorted(f"{item.key.rule} {item.key.project} {item.key.object}: {item.message}"
                      for item in result.judged if item.verdict is None)
    stale = [f"{key.rule} {key.project} {key.object}" for key in result.stale]
    assert not unjudged, "findings without a verdict in tests/precision/verdicts.yaml:\n" + "\n".join(unjudged)
    assert not stale, "verdicts that match no finding (fixed? then remove them; a lost keep is lost recall):\n" \
        + "\n".join(stale)


@needs_corpus
def test_at_least_95_percent_of_the_findings_are_kept(result):
    print("\n" + precision.table(result))
    overall = precision.tally(result.judged)
    assert overall.precision >= FLOOR, precision.table(result)
