"""`tbyte-policy live --against`: the reference namespaces, served by the API double and read by the real client,
compared with the reference manifests. A healthy namespace has no drift, whatever the API server and the
controllers did to it; each drifted one (drift_fixtures.DRIFTED) has exactly its drift findings and changes
nothing else the audit finds."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tbyte_policy.audit import AuditOptions
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.cli import app
from tbyte_policy.drift import fields_read
from tbyte_policy.findings import Report
from tbyte_policy.live.command import audit_collection
from tbyte_policy.model import split_pointer
from tbyte_policy.reporters import FORMATS
from tbyte_policy.sources import load_all, scan_inputs
from tbyte_policy.sources.cluster import ALL_KINDS, KINDS, collect
from tbyte_policy.sources.tools import find_executable

from .cluster_fixtures import NS, PLANTED_SECRET, cluster
from .drift_fixtures import DRIFTED, PLANTED_LIVE_VALUE, applied, export_rendered
from .k8s_api_server import CRD_GROUPS

DRIFT_RULES = {rule.id: rule for rule in load_catalogue() if rule.family == "drift"}
PLANTED = [PLANTED_SECRET, PLANTED_LIVE_VALUE, base64.b64encode(PLANTED_SECRET.encode()).decode()]


def audit(server, against: list[str] | None = None, **options) -> Report:
    collection = collect(NS, kubeconfig=server.kubeconfig_path, context="test", timeout=5, **options)
    rendered = load_all(scan_inputs(against)) if against is not None else None
    return audit_collection(collection, AuditOptions(), rendered)


def drift(report: Report) -> set[tuple[str, str, str]]:
    return {(f.rule_id, f.resource.ref, f.location.pointer) for f in report.active_findings if f.family == "drift"}


def not_drift(report: Report) -> set[tuple[str, str, str]]:
    return {(f.rule_id, f.resource.ref, f.location.pointer) for f in report.active_findings if f.family != "drift"}


def describe(report: Report) -> str:
    return "\n".join(f"{f.rule_id} {f.resource.ref} {f.location.pointer}: {f.message}" for f in report.active_findings
                     if f.family == "drift")


def cli(server, *args: str, stdin: str | None = None):
    result = CliRunner().invoke(app, ["live", "--kubeconfig", server.kubeconfig_path, "--context", "test",
                                      "--timeout", "5", "--namespace", NS, *args], input=stdin)
    assert "Traceback" not in result.output
    return result


NOT_READ_WARNING = ("drift: not compared: 8 rendered object(s) of kinds the live audit does not read "
                    "(2 ClusterRole, 1 ClusterRoleBinding, 2 Role, 3 RoleBinding)")


# --- no drift where there is none ---

@pytest.mark.parametrize("variant", ["production", "canary", "in-cluster-db"])
def test_a_healthy_namespace_has_no_drift(k8s_server, tmp_path, variant):
    """The live copy carries what a real API server and its controllers add (defaults, canonical quantities,
    field order, managedFields, the last-applied annotation, status, revisions, pod-template-hash, the
    objects controllers make): none of it is drift."""
    server = k8s_server(cluster(variant).objects)
    rendered = export_rendered(tmp_path / "rendered", variant)
    report = audit(server, [str(rendered)])
    assert drift(report) == set(), describe(report)
    assert not_drift(report) == not_drift(audit(server))  # drift adds its family, nothing else
    assert [warning.message for warning in report.warnings] == [NOT_READ_WARNING]
    assert report.errors == [] and report.internal_errors == []
    assert report.files == len(list(rendered.rglob("*.yaml")))


def test_the_same_values_spelled_otherwise_are_no_drift(k8s_server, tmp_path):
    """Manifests that spell quantities in other units and leave defaulted fields out, applied and read back in
    the API server's canonical form and field order."""
    rendered = export_rendered(tmp_path / "rendered", "production", (
        ("backend/deployment.yaml", 'cpu: "1"', "cpu: 1000m"),
        ("backend/deployment.yaml", "memory: 512Mi", "memory: 0.5Gi"),
        ("backend/deployment.yaml", "cpu: 200m", 'cpu: "0.2"'),
        ("backend/deployment.yaml", "memory: 256Mi", "memory: 262144Ki"),
        ("backend/deployment.yaml", "sizeLimit: 128Mi", "sizeLimit: 0.125Gi"),
        ("backend/deployment.yaml", "          imagePullPolicy: IfNotPresent\n", ""),
        ("backend/deployment.yaml", "              protocol: TCP\n", ""),
        ("backend/service.yaml", "      protocol: TCP\n", ""),
        ("frontend-deployment/deployment.yaml", "cpu: 500m", 'cpu: "0.5"'),
        ("frontend-deployment/deployment.yaml", "memory: 128Mi", "memory: 131072Ki"),
        ("backend/networkpolicy.yaml", "        - protocol: TCP\n          port: 3000", "        - port: 3000"),
    ))
    live = cluster(manifests=applied(rendered))
    backend = live.get("Deployment", "backend")["spec"]["template"]["spec"]["containers"][0]
    assert backend["resources"] == {"limits": {"cpu": "1", "memory": "512Mi"},
                                    "requests": {"cpu": "200m", "memory": "256Mi"}}
    assert backend["ports"][0]["protocol"] == "TCP" and backend["imagePullPolicy"] == "IfNotPresent"
    report = audit(k8s_server(live.objects), [str(rendered)])
    assert drift(report) == set(), describe(report)


