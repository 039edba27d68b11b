"""CEL rules (tbyte_policy.cel_rules): rule files given by --rules and custom_rules, run everywhere built-in rules
run, with ValidatingAdmissionPolicy semantics; the errors a rule file can hold; `rules test`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("cel", reason="the cel extra is not installed")

from tbyte_policy import k8s_cel
from tbyte_policy.cli import app

ROOT = Path(__file__).parents[1]
HERE = Path(__file__).parent / "fixtures" / "cel"
POLICIES = HERE / "policies"
MANIFESTS = HERE / "manifests.yaml"
RULES_FILE = "tests/fixtures/cel/policies/org.yaml"
runner = CliRunner()


def scan(*args: str, cwd: Path | None = None) -> tuple[int, dict]:
    result = runner.invoke(app, ["scan", *args, "--no-schema", "--format", "json"])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, json.loads(result.stdout) if result.stdout.startswith("{") else {}


def custom(document: dict) -> set[tuple]:
    return {(f["rule_id"], f"{f['resource']['kind']}/{f['resource']['name']}", f["location"]["line"],
             f["location"]["column"], f["location"]["pointer"]) for f in document["findings"]
            if f["rule_id"].startswith("ORG")}


EXPECTED = {
    ("ORG001", "Deployment/web", 12, 3, "/metadata/labels"),
    # fieldPath .spec.template.spec.containers[0].image: the field's own line and column
    ("ORG002", "Deployment/web", 19, 11, "/spec/template/spec/containers/0/image"),
    # fieldPath .metadata.annotations['example.com/size'] is absent: its nearest parent
    ("ORG003", "Deployment/web", 9, 1, "/metadata/annotations/example.com~1size"),
    ("ORG004", "Service/web", 46, 3, "/spec/ports"),
    # no fieldPath: the object; namespaceObject is the Namespace the run holds (labelled frozen)
    ("ORG004", "Service/web", 40, 1, ""),
}


def test_a_scan_runs_the_rules_of_rules_files_with_vap_semantics():
    code, document = scan(str(MANIFESTS), "--rules", str(POLICIES))
    assert custom(document) == EXPECTED
    assert document["errors"] == []
    messages = {f["rule_id"]: f["message"] for f in document["findings"] if f["rule_id"] in ("ORG001", "ORG002")}
    assert messages == {"ORG001": "workload web has no team label",  # messageExpression
                        "ORG002": "images from outside registry.example.com/: docker.io/library/nginx:1.27"}
    finding = next(f for f in document["findings"] if f["rule_id"] == "ORG002")
    assert (finding["family"], finding["severity"], finding["rule_name"]) == ("org", "high",
                                                                              "image-from-company-registry")
    assert finding["remediation"] == "Mirror the image into the company registry and reference it there."
    assert code == 1


def test_custom_rules_of_the_config_are_relative_to_it_and_take_overrides(tmp_path):
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "app.yaml").write_text(MANIFESTS.read_text())
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "policies").mkdir()
    (tmp_path / "ci" / "policies" / "org.yaml").write_text((POLICIES / "org.yaml").read_text())
    (tmp_path / ".tbyte-policy.yaml").write_text(textwrap.dedent("""\
        custom_rules: [ci/policies]
        rules:
          ORG001: {severity: critical}
          memory-limit-at-most-4gi: {enabled: false}
          ORG002: {params: {registry: docker.io/}}
        exemptions:
          - {rule: ORG004, kind: Service, name: web, reason: legacy port (OPS-1)}
        """))
    code, document = scan(str(tmp_path / "deploy"))
    found = {(f["rule_id"], f["resource"]["name"], f["severity"], f["suppressed"]) for f in document["findings"]
             if f["rule_id"].startswith("ORG")}
    assert found == {("ORG001", "web", "critical", False), ("ORG002", "api", "high", False),
                     ("ORG002", "web", "high", False), ("ORG004", "web", "info", True)}
    api = next(f for f in document["findings"] if f["rule_id"] == "ORG002" and f["resource"]["name"] == "api")
    assert api["message"] == "images from outside docker.io/: registry.example.com/api:2.1"
    assert code == 1


def test_ignore_annotations_name_custom_rules_and_baselines_accept_their_findings(tmp_path):
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MANIFESTS.read_text().replace(
        "  labels: {app: web}\nspec:\n  replicas: 2",
        "  labels: {app: web}\n  annotations: {tbyte-policy.io/ignore.team-label-required: owned by platform}\n"
        "spec:\n  replicas: 2"))
    _, document = scan(str(manifest), "--rules", str(POLICIES))
    team = [f for f in document["findings"] if f["rule_id"] == "ORG001"]
    assert [(f["suppressed"], f["suppression_reason"]) for f in team] == [(True, "owned by platform")]
    baseline = tmp_path / "baseline.json"
    scan(str(manifest), "--rules", str(POLICIES), "--write-baseline", str(baseline))
    code, again = scan(str(manifest), "--rules", str(POLICIES), "--baseline", str(baseline), "--fail-on", "info")
    assert all(f["suppressed"] for f in again["findings"]) and code == 0
    assert {entry["rule_id"] for entry in json.loads(baseline.read_text())["entries"]} >= {"ORG002", "ORG004"}


def test_stdin_and_every_reporter_carry_custom_rules():
    result = runner.invoke(app, ["scan", "-", "--rules", str(POLICIES), "--no-schema", "--format", "sarif"],
                           input=MANIFESTS.read_text())
    run = json.loads(result.stdout)["runs"][0]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    team = rules["ORG001"]
    assert team["fullDescription"]["text"] == "Every Deployment, StatefulSet and Argo Rollout carries a `team` label."
    assert "Why it matters: On-call routing and cost reports find the owning team by this label." \
        in team["help"]["text"]
    assert "## Example" in team["help"]["markdown"] and "## Why it matters" not in rules["ORG002"]["help"]["markdown"]
    assert team["properties"]["tags"] == ["org", "kubernetes"]
    assert {(r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]) for r in run["results"]
            if r["ruleId"].startswith("ORG")} == {("ORG001", "Deployment/shop/web"), ("ORG002", "Deployment/shop/web"),
                                                  ("ORG003", "Deployment/shop/web"), ("ORG004", "Service/shop/web")}
    for output_format in ("table", "junit", "markdown", "github", "policyreport"):
        text = runner.invoke(app, ["scan", str(MANIFESTS), "--rules", str(POLICIES), "--no-schema",
                                   "--format", output_format]).stdout
        assert "ORG001" in text, output_format


def test_an_expression_that_fails_on_an_object_is_an_error_on_it_and_the_run_goes_on(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent("""\
        rules:
          - id: ORG010
            name: replicas-at-least-two
            severity: high
            title: Two replicas
            match: {kinds: [Deployment]}
            variables:
              - {name: replicas, expression: object.spec.replicas}
            validations:
              - expression: variables.replicas >= 2
                message: fewer than two replicas
              - expression: object.metadata.name.size() < 3
                message: name too long
            docs: {what: Two replicas., fix: Raise replicas.}
        """))
    code, document = scan(str(MANIFESTS), "--rules", str(rules))
    assert document["errors"] == [{
        "path": str(MANIFESTS), "line": 25,
        "message": f"Deployment/shop/api: rule ORG010 (replicas-at-least-two): validations[0] ({rules}:10) failed: "
                   "variables.replicas: no such key: replicas"}]
    # the other Deployment is judged, and so is the failing one by its other validation
    assert {(f["rule_id"], f["resource"]["name"], f["message"]) for f in document["findings"]
            if f["rule_id"] == "ORG010"} == {("ORG010", "web", "name too long"), ("ORG010", "api", "name too long")}
    assert document["summary"]["resources"] == 5 and code == 2


def test_lazy_variables_namespace_object_and_message_fallbacks(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent("""\
        family: lazy
        rules:
          - id: LAZ001
            name: lazy
            severity: low
            title: Lazy
            match: {kinds: [Service]}
            variables:
              - {name: broken, expression: object.spec.doesNotExist}
              - {name: name, expression: object.metadata.name}
            validations:
              - expression: false && variables.broken == 1 || variables.name != 'web'
                messageExpression: "'' "
              - expression: namespaceObject != null
                messageExpression: object.spec.nope
              - expression: "variables.name != 'web'"
            docs: {what: x, fix: z}
        """))
    _, document = scan(str(MANIFESTS), "--rules", str(rules))
    assert document["errors"] == []
    found = sorted((f["resource"]["name"], f["message"]) for f in document["findings"] if f["rule_id"] == "LAZ001")
    assert found == [
        ("api", "failed expression: namespaceObject != null"),  # no Namespace other in the run: null
        ("web", "failed expression: false && variables.broken == 1 || variables.name != 'web'"),
        ("web", "failed expression: variables.name != 'web'"),
    ]


@pytest.mark.parametrize(("text", "where", "message"), [
    ("rules: [{id: ORG9, name: x}]\n", ":1", "id must be three capital letters and three digits"),
    ("rules:\n  - id: ORG001\n    name: a\n    frobnicate: 1\n", ":4", "unknown field 'frobnicate' in rule ORG001"),
    ("rules: [\n", ":2", "invalid YAML in rule file"),
    ("family: Bad Family\nrules: []\n", ":1", "family must be a kebab-case name"),
])
def test_a_bad_rule_file_is_exit_2_naming_file_and_line_before_any_object_is_scanned(tmp_path, text, where, message):
    rules = tmp_path / "rules.yaml"
    rules.write_text(text)
    result = runner.invoke(app, ["scan", str(MANIFESTS), "--rules", str(rules), "--format", "json"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"tbyte-policy: {rules}{where}: ") and message in result.stderr


RULE = """\
rules:
  - id: {id}
    name: {name}
    severity: low
    title: T
    match: {{kinds: [Deployment]}}
    variables:
      - {{name: labels, expression: "has(object.metadata.labels) ? object.metadata.labels : {{}}"}}
    validations:
      - expression: {expression}
        message: m
    docs: {{what: w, fix: f}}
