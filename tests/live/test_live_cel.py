"""CEL rules in the live audit: `live --rules`, rules for live mode only (`modes: [live]`, which may read status),
and namespaceObject, the Namespace the audit reads."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

pytest.importorskip("cel", reason="the cel extra is not installed")

from tbyte_policy.cli import app

from .cluster_fixtures import NS, cluster

RULES = textwrap.dedent("""\
    family: live-checks
    rules:
      - id: LIV001
        name: available-replicas-reported
        severity: high
        title: Deployments report available replicas
        match: {kinds: [Deployment]}
        modes: [live]
        validations:
          - expression: >-
              has(object.status) && has(object.status.availableReplicas)
              && object.status.availableReplicas >= 3
            messageExpression: "object.metadata.name + ' has ' + string(object.status.availableReplicas) + ' available'"
        docs: {what: Deployments have three available replicas., fix: Scale up.}
      - id: LIV002
        name: namespace-is-labelled
        severity: low
        title: The namespace has a team label
        match: {kinds: [Service]}
        validations:
          - expression: namespaceObject != null && namespaceObject.metadata.name == object.metadata.namespace
            message: the audit did not give the Service its namespace
          - expression: "has(namespaceObject.metadata.labels) && 'team' in namespaceObject.metadata.labels"
            message: the Service's namespace has no team label
        docs: {what: Namespaces carry a team label., fix: Label the namespace.}
    """)


def test_live_runs_cel_rules_with_status_and_the_namespace(k8s_server, tmp_path):
    rules = tmp_path / "live.yaml"
    rules.write_text(RULES)
    live = cluster("production")
    server = k8s_server(live.objects)
    result = CliRunner().invoke(app, ["live", "--kubeconfig", server.kubeconfig_path, "--context", "test",
                                      "--timeout", "5", "--namespace", NS, "--rules", str(rules), "--format", "json"])
    assert "Traceback" not in result.output
    document = json.loads(result.stdout)
    assert document["errors"] == []
    available = {(deployment["metadata"]["name"], deployment["status"]["availableReplicas"])
                 for deployment in live.all("Deployment")}
    found = {(f["rule_id"], f["resource"]["kind"], f["resource"]["name"], f["message"]) for f in document["findings"]
             if f["rule_id"].startswith("LIV")}
    expected = {("LIV001", "Deployment", name, f"{name} has {count} available") for name, count in available
                if count < 3}
    expected |= {("LIV002", "Service", service["metadata"]["name"], "the Service's namespace has no team label")
                 for service in live.all("Service")}
    assert expected and found == expected
    scanned = CliRunner().invoke(app, ["scan", "--rules", str(rules), "--format", "json"]).stdout
    assert not any(f["rule_id"] == "LIV001" for f in json.loads(scanned)["findings"])  # modes: [live]