# --- each drift, exactly ---

def _server_for(k8s_server, name: str):
    scenario = DRIFTED[name]
    return k8s_server(scenario.live().objects,
                      installed_crds=[group for group in CRD_GROUPS if group not in scenario.without_crds])


@pytest.mark.parametrize("name", sorted(DRIFTED))
def test_a_drifted_namespace_has_exactly_its_drift(k8s_server, tmp_path, name):
    scenario = DRIFTED[name]
    server = _server_for(k8s_server, name)
    rendered = export_rendered(tmp_path / "rendered", scenario.variant, scenario.rendered_edits)
    report = audit(server, [str(rendered)])
    assert drift(report) == scenario.expected, describe(report)
    assert not_drift(report) == not_drift(audit(server))
    assert report.errors == [] and report.internal_errors == []


def test_every_drift_rule_has_a_drifted_namespace():
    assert {rule_id for scenario in DRIFTED.values() for rule_id, _, _ in scenario.expected} == set(DRIFT_RULES)


def test_findings_sit_on_the_right_object(k8s_server, tmp_path):
    """Missing: on the manifest, at its file and line. Changed and not rolled out: on the live object (no file),
    naming the manifest's file and line of the field. Unmanaged: on the live object."""
    rendered = export_rendered(tmp_path / "rendered", "production")
    missing = audit(_server_for(k8s_server, "network-policy-deleted"), [str(rendered)])
    (finding,) = [f for f in missing.findings if f.family == "drift"]
    assert (finding.location.path, finding.location.line) == (str(rendered / "backend/networkpolicy.yaml"), 4)
    assert finding.message == f"NetworkPolicy/backend is in the manifests but not in namespace {NS}"

    edited = audit(_server_for(k8s_server, "backend-edited"), [str(rendered)])
    image = next(f for f in edited.findings if f.location.pointer.endswith("/image"))
    assert image.location.path is None and image.resource.ref == f"Deployment/{NS}/backend"
    assert image.container == "backend"
    deployment = str(rendered / "backend/deployment.yaml")
    assert [(ref.kind, ref.name, ref.path, ref.line) for ref in image.related] == [
        ("Deployment", "backend", deployment, 78)]
    assert image.message == ("container backend: image is ghcr.io/tbyte/backend:1.4.3-hotfix live but "
                             f"ghcr.io/tbyte/backend:1.4.2 in the manifest ({deployment}:78)")
    password = next(f for f in edited.findings if f.location.pointer.endswith("/env/1/valueFrom"))
    assert password.message.startswith("container backend: env[DB_PASSWORD].valueFrom is {\"secretKeyRef\": ")
    assert password.message.endswith("but absent live")

    stuck = audit(_server_for(k8s_server, "rollout-stuck"),
                  [str(export_rendered(tmp_path / "release", "production", DRIFTED["rollout-stuck"].rendered_edits))])
    (rollout,) = [f for f in stuck.findings if f.family == "drift"]
    assert re.fullmatch(r"3 of 4 pods of Deployment/backend \(backend-\w+-\w+, backend-\w+-\w+, backend-\w+-\w+\) "
                        r"still run ghcr.io/tbyte/backend:1\.4\.2 in container backend, not "
                        r"ghcr.io/tbyte/backend:1\.5\.0 as rendered \(.*backend/deployment\.yaml:78\): the controller "
                        r"has not yet seen generation 2; the rollout exceeded its progress deadline; 1 of 4 replicas "
                        r"updated", rollout.message), rollout.message
    assert [ref.kind for ref in rollout.related] == ["Deployment", "Pod", "Pod", "Pod"]


