"""Baselines: record today's findings, then fail only on new ones, however the lines move."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from frozen_catalogue import use_frozen_rules
from typer.testing import CliRunner

from tbyte_policy.baseline import IDENTITY_FIELDS, apply_baseline, baseline_document
from tbyte_policy.cli import app
from tbyte_policy.findings import Finding, Location, Report, ResourceId

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
        - name: api
          image: ghcr.io/acme/api:1.4.2
          ports:
            - {name: http, containerPort: 3000}
          env:
            - {name: DATABASE_PASSWORD, value: hunter2-do-not-leak}
          readinessProbe:
            httpGet: {path: /ready, port: http}
          resources:
            requests: {cpu: 100m, memory: 256Mi}
"""


@pytest.fixture
def cli(monkeypatch, tmp_path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    use_frozen_rules(monkeypatch)
    return CliRunner()


def scan(cli: CliRunner, *arguments: str) -> tuple[int, dict]:
    result = cli.invoke(app, ["scan", "app.yaml", "-f", "json", *arguments])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def shifted(text: str) -> str:
    """Every line moved: a comment block on top and a blank line after each line."""
    return "# moved by an unrelated edit\n# and another line\n" + "".join(line + "\n\n" for line in text.splitlines())


def test_only_the_new_finding_fails_after_every_line_moved(cli, tmp_path):
    (tmp_path / "app.yaml").write_text(MANIFEST)
    code, before = scan(cli, "--write-baseline", "baseline.json")
    assert code == 1
    accepted = {(finding["rule_id"], finding["container"]) for finding in before["findings"]}
    assert accepted == {("PRB002", "api"), ("RES003", "api"), ("RES004", "api")}

    (tmp_path / "app.yaml").write_text(shifted(MANIFEST))
    code, moved = scan(cli, "--baseline", "baseline.json")
    assert code == 0
    assert moved["summary"]["findings"] == 0 and moved["summary"]["suppressed"] == 3
    assert {finding["location"]["line"] for finding in moved["findings"]}.isdisjoint(
        {finding["location"]["line"] for finding in before["findings"]})

    # One new problem: the readiness probe now aims at a port the container does not declare.
    (tmp_path / "app.yaml").write_text(shifted(MANIFEST.replace("{path: /ready, port: http}",
                                                                 "{path: /ready, port: web}")))
    code, after = scan(cli, "--baseline", "baseline.json")
    assert code == 1
    active = [finding for finding in after["findings"] if not finding["suppressed"]]
    assert [(finding["rule_id"], finding["location"]["line"]) for finding in active] == [("PRB003", 43)]
    suppressed = [finding for finding in after["findings"] if finding["suppressed"]]
    assert {(finding["rule_id"], finding["suppression_reason"]) for finding in suppressed} == {
        ("PRB002", "in baseline baseline.json"), ("RES003", "in baseline baseline.json"),
        ("RES004", "in baseline baseline.json")}


def test_the_baseline_file_holds_identities_and_messages_only(cli, tmp_path):
    (tmp_path / "app.yaml").write_text(MANIFEST)
    scan(cli, "--write-baseline", "baseline.json")
    text = (tmp_path / "baseline.json").read_text()
    assert "hunter2" not in text and "app.yaml" not in text
    document = json.loads(text)
    assert document["version"] == 1
    assert {key for entry in document["entries"] for key in entry} == {*IDENTITY_FIELDS, "rule_name", "message"}
    assert document["entries"][0] == {"rule_id": "PRB002", "kind": "Deployment", "namespace": "shop", "name": "api",
                                      "container": "api", "pointer": "/spec/template/spec/containers/0",
                                      "rule_name": "liveness-probe-missing",
                                      "message": "container api has no livenessProbe"}


def test_a_baseline_written_and_read_in_one_run_accepts_everything(cli, tmp_path):
    (tmp_path / "app.yaml").write_text(MANIFEST)
    code, report = scan(cli, "--baseline", "baseline.json", "--write-baseline", "baseline.json")
    assert code == 0 and report["summary"]["suppressed"] == 3


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read baseline"),
    ("{not json", "not valid JSON"),
    ('{"version": 2, "entries": []}', "not a tbyte-policy baseline"),
    ('{"version": 1, "entries": [{"rule_id": "PRB001"}]}', "entry 0 needs rule_id, kind and name"),
])
def test_an_unusable_baseline_is_an_input_error(cli, tmp_path, content, message):
    (tmp_path / "app.yaml").write_text(MANIFEST)
    if content is not None:
        (tmp_path / "baseline.json").write_text(content)
    result = cli.invoke(app, ["scan", "app.yaml", "--baseline", "baseline.json"])
    assert result.exit_code == 2
    assert message in result.stderr


def _finding(pointer: str, message: str = "m") -> Finding:
    return Finding("PRB001", "readiness-probe-missing", "probes", "high", message,
                   ResourceId("apps/v1", "Deployment", "api", "shop"), "api", Location("a.yaml", 3, 1, pointer))


def test_each_baseline_entry_accepts_one_finding():
    findings = [_finding("/spec/a"), _finding("/spec/a", "second"), _finding("/spec/b")]
    report = Report("0", [], findings=findings)
    accepted = Counter(tuple(entry[field] for field in IDENTITY_FIELDS)
                       for entry in baseline_document(Report("0", [], findings=[_finding("/spec/a")]))["entries"])
    accepted_report = apply_baseline(report, accepted, "b.json")
    assert [(finding.location.pointer, finding.message) for finding in accepted_report.active_findings] == [
        ("/spec/a", "second"), ("/spec/b", "m")]
    assert [(finding.location.pointer, finding.suppression_reason) for finding in accepted_report.findings
            if finding.suppressed] == [("/spec/a", "in baseline b.json")]
    assert report.findings == findings and not any(finding.suppressed for finding in findings)
