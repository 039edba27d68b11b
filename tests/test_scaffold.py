"""`tbyte-policy rules new`: a new rule's YAML entry, check stub and fixtures, in a source checkout."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from tbyte_policy.cli import app

ROOT = Path(__file__).parents[1]


def checkout(tmp_path: Path) -> Path:
    """The parts of a checkout `rules new` writes into."""
    root = tmp_path / "checkout"
    shutil.copytree(ROOT / "rules", root / "rules")
    (root / "tbyte_policy" / "checks").mkdir(parents=True)
    for module in ("probes.py", "hpa.py"):
        shutil.copy(ROOT / "tbyte_policy" / "checks" / module, root / "tbyte_policy" / "checks" / module)
    (root / "tests" / "fixtures" / "rules").mkdir(parents=True)
    return root


def test_a_new_rule_takes_the_next_id_and_starts_failing(tmp_path):
    root = checkout(tmp_path)
    before = (root / "tbyte_policy" / "checks" / "probes.py").read_text()
    result = CliRunner().invoke(app, ["rules", "new", "probes", "termination-message-policy", "--root", str(root)])
    assert result.exit_code == 0, result.output
    fixtures = root / "tests" / "fixtures" / "rules" / "PRB005"
    assert result.stdout.splitlines()[:4] == [str(root / "rules" / "probes.yaml"),
                                              str(root / "tbyte_policy" / "checks" / "probes.py"),
                                              str(fixtures / "fail.yaml"), str(fixtures / "pass.yaml")]
    entry = yaml.safe_load((root / "rules" / "probes.yaml").read_text())["rules"][-1]
    assert entry == {"id": "PRB005", "name": "termination-message-policy", "severity": "medium",
                     "title": "TODO: what a finding means, in one line", "check": "termination-message-policy",
                     "kinds": ["pod-bearing"],
                     "docs": {"what": "TODO: what the rule checks.", "why": "TODO: what goes wrong in production "
                              "without it.", "example": "# TODO: a manifest snippet that breaks the rule\n",
                              "fix": "TODO: how to fix it."}}
    module = (root / "tbyte_policy" / "checks" / "probes.py").read_text()
    assert module.startswith(before.rstrip("\n"))
    stub = ast.parse(module).body[-1]
    assert isinstance(stub, ast.FunctionDef) and stub.name == "termination_message_policy"
    assert ast.unparse(stub.decorator_list[0]) == "check('termination-message-policy', 'container')"
    assert isinstance(stub.body[-1], ast.Raise)  # the catalogue's tests fail until the check is written
    assert (fixtures / "fail.yaml").read_text().startswith("# expect: PRB005 Deployment/fails -\n")
    assert "# expect:" not in (fixtures / "pass.yaml").read_text()


def test_the_stub_gets_the_imports_its_module_lacks(tmp_path):
    root = checkout(tmp_path)
    result = CliRunner().invoke(app, ["rules", "new", "hpa", "scaler-paused", "--target", "namespace",
                                      "--severity", "low", "--root", str(root)])
    assert result.exit_code == 0, result.output
    tree = ast.parse((root / "tbyte_policy" / "checks" / "hpa.py").read_text())
    imported = [alias.name for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names]
    assert sorted(imported) == sorted(set(imported))  # nothing imported twice
    assert {"Iterator", "CheckContext", "check", "Problem"} <= set(imported)
    assert yaml.safe_load((root / "rules" / "hpa.yaml").read_text())["rules"][-1]["id"] == "HPA008"


def test_bad_requests_are_refused_and_write_nothing(tmp_path):
    root = checkout(tmp_path)
    rules_before = (root / "rules" / "probes.yaml").read_text()
    for arguments, message in [
        (["nope", "x"], "unknown family 'nope'"),
        (["probes", "Not_Kebab"], "must be kebab-case"),
        (["probes", "readiness-probe-missing"], "already has a rule or check named readiness-probe-missing"),
        (["probes", "x", "--target", "cluster"], "the target must be one of"),
        (["network-policy", "x"], "source checkout"),  # its check module is not in this checkout
    ]:
        result = CliRunner().invoke(app, ["rules", "new", *arguments, "--root", str(root)])
        assert result.exit_code == 2 and message in result.stderr, (arguments, result.output)
    assert (root / "rules" / "probes.yaml").read_text() == rules_before
    assert list((root / "tests" / "fixtures" / "rules").iterdir()) == []
