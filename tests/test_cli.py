"""The CLI contract: exit codes, formats, stdin, config and suppressions."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from frozen_catalogue import use_frozen_rules
from typer.testing import CliRunner

from tbyte_policy import __version__
from tbyte_policy.cli import app

runner = CliRunner()

# A pod that breaks exactly two of the probes/resources rules' expectations and nothing structural.
POD = textwrap.dedent("""\
    apiVersion: v1
    kind: Pod
    metadata:
      name: web
      namespace: shop
      annotations: {}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: 200m, memory: 256Mi}
          readinessProbe: {httpGet: {path: /, port: 8080}}
    """)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def scan_json(*args: str, input: str | None = None) -> tuple[int, dict]:
    result = runner.invoke(app, ["scan", *args, "--format", "json"], input=input)
    return result.exit_code, json.loads(result.stdout)


def ids(document: dict, suppressed: bool | None = None) -> set[tuple[str, str, int]]:
    return {(f["rule_name"], f["resource"]["name"], f["location"]["line"]) for f in document["findings"]
            if suppressed is None or f["suppressed"] is suppressed}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scanned folder, audited with the frozen rules (tests/frozen_rules), with a config that tests extend."""
    use_frozen_rules(monkeypatch)
    write(tmp_path / ".tbyte-policy.yaml", "rules:\n")
    return tmp_path


def test_version_and_help():
    assert runner.invoke(app, ["--version"]).stdout == f"tbyte-policy {__version__}\n"
    assert runner.invoke(app, ["scan", "--help"]).exit_code == 0


def test_findings_below_the_threshold_exit_0_and_at_it_exit_1(project):
    path = write(project / "pod.yaml", POD)
    code, document = scan_json(str(path))
    assert ids(document) == {("liveness-probe-missing", "web", 9)}
    assert code == 1 if document["findings"][0]["severity"] in ("high", "critical") else code == 0
    assert runner.invoke(app, ["scan", str(path), "--fail-on", "medium"]).exit_code == 1
    assert runner.invoke(app, ["scan", str(path), "--fail-on", "critical"]).exit_code == 0


def test_clean_input_exits_0_and_the_summary_counts(project):
    path = write(project / "pod.yaml", POD.replace(
        "      readinessProbe:", "      livenessProbe: {tcpSocket: {port: 8080}}\n      readinessProbe:"))
    code, document = scan_json(str(path))
    assert code == 0 and document["findings"] == []
    assert document["summary"] == {"files": 1, "resources": 1, "skipped_documents": 0, "findings": 0,
                                   "suppressed": 0, "by_severity": dict.fromkeys(
                                       ["critical", "high", "medium", "low", "info"], 0)}


def test_input_errors_exit_2_even_with_findings(project):
    write(project / "pod.yaml", POD)
    write(project / "broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n")
    code, document = scan_json(str(project))
    assert code == 2
    assert ids(document) == {("liveness-probe-missing", "web", 9)}
    assert [(Path(e["path"]).name, e["line"]) for e in document["errors"]] == [("broken.yaml", 4)]


def test_stdin(project, monkeypatch):
    monkeypatch.chdir(project)
    _code, document = scan_json("-", input=POD)
    assert ids(document) == {("liveness-probe-missing", "web", 9)}
    assert document["findings"][0]["location"]["path"] == "<stdin>"


