"""The live audit end to end: reference namespaces served by a real HTTP API double, read by the real
kubernetes client, audited by every rule; and the `tbyte-policy live` command around it."""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tbyte_policy import reference
from tbyte_policy.audit import AuditOptions, scan_paths
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.cli import app
from tbyte_policy.findings import Report
from tbyte_policy.live.command import audit_collection
from tbyte_policy.live.rbac import rbac_manifest, rbac_objects
from tbyte_policy.reporters import FORMATS
from tbyte_policy.sources.cluster import ALL_KINDS, KINDS, collect

from .cluster_fixtures import (
    BROKEN,
    NS,
    PLANTED_CONFIG,
    PLANTED_SECRET,
    PLANTED_USER,
    Cluster,
    broken,
    cluster,
    scaled_namespace,
)
from .k8s_api_server import PARTIAL_ACCEPT, TOKEN, kubeconfig_yaml

REFERENCE_AUDIT = Path(__file__).parents[2] / "reference_manifests" / "audit"
RUNTIME_RULES = {rule.id for rule in load_catalogue() if rule.family == "runtime"}
LIVE_RULES = {rule.id for rule in load_catalogue() if "live" in rule.modes}
PLANTED = [PLANTED_SECRET, PLANTED_USER, PLANTED_CONFIG,
           *(base64.b64encode(value.encode()).decode() for value in (PLANTED_SECRET, PLANTED_USER))]


def audit(server, **options) -> Report:
    collection = collect(NS, kubeconfig=server.kubeconfig_path, context="test", timeout=5, **options)
    return audit_collection(collection, AuditOptions())


def found(report: Report) -> set[tuple[str, str]]:
    return {(f.rule_id, f"{f.resource.kind}/{f.resource.namespace}/{f.resource.name}") for f in report.active_findings}


def runtime(findings: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(rule_id, ref) for rule_id, ref in findings if rule_id in RUNTIME_RULES}


def describe(report: Report) -> str:
    return "\n".join(f"{f.rule_id} {f.resource.kind}/{f.resource.name} {f.location.pointer}: {f.message}"
                     for f in report.active_findings)


def cli(server, *args: str, timeout: str = "5"):
    namespace = [] if {"--namespace", "--all-namespaces"} & set(args) else ["--namespace", NS]
    result = CliRunner().invoke(app, ["live", "--kubeconfig", server.kubeconfig_path, "--context", "test",
                                      "--timeout", timeout, *namespace, *args])
    assert "Traceback" not in result.output
    return result


# --- what the audit finds ---

def scanned(variant: str) -> set[tuple[str, str]]:
    """What `scan` finds in the variant's manifests with the rules that also run live, on the kinds the live
    mode reads."""
    read = {kind.kind for kind in ALL_KINDS}
    report = scan_paths([str(path) for path in reference.variant_files(variant)], AuditOptions(namespace=NS))
    return {(rule_id, ref) for rule_id, ref in found(report) if ref.split("/")[0] in read and rule_id in LIVE_RULES}


def test_healthy_reference_namespace_yields_no_findings(k8s_server):
    live = cluster("production")
    report = audit(k8s_server(live.objects))
    assert report.active_findings == [], describe(report)
    assert report.errors == [] and report.internal_errors == [] and report.unreadable_kinds == {}
    assert report.exit_code("info") == 0
    # the namespace was read whole: every object the controllers made is in the run
    assert report.resources == len(live.objects)


@pytest.mark.parametrize("variant", ["production", "canary", "in-cluster-db"])
def test_running_namespace_is_judged_like_its_manifests(k8s_server, variant):
    """Server-defaulted fields, controller-made objects and autoscaler-managed replicas add nothing:
    a healthy running variant has exactly the findings `scan` has on its manifests."""
    report = audit(k8s_server(cluster(variant).objects))
    assert found(report) == scanned(variant), describe(report)
    assert report.errors == [] and report.internal_errors == []


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_variant_yields_exactly_its_findings(k8s_server, name):
    report = audit(k8s_server(broken(name).objects))
    assert found(report) == scanned(BROKEN[name].variant) | BROKEN[name].expected, describe(report)
    assert report.errors == [] and report.internal_errors == []


