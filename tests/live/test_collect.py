"""The live collector, driven by the real kubernetes client against a real HTTP server."""

from __future__ import annotations

import base64
import socket
import sys
import time
from pathlib import Path

import pytest
import yaml

from tbyte_policy.live.rbac import rbac_manifest
from tbyte_policy.sources.cluster import ALL_KINDS, KINDS, Collection, LiveError, collect

from .k8s_api_server import PARTIAL_ACCEPT, parse_label_selector

NS = "shop"
PLANTED = "S3cr3t-Planted-Value"
PLANTED_B64 = base64.b64encode(PLANTED.encode()).decode()


def obj(api_version, kind, name, namespace=NS, **rest):
    meta = {"name": name, "labels": {"app": name}}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **rest}


def shop_objects():
    return [
        obj("v1", "Pod", "web-1", spec={"containers": [{"name": "web", "image": "web:1.2.3"}]}),
        obj("apps/v1", "Deployment", "web", spec={"replicas": 2}),
        obj("v1", "Service", "web", spec={"selector": {"app": "web"}}),
        obj("v1", "ConfigMap", "settings", data={"LOG_LEVEL": "info"}),
        obj("policy/v1", "PodDisruptionBudget", "web", spec={"minAvailable": 1}),
        obj("autoscaling/v2", "HorizontalPodAutoscaler", "web", spec={"maxReplicas": 4}),
        obj("networking.k8s.io/v1", "NetworkPolicy", "default-deny", spec={"podSelector": {}}),
        obj("argoproj.io/v1alpha1", "Rollout", "api", spec={"replicas": 3}),
        obj("external-secrets.io/v1", "ClusterSecretStore", "vault", namespace=None, spec={}),
        obj("keda.sh/v1alpha1", "ScaledObject", "worker", spec={"maxReplicaCount": 5}),
        obj("v1", "Pod", "elsewhere", namespace="other", spec={}),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": "db",
                "namespace": NS,
                "labels": {"app": "db"},
                "annotations": {
                    "team": "payments",
                    "kubectl.kubernetes.io/last-applied-configuration":
                        f'{{"stringData":{{"password":"{PLANTED}"}}}}',
                },
            },
            "data": {"password": PLANTED_B64},
            "stringData": {"password": PLANTED},
        },
    ]


def run(server, namespace=NS, **kw):
    kw.setdefault("timeout", 5.0)
    return collect(namespace, kubeconfig=server.kubeconfig_path, context="test", **kw)


def names(collection: Collection, kind: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in collection.objects if o["kind"] == kind)


def test_healthy_listing(k8s_server):
    server = k8s_server(shop_objects())
    c = run(server)
    assert c.unreadable == {} and c.skipped_crds == [] and c.namespace == NS
    assert names(c, "Namespace") == [NS]
    assert names(c, "Pod") == ["web-1"]  # namespaced: "other" is not listed
    for kind in ("Deployment", "Service", "ConfigMap", "PodDisruptionBudget",
                 "HorizontalPodAutoscaler", "NetworkPolicy", "Rollout", "ScaledObject",
                 "ClusterSecretStore", "Secret"):
        assert len(names(c, kind)) == 1, kind
    api_versions = {o["kind"]: o["apiVersion"] for o in c.objects}
    assert api_versions["Deployment"] == "apps/v1"
    assert api_versions["HorizontalPodAutoscaler"] == "autoscaling/v2"
    assert api_versions["Rollout"] == "argoproj.io/v1alpha1"
    assert all("managedFields" not in o["metadata"] for o in c.objects)
    assert all(o["metadata"].get("resourceVersion") for o in c.objects)
    pod = next(o for o in c.objects if o["kind"] == "Pod")
    assert pod["spec"]["containers"][0]["image"] == "web:1.2.3"
    # one request per kind (+ namespace GET + one discovery GET per CRD group-version)
    assert c.requests == len(server.requests)
    counts = server.count_by_resource()
    assert all(counts[k.plural] == 1 for k in KINDS)
    assert counts["namespaces"] == 1 and counts["discovery"] == 3
    assert server.methods == {"GET"}
    assert {r.authorization for r in server.requests} == {"Bearer test-token"}
    assert all("limit" not in r.query and "continue" not in r.query for r in server.requests)


