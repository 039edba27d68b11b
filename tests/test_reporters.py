"""The CI report formats: golden files, the official schemas, real readers, exact positions and escaping.

Regenerate the golden files after an intended change with
``TBYTE_UPDATE_GOLDEN=1 pytest tests/test_reporters.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from frozen_catalogue import frozen_rules, use_frozen_rules
from junitparser import Error, Failure, JUnitXml, Skipped
from typer.testing import CliRunner

from tbyte_policy.audit import AuditOptions, scan_paths
from tbyte_policy.catalogue import Rule
from tbyte_policy.cli import app
from tbyte_policy.findings import Finding, Location, Report, ReportError, ResourceId
from tbyte_policy.model import ObjectRef
from tbyte_policy.reporters import FORMATS, render
from tbyte_policy.reporters.github import escape_data, escape_property
from tbyte_policy.reporters.json_report import as_document as json_document
from tbyte_policy.reporters.sarif import as_document as sarif_document

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures" / "reports"
GOLDEN = HERE / "golden"
SCHEMAS = HERE / "schemas"
# Rules that exist for good: the goldens must not change when other families add rules.
GOLDEN_RULES = ("PRB001", "PRB002", "PRB003", "RES001", "RES005", "RES006")  # RES006 finds nothing
GOLDEN_VERSION = "0.0.0-golden"
EXTENSIONS = {"sarif": "sarif", "junit": "xml", "markdown": "md", "github": "txt", "policyreport": "yaml",
              "text": "txt"}


def golden_rules() -> list[Rule]:
    return frozen_rules(*GOLDEN_RULES)


def scan_fixtures(monkeypatch) -> Report:
    # Relative paths, as a CI job scanning its checkout has them; the goldens hold no machine's directory.
    monkeypatch.chdir(FIXTURES)
    rules = golden_rules()
    report = scan_paths(["broken.yaml", "helm.yaml", "multi.yaml"], AuditOptions(rules=rules))
    report = report._replace(tool_version=GOLDEN_VERSION)
    return report


@pytest.fixture
def report(monkeypatch) -> Report:
    return scan_fixtures(monkeypatch)


def test_the_fixture_scan_covers_what_the_goldens_show(report):
    assert len(report.rules) == len(GOLDEN_RULES)
    assert len(report.active_findings) == 5 and len(report.findings) == 6
    assert len(report.errors) == 1 and report.skipped_documents == 1
    assert any(finding.location.helm_source for finding in report.findings)


@pytest.mark.parametrize("name", sorted(EXTENSIONS))
def test_golden(name, report):
    golden = GOLDEN / f"{name}.{EXTENSIONS[name]}"
    text = render(name, report)
    if os.environ.get("TBYTE_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), \
        f"{golden.name} is stale; regenerate with TBYTE_UPDATE_GOLDEN=1 and review the diff"


def test_every_ci_format_is_registered():
    assert set(EXTENSIONS) <= set(FORMATS)


# --- SARIF ---

def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def test_sarif_validates_against_the_official_schema(report):
    document = json.loads(render("sarif", report))
    sarif_validator().validate(document)
    run = document["runs"][0]
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == list(GOLDEN_RULES)
    assert len(run["results"]) == len(report.findings)
    assert run["invocations"][0]["executionSuccessful"] is False
    notification = run["invocations"][0]["toolExecutionNotifications"][0]
    assert notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "broken.yaml"


def test_sarif_rules_carry_their_docs_and_severity(report):
    descriptors = {rule["id"]: rule for rule in sarif_document(report)["runs"][0]["tool"]["driver"]["rules"]}
    prb002 = descriptors["PRB002"]
    assert prb002["defaultConfiguration"]["level"] == "warning"
    assert prb002["properties"]["tags"][0] == "probes"
    rule = next(rule for rule in report.rules if rule.id == "PRB002")
    for section in ("what", "why", "fix"):
        assert rule.docs[section].strip() in prb002["help"]["text"]
        assert rule.docs[section].strip() in prb002["help"]["markdown"]
    assert "```yaml\n" + rule.docs["example"].strip() in prb002["help"]["markdown"]
    assert descriptors["PRB001"]["defaultConfiguration"]["level"] == "error"


# (rule, file, line, column, the source text that starts there): the offending field itself.
EXPECTED_POSITIONS = {
    ("PRB003", "multi.yaml", 20, 37, "port: web"),
    ("RES005", "multi.yaml", 24, 24, "cpu: 500m"),
    ("PRB002", "multi.yaml", 39, 7, "name: worker"),   # the container item: no livenessProbe to point at
    ("RES001", "multi.yaml", 39, 7, "name: worker"),
    ("PRB001", "helm.yaml", 26, 11, "name: api"),
    ("PRB003", "helm.yaml", 35, 15, "port: grpc"),
}


def test_sarif_regions_are_the_offending_fields(report):
    seen = set()
    for result in sarif_document(report)["runs"][0]["results"]:
        physical = result["locations"][0]["physicalLocation"]
        uri, region = physical["artifactLocation"]["uri"], physical["region"]
        assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        line = (FIXTURES / uri).read_text().splitlines()[region["startLine"] - 1]
        text = next(expected[4] for expected in EXPECTED_POSITIONS if expected[:4] == (
            result["ruleId"], uri, region["startLine"], region["startColumn"]))
        assert line[region["startColumn"] - 1:].startswith(text)
        seen.add((result["ruleId"], uri, region["startLine"], region["startColumn"], text))
    assert seen == EXPECTED_POSITIONS


def test_sarif_helm_source_suppressions_and_fingerprints(report):
    results = sarif_document(report)["runs"][0]["results"]
    helm = [result for result in results if result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            == "helm.yaml"]
    assert {result["properties"]["helmSource"] for result in helm} == {"shop/templates/deployment.yaml"}
    suppressed = [result for result in results if "suppressions" in result]
    assert [(result["ruleId"], result["suppressions"]) for result in suppressed] == [
        ("PRB002", [{"kind": "external", "status": "accepted",
                     "justification": "queue worker; the queue redelivers when it hangs"}])]
    fingerprints = [result["partialFingerprints"]["tbytePolicyIdentity/v1"] for result in results]
    assert len(set(fingerprints)) == len(fingerprints)


def test_sarif_fingerprint_survives_a_line_shift_but_not_a_new_identity(report):
    finding = report.findings[0]
    moved = finding._replace(location=Location(finding.location.path, finding.location.line + 7, 3,
                                               finding.location.pointer, finding.location.helm_source))
    other = finding._replace(container="sidecar")
    def fingerprint(item):
        return sarif_document(_report([item]))["runs"][0]["results"][0]["partialFingerprints"]
    assert fingerprint(moved) == fingerprint(finding) != fingerprint(other)


def _finding(**changes) -> Finding:
    values = {"rule_id": "PRB001", "rule_name": "readiness-probe-missing", "family": "probes", "severity": "high",
                  "message": "container api has no readinessProbe",
                  "resource": ResourceId("apps/v1", "Deployment", "api", "shop"), "container": "api",
                  "location": Location("deploy/api.yaml", 12, 9, "/spec/template/spec/containers/0")}
    values.update(changes)
    return Finding(**values)


def _report(findings: list[Finding], **changes) -> Report:
    return Report(tool_version=GOLDEN_VERSION, rules=golden_rules(), findings=findings, **changes)


def test_sarif_related_locations_stdin_absolute_paths_and_errors(tmp_path):
    inside = tmp_path / "deploy" / "pdb one.yaml"
    findings = [
        _finding(related=[ObjectRef("PodDisruptionBudget", "api", "shop", str(inside), 4),
                          ObjectRef("Service", "api", "shop")]),
        _finding(location=Location("<stdin>", 3, 1, "/spec")),
        _finding(location=Location("/elsewhere/app.yaml", 3, None, "/spec"), container=None),
    ]
    report = _report(findings, internal_errors=[ReportError(None, None, "internal error in rule PRB001")],
                     warnings=[ReportError(".tbyte-policy.yaml", 7, "exemption expired")])
    document = sarif_document(report, base=tmp_path)
    sarif_validator().validate(document)
    first, stdin, absolute = document["runs"][0]["results"]
    assert first["relatedLocations"] == [
        {"id": 0, "physicalLocation": {"artifactLocation": {"uri": "deploy/pdb%20one.yaml", "uriBaseId": "%SRCROOT%"},
                                       "region": {"startLine": 4}},
         "logicalLocations": [{"name": "api", "fullyQualifiedName": "PodDisruptionBudget/shop/api",
                               "kind": "resource"}],
         "message": {"text": "PodDisruptionBudget/shop/api"}},
        {"id": 1, "logicalLocations": [{"name": "api", "fullyQualifiedName": "Service/shop/api", "kind": "resource"}],
         "message": {"text": "Service/shop/api"}},
    ]
    assert "physicalLocation" not in stdin["locations"][0]
    assert absolute["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "file:///elsewhere/app.yaml"}, "region": {"startLine": 3}}
    invocation = document["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert [(note["level"], note["message"]["text"]) for note in invocation["toolExecutionNotifications"]] == [
        ("error", "internal error in rule PRB001"), ("warning", "exemption expired")]


def test_sarif_of_a_clean_run_is_successful():
    document = sarif_document(_report([]))
    sarif_validator().validate(document)
    assert document["runs"][0]["results"] == []
    assert document["runs"][0]["invocations"][0] == {"executionSuccessful": True, "toolExecutionNotifications": []}


# --- JUnit ---

def test_junit_parses_and_its_counts_match_the_json_report(report, tmp_path):
    path = tmp_path / "report.xml"
    path.write_text(render("junit", report), encoding="utf-8")
    xml = JUnitXml.fromfile(str(path))
    summary = json_document(report)["summary"]
    cases = [case for suite in xml for case in suite]
    outcomes = [type(result) for case in cases for result in case.result]
    assert outcomes.count(Failure) == summary["findings"] == int(xml.failures)
    assert outcomes.count(Skipped) == summary["suppressed"] == int(xml.skipped)
    assert outcomes.count(Error) == len(json_document(report)["errors"]) == int(xml.errors)
    clean_rules = {f"{rule.id} {rule.name}" for rule in report.rules} - {
        f"{finding.rule_id} {finding.rule_name}" for finding in report.findings}
    assert len(cases) == int(xml.tests) == len(report.findings) + len(report.errors) + len(clean_rules)
    assert {case.name for case in cases if case.is_passed} == clean_rules
    failures = {(case.classname, case.name, case.result[0].message, case.result[0].type)
                for case in cases if case.result and isinstance(case.result[0], Failure)}
    assert ("Deployment/shop/web", "PRB003 probe-port-undeclared [web]",
            "readinessProbe of container web targets port 'web', which the container does not declare",
            "high") in failures
    assert {suite.name for suite in xml} == {"broken.yaml", "helm.yaml", "multi.yaml", "tbyte-policy"}


def test_junit_of_a_clean_run_has_passing_tests(tmp_path):
    path = tmp_path / "clean.xml"
    path.write_text(render("junit", _report([])), encoding="utf-8")
    xml = JUnitXml.fromfile(str(path))
    assert int(xml.tests) == len(GOLDEN_RULES) and int(xml.failures) == int(xml.errors) == 0


def test_junit_testcase_names_stay_unique_and_xml_safe(tmp_path):
    findings = [_finding(), _finding(location=Location("deploy/api.yaml", 30, 9, "/spec/template/spec/x")),
                _finding(message="bad \x01 byte <&>", location=Location(None, None, None, "/spec"))]
    path = tmp_path / "r.xml"
    path.write_text(render("junit", _report(findings)), encoding="utf-8")
    xml = JUnitXml.fromfile(str(path))
    suites = {suite.name: list(suite) for suite in xml}
    assert [case.name for case in suites["deploy/api.yaml"]] == [
        "PRB001 readiness-probe-missing [api]", "PRB001 readiness-probe-missing [api] (/spec/template/spec/x)"]
    (pathless,) = suites["Deployment/shop/api"]
    assert pathless.result[0].message == "bad \ufffd byte <&>"


# --- PolicyReport ---

def policyreport_schema() -> dict:
    crd = yaml.safe_load((SCHEMAS / "wgpolicyk8s.io_v1alpha2_policyreports.yaml").read_text())
    version = next(version for version in crd["spec"]["versions"] if version["name"] == "v1alpha2")
    return version["schema"]["openAPIV3Schema"]


def test_policyreport_validates_against_its_crd(report):
    document = yaml.safe_load(render("policyreport", report))
    jsonschema.Draft7Validator(policyreport_schema()).validate(document)
    assert (document["apiVersion"], document["kind"]) == ("wgpolicyk8s.io/v1alpha2", "PolicyReport")
    assert document["summary"] == {"pass": 0, "fail": 5, "warn": 0, "error": 1, "skip": 1}
    assert "namespace" not in document["metadata"]  # findings in "shop" and "default"
    by_rule = {(result.get("rule"), result["result"]) for result in document["results"]}
    assert ("PRB002", "skip") in by_rule and ("PRB003", "fail") in by_rule
    result = next(result for result in document["results"] if result.get("rule") == "RES005")
    assert result == {"policy": "request-above-limit", "rule": "RES005", "result": "fail", "severity": "high",
                      "category": "resources", "source": "tbyte-policy", "scored": True,
                      "message": result["message"],
                      "resources": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                     "namespace": "shop"}],
                      "properties": {"pointer": "/spec/template/spec/containers/0/resources/requests/cpu",
                                     "file": "multi.yaml", "line": "24", "container": "web"}}


def test_policyreport_takes_the_namespace_all_findings_share():
    document = yaml.safe_load(render("policyreport", _report([_finding(), _finding(container="b")])))
    jsonschema.Draft7Validator(policyreport_schema()).validate(document)
    assert document["metadata"]["namespace"] == "shop"


# --- GitHub annotations ---

def test_github_annotations_map_severities_and_escape():
    findings = [_finding(),
                _finding(severity="medium", rule_id="PRB002", rule_name="liveness-probe-missing",
                         message="100% down,\r\nreally: yes", location=Location("a,b:c%.yaml", 3, None, "/")),
                _finding(severity="info", location=Location(None, None, None, "/")),
                _finding(suppressed=True, suppression_reason="accepted")]
    lines = render("github", _report(findings, errors=[ReportError("x.yaml", 2, "invalid YAML")])).splitlines()
    assert lines == [
        "::error file=deploy/api.yaml,line=12,col=9,title=PRB001 readiness-probe-missing::"
        "Deployment/shop/api: container api has no readinessProbe",
        "::warning file=a%2Cb%3Ac%25.yaml,line=3,title=PRB002 liveness-probe-missing::"
        "Deployment/shop/api: 100%25 down,%0D%0Areally: yes",
        "::notice title=PRB001 readiness-probe-missing::Deployment/shop/api: container api has no readinessProbe",
        "::error file=x.yaml,line=2,title=tbyte-policy::invalid YAML",
    ]
    assert escape_property("a:b,c") == "a%3Ab%2Cc" and escape_data("a:b,c") == "a:b,c"


# --- Markdown ---

def test_markdown_totals_and_one_collapsed_table_per_resource(report):
    text = render("markdown", report)
    assert text.startswith("## tbyte-policy: 5 findings\n")
    assert "| 0 | 5 | 0 | 0 | 0 | 1 |" in text  # critical high medium low info suppressed
    assert text.count("<details>") == text.count("</details>") == 4  # 3 resources + the suppressed block
    assert "<summary><strong>Deployment/shop/web</strong> · 2 high · <code>multi.yaml</code></summary>" in text
    assert "invalid YAML" in text


def test_markdown_escapes_cells():
    text = render("markdown", _report([_finding(message="a | b <script>x</script>\nnext")]))
    assert "a \\| b &lt;script&gt;x&lt;/script&gt; next" in text and "<script>" not in text


# --- several reports in one run ---

@pytest.fixture
def cli(monkeypatch) -> CliRunner:
    """The CLI in the fixtures' folder, with the golden rules for its catalogue."""
    monkeypatch.chdir(FIXTURES)
    use_frozen_rules(monkeypatch, *GOLDEN_RULES)
    return CliRunner()


