"""The committed rule pages (docs/rules/) are what `tbyte-policy rules docs` generates from the catalogue."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.cli import app

DOCS = Path(__file__).parents[1] / "docs" / "rules"


def test_committed_rule_docs_are_up_to_date(tmp_path):
    result = CliRunner().invoke(app, ["rules", "docs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    generated = {path.name: path.read_text() for path in tmp_path.iterdir()}
    committed = {path.name: path.read_text() for path in DOCS.glob("*.md")}
    assert generated.keys() == {f"{rule.id}.md" for rule in load_catalogue()} | {"README.md"}
    stale = sorted(name for name in generated.keys() | committed.keys() if generated.get(name) != committed.get(name))
    assert not stale, f"docs/rules/ is stale ({', '.join(stale)}): run `tbyte-policy rules docs docs/rules`"


def test_the_index_links_every_page(tmp_path):
    CliRunner().invoke(app, ["rules", "docs", str(tmp_path)])
    index = (tmp_path / "README.md").read_text()
    for rule in load_catalogue():
        assert f"| [{rule.id}]({rule.id}.md) | `{rule.name}` | {rule.family} | {rule.severity} |" in index