def test_context_namespace_used_when_none_given(k8s_server):
    server = k8s_server(shop_objects(), context_namespace=NS)
    c = run(server, namespace=None)
    assert c.namespace == NS and names(c, "Pod") == ["web-1"]


def test_all_namespaces_uses_cluster_wide_paths(k8s_server):
    server = k8s_server(shop_objects())
    c = run(server, namespace=None, all_namespaces=True)
    assert c.namespace is None
    assert names(c, "Pod") == ["elsewhere", "web-1"]
    assert names(c, "Namespace") == ["other", NS]
    paths = {r.path for r in server.requests}
    assert "/api/v1/pods" in paths and "/apis/apps/v1/deployments" in paths
    assert "/api/v1/namespaces" in paths
    assert not any("/namespaces/" in p for p in paths)


@pytest.mark.parametrize("count", [3, 40])
def test_request_count_per_kind_is_independent_of_object_count(k8s_server, count):
    objects = [obj("v1", "ConfigMap", f"cm-{i:03}") for i in range(count)]
    server = k8s_server(objects)
    c = run(server)
    assert names(c, "ConfigMap") == [f"cm-{i:03}" for i in range(count)]
    assert len(server.requests_for("configmaps")) == 1
    assert c.requests == 1 + 3 + len(KINDS)  # namespace GET + 3 CRD discoveries + one list per kind


def test_chunked_lists(k8s_server):
    objects = [obj("v1", "ConfigMap", f"cm-{i:02}") for i in range(10)]
    server = k8s_server(objects)
    c = run(server, chunk_size=3)
    assert names(c, "ConfigMap") == [f"cm-{i:02}" for i in range(10)]
    reqs = server.requests_for("configmaps")
    assert len(reqs) == 4  # ceil(10 / 3) chunks
    assert all(r.query["limit"] == "3" for r in reqs)
    assert "continue" not in reqs[0].query and all("continue" in r.query for r in reqs[1:])
    assert len(server.requests_for("pods")) == 1  # empty kinds: one chunk


def test_expired_continue_token_restarts_the_list_once(k8s_server):
    objects = [obj("v1", "ConfigMap", f"cm-{i:02}") for i in range(5)]
    server = k8s_server(objects, expire_continue={"configmaps": 1})
    c = run(server, chunk_size=2)
    assert names(c, "ConfigMap") == [f"cm-{i:02}" for i in range(5)]  # no duplicates
    reqs = server.requests_for("configmaps")
    # chunk 1, 410 on chunk 2, then a fresh list of 3 chunks
    assert len(reqs) == 5
    assert "continue" not in reqs[2].query
    assert "ConfigMap" not in c.unreadable


def test_list_that_keeps_expiring_is_unreadable(k8s_server):
    objects = [obj("v1", "ConfigMap", f"cm-{i:02}") for i in range(5)]
    server = k8s_server(objects, expire_continue={"configmaps": 99})
    c = run(server, chunk_size=2)
    assert "410" in c.unreadable["ConfigMap"]
    assert names(c, "ConfigMap") == [] and names(c, "Pod") == []  # pods: none, but read
    assert len(server.requests_for("configmaps")) == 4


def test_forbidden_kind_is_recorded_and_the_rest_is_read(k8s_server):
    server = k8s_server(shop_objects(), errors={"secrets": 403})
    c = run(server)
    assert set(c.unreadable) == {"Secret"}
    assert c.unreadable["Secret"].startswith("forbidden: ")
    assert 'cannot list resource "secrets"' in c.unreadable["Secret"]
    assert names(c, "Secret") == [] and names(c, "Pod") == ["web-1"]


