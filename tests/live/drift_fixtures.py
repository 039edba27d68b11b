"""Namespaces that drifted from their manifests, for `live --against`: each :class:`Drifted` names the reference
variant, how the rendered manifests were edited (a new release) and what happened in the cluster, and the exact
drift findings it must produce, as (rule id, ``Kind/namespace/name``, JSON pointer).

The rendered side is what ``tbyte-policy reference export`` writes, edited as text the way a release edits its
manifests; the live side is :func:`cluster_fixtures.cluster` of the variant (defaults, controllers and all),
changed the way people and controllers change a namespace.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tbyte_policy import reference
from tbyte_policy.sources.files import load_paths

from .cluster_fixtures import (
    NS,
    PLANTED_SECRET,
    SERVED,
    STARTED,
    Cluster,
    _suffix,
    _uid,
    bare_pod,
    cluster,
    deployment_stuck,
    rollout_aborted,
)

# A value typed into a live object by hand (an env value, a ConfigMap entry): never printed.
PLANTED_LIVE_VALUE = "Pl4nted-Live-Only-Value-39ab"
NEW_BACKEND, NEW_FRONTEND = "ghcr.io/tbyte/backend:1.5.0", "ghcr.io/tbyte/frontend:1.5.0"
_CONTAINER = "/spec/template/spec/containers/0"


def export_rendered(directory: Path, variant: str, edits: tuple[tuple[str, str, str], ...] = ()) -> Path:
    """The variant's manifests as `reference export` writes them, with ``edits`` (file, old text, new text)."""
    reference.export(directory, variant, None, force=False)
    for name, old, new in edits:
        path = directory / name
        text = path.read_text()
        assert old in text, (name, old)
        path.write_text(text.replace(old, new))
    return directory


def applied(directory: Path) -> list[dict]:
    """The objects of rendered files that the API double serves, as a client would send them."""
    loaded = load_paths([str(directory)])
    assert not loaded.errors, loaded.errors
    return [json.loads(json.dumps(document.body)) for document in loaded.documents
            if (document.body["apiVersion"], document.body["kind"]) in SERVED]