def test_table_format_honours_no_color_and_groups_by_resource(project, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(project)
    write(project / "pod.yaml", POD)
    result = runner.invoke(app, ["scan", "pod.yaml", "--format", "table"])
    assert "\x1b[" not in result.stdout
    assert "Pod shop/web" in result.stdout and "pod.yaml:9" in result.stdout
    assert "1 findings (0 critical, 0 high, 1 medium, 0 low, 0 info)" in result.stdout


def test_output_file_and_quiet(project):
    path = write(project / "pod.yaml", POD)
    out = project / "report.json"
    result = runner.invoke(app, ["scan", str(path), "-f", "json", "-o", str(out), "--fail-on", "medium"])
    assert result.exit_code == 1 and result.stdout == ""
    assert json.loads(out.read_text())["summary"]["findings"] == 1
    quiet = runner.invoke(app, ["scan", str(path), "--quiet", "--fail-on", "medium"])
    assert quiet.exit_code == 1 and quiet.stdout == ""


def test_usage_errors_exit_2(project):
    assert runner.invoke(app, ["scan", "--format", "xml", str(project)]).exit_code == 2
    assert runner.invoke(app, ["scan", "--report", "nonsense", str(project)]).exit_code == 2
    assert runner.invoke(app, ["rules", "explain", "no-such-rule"]).exit_code == 2


def test_namespace_option_applies_to_objects_without_one(project):
    path = write(project / "pod.yaml", POD.replace("  namespace: shop\n", ""))
    _, document = scan_json(str(path))
    assert {f["resource"]["namespace"] for f in document["findings"]} == {"default"}
    _, document = scan_json(str(path), "--namespace", "payments")
    assert {f["resource"]["namespace"] for f in document["findings"]} == {"payments"}


def test_config_severity_override_params_and_disable(project):
    path = write(project / "pod.yaml", POD.replace("limits: {cpu: 200m, memory: 256Mi}", "limits: {memory: 256Mi}"))
    with (project / ".tbyte-policy.yaml").open("a") as config:
        config.write("  liveness-probe-missing: {severity: critical}\n  RES004: {enabled: false}\n")
    code, document = scan_json(str(path))
    assert ids(document) == {("liveness-probe-missing", "web", 9)}
    assert document["findings"][0]["severity"] == "critical" and code == 1


@pytest.mark.parametrize(("config", "message"), [
    ("rules:\n  no-such-rule: {enabled: false}\n", "unknown rule 'no-such-rule'"),
    ("colour: blue\n", "unknown option 'colour'"),
    ("rules:\n  PRB001: {params: {threshold: 3}}\n", "rule readiness-probe-missing has no param 'threshold'"),
    ("rules:\n  PRB001: {params: {probe: 3}}\n", "rules.PRB001.params.probe must be a str"),
    ("exemptions:\n  - rule: PRB002\n    reason: ''\n", "needs a non-empty reason"),
    ("fail_on: severe\n", "fail_on must be one of"),
])
def test_config_errors_exit_2_and_say_why(tmp_path, config, message):
    write(tmp_path / ".tbyte-policy.yaml", config)
    path = write(tmp_path / "pod.yaml", POD)
    result = runner.invoke(app, ["scan", str(path)])
    assert result.exit_code == 2
    assert message in result.stderr


def test_the_readme_config_example_is_a_valid_config(tmp_path):
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Configuration and suppressions", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    write(tmp_path / ".tbyte-policy.yaml", example)
    path = write(tmp_path / "pod.yaml", POD)
    result = runner.invoke(app, ["scan", str(path), "--format", "json"])
    assert result.exit_code in (0, 1), result.stderr
    assert json.loads(result.stdout)["errors"] == []


def test_config_named_explicitly(tmp_path, project):
    path = write(tmp_path / "pod.yaml", POD)
    _code, document = scan_json(str(path), "--config", str(project / ".tbyte-policy.yaml"))
    assert ids(document) == {("liveness-probe-missing", "web", 9)}


def test_annotation_suppresses_with_its_reason(project):
    path = write(project / "pod.yaml", POD.replace(
        "annotations: {}",
        "annotations:\n    tbyte-policy.io/ignore.liveness-probe-missing: \"legacy app, ticket OPS-12\""))
    code, document = scan_json(str(path), "--fail-on", "low")
    assert code == 0
    assert ids(document, suppressed=True) == {("liveness-probe-missing", "web", 10)}
    assert document["findings"][0]["suppression_reason"] == "legacy app, ticket OPS-12"
    assert document["summary"]["findings"] == 0 and document["summary"]["suppressed"] == 1


def test_annotation_with_an_empty_reason_is_an_error_and_does_not_suppress(project):
    path = write(project / "pod.yaml", POD.replace(
        "annotations: {}", "annotations:\n    tbyte-policy.io/ignore.liveness-probe-missing: \"\""))
    code, document = scan_json(str(path))
    assert code == 2
    assert ids(document, suppressed=False) == {("liveness-probe-missing", "web", 10)}
    assert [(e["line"], e["message"]) for e in document["errors"]] == [
        (7, "Pod/shop/web: annotation tbyte-policy.io/ignore.liveness-probe-missing needs a reason as its value")]


def test_exemptions_suppress_until_they_expire(project):
    path = write(project / "pod.yaml", POD)
    with (project / ".tbyte-policy.yaml").open("a") as config:
        config.write("exemptions:\n"
                     "  - rule: liveness-probe-missing\n    kind: Pod\n    namespace: shop\n    name: 'w*'\n"
                     "    reason: vendor image has no health endpoint\n    expires: 2999-01-01\n")
    code, document = scan_json(str(path), "--fail-on", "low")
    assert code == 0 and ids(document, suppressed=True) == {("liveness-probe-missing", "web", 9)}

    text = (project / ".tbyte-policy.yaml").read_text().replace("2999-01-01", "2000-01-01")
    write(project / ".tbyte-policy.yaml", text)
    code, document = scan_json(str(path), "--fail-on", "low")
    assert code == 1 and ids(document, suppressed=False) == {("liveness-probe-missing", "web", 9)}
    assert [w["message"] for w in document["warnings"]] == [
        "exemption for liveness-probe-missing expired on 2000-01-01; its findings are reported again"]


def test_rules_list_and_explain():
    listing = runner.invoke(app, ["rules"]).stdout
    assert "PRB001  readiness-probe-missing" in listing and "probes" in listing
    explained = runner.invoke(app, ["rules", "explain", "PRB001"]).stdout
    for heading in ("## What it checks", "## Why it matters", "## Example", "## Fix"):
        assert heading in explained
    assert runner.invoke(app, ["rules", "explain", "readiness-probe-missing"]).stdout == explained


def test_scan_without_arguments_audits_the_bundled_reference():
    result = runner.invoke(app, ["scan", "--format", "json"])
    document = json.loads(result.stdout)
    assert document["summary"]["resources"] > 20
    assert {Path(f["location"]["path"]).parts[-2] for f in document["findings"]} <= set()


def test_console_script_and_module_entry_points(tmp_path):
    path = write(tmp_path / "pod.yaml", POD)
    module = subprocess.run([sys.executable, "-m", "tbyte_policy", "scan", str(path), "-f", "json"],
                            capture_output=True, text=True)
    assert module.returncode in (0, 1) and json.loads(module.stdout)["summary"]["resources"] == 1
    script = Path(sys.executable).with_name("tbyte-policy")
    assert subprocess.run([str(script), "--version"], capture_output=True, text=True).stdout.strip() == \
        f"tbyte-policy {__version__}"


def test_jobs_give_the_same_output_in_the_same_order(tmp_path):
    for index in range(12):
        write(tmp_path / f"pod{index:02d}.yaml", POD.replace("name: web", f"name: web{index}")
              + ("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: broken\n" if index % 5 == 0 else ""))
    outputs = [runner.invoke(app, ["scan", str(tmp_path), "-f", "json", "--jobs", jobs]).stdout for jobs in "123"]
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(json.loads(outputs[0])["findings"]) > 12 and len(json.loads(outputs[0])["errors"]) == 3
