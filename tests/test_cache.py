"""The on-disk cache: hits, invalidation by a changed source, an unusable cache folder, and that a scan comes
out the same with the cache cold, warm or unusable."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tbyte_policy import cache, schemas
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.cli import app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("TBYTE_POLICY_CACHE_DIR", str(directory))
    return directory


def counting(value):
    calls = []

    def build():
        calls.append(1)
        return value

    return build, calls


def test_a_hit_returns_equal_data_without_building_again(cache_dir, tmp_path):
    source = tmp_path / "source.yaml"
    source.write_text("a: 1\n")
    data = {"rules": [{"id": "ABC001", "params": {"n": 1, "ok": True}}], ("apps/v1", "Deployment"): ("x", None),
            "groups": frozenset({"apps", ""}), "ratio": 0.5}
    build, calls = counting(data)
    assert cache.cached("entry", [source], build) == data
    again = cache.cached("entry", [source], build)
    assert again == data and again is not data
    assert len(calls) == 1
    assert [path.name.split("-")[0] for path in cache_dir.iterdir()] == ["entry"]


def test_entries_of_the_same_name_from_other_files_are_kept_apart(cache_dir, tmp_path):
    """Two installations (a project's virtualenv and pre-commit's) do not rebuild each other's entries."""
    first, second = tmp_path / "one" / "rules.yaml", tmp_path / "two" / "rules.yaml"
    for source in (first, second):
        source.parent.mkdir()
        source.write_text("a: 1\n")
    build, calls = counting("data")
    for source in (first, second, first, second):
        assert cache.cached("rules", [source], build) == "data"
    assert len(calls) == 2
    assert len(list(cache_dir.iterdir())) == 2


def test_a_changed_source_file_invalidates_the_entry(cache_dir, tmp_path):
    source = tmp_path / "source.yaml"
    source.write_text("a: 1\n")
    assert cache.cached("entry", [source], lambda: "old") == "old"
    source.write_text("a: 1\n")  # same size: only the modification time tells
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert cache.cached("entry", [source], lambda: "new") == "new"
    source.write_text("a: 22\n")
    assert cache.cached("entry", [source], lambda: "newer") == "newer"
    assert cache.cached("entry", [source], lambda: "unused") == "newer"


def test_a_source_that_appears_or_disappears_invalidates_the_entry(cache_dir, tmp_path):
    present, added = tmp_path / "a.yaml", tmp_path / "b.yaml"
    present.write_text("a: 1\n")
    assert cache.cached("entry", [present, added], lambda: "without b") == "without b"
    added.write_text("b: 1\n")
    assert cache.cached("entry", [present, added], lambda: "with b") == "with b"
    assert cache.cached("entry", [present], lambda: "one source") == "one source"


def test_a_corrupt_entry_is_rebuilt(cache_dir, tmp_path):
    source = tmp_path / "source.yaml"
    source.write_text("a: 1\n")
    cache.cached("entry", [source], lambda: [1, 2, 3])
    [entry] = cache_dir.iterdir()
    entry.write_bytes(b"\xff\x00 not marshal data")
    assert cache.cached("entry", [source], lambda: [4]) == [4]
    assert cache.cached("entry", [source], lambda: [5]) == [4]


def test_an_unusable_cache_folder_only_costs_the_rebuild(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("TBYTE_POLICY_CACHE_DIR", str(blocker / "cache"))  # under a file: nothing can be created
    source = tmp_path / "source.yaml"
    source.write_text("a: 1\n")
    build, calls = counting({"a": 1})
    assert cache.cached("entry", [source], build) == {"a": 1}
    assert cache.cached("entry", [source], build) == {"a": 1}
    assert len(calls) == 2
    assert not list(tmp_path.glob("**/*.tmp"))


def test_data_marshal_cannot_store_is_returned_uncached(cache_dir, tmp_path):
    source = tmp_path / "source.yaml"
    source.write_text("a: 1\n")
    build, calls = counting({"when": object()})
    cache.cached("entry", [source], build)
    cache.cached("entry", [source], build)
    assert len(calls) == 2
    assert not cache_dir.exists() or not list(cache_dir.iterdir())


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TBYTE_POLICY_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "tbyte-policy"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "tbyte-policy"
    monkeypatch.setenv("TBYTE_POLICY_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"


def test_the_catalogue_is_the_same_from_the_rule_files_and_from_the_cache(cache_dir):
    cold = load_catalogue()
    assert any(path.name.startswith("rules-") for path in cache_dir.iterdir())
    assert load_catalogue() == cold


def test_an_edited_rules_file_is_read_again(cache_dir, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    before = {rule.id: rule.title for rule in load_catalogue(rules)}
    probes = rules / "probes.yaml"
    probes.write_text(probes.read_text().replace(f"title: {before['PRB001']}", "title: Edited title"))
    after = {rule.id: rule.title for rule in load_catalogue(rules)}
    assert after == {**before, "PRB001": "Edited title"}
    (rules / "probes.yaml").unlink()
    assert not any(rule_id.startswith("PRB") for rule_id in {rule.id for rule in load_catalogue(rules)})


def test_a_warm_schema_set_reads_no_schema_file(cache_dir):
    version = schemas.resolve_version(None)
    cold = schemas.SchemaSet(version)
    expected = (cold.kinds(), cold.served("Deployment"), cold.knows_group("apps"), cold.knows_group("argoproj.io"),
                cold.schema("apps/v1", "Deployment"), cold.schema("argoproj.io/v1alpha1", "Rollout"),
                cold.schema("apps/v1", "NoSuchKind"))
    assert expected[4] is not None and expected[5] is not None and expected[6] is None
    warm = schemas.SchemaSet(version)
    assert (warm.kinds(), warm.served("Deployment"), warm.knows_group("apps"), warm.knows_group("argoproj.io"),
            warm.schema("apps/v1", "Deployment"), warm.schema("argoproj.io/v1alpha1", "Rollout"),
            warm.schema("apps/v1", "NoSuchKind")) == expected
    assert warm._definitions is None  # _definitions.json was never opened
    assert warm.validator("apps/v1", "Deployment").problems({"apiVersion": "apps/v1", "kind": "Deployment",
                                                            "metadata": {"name": "web"}, "spec": {}}) != []


def scan_json(arguments: list[str]) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["scan", *arguments, "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


def test_a_scan_is_the_same_with_the_cache_cold_warm_or_unusable(tmp_path, monkeypatch):
    fixtures = REPO / "tests" / "fixtures" / "rules"
    targets = [str(REPO / "reference_manifests"), *(str(fixtures / rule) for rule in ("SCH001", "SCR004", "SCR005"))]
    outcomes = []
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for directory in (tmp_path / "fresh", tmp_path / "fresh", blocker / "cache"):  # cold, warm, unusable
        monkeypatch.setenv("TBYTE_POLICY_CACHE_DIR", str(directory))
        schemas.schema_set.cache_clear()
        schemas._schema_set.cache_clear()  # a new process would start without the validators of this one
        outcomes.append(scan_json(targets))
    assert outcomes[0][1]["summary"]["findings"] > 0
    assert {"SCH001", "SCR004", "SCR005"} <= {finding["rule_id"] for finding in outcomes[0][1]["findings"]}
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert {path.name.split("-")[0] for path in (tmp_path / "fresh").iterdir()} == {"rules", "schema"}