def roll_out(live: Cluster, kind: str, name: str, change: Callable[[dict], None]) -> dict:
    """``kubectl edit``/``set`` of a workload's pod template, rolled out completely: a new ReplicaSet runs every
    replica, the old one is scaled to zero and its pods are gone."""
    workload = live.get(kind, name)
    change(workload["spec"]["template"])
    workload["metadata"]["generation"] += 1
    revision = str(int(workload["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) + 1)
    workload["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = revision
    for old in live.owned("ReplicaSet", workload):
        old["spec"]["replicas"] = 0
        for pod in live.owned("Pod", old):
            live.remove(pod)
    rs = live.replica_set(workload, workload["spec"]["template"], workload["spec"]["replicas"], int(revision))
    for index in range(workload["spec"]["replicas"]):
        live.pod(rs, rs["spec"]["template"], f"{rs['metadata']['name']}-{_suffix(rs['metadata']['name'], str(index))}",
                 index)
    return workload


def _container(template: dict) -> dict:
    return template["spec"]["containers"][0]


# --- what happened in the cluster ---

def network_policy_deleted(live: Cluster) -> None:
    """`kubectl delete networkpolicy backend` during an incident."""
    live.remove(live.get("NetworkPolicy", "backend"))


def backend_edited(live: Cluster) -> None:
    """`kubectl edit deployment backend` during an incident, rolled out: a hotfix image, more memory, the
    database password pasted in instead of read from its Secret, debug logging, a slower readiness probe, a
    writable root filesystem, and a version label to match."""
    def change(template: dict) -> None:
        template["metadata"]["labels"]["app.kubernetes.io/version"] = "1.4.3-hotfix"
        container = _container(template)
        container["image"] = "ghcr.io/tbyte/backend:1.4.3-hotfix"
        container["resources"]["limits"]["memory"] = "1Gi"
        password = next(entry for entry in container["env"] if entry["name"] == "DB_PASSWORD")
        del password["valueFrom"]
        password["value"] = PLANTED_LIVE_VALUE
        container["env"].append({"name": "LOG_LEVEL", "value": "debug"})
        container["readinessProbe"]["periodSeconds"] = 30
        container["securityContext"]["readOnlyRootFilesystem"] = False

    roll_out(live, "Deployment", "backend", change)


def controllers_at_work(live: Cluster) -> None:
    """What controllers and routine operations change, none of it drift: the HPA scaled the frontend to 5,
    `kubectl rollout restart` stamped its template, someone annotated a Service."""
    frontend = live.get("Deployment", "frontend")
    frontend["spec"]["replicas"] = 5
    roll_out(live, "Deployment", "frontend", lambda template: template["metadata"].setdefault("annotations", {})
             .update({"kubectl.kubernetes.io/restartedAt": "2024-05-01T11:00:00Z"}))
    live.get("Service", "frontend")["metadata"]["annotations"]["oncall.example.com/team"] = "web"


def incident_edits(live: Cluster) -> None:
    """Hand edits of the backend's surroundings: a config value, the port the NetworkPolicy admits, a PDB
    that blocks drains, a raised autoscaler ceiling, a relabelled Service."""
    live.get("ConfigMap", "backend-config")["data"]["LOG_LEVEL"] = PLANTED_LIVE_VALUE
    live.get("NetworkPolicy", "backend")["spec"]["ingress"][0]["ports"][0]["port"] = 8080
    live.get("PodDisruptionBudget", "backend")["spec"]["maxUnavailable"] = 0
    live.get("HorizontalPodAutoscaler", "backend")["spec"]["maxReplicas"] = 20
    live.get("Service", "frontend")["metadata"]["labels"]["app.kubernetes.io/part-of"] = "tbyte-legacy"


def postgres_scaled_down(live: Cluster) -> None:
    """`kubectl scale statefulset postgres --replicas=0`: nothing autoscales it, so the count is drift."""
    postgres = live.get("StatefulSet", "postgres")
    postgres["spec"]["replicas"] = 0
    for pod in live.owned("Pod", postgres):
        live.remove(pod)


def rolled_back(live: Cluster) -> None:
    """`kubectl rollout undo`: the namespace still runs 1.4.2 although 1.5.0 was released (the cluster is the
    reference as it was)."""


def canary_aborted(live: Cluster) -> None:
    """The Rollout took 1.5.0, its analysis failed and Argo aborted back to the stable pods (1.4.2)."""
    rollout = live.get("Rollout", "frontend")
    _container(rollout["spec"]["template"])["image"] = NEW_FRONTEND
    rollout["metadata"]["generation"] = 2
    rollout_aborted(live)


def hand_made_objects(live: Cluster) -> None:
    """Objects nobody rendered (a debug ConfigMap, a pasted Secret, a debug pod, another team's Deployment
    with its ReplicaSet and pods), next to those controllers make (Helm's release record, a legacy token)."""
    live.add({"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "debug-flags", "namespace": NS, "uid": _uid("ConfigMap", "debug-flags"),
                           "creationTimestamp": STARTED},
              "data": {"FLAGS": PLANTED_LIVE_VALUE}})
    live.add({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "db-password-tmp", "namespace": NS, "uid": _uid("Secret", "db-password-tmp"),
                           "creationTimestamp": STARTED},
              "data": {"password": base64.b64encode(PLANTED_SECRET.encode()).decode()}})
    bare_pod(live)
    live.add({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
              "metadata": {"name": "sh.helm.release.v1.grafana.v1", "namespace": NS,
                           "uid": _uid("Secret", "helm-grafana"), "creationTimestamp": STARTED,
                           "labels": {"owner": "helm", "name": "grafana", "status": "deployed", "version": "1"}},
              "data": {"release": base64.b64encode(PLANTED_SECRET.encode()).decode()}})
    live.add({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
              "metadata": {"name": "default-token-x7k2p", "namespace": NS, "uid": _uid("Secret", "default-token"),
                           "creationTimestamp": STARTED,
                           "annotations": {"kubernetes.io/service-account.name": "default"}},
              "data": {"token": base64.b64encode(PLANTED_SECRET.encode()).decode()}})
    grafana = live.add({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "grafana", "namespace": NS, "uid": _uid("Deployment", "grafana"), "generation": 1,
                     "creationTimestamp": STARTED, "labels": {"app.kubernetes.io/name": "grafana",
                                                              "app.kubernetes.io/managed-by": "Helm"},
                     "annotations": {"meta.helm.sh/release-name": "grafana", "deployment.kubernetes.io/revision": "1"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": {"app.kubernetes.io/name": "grafana"}},
                              "spec": {"containers": [{"name": "grafana", "image": "grafana/grafana:11.2.0"}]}}},
        "status": {}})
    rs = live.replica_set(grafana, grafana["spec"]["template"], 1, revision=1)
    live.pod(rs, rs["spec"]["template"], f"{rs['metadata']['name']}-{_suffix('grafana')}", 0)


def argo_not_installed(live: Cluster) -> None:
    """The canary variant applied to a cluster without Argo Rollouts: the CRD-backed objects cannot exist,
    and the Services carry no Rollout-managed selector."""
    for kind in ("Rollout", "AnalysisTemplate"):
        for obj in live.all(kind):
            live.remove(obj)
    rollout_uid = _uid("Rollout", "frontend")
    for obj in list(live.objects):
        if any(ref.get("uid") == rollout_uid for ref in obj["metadata"].get("ownerReferences", [])):
            for pod in live.owned("Pod", obj):
                live.remove(pod)
            live.remove(obj)
    for name in ("frontend", "frontend-canary"):
        service = live.get("Service", name)
        service["spec"]["selector"].pop("rollouts-pod-template-hash", None)
        service["metadata"]["annotations"].pop("argo-rollouts.argoproj.io/managed-by-rollouts", None)


@dataclass(frozen=True)
class Drifted:
    variant: str
    happened: Callable[[Cluster], None]
    expected: frozenset[tuple[str, str, str]]  # (rule id, Kind/namespace/name, JSON pointer)
    rendered_edits: tuple[tuple[str, str, str], ...] = ()  # (file, old, new) in the exported manifests
    without_crds: tuple[str, ...] = ()  # CRD groups the cluster does not serve

    def live(self) -> Cluster:
        live = cluster(self.variant)
        self.happened(live)
        return live.settle()


def _expect(*entries: str) -> frozenset[tuple[str, str, str]]:
    found = set()
    for entry in entries:
        rule_id, ref, *pointer = entry.split(" ")
        found.add((rule_id, ref, pointer[0] if pointer else ""))
    return frozenset(found)


BACKEND = f"Deployment/{NS}/backend"
_RELEASE_1_5_BACKEND = (("backend/deployment.yaml", "image: ghcr.io/tbyte/backend:1.4.2", f"image: {NEW_BACKEND}"),)

DRIFTED: dict[str, Drifted] = {
    "network-policy-deleted": Drifted("production", network_policy_deleted,
                                      _expect(f"DRF001 NetworkPolicy/{NS}/backend")),
    "backend-edited": Drifted("production", backend_edited, _expect(
        f"DRF002 {BACKEND} /spec/template/metadata/labels/app.kubernetes.io~1version",
        f"DRF002 {BACKEND} {_CONTAINER}/image",
        f"DRF002 {BACKEND} {_CONTAINER}/resources/limits/memory",
        f"DRF002 {BACKEND} {_CONTAINER}/env/1/valueFrom",
        f"DRF002 {BACKEND} {_CONTAINER}/env/2",
        f"DRF002 {BACKEND} {_CONTAINER}/readinessProbe/periodSeconds",
        f"DRF002 {BACKEND} {_CONTAINER}/securityContext/readOnlyRootFilesystem")),
    "controllers-at-work": Drifted("production", controllers_at_work, frozenset()),
    "incident-edits": Drifted("production", incident_edits, _expect(
        f"DRF002 ConfigMap/{NS}/backend-config /data/LOG_LEVEL",
        f"DRF002 NetworkPolicy/{NS}/backend /spec/ingress/0/ports/0/port",
        f"DRF002 PodDisruptionBudget/{NS}/backend /spec/maxUnavailable",
        f"DRF002 HorizontalPodAutoscaler/{NS}/backend /spec/maxReplicas",
        f"DRF002 Service/{NS}/frontend /metadata/labels/app.kubernetes.io~1part-of")),
    "postgres-scaled-down": Drifted("in-cluster-db", postgres_scaled_down,
                                    _expect(f"DRF002 StatefulSet/{NS}/postgres /spec/replicas")),
    "rollout-stuck": Drifted("production", deployment_stuck, _expect(f"DRF003 {BACKEND} {_CONTAINER}/image"),
                             rendered_edits=_RELEASE_1_5_BACKEND),
    "rolled-back": Drifted("production", rolled_back, _expect(f"DRF002 {BACKEND} {_CONTAINER}/image"),
                           rendered_edits=_RELEASE_1_5_BACKEND),
    "canary-aborted": Drifted("canary", canary_aborted, _expect(f"DRF003 Rollout/{NS}/frontend {_CONTAINER}/image"),
                              rendered_edits=(("frontend-canary/rollout.yaml", "image: ghcr.io/tbyte/frontend:1.4.2",
                                               f"image: {NEW_FRONTEND}"),)),
    "hand-made-objects": Drifted("production", hand_made_objects, _expect(
        f"DRF004 ConfigMap/{NS}/debug-flags", f"DRF004 Secret/{NS}/db-password-tmp", f"DRF004 Pod/{NS}/backend-debug",
        f"DRF004 Deployment/{NS}/grafana")),
    "argo-not-installed": Drifted("canary", argo_not_installed, _expect(
        f"DRF001 Rollout/{NS}/frontend", f"DRF001 AnalysisTemplate/{NS}/frontend-success-rate"),
        without_crds=("argoproj.io",)),
}