def test_every_runtime_rule_has_a_broken_variant():
    exercised = {rule_id for variant in BROKEN.values() for rule_id, _ in variant.expected}
    assert {rule_id for rule_id in exercised if rule_id.startswith("RUN")} == RUNTIME_RULES


def test_pod_findings_name_the_pods_and_point_at_the_container(k8s_server):
    report = audit(k8s_server(broken("crash-loop").objects))
    (crash,) = [f for f in report.findings if f.rule_id == "RUN002"]
    pod = next(ref for ref in crash.related if ref.kind == "Pod")
    assert pod.name.startswith("backend-") and pod.name in crash.message
    assert crash.container == "backend" and crash.location.pointer == "/spec/template/spec/containers/0"
    assert "CrashLoopBackOff" in crash.message and "restarted 4 times" in crash.message
    assert crash.location.path is None and crash.location.line is None


def test_controller_owned_objects_are_judged_through_their_controller(k8s_server):
    """A manifest rule on a live Deployment fires once, on the Deployment: not again on its ReplicaSet and
    each of its pods, which carry the same pod spec."""
    live = cluster("production")
    deployment = live.get("Deployment", "frontend")
    for holder in [deployment, *live.owned("ReplicaSet", deployment)]:
        del holder["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    for pod in live.pods_of(deployment):
        del pod["spec"]["containers"][0]["readinessProbe"]
    report = audit(k8s_server(live.objects))
    assert found(report) == {("PRB001", f"Deployment/{NS}/frontend")}, describe(report)


# --- failures: a clear message and exit code 2, never a traceback ---

def test_forbidden_kind_reports_the_rest(k8s_server):
    server = k8s_server(broken("crash-loop").objects, errors={"secrets": 403})
    result = cli(server, "--format", "json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert list(document["unreadable_kinds"]) == ["Secret"]
    assert 'cannot list resource "secrets"' in document["unreadable_kinds"]["Secret"]
    assert {(f["rule_id"], "/".join(f["resource"][key] for key in ("kind", "namespace", "name")))
            for f in document["findings"] if f["family"] == "runtime"} == BROKEN["crash-loop"].expected
    table = cli(server)
    assert table.exit_code == 2 and "could not read Secret: forbidden" in table.stdout


# Rules that still take an unreadable kind for an absent one (their families should consult
# `inventory.unreadable_kinds`): plural -> the false findings.
@pytest.mark.parametrize("kind", sorted(KINDS, key=lambda kind: kind.plural), ids=lambda kind: kind.plural)
def test_a_forbidden_kind_is_reported_not_taken_for_absent(k8s_server, kind):
    report = audit(k8s_server(cluster().objects, errors={kind.plural: 403}))
    assert set(report.unreadable_kinds) == {kind.kind}
    assert report.exit_code("critical") == 2
    assert report.active_findings == [], describe(report)


def test_unreadable_endpointslices_are_not_taken_for_missing_endpoints(k8s_server):
    report = audit(k8s_server(broken("no-ready-endpoints").objects, errors={"endpointslices": 403}))
    assert set(report.unreadable_kinds) == {"EndpointSlice"}
    assert runtime(found(report)) == BROKEN["no-ready-endpoints"].expected - {("RUN015", f"Service/{NS}/backend")}
    assert report.exit_code("critical") == 2


def test_server_that_never_answers_returns_within_the_timeout(k8s_server):
    server = k8s_server(cluster().objects, hang={"*"})
    started = time.monotonic()
    result = cli(server, timeout="1")
    assert time.monotonic() - started < 4
    assert result.exit_code == 2
    assert "did not answer within 1 s" in result.stderr


def test_unreachable_server(k8s_server):
    server = k8s_server()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = Path(server.kubeconfig_path)
    path.write_text(path.read_text().replace(server.url, f"http://127.0.0.1:{port}"))
    result = cli(server)
    assert result.exit_code == 2 and "cannot reach the API server" in result.stderr


@pytest.mark.parametrize(("knobs", "message"), [
    ({"token": "revoked"}, "unauthorized (401)"),
    ({"errors": {"*": 500}}, "the API server failed (500 InternalError)"),
    ({"errors": {"deployments": 503}}, "the API server failed (503 ServiceUnavailable) listing Deployment"),
])
def test_fatal_answers(k8s_server, knobs, message):
    result = cli(k8s_server(cluster().objects, **knobs))
    assert result.exit_code == 2 and message in result.stderr and result.stdout == ""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (its own CA)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_is_verified_by_default(k8s_server, certificate):
    untrusted = cli(k8s_server(cluster().objects, tls=certificate))
    assert untrusted.exit_code == 2, untrusted.output
    assert "TLS error talking to the API server" in untrusted.stderr and "certificate verify failed" in untrusted.stderr
    trusted = cli(k8s_server(cluster().objects, tls=certificate, certificate_authority=certificate[0]))
    assert trusted.exit_code == 0, trusted.output


def test_in_cluster_service_account(k8s_server, certificate, tmp_path, monkeypatch):
    """As the reference audit CronJob runs: no kubeconfig, the pod's token, CA bundle and namespace."""
    server = k8s_server(cluster().objects, tls=certificate, token="in-cluster-token")
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("in-cluster-token\n")
    (account / "ca.crt").write_text(Path(certificate[0]).read_text())
    (account / "namespace").write_text(NS)
    monkeypatch.setattr(sys.modules["tbyte_policy.sources.cluster"], "SERVICE_ACCOUNT_DIR", str(account))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", server.url.rsplit(":", 1)[1])
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "no-home"))
    result = CliRunner().invoke(app, ["live", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["findings"] == 0
    assert server.requests[0].path == f"/api/v1/namespaces/{NS}"  # the pod's namespace
    assert {request.authorization for request in server.requests} == {"bearer in-cluster-token"}
    (account / "ca.crt").write_text("")  # an empty CA bundle: a one-line error, exit 2
    broken = CliRunner().invoke(app, ["live", "--format", "json"])
    assert broken.exit_code == 2 and "in-cluster configuration failed" in broken.stderr, broken.output


@pytest.mark.parametrize("user", ["token", "tokenFile"])
def test_a_token_with_a_trailing_newline_still_authenticates(k8s_server, tmp_path, user):
    server = k8s_server(cluster().objects)
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    written = f'token: "{TOKEN}\\n"' if user == "token" else f"tokenFile: {token_file}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(kubeconfig_yaml(server.url).replace(f"token: {TOKEN}", written))
    result = CliRunner().invoke(app, ["live", "--kubeconfig", str(kubeconfig), "--namespace", NS, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert {request.authorization for request in server.requests} == {f"Bearer {TOKEN}"}


def test_missing_kubernetes_client_says_how_to_install_it(k8s_server, monkeypatch):
    server = k8s_server(cluster().objects)
    for module in [name for name in sys.modules if name == "kubernetes" or name.startswith("kubernetes.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    result = cli(server)
    assert result.exit_code == 2 and "pip install 'tbyte-policy[live]'" in result.stderr
    assert server.requests == []


def test_missing_namespace_is_a_404(k8s_server):
    result = cli(k8s_server(cluster().objects), "--namespace", "nope")
    assert result.exit_code == 2 and "namespace nope not found" in result.stderr


def test_usage_errors(k8s_server):
    server = k8s_server(cluster().objects)
    assert cli(server, "--format", "yaml").exit_code == 2
    assert cli(server, "--fail-on", "severe").exit_code == 2
    assert cli(server, "--chunk-size", "-1").exit_code == 2
    assert server.requests == []  # refused before any request


# --- what it asks of the API server, and what it never keeps ---

def test_requests_are_read_only_and_one_list_per_kind(k8s_server):
    server = k8s_server(cluster().objects)
    result = cli(server, "--namespace", NS, "--format", "json")
    assert result.exit_code == 0, result.output
    counts = server.count_by_resource()
    assert counts == {"namespaces": 1, "discovery": 3, **{kind.plural: 1 for kind in KINDS}}
    assert server.methods == {"GET"}
    (secrets,) = server.requests_for("secrets")
    assert secrets.accept.startswith(PARTIAL_ACCEPT) and secrets.partial and server.full_secret_reads == []
    assert all(request.authorization == "Bearer test-token" for request in server.requests)


def test_chunk_size_reads_lists_in_chunks_with_the_same_report(k8s_server):
    live = scaled_namespace(4, pods_per_deployment=3)
    whole_server, chunked_server = k8s_server(live.objects), k8s_server(live.objects)
    whole = cli(whole_server, "--format", "json")
    chunked = cli(chunked_server, "--format", "json", "--chunk-size", "5")
    assert whole.exit_code == chunked.exit_code, chunked.output
    assert json.loads(whole.stdout)["summary"]["resources"] == len(live.objects)
    assert json.loads(whole.stdout)["findings"] == json.loads(chunked.stdout)["findings"]
    pods = [request for request in chunked_server.requests if request.path.endswith("/pods")]
    pod_count = sum(item["kind"] == "Pod" for item in live.objects)
    assert pod_count > 10 and [request.query.get("limit") for request in pods] == ["5"] * -(-pod_count // 5)
    assert all("limit" not in request.query for request in whole_server.requests)


@pytest.mark.parametrize("output_format", sorted(FORMATS))
@pytest.mark.parametrize("name", ["healthy", "container-config-error"])
def test_no_secret_value_is_printed(k8s_server, tmp_path, output_format, name):
    live = cluster() if name == "healthy" else broken(name)
    server = k8s_server(live.objects, leaky_metadata=True)  # even a server that answers with the data
    report_file = tmp_path / "report"
    result = cli(server, "--format", output_format, "--report", f"json={report_file}", "--verbose")
    assert result.exit_code == (0 if name == "healthy" else 1), result.output
    written = result.stdout + result.stderr + report_file.read_text()
    for value in PLANTED:
        assert value not in written


def test_findings_locate_objects_as_kind_namespace_name(k8s_server):
    server = k8s_server(broken("crash-loop").objects)
    table = cli(server)
    assert table.exit_code == 1
    assert f"Deployment/{NS}/backend" in table.stdout and f"PodDisruptionBudget/{NS}/backend" in table.stdout
    assert "resources read from the cluster" in table.stdout
    document = json.loads(cli(server, "--format", "json").stdout)
    assert document["mode"] == "live"
    crash = next(f for f in document["findings"] if f["rule_id"] == "RUN002")
    assert crash["resource"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend", "namespace": NS}
    assert crash["location"]["path"] is None and crash["location"]["pointer"] == "/spec/template/spec/containers/0"


def test_all_namespaces(k8s_server):
    live = broken("crash-loop")
    debug = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug", "namespace": "sandbox"},
             "spec": {"containers": [{"name": "sh", "image": "busybox:1.36"}]}}
    Cluster.running(debug)
    server = k8s_server([*live.objects, debug])
    result = cli(server, "--all-namespaces", "--format", "json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    runtime_findings = {(f["rule_id"], "/".join(f["resource"][key] for key in ("kind", "namespace", "name")))
                        for f in document["findings"] if f["family"] == "runtime"}
    assert runtime_findings == BROKEN["crash-loop"].expected | {("RUN016", "Pod/sandbox/debug")}
    assert "/api/v1/pods" in {request.path for request in server.requests}


def test_kubeconfig_from_the_environment_and_the_cronjob_arguments(k8s_server, monkeypatch):
    """The reference CronJob runs `tbyte-policy live --namespace tbyte --publish --deadline 540 --format json`."""
    server = k8s_server(cluster().objects)
    monkeypatch.setenv("KUBECONFIG", server.kubeconfig_path)
    cronjob = yaml.safe_load((REFERENCE_AUDIT / "cronjob.yaml").read_text())
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["tbyte-policy"]
    # the kubelet expands $(VAR) in args from the container's env (here the pod's namespace)
    env = {entry["name"]: entry.get("value") or {"metadata.namespace": NS}[entry["valueFrom"]["fieldRef"]["fieldPath"]]
           for entry in container["env"]}
    args = [re.sub(r"\$\((\w+)\)", lambda match: env[match.group(1)], arg) for arg in container["args"]]
    assert args == ["live", "--namespace", NS, "--publish", "--deadline", "540", "--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mode"] == "live"
    assert server.requests_for("namespaces")[0].path == f"/api/v1/namespaces/{NS}"
    assert [(request.method, request.path) for request in server.requests if request.method != "GET"] == \
           [("PATCH", f"/apis/wgpolicyk8s.io/v1alpha2/namespaces/{NS}/policyreports/tbyte-policy")]
    assert result.stderr == f"tbyte-policy: PolicyReport {NS}/tbyte-policy created: 0 results (none)\n"
    # the deadline ends the run before the Job's activeDeadlineSeconds kills it
    assert int(args[args.index("--deadline") + 1]) < cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]


# --- RBAC ---

def _grants(documents: list[dict]) -> set[tuple]:
    return {(doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace"), group, resource, verb,
             tuple(rule.get("resourceNames", ())))
            for doc in documents if doc["kind"] in ("Role", "ClusterRole")
            for rule in doc["rules"] for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}


def _bindings(documents: list[dict]) -> set[tuple]:
    return {(doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace"), doc["roleRef"]["kind"],
             doc["roleRef"]["name"], *((s["kind"], s["name"], s["namespace"]) for s in doc["subjects"]))
            for doc in documents if doc["kind"].endswith("Binding")}


def test_reference_audit_rbac_is_what_live_rbac_prints():
    """The CronJob publishes: its RBAC is `live rbac --namespace tbyte --publish`."""
    bundled = [doc for doc in yaml.safe_load_all((REFERENCE_AUDIT / "rbac.yaml").read_text()) if doc]
    printed = list(yaml.safe_load_all(rbac_manifest(namespace=NS, publish=True)))
    assert _grants(bundled) == _grants(printed)
    assert _bindings(bundled) == _bindings(printed)
    read_only = list(yaml.safe_load_all(rbac_manifest(namespace=NS)))
    assert {verb for *_, verb, _ in _grants(read_only)} == {"get", "list"}
    assert {(resource, verb) for _, _, _, _, resource, verb, _ in _grants(printed) - _grants(read_only)} == \
           {("policyreports", "get"), ("policyreports", "create"), ("policyreports", "patch")}


def test_rbac_grants_exactly_the_requests_an_audit_makes(k8s_server):
    server = k8s_server(cluster().objects)
    audit(server)
    grants = {(group, resource, verb, names) for _, _, _, group, resource, verb, names in
              _grants(rbac_objects(namespace=NS))}
    needed = set()
    for request in server.requests:
        if request.resource == "discovery":
            continue  # granted to every authenticated user by system:discovery
        parts = request.path.strip("/").split("/")
        group = "" if parts[0] == "api" else parts[1]
        if request.resource == "namespaces":
            needed.add((group, "namespaces", "get", ()))  # bound in the namespace: that one object only
        else:
            needed.add((group, request.resource, "list", ()))
    assert needed == {grant for grant in grants if grant[2] == "list" or grant[1] == "namespaces"}


def test_live_rbac_command():
    result = CliRunner().invoke(app, ["live", "rbac", "--namespace", NS])
    assert result.exit_code == 0 and result.stdout == rbac_manifest(namespace=NS)
    cluster_wide = list(yaml.safe_load_all(CliRunner().invoke(app, ["live", "rbac"]).stdout))
    assert [doc["kind"] for doc in cluster_wide] == ["ClusterRole", "ClusterRoleBinding"]


# --- scale ---

def test_request_count_does_not_depend_on_the_object_count(k8s_server):
    counts = []
    for deployments in (2, 12):
        live = scaled_namespace(deployments, pods_per_deployment=3)
        server = k8s_server(live.objects)
        report = audit(server)
        assert runtime(found(report)) == set(), describe(report)
        assert report.resources == len(live.objects)
        counts.append(len(server.requests))
    assert counts[0] == counts[1] == 1 + 3 + len(KINDS)