def test_everything_forbidden_raises(k8s_server):
    server = k8s_server(shop_objects(), errors={"*": 403})
    with pytest.raises(LiveError, match="could not read any resource kind"):
        run(server)


def test_unauthorized(k8s_server):
    server = k8s_server(shop_objects(), token="another-token")
    with pytest.raises(LiveError, match="unauthorized"):
        run(server)


def test_unreachable_server_fails_fast(k8s_server):
    server = k8s_server()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed right after: nobody listens there
    path = Path(server.kubeconfig_path)
    path.write_text(path.read_text().replace(server.url, f"http://127.0.0.1:{port}"))
    started = time.monotonic()
    with pytest.raises(LiveError, match=r"cannot reach the API server .*connection refused"):
        run(server, timeout=5)
    assert time.monotonic() - started < 2


def test_hanging_server_times_out(k8s_server):
    server = k8s_server(shop_objects(), hang={"*"})
    started = time.monotonic()
    with pytest.raises(LiveError, match=r"did not answer within 1 s"):
        run(server, timeout=1)
    assert time.monotonic() - started < 3


def test_hanging_kind_times_out(k8s_server):
    server = k8s_server(shop_objects(), hang={"deployments"})
    started = time.monotonic()
    with pytest.raises(LiveError, match=r"did not answer within 0.5 s"):
        run(server, timeout=0.5)
    assert time.monotonic() - started < 3


def test_missing_namespace(k8s_server):
    server = k8s_server(shop_objects())
    with pytest.raises(LiveError, match=r"^namespace nope not found$"):
        run(server, namespace="nope")
    assert len(server.requests) == 1


@pytest.mark.parametrize("code", [500, 503])
def test_server_errors(k8s_server, code):
    server = k8s_server(shop_objects(), errors={"*": code})
    with pytest.raises(LiveError, match=f"API server failed \\({code}"):
        run(server)


def test_server_error_on_one_kind_is_fatal(k8s_server):
    server = k8s_server(shop_objects(), errors={"jobs": 500})
    with pytest.raises(LiveError, match=r"failed \(500 InternalError\) listing Job"):
        run(server)


def test_crd_groups_not_installed_are_skipped(k8s_server):
    objects = [o for o in shop_objects() if "." not in o["apiVersion"].split("/")[0]]
    server = k8s_server(objects, installed_crds=["keda.sh"])
    c = run(server)
    crd_kinds = [k.kind for k in KINDS if k.crd]
    assert sorted(c.skipped_crds) == sorted(k for k in crd_kinds if k != "ScaledObject")
    assert c.unreadable == {}
    assert not server.requests_for("rollouts")
    assert not any("argoproj" in r.path and r.resource != "discovery" for r in server.requests)


@pytest.mark.parametrize("leaky", [False, True])
def test_secrets_are_read_as_metadata_only_and_values_never_kept(k8s_server, leaky):
    server = k8s_server(shop_objects(), leaky_metadata=leaky)
    c = run(server, verbose=True)
    secret_reqs = server.requests_for("secrets")
    assert len(secret_reqs) == 1
    assert secret_reqs[0].accept.startswith(PARTIAL_ACCEPT)
    assert secret_reqs[0].partial and server.full_secret_reads == []
    assert server.methods == {"GET"}
    (secret,) = [o for o in c.objects if o["kind"] == "Secret"]
    assert secret["apiVersion"] == "v1"
    assert set(secret) <= {"apiVersion", "kind", "metadata", "type", "immutable"}
    assert secret["metadata"]["name"] == "db" and secret["metadata"]["labels"] == {"app": "db"}
    assert secret["metadata"]["annotations"] == {"team": "payments"}
    if leaky:
        assert secret["type"] == "Opaque"
    for needle in (PLANTED, PLANTED_B64):
        assert needle not in repr(c)