def test_one_scan_writes_every_format_beside_the_table(tmp_path, cli):
    targets = {name: tmp_path / f"{name}.{extension}"
               for name, extension in {**EXTENSIONS, "json": "json", "html": "html"}.items()}
    arguments = ["scan", "helm.yaml", "multi.yaml", "--fail-on", "critical"]
    for name, target in targets.items():
        arguments += ["--report", f"{name}={target}"]
    result = cli.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "findings (" in result.output  # the main output (text, since stdout is not a terminal) still goes out
    findings = json.loads(targets["json"].read_text())["summary"]["findings"]
    sarif = json.loads(targets["sarif"].read_text())
    assert len([result for result in sarif["runs"][0]["results"] if "suppressions" not in result]) == findings
    assert int(JUnitXml.fromfile(str(targets["junit"])).failures) == findings
    assert yaml.safe_load(targets["policyreport"].read_text())["summary"]["fail"] == findings
    assert len(targets["github"].read_text().splitlines()) == findings
    assert targets["markdown"].read_text().startswith(f"## tbyte-policy: {findings} findings")
    (data,) = re.findall(r'id="report-data">(.*?)</script>', targets["html"].read_text(), re.S)
    assert json.loads(data)["summary"]["findings"] == findings


def test_main_format_accepts_every_report_format(cli):
    result = cli.invoke(app, ["scan", "multi.yaml", "-f", "github"])
    assert result.exit_code == 1
    assert result.output.startswith("::error file=multi.yaml,line=")
