"""`tbyte-policy rules new`: a new rule's YAML entry, check stub and fixtures, in a source checkout."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import yaml
from frozen_catalogue import FROZEN_RULES
from typer.testing import CliRunner

from tbyte_policy.cli import app

ROOT = Path(__file__).parents[1]
# A check module that imports none of what a stub needs.
BARE_MODULE = '''"""resources: a module that imports nothing yet."""

from __future__ import annotations

import re

PATTERN = re.compile("x")
'''


def checkout(tmp_path: Path) -> Path:
    """The parts of a checkout `rules new` writes into, with the frozen rules (so new rules never move the ids)."""
    root = tmp_path / "checkout"
    shutil.copytree(FROZEN_RULES, root / "rules", ignore=shutil.ignore_patterns("*.md"))
    (root / "tbyte_policy" / "checks").mkdir(parents=True)
    shutil.copy(ROOT / "tbyte_policy" / "checks" / "probes.py", root / "tbyte_policy" / "checks" / "probes.py")
    (root / "tbyte_policy" / "checks" / "resources.py").write_text(BARE_MODULE)
    (root / "tests" / "fixtures" / "rules").mkdir(parents=True)
    return root


def test_a_new_rule_takes_the_next_id_and_starts_failing(tmp_path):
    root = checkout(tmp_path)
    before = (root / "tbyte_policy" / "checks" / "probes.py").read_text()
    result = CliRunner().invoke(app, ["rules", "new", "probes", "scaffolded-example", "--root", str(root)])
    assert result.exit_code == 0, result.output
    fixtures = root / "tests" / "fixtures" / "rules" / "PRB005"
    assert result.stdout.splitlines()[:4] == [str(root / "rules" / "probes.yaml"),
                                              str(root / "tbyte_policy" / "checks" / "probes.py"),
                                              str(fixtures / "fail.yaml"), str(fixtures / "pass.yaml")]
    entry = yaml.safe_load((root / "rules" / "probes.yaml").read_text())["rules"][-1]
    assert entry == {"id": "PRB005", "name": "scaffolded-example", "severity": "medium",
                     "title": "TODO: what a finding means, in one line", "check": "scaffolded-example",
                     "kinds": ["pod-bearing"],
                     "docs": {"what": "TODO: what the rule checks.", "why": "TODO: what goes wrong in production "
                              "without it.", "example": "# TODO: a manifest snippet that breaks the rule\n",
                              "fix": "TODO: how to fix it."}}
    module = (root / "tbyte_policy" / "checks" / "probes.py").read_text()
    assert module.startswith(before.rstrip("\n"))
    stub = ast.parse(module).body[-1]
    assert isinstance(stub, ast.FunctionDef) and stub.name == "scaffolded_example"
    assert ast.unparse(stub.decorator_list[0]) == "check('scaffolded-example', 'container')"
    assert isinstance(stub.body[-1], ast.Raise)  # the catalogue's tests fail until the check is written
    assert (fixtures / "fail.yaml").read_text().startswith("# expect: PRB005 Deployment/fails -\n")
    assert "# expect:" not in (fixtures / "pass.yaml").read_text()


def test_the_stub_gets_the_imports_its_module_lacks(tmp_path):
    root = checkout(tmp_path)
    result = CliRunner().invoke(app, ["rules", "new", "resources", "quota-exceeded", "--target", "object",
                                      "--severity", "low", "--root", str(root)])
    assert result.exit_code == 0, result.output
    module = (root / "tbyte_policy" / "checks" / "resources.py").read_text()
    assert module.startswith(BARE_MODULE.replace("import re\n", "import re\n"
                                                 "from collections.abc import Iterator\n"
                                                 "from tbyte_policy.checks import CheckContext\n"
                                                 "from tbyte_policy.checks import check\n"
                                                 "from tbyte_policy.model import Problem\n"
                                                 "from tbyte_policy.model import Resource\n"))
    compile(module, "resources.py", "exec")
    assert yaml.safe_load((root / "rules" / "resources.yaml").read_text())["rules"][-1]["id"] == "RES008"


def test_bad_requests_are_refused_and_write_nothing(tmp_path):
    root = checkout(tmp_path)
    rules_before = (root / "rules" / "probes.yaml").read_text()
    for arguments, message in [
        (["nope", "x"], "unknown family 'nope'"),
        (["probes", "Not_Kebab"], "must be kebab-case"),
        (["probes", "readiness-probe-missing"], "already has a rule or check named readiness-probe-missing"),
        (["probes", "probe-port-undeclared"], "already has a rule or check named probe-port-undeclared"),
        (["probes", "x", "--target", "cluster"], "the target must be one of"),
        (["network-policy", "x"], "source checkout"),  # its check module is not in this checkout
    ]:
        result = CliRunner().invoke(app, ["rules", "new", *arguments, "--root", str(root)])
        assert result.exit_code == 2 and message in result.stderr, (arguments, result.output)
    assert (root / "rules" / "probes.yaml").read_text() == rules_before
    assert list((root / "tests" / "fixtures" / "rules").iterdir()) == []
