"""Rule fixtures' `# expect:` headers, and rewriting them from what a rule finds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tbyte_policy.catalogue import find_rule, load_catalogue
from tbyte_policy.rule_tests import Expectation, actual_findings, expected_findings, rewrite_expectations

ROOT = Path(__file__).parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "rules" / "PRB003" / "fail.yaml"
RULE = find_rule(load_catalogue(), "PRB003")


def test_a_header_names_rule_object_and_line():
    assert expected_findings(FIXTURE.read_text()) == {
        Expectation("PRB003", "Deployment/web", 21), Expectation("PRB003", "Deployment/web", 25),
        Expectation("PRB003", "Pod/numbered", 41)}
    assert expected_findings("# expect: RUN001 Pod/web -\n# a comment\n") == {Expectation("RUN001", "Pod/web", None)}


def test_rewriting_a_stale_header_accounts_for_its_own_lines(tmp_path):
    body = FIXTURE.read_text().split("apiVersion:", 1)[1]
    stale = tmp_path / "fail.yaml"
    stale.write_text("# expect: PRB003 Deployment/web 1\napiVersion:" + body)  # one line where there are three
    assert rewrite_expectations(RULE, stale)
    assert stale.read_text() == ("# expect: PRB003 Deployment/web 21\n# expect: PRB003 Deployment/web 25\n"
                                 "# expect: PRB003 Pod/numbered 41\n"
                                 "apiVersion:" + body)
    found, errors = actual_findings(RULE, stale)
    assert found == expected_findings(stale.read_text()) and errors == []
    assert not rewrite_expectations(RULE, stale)  # a header that holds is left as it is


def test_the_script_leaves_true_headers_alone_and_fixes_shifted_ones(tmp_path):
    fixtures = tmp_path / "tests" / "fixtures" / "rules" / "PRB003"
    fixtures.mkdir(parents=True)
    header, body = FIXTURE.read_text().split("apiVersion:", 1)
    (fixtures / "fail.yaml").write_text(header + "# a comment that shifts every line below\napiVersion:" + body)
    (fixtures / "pass.yaml").write_text((FIXTURE.parent / "pass.yaml").read_text())
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "update_expectations.py"
    script.write_text((ROOT / "scripts" / "update_expectations.py").read_text())
    result = subprocess.run([sys.executable, str(script), "PRB003"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "rewrote tests/fixtures/rules/PRB003/fail.yaml\n"
    rewritten = (fixtures / "fail.yaml").read_text()
    assert rewritten.endswith("# a comment that shifts every line below\napiVersion:" + body)
    assert expected_findings(rewritten) == {
        Expectation("PRB003", "Deployment/web", 22), Expectation("PRB003", "Deployment/web", 26),
        Expectation("PRB003", "Pod/numbered", 42)}
    assert (fixtures / "pass.yaml").read_text() == (FIXTURE.parent / "pass.yaml").read_text()