def test_secret_values_never_reach_verbose_output(k8s_server, capsys):
    server = k8s_server(shop_objects(), leaky_metadata=True)
    run(server, verbose=True)
    out = capsys.readouterr()
    assert "[live]" in out.err
    assert PLANTED not in out.err + out.out and PLANTED_B64 not in out.err + out.out


def test_kubernetes_is_not_imported_at_module_import():
    import subprocess

    code = "import sys, tbyte_policy.sources.cluster, tbyte_policy.live.rbac; print('kubernetes' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_kubernetes_client_gives_install_hint(monkeypatch, tmp_path):
    for mod in [m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    with pytest.raises(LiveError, match=r"pip install 'tbyte-policy\[live\]'"):
        collect(NS, kubeconfig=str(tmp_path / "none"), context=None, timeout=1)


def test_missing_kubeconfig(tmp_path):
    with pytest.raises(LiveError, match=r"kubeconfig .* not found"):
        collect(NS, kubeconfig=str(tmp_path / "nope"), context=None, timeout=1)


def test_kubeconfig_from_env_read_at_call_time(k8s_server, monkeypatch):
    server = k8s_server(shop_objects())
    monkeypatch.setenv("KUBECONFIG", server.kubeconfig_path)
    c = collect(NS, kubeconfig=None, context=None, timeout=5)
    assert names(c, "Pod") == ["web-1"]


def test_unknown_context(k8s_server):
    server = k8s_server()
    with pytest.raises(LiveError, match="cannot use kubeconfig"):
        collect(NS, kubeconfig=server.kubeconfig_path, context="nope", timeout=1)


# ------------------------------------------------------------- the server itself


def test_server_answers_writes_with_405_and_records_them(k8s_server):
    import urllib.request

    server = k8s_server()
    req = urllib.request.Request(f"{server.url}/api/v1/namespaces/x/pods", method="POST", data=b"{}",
                                 headers={"Authorization": "Bearer test-token"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 405
    body = yaml.safe_load(err.value.read())
    assert body["kind"] == "Status" and body["reason"] == "MethodNotAllowed"
    assert server.methods == {"POST"}


def test_server_label_selectors():
    labels = {"app": "web", "tier": "front"}
    assert parse_label_selector("app=web,tier==front")(labels)
    assert parse_label_selector("app in (web, api),tier notin (back)")(labels)
    assert parse_label_selector("app,!missing")(labels)
    assert not parse_label_selector("app!=web")(labels)
    assert not parse_label_selector("tier notin (front)")(labels)
    assert not parse_label_selector("!app")(labels)


def test_server_label_selector_via_http(k8s_server):
    import json
    import urllib.request

    server = k8s_server([obj("v1", "Pod", "a"), obj("v1", "Pod", "b")])
    req = urllib.request.Request(f"{server.url}/api/v1/namespaces/{NS}/pods?labelSelector=app%20in%20(b)",
                                 headers={"Authorization": "Bearer test-token"})
    body = json.load(urllib.request.urlopen(req, timeout=5))
    assert body["kind"] == "PodList" and [i["metadata"]["name"] for i in body["items"]] == ["b"]
    assert "kind" not in body["items"][0] and body["metadata"]["resourceVersion"]


def test_rbac_manifest_is_read_only_and_covers_every_kind():
    docs = list(yaml.safe_load_all(rbac_manifest()))
    roles = [d for d in docs if d["kind"] == "ClusterRole"]
    verbs = {v for r in roles for rule in r["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "list"}
    granted = {(g, res) for r in roles for rule in r["rules"] for g in rule["apiGroups"] for res in rule["resources"]}
    assert granted == {(k.group, k.plural) for k in ALL_KINDS}
    ns_docs = list(yaml.safe_load_all(rbac_manifest(namespace=NS)))
    assert any(d["kind"] == "RoleBinding" and d["metadata"]["namespace"] == NS for d in ns_docs)
