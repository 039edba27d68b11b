"""No secret value ever reaches the output: not in findings, not in input errors, in any format.

A value is planted at random in the places secrets live in manifests (Secret stringData and base64 data,
ConfigMap data and files, env values), next to fields of the wrong type and on lines that break the YAML,
and the table and JSON reports (and the CLI's stdout and stderr) must not contain it in any spelling.
"""

from __future__ import annotations

import base64
import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tbyte_policy.audit import AuditOptions, audit_documents
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.cli import app
from tbyte_policy.reporters import render
from tbyte_policy.sources.yaml_documents import load_text

# Wide enough that the table never folds a message (a folded value would hide from a substring search).
TABLE_WIDTH = 100_000
SECRET_ALPHABET = string.ascii_letters + string.digits + "-_.+/=@#%^*!~$&?"

# The rules' own prose (titles, documentation, remediation) is in every report: a "secret" that is part of
# it (say "toscaling/v2", from "autoscaling/v2") would be found there without having leaked.
RULE_PROSE = "\n".join(f"{rule.title}\n" + "\n".join(rule.docs.values()) for rule in load_catalogue())
# A value that starts with "/" reads as a file path (where a credential lives, SCR004/SCR005's references),
# so the rules rightly do not report it: planted values are credentials themselves.
secrets = st.text(SECRET_ALPHABET, min_size=12, max_size=40).filter(
    lambda value: any(c.isdigit() for c in value) and any(c.isalpha() for c in value) and not value.startswith("/")
    and not any(spelling in RULE_PROSE for spelling in spellings(value)))
env_names = st.sampled_from(["DB_PASSWORD", "API_TOKEN", "SECRET_BLAH", "GREETING", "X", "stripeApiKey"])
data_keys = st.sampled_from(["password", "DB_PASSWORD", "token", "config", "tls.key"])


def quoted(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar


# Each plant is (where, how): text with {v} (the raw value), {q} (quoted) and {b} (base64) placeholders.
PLANTS = {
    "env": "            - name: {name}\n              value: {q}\n",
    "env-wrong-type": "            - name: 7\n              value: {q}\n              valueFrom: oops\n",
    "env-unquoted-tag": "            - name: {name}\n              value: !{v}\n",
    "env-alias": "            - name: {name}\n              value: *{v}\n",
    "configmap": "  {key}: {q}\n",
    "configmap-file": ("  app.properties: |\n    server.port=8080\n    password={v}\n"
                       "    url=postgres://app:{v}@db/app\n"),
    "secret-string": "  {key}: {q}\n",
    "secret-data": "  {key}: {b}\n",
}
ENV_PLANTS = ("env", "env-wrong-type", "env-unquoted-tag", "env-alias")
CONFIGMAP_PLANTS = ("configmap", "configmap-file")
SECRET_PLANTS = ("secret-string", "secret-data")


def manifest(value: str, plants: list[str], name: str, key: str, wrong_shapes: bool, broken_tail: bool) -> str:
    fill = {"v": value, "q": quoted(value), "b": base64.b64encode(value.encode()).decode(), "name": name, "key": key}
    env = "".join(PLANTS[plant].format(**fill) for plant in plants if plant in ENV_PLANTS)
    configmap = "".join(PLANTS[plant].format(**fill) for plant in plants if plant in CONFIGMAP_PLANTS)
    secret = "".join(PLANTS[plant].format(**fill) for plant in plants if plant in SECRET_PLANTS)
    documents = [
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  selector:\n"
        "    matchLabels: {app: app}\n  template:\n    metadata:\n      labels: {app: app}\n    spec:\n"
        "      containers:\n        - name: app\n          image: ghcr.io/acme/app:1.0.0\n          env:\n"
        "            - name: LOG_LEVEL\n              value: info\n"
        + env,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  LOG_LEVEL: info\n" + configmap,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\n"
        + (f"stringData:\n  other: keep\ndata:\n{secret}" if secret else "stringData:\n  other: keep\n"),
    ]
    if wrong_shapes:
        # The value as a whole section of the wrong type: data a list, stringData a plain string.
        documents.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: wrong\ndata: [{quoted(value)}]\n")
        documents.append(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: wrong\nstringData: {quoted(value)}\n")
    if broken_tail:
        # An unterminated quote on the line of the value: the rest of the file is not YAML.
        documents.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  password: \"{value}\n")
    return "---\n".join(documents)


def spellings(value: str) -> set[str]:
    return {value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1]}


def assert_not_leaked(value: str, *outputs: str) -> None:
    for output in outputs:
        for spelling in spellings(value):
            assert spelling not in output, f"secret value leaked into the output as {spelling!r}"


def audit(text: str):
    report = audit_documents(load_text(text, "planted.yaml"), AuditOptions(namespace="shop"))
    assert not report.internal_errors
    return report


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=secrets, plants=st.lists(st.sampled_from(sorted(PLANTS)), min_size=1, max_size=5, unique=True),
       name=env_names, key=data_keys, wrong_shapes=st.booleans(), broken_tail=st.booleans())
def test_planted_secret_values_never_reach_any_output(value, plants, name, key, wrong_shapes, broken_tail):
    text = manifest(value, plants, name, key, wrong_shapes, broken_tail)
    report = audit(text)
    table, document = render("table", report, width=TABLE_WIDTH), render("json", report)
    errors = "\n".join(error.message for error in [*report.errors, *report.warnings])
    assert_not_leaked(value, table, document, errors)

    # The outputs did talk about the planted fields, so the assertion above is not vacuous.
    rules = {finding.rule_id for finding in report.findings}
    if "secret-string" in plants or "secret-data" in plants:
        assert "SCR001" in rules
    if "configmap-file" in plants:
        assert "SCR005" in rules
    if "env-unquoted-tag" in plants or broken_tail:
        assert report.errors


def test_cli_never_prints_a_planted_value(tmp_path):
    value = "!Zq9-v3ry-s3cr3t-V4lue"
    path = tmp_path / "planted.yaml"
    # The plants that break the YAML of the Deployment stay out, so that its env is checked too.
    plants = [plant for plant in sorted(PLANTS) if plant not in ("env-unquoted-tag", "env-alias")]
    path.write_text(manifest(value, plants, "DB_PASSWORD", "password", True, True))
    runner = CliRunner()
    for output_format in ("table", "text", "html", "json"):
        result = runner.invoke(app, ["scan", str(path), "--format", output_format])
        assert result.exit_code == 2, result.output  # findings, and input errors on top of them
        assert "SCR004" in result.stdout and "SCR001" in result.stdout
        assert_not_leaked(value, result.stdout, result.stderr, result.output)