"""


@pytest.mark.parametrize(("fields", "line", "message"), [
    ({"expression": "object.spec.replicas >"}, 10, "syntax error: Syntax error: mismatched input '<EOF>'"),
    ({"expression": "variables.lables.size() > 0"}, 10, "undeclared variable 'lables' (variables.lables; declared: "
                                                        "labels)"),
    ({"expression": "'a' + 1 == 'a1'"}, 10, "no such overload: string + int"),
    ({"expression": "'yes'"}, 10, "validations[0].expression is a string; a validation must evaluate to bool"),
    ({"expression": "env.HOME == ''"}, 10, "undeclared reference to 'env'"),
    ({"expression": "object.metadata.name.readFile()"}, 10, "undeclared reference to function 'readFile'"),
    ({"expression": "request.operation == 'CREATE'"}, 10, "'request' exists only at admission"),
    ({"expression": "cel.bind(x, 1, x > 0)"}, 10, "cel.bind is not supported"),
    ({"expression": "object.?spec.hasValue()"}, 10, "optional field selection (.? and [?]) is not supported"),
    ({"expression": "object.spec.containers.all(object, true)"}, 10, "comprehension variable 'object' shadows"),
    ({"id": "PRB001"}, 2, "id PRB001 is taken by the built-in rule PRB001 (readiness-probe-missing)"),
    ({"name": "readiness-probe-missing"}, 2, "name readiness-probe-missing is taken by the built-in rule PRB001"),
])
def test_rule_errors_name_the_rule_file_and_line(tmp_path, fields, line, message):
    values = {"id": "ORG100", "name": "a-rule", "expression": "true", **fields}
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.format(**{**values, "expression": json.dumps(values["expression"])}))
    result = runner.invoke(app, ["scan", str(MANIFESTS), "--rules", str(rules)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"tbyte-policy: {rules}:{line}: "), result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_duplicate_id_names_both_places(tmp_path):
    (tmp_path / "a.yaml").write_text(RULE.format(id="ORG100", name="first", expression='"true"'))
    (tmp_path / "b.yaml").write_text(RULE.format(id="ORG100", name="second", expression='"true"'))
    result = runner.invoke(app, ["rules", "--rules", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == f"tbyte-policy: {tmp_path / 'b.yaml'}:2: duplicate rule id ORG100 (also at " \
                            f"{tmp_path / 'a.yaml'}:2)\n"


def test_the_config_names_a_missing_rules_folder_by_its_line(tmp_path):
    (tmp_path / ".tbyte-policy.yaml").write_text("fail_on: high\ncustom_rules:\n  - policies\n")
    (tmp_path / "app.yaml").write_text(MANIFESTS.read_text())
    result = runner.invoke(app, ["scan", str(tmp_path / "app.yaml")])
    assert result.exit_code == 2
    assert result.stderr == f"tbyte-policy: {tmp_path / '.tbyte-policy.yaml'}:3: custom_rules: no such rule file " \
                            "or folder 'policies'\n"


def test_without_the_cel_extra_a_configured_rule_is_a_one_line_error():
    blocked = ("import sys; sys.modules['cel'] = None; from tbyte_policy.cli import main; "
               f"sys.argv = ['tbyte-policy', 'scan', {str(MANIFESTS)!r}, '--rules', {str(POLICIES)!r}]; main()")
    result = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "tbyte-policy: CEL rules need the cel extra: pip install 'tbyte-policy[cel]'\n"


def test_rules_lists_explains_and_documents_custom_rules(tmp_path):
    listing = runner.invoke(app, ["rules", "--rules", str(POLICIES)]).stdout
    row = next(line for line in listing.splitlines() if line.startswith("ORG001"))
    assert row.split()[:6] == ["ORG001", "team-label-required", "org", "medium", "on", "vap"]
    assert next(line for line in listing.splitlines() if line.startswith("PRB003")).split()[5] == "vap"
    assert "  PDB001  cross-resource: needs the PodDisruptionBudgets and autoscalers of the workload" in listing
    explained = runner.invoke(app, ["rules", "explain", "team-label-required", "--rules", str(POLICIES)]).stdout
    assert runner.invoke(app, ["rules", "--rules", str(POLICIES), "explain", "ORG001"]).stdout == explained
    assert explained.startswith("# ORG001 team-label-required\n\nWorkloads carry a team label\n")
    assert f"- Admission: `tbyte-policy export vap`\n- Source: `{POLICIES / 'org.yaml'}`" in explained
    assert "## Why it matters\n\nOn-call routing" in explained
    assert "## Why it matters" not in runner.invoke(app, ["rules", "explain", "ORG002", "--rules",
                                                          str(POLICIES)]).stdout
    cross = runner.invoke(app, ["rules", "explain", "PDB005"]).stdout
    assert "- Admission: not exportable: cross-resource: needs every PodDisruptionBudget of the namespace\n" in cross
    written = runner.invoke(app, ["rules", "docs", str(tmp_path), "--rules", str(POLICIES)])
    assert written.exit_code == 0
    assert (tmp_path / "ORG004.md").read_text().startswith("# ORG004 service-port-named")
    assert "| [ORG004](ORG004.md) | `service-port-named` | org | info |" in (tmp_path / "README.md").read_text()


def test_rules_test_passes_on_true_headers_and_shows_the_difference_on_wrong_ones(tmp_path):
    result = runner.invoke(app, ["rules", "test", "--rules", str(POLICIES), str(HERE / "tests")])
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "3 passed, 0 failed"
    fixture = tmp_path / "ORG001" / "fail.yaml"
    fixture.parent.mkdir()
    fixture.write_text((HERE / "tests" / "ORG001" / "fail.yaml").read_text().replace("web 6", "web 7")
                       .replace("kind: Deployment", "kind: StatefulSet"))
    (tmp_path / "stranger.yaml").write_text("# expect: ORG999 Pod/x 1\n" + (HERE / "tests" / "all-rules.yaml")
                                            .read_text())
    result = runner.invoke(app, ["rules", "test", "--rules", str(POLICIES), str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout == (
        f"FAIL {fixture}\n"
        "  missing:    ORG001 Deployment/web 7\n"
        "  unexpected: ORG001 StatefulSet/web 6\n"
        f"FAIL {tmp_path / 'stranger.yaml'}\n"
        "  expects findings of ORG999, which is not among the rules tested on this file\n"
        "  missing:    ORG999 Pod/x 1\n"
        "  missing:    ORG003 Pod/tools 5\n"
        "  missing:    ORG002 Pod/tools 7\n"
        "  unexpected: ORG003 Pod/tools 6\n"
        "  unexpected: ORG002 Pod/tools 8\n"
        "0 passed, 2 failed\n")
    updated = runner.invoke(app, ["rules", "test", "--rules", str(POLICIES), "--update", str(fixture)])
    assert updated.exit_code == 0 and updated.stdout == f"rewrote {fixture}\n"
    assert fixture.read_text().startswith("# expect: ORG001 StatefulSet/web 6\napiVersion")
    assert runner.invoke(app, ["rules", "test", "--rules", str(POLICIES), str(fixture)]).exit_code == 0


def test_rules_test_needs_cel_rules():
    result = runner.invoke(app, ["rules", "test", str(HERE / "tests")])
    assert result.exit_code == 2 and "no CEL rules to test" in result.stdout


# --- the Kubernetes CEL libraries -----------------------------------------------------------------------------

@pytest.mark.parametrize(("expression", "expected"), [
    ("quantity('1Gi') == quantity('1024Mi')", True),
    ("quantity('500m').isLessThan(quantity('1')) && quantity('2').isGreaterThan(quantity('1500m'))", True),
    ("quantity('1Gi').compareTo(quantity('1G'))", 1),
    ("quantity('1.5').add(quantity('500m')) == quantity('2') && quantity('1').add(2).asInteger() == 3", True),
    ("quantity('1').sub(quantity('3')).sign()", -1),
    ("quantity('1.5').isInteger() || quantity('1.5').asApproximateFloat() != 1.5", False),
    ("isQuantity('1.5Gi') && !isQuantity('1.5GiB')", True),
    ("url('https://user@example.com:8443/a?x=1&x=2').getHost()", "example.com:8443"),
    ("url('https://[::1]:80/').getHostname() + '|' + url('https://example.com/').getPort()", "::1|"),
    ("url('https://example.com/p?k1=a&k2=b&k2=c').getQuery()", {"k1": ["a"], "k2": ["b", "c"]}),
    ("isURL('https://example.com') && isURL('/abs') && !isURL('example.com')", True),
    ("'abc 123 def 456'.find('[0-9]+') + '|' + 'abc'.find('x')", "123|"),
    ("'abc 123 def 456'.findAll('[0-9]+')", ["123", "456"]),
    ("'abc 123 def 456'.findAll('[0-9]+', 1)", ["123"]),
    ("[1, 2, 3].isSorted() && ![2, 1].isSorted() && [1, 2, 3].sum() == 6 && [3, 1, 2].min() == 1", True),
    ("[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(true) == -1", True),
    ("'a,b,c'.split(',') == ['a', 'b', 'c'] && ['a', 'b'].join('-') == 'a-b'", True),
    ("'  x '.trim() + 'abcdef'.substring(1, 3) + 'Hello'.lowerAscii() + 'hello'.charAt(1)", "xbchelloe"),
    ("'%s has %d containers (%.2f)'.format(['web', 2, 1.5])", "web has 2 containers (1.50)"),
    ("'hello'.indexOf('l') == 2 && 'hello'.lastIndexOf('l') == 3 && 'abc'.reverse() == 'cba'", True),
    ("type({}) == map && type([]) == list && type('') == string", True),
])
def test_kubernetes_libraries(expression, expected):
    program = k8s_cel.check_expression(expression, roots=k8s_cel.SCAN_ROOTS)
    assert program.execute(k8s_cel.context({"object": {}})) == expected


@pytest.mark.parametrize(("expression", "message"), [
    ("quantity('1.5').asInteger() == 1", "asInteger: cannot convert value to integer"),
    ("quantity('abc') == quantity('1')", "quantity: not a valid quantity"),
    ("object.spec.x == 1", "no such key: spec"),
    ("[].min() == 1", "min: min called on an empty list"),
])
def test_library_errors_read_like_kubernetes(expression, message):
    program = k8s_cel.check_expression(expression, roots=k8s_cel.SCAN_ROOTS)
    with pytest.raises(Exception) as raised:  # the extension raises KeyError, RuntimeError, ...
        program.execute(k8s_cel.context({"object": {}}))
    assert k8s_cel.error_text(raised.value) == message


def test_a_cel_rule_file_is_yaml_a_user_can_read():
    data = yaml.safe_load((POLICIES / "org.yaml").read_text())
    assert [rule["id"] for rule in data["rules"]] == ["ORG001", "ORG002", "ORG003", "ORG004"]


_IMPORT_PROBE = """
import atexit, sys
from tbyte_policy.cli import main