def _as_chart(rendered: Path) -> tuple[Path, Path]:
    """The exported manifests as the templates of a chart (they hold no template actions: rendered verbatim):
    the chart, and where the file of the backend's NetworkPolicy is."""
    chart = rendered.parent / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tbyte\nversion: 1.4.2\n")
    for path in rendered.rglob("*.yaml"):
        shutil.copy(path, chart / "templates" / str(path.relative_to(rendered)).replace("/", "-"))
    return chart, chart / "templates" / "backend-networkpolicy.yaml"


def _as_kustomization(rendered: Path) -> tuple[Path, Path]:
    """The exported manifests as the resources of a kustomization at their root."""
    files = sorted(str(path.relative_to(rendered)) for path in rendered.rglob("*.yaml"))
    (rendered / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": files}))
    return rendered, rendered / "backend" / "networkpolicy.yaml"


@pytest.mark.parametrize("source", ["chart", "kustomization"])
def test_charts_and_kustomizations_are_compared_from_their_sources(k8s_server, tmp_path, monkeypatch, source):
    """`--against` takes what `scan` takes: a chart is rendered (in the audited namespace), a kustomization
    built, and a missing object is placed on the template or file it comes from."""
    if source == "chart":
        pytest.importorskip("helm_python", reason="the helm extra (pip install -e '.[helm]') renders the chart")
    elif find_executable("kustomize") is None and find_executable("kubectl") is None and not os.environ.get("CI"):
        pytest.skip("neither kustomize nor kubectl is on PATH")
    against, policy = (_as_chart if source == "chart" else _as_kustomization)(
        export_rendered(tmp_path / "rendered", "production"))
    monkeypatch.chdir(tmp_path)
    result = cli(_server_for(k8s_server, "network-policy-deleted"), "--against", against.name, "--format", "json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["errors"] == []
    drifted = [finding for finding in document["findings"] if finding["family"] == "drift"]
    assert [(f["rule_id"], f["resource"]["kind"], f["resource"]["name"]) for f in drifted] == [
        ("DRF001", "NetworkPolicy", "backend")]
    placed = Path(drifted[0]["location"]["path"])
    assert (placed.resolve(), drifted[0]["location"]["line"]) == (policy.resolve(), 4)


# --- what a run cannot see is unknown, never missing ---

def test_an_unreadable_kind_is_unknown_not_missing(k8s_server, tmp_path):
    scenario = DRIFTED["network-policy-deleted"]
    server = k8s_server(scenario.live().objects, errors={"networkpolicies": 403})
    report = audit(server, [str(export_rendered(tmp_path / "rendered", "production"))])
    assert drift(report) == set(), describe(report)
    assert set(report.unreadable_kinds) == {"NetworkPolicy"} and report.exit_code("critical") == 2
    assert ("drift: not compared: 6 rendered object(s) of kinds the run could not read: unknown, neither missing "
            "nor compared (6 NetworkPolicy)") in [warning.message for warning in report.warnings]


def test_objects_outside_the_namespace_read_are_not_compared(k8s_server, tmp_path):
    rendered = export_rendered(tmp_path / "rendered", "production")
    (rendered / "monitoring.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dashboards, namespace: monitoring}\ndata: {a: b}\n")
    report = audit(k8s_server(cluster().objects), [str(rendered)])
    assert drift(report) == set(), describe(report)
    assert (f"drift: not compared: 1 rendered object(s) outside namespace {NS}, which the run read (1 ConfigMap)"
            in [warning.message for warning in report.warnings])


# --- the command ---

def test_the_request_count_stays_one_list_per_kind(k8s_server, tmp_path):
    server = k8s_server(cluster().objects)
    result = cli(server, "--against", str(export_rendered(tmp_path / "rendered", "production")), "--format", "json")
    assert result.exit_code == 0, result.output
    assert server.count_by_resource() == {"namespaces": 1, "discovery": 3, **{kind.plural: 1 for kind in KINDS}}
    assert server.methods == {"GET"}
    document = json.loads(result.stdout)
    assert document["summary"]["findings"] == 0 and document["warnings"] == [
        {"path": None, "line": None, "message": NOT_READ_WARNING}]


def test_drift_fails_the_run_and_every_format_reports_it(k8s_server, tmp_path):
    server = _server_for(k8s_server, "network-policy-deleted")
    rendered = str(export_rendered(tmp_path / "rendered", "production"))
    assert cli(server, "--against", rendered).exit_code == 1
    assert cli(server, "--against", rendered, "--fail-on", "critical").exit_code == 0
    sarif = json.loads(cli(server, "--against", rendered, "--format", "sarif").stdout)
    (result,) = [entry for entry in sarif["runs"][0]["results"] if entry["ruleId"] == "DRF001"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("backend/networkpolicy.yaml")
    assert location["region"]["startLine"] == 4
    for output_format in FORMATS:
        shown = cli(server, "--against", rendered, "--format", output_format)
        assert shown.exit_code == 1 and "DRF001" in shown.stdout, output_format


def test_manifests_from_stdin_and_several_paths(k8s_server, tmp_path):
    rendered = export_rendered(tmp_path / "rendered", "production")
    server = _server_for(k8s_server, "network-policy-deleted")
    policy = rendered / "backend/networkpolicy.yaml"
    text = policy.read_text()
    policy.unlink()
    result = cli(server, "--against", str(rendered), "--against", "-", "--format", "json", stdin=text)
    assert result.exit_code == 1, result.output
    (finding,) = [f for f in json.loads(result.stdout)["findings"] if f["family"] == "drift"]
    assert finding["location"]["path"] == "<stdin>" and finding["rule_id"] == "DRF001"


def test_bad_manifests_are_input_errors_and_the_rest_is_compared(k8s_server, tmp_path):
    rendered = export_rendered(tmp_path / "rendered", "production")
    (rendered / "broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n")
    server = _server_for(k8s_server, "network-policy-deleted")
    result = cli(server, "--against", str(rendered), "--format", "json")
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)
    assert [error["path"] for error in document["errors"]] == [str(rendered / "broken.yaml")]
    assert {f["rule_id"] for f in document["findings"] if f["family"] == "drift"} == {"DRF001"}


@pytest.mark.parametrize(("paths", "message"), [
    ("empty", "--against: found no Kubernetes objects to compare the namespace with"),
    ("elsewhere", f"--against: none of the 1 rendered objects is in namespace {NS}, which the run read "
                  "(their namespaces: shop)"),
])
def test_nothing_to_compare_is_an_error(k8s_server, tmp_path, paths, message):
    directory = tmp_path / paths
    directory.mkdir()
    if paths == "elsewhere":
        (directory / "app.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n")
    result = cli(k8s_server(cluster().objects), "--against", str(directory), "--format", "json")
    assert result.exit_code == 2, result.output
    assert [error["message"] for error in json.loads(result.stdout)["errors"]] == [message]


def test_a_missing_path_is_an_input_error(k8s_server, tmp_path):
    server = k8s_server(cluster().objects)
    result = cli(server, "--against", str(tmp_path / "nope"), "--format", "json")
    assert result.exit_code == 2
    assert [(error["path"], error["message"]) for error in json.loads(result.stdout)["errors"]] == [
        (None, "--against: found no Kubernetes objects to compare the namespace with"),
        (str(tmp_path / "nope"), "no such file or directory")]


def test_suppressions_and_baselines_work_for_drift(k8s_server, tmp_path):
    server = _server_for(k8s_server, "hand-made-objects")
    rendered = export_rendered(tmp_path / "rendered", "production")
    config = tmp_path / "config.yaml"
    config.write_text("exemptions:\n  - rule: unmanaged-object\n    kind: Deployment\n    name: grafana\n"
                      "    reason: the observability team's Helm release\n")
    document = json.loads(cli(server, "--against", str(rendered), "--config", str(config), "--format", "json").stdout)
    suppressed = {f["resource"]["name"] for f in document["findings"] if f["suppressed"]}
    assert suppressed == {"grafana"}
    baseline = tmp_path / "baseline.json"
    assert cli(server, "--against", str(rendered), "--write-baseline", str(baseline), "--fail-on", "low").exit_code == 1
    assert cli(server, "--against", str(rendered), "--baseline", str(baseline), "--fail-on", "low").exit_code == 0
    assert {entry["rule_id"] for entry in json.loads(baseline.read_text())["entries"]} >= {"DRF004"}


def test_an_ignore_annotation_on_the_manifest_suppresses_its_finding(k8s_server, tmp_path):
    rendered = export_rendered(tmp_path / "rendered", "production", (
        ("backend/networkpolicy.yaml", "  labels:\n",
         "  annotations:\n    tbyte-policy.io/ignore.manifest-object-missing: replaced by the mesh policy (OPS-9)\n"
         "  labels:\n"),))
    result = cli(_server_for(k8s_server, "network-policy-deleted"), "--against", str(rendered), "--format", "json")
    (finding,) = [f for f in json.loads(result.stdout)["findings"] if f["family"] == "drift"]
    assert finding["rule_id"] == "DRF001" and finding["suppressed"]
    assert finding["suppression_reason"] == "replaced by the mesh policy (OPS-9)"


@pytest.mark.parametrize("output_format", sorted(FORMATS))
def test_no_value_typed_into_the_cluster_is_printed(k8s_server, tmp_path, output_format):
    """A password pasted into an env var, a ConfigMap value, a hand-made Secret: drift says they differ or
    exist, never what they hold."""
    report_file = tmp_path / "report.json"
    rendered = str(export_rendered(tmp_path / "rendered", "production"))
    written = ""
    for name in ("backend-edited", "incident-edits", "hand-made-objects"):
        server = _server_for(k8s_server, name)
        result = cli(server, "--against", rendered, "--format", output_format, "--report", f"json={report_file}",
                     "--verbose")
        assert result.exit_code == 1, result.output
        written += result.stdout + result.stderr + report_file.read_text()
    for value in PLANTED:
        assert value not in written
    assert "env[DB_PASSWORD].valueFrom" in written and "data.LOG_LEVEL differs from the manifest" in written


# --- what drift reads ---

def _trimmed(obj: dict) -> dict:
    """``obj`` cut down to the fields drift declares it reads (tbyte_policy.drift.fields_read)."""
    kept: dict = {}

    def copy_into(source, target, parts):
        head, rest = parts[0], parts[1:]
        if head == "*":
            for index, item in enumerate(source if isinstance(source, list) else []):
                while len(target) <= index:
                    target.append({})
                if rest:
                    copy_into(item, target[index], rest)
                else:
                    target[index] = item
            return
        if not isinstance(source, dict) or head not in source:
            return
        if not rest:
            target[head] = source[head]
            return
        child = source[head]
        target.setdefault(head, [] if isinstance(child, list) else {})
        copy_into(child, target[head], rest)

    for pointer in fields_read(obj["kind"]):
        copy_into(obj, kept, split_pointer(pointer))
    return kept


@pytest.mark.parametrize("name", ["backend-edited", "incident-edits", "rollout-stuck", "canary-aborted",
                                  "hand-made-objects", "network-policy-deleted"])
def test_drift_reads_only_the_fields_it_declares(k8s_server, tmp_path, name):
    """A collector that trims live objects to save memory keeps drift's answers by keeping ``fields_read``."""
    scenario = DRIFTED[name]
    live = scenario.live()
    rendered = str(export_rendered(tmp_path / "rendered", scenario.variant, scenario.rendered_edits))
    whole = audit(k8s_server(live.objects), [rendered])
    trimmed = audit(k8s_server([_trimmed(obj) for obj in live.objects]), [rendered])
    assert {(f.rule_id, f.resource.ref, f.location.pointer, f.message) for f in trimmed.findings
            if f.family == "drift"} == {(f.rule_id, f.resource.ref, f.location.pointer, f.message)
                                        for f in whole.findings if f.family == "drift"}
    assert drift(whole) == scenario.expected


def test_the_drift_rules_cover_the_kinds_the_live_audit_reads():
    read = {kind.kind for kind in ALL_KINDS}
    assert DRIFT_RULES["DRF001"].kinds == DRIFT_RULES["DRF002"].kinds == read
    assert DRIFT_RULES["DRF004"].kinds == {kind.kind for kind in KINDS if kind.namespaced}


def test_the_ci_recipe_in_the_readme_runs(k8s_server, tmp_path, monkeypatch):
    """The README's live section: render (here: export the reference), then `live --against`."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    recipe = yaml.safe_load(readme.split("```yaml\n# live-drift\n", 1)[1].split("```", 1)[0])
    steps = recipe["jobs"]["drift"]["steps"]
    command = next(step["run"] for step in steps if step.get("run", "").startswith("tbyte-policy live"))
    assert "--against rendered/" in command
    monkeypatch.chdir(tmp_path)
    export_rendered(tmp_path / "rendered", "production")
    server = k8s_server(cluster().objects)
    arguments = command.replace("tbyte-policy ", "", 1).split()
    result = CliRunner().invoke(app, [*arguments, "--kubeconfig", server.kubeconfig_path])
    assert result.exit_code == 0, result.output