@atexit.register
def report():
    print(",".join(name for name in ("cel.cel", "cel.cli", "typer", "prompt_toolkit", "pygments")
                   if name in sys.modules), file=sys.stderr)

sys.argv = ["tbyte-policy", "scan", *sys.argv[1:], "--no-schema", "--format", "json"]
main()
"""


def test_a_scan_with_cel_rules_loads_the_extension_without_the_cel_command_line_tool():
    result = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, str(MANIFESTS), "--rules", str(POLICIES)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.stderr.strip().splitlines()[-1] == "cel.cel,typer"
    assert json.loads(result.stdout)["summary"]["findings"] > 0


def test_an_error_on_an_object_never_quotes_its_values(tmp_path):
    secret = "s3cr3t-Hunter2-value"
    manifest = tmp_path / "secret.yaml"
    manifest.write_text(f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\nstringData: {{password: {secret}}}\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent("""\
        rules:
          - id: ORG020
            name: password-is-a-duration
            severity: low
            title: T
            match: {kinds: [Secret]}
            validations:
              - expression: duration(object.stringData.password) > duration('1s')
              - expression: object.stringData.password.matches(object.stringData.password + '(')
              - expression: int(object.stringData.password) > 0
            docs: {what: w, fix: f}
        """))
    for output_format in ("json", "sarif", "table", "junit", "policyreport"):
        result = runner.invoke(app, ["scan", str(manifest), "--rules", str(rules), "--no-schema",
                                     "--format", output_format])
        assert secret not in result.output and result.exit_code == 2, output_format
    _, document = scan(str(manifest), "--rules", str(rules))
    assert [error["message"].split(" failed: ", 1)[1] for error in document["errors"]] == [
        "duration: Parsing Error: Error { input: …, code: Float }", "matches: … not a valid regex:",
        "int: string parse error: invalid digit found in string"]


def test_only_the_keys_of_the_object_that_rules_read_are_converted_and_each_rule_sees_what_it_reads(tmp_path):
    assert k8s_cel.object_keys("has(object.metadata.labels) && object.spec.replicas > 1") == {"metadata", "spec"}
    assert k8s_cel.object_keys("size(object) > 1") is None and k8s_cel.object_keys("object.all(k, true)") is None
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent("""\
        rules:
          - id: ORG030
            name: short-names
            severity: low
            title: T
            match: {kinds: [Deployment]}
            validations: [{expression: size(object.metadata.name) <= 3, message: long name}]
            docs: {what: w, fix: f}
          - id: ORG031
            name: replicas-set
            severity: low
            title: T
            match: {kinds: [Deployment]}
            validations: [{expression: has(object.spec.replicas), message: no replicas}]
            docs: {what: w, fix: f}
          - id: ORG032
            name: whole-object
            severity: low
            title: T
            match: {kinds: [Deployment]}
            validations: [{expression: "'status' in object", message: no status}]
            docs: {what: w, fix: f}
        """))
    _, document = scan(str(MANIFESTS), "--rules", str(rules))
    assert document["errors"] == []
    assert sorted((f["rule_id"], f["resource"]["name"]) for f in document["findings"]
                  if f["rule_id"] in ("ORG030", "ORG031", "ORG032")) == [
        ("ORG031", "api"), ("ORG032", "api"), ("ORG032", "web")]
