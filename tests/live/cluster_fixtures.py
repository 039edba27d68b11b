"""Live clusters for the tests: the reference manifests as the API server would return them once running.

:func:`cluster` turns a variant of the bundled reference manifests into live objects: server-set metadata
(uid, generation, the ``kubectl apply`` annotation, managedFields), what the API server does on write
(:mod:`server_defaults`: defaulted fields, canonical quantities, its own field order), what it allocates
(clusterIP), the annotations controllers write (revisions), the objects controllers create (ReplicaSets,
Pods, Jobs, EndpointSlices, Argo's canary Ingress, the Secrets External Secrets writes — with data, to
prove it is never fetched) and their status (Ready conditions, containerStatuses, HPA metrics, PDB
budgets, ExternalSecret sync). :meth:`Cluster.settle` derives every controller-computed status from the
pods, the way the controllers would, so that a broken variant only has to break the pods or the one
status it is about. :data:`BROKEN` lists the broken variants with the exact findings each must produce.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from tbyte_policy import reference
from tbyte_policy.sources.files import load_paths

from .k8s_api_server import BUILTIN_RESOURCES, CRD_RESOURCES
from .server_defaults import default_pod_spec, server_apply

NS = "tbyte"
NOW = "2024-05-01T12:00:00Z"
STARTED = "2024-05-01T08:00:00Z"
NODES = ("ip-10-0-1-11.eu-west-1.compute.internal", "ip-10-0-2-12.eu-west-1.compute.internal",
         "ip-10-0-3-13.eu-west-1.compute.internal")
# Values planted where a live audit could leak them: Secret data (base64 and plain), a ConfigMap.
PLANTED_SECRET = "Pl4nted-Db-Passw0rd-7c1e"
PLANTED_USER = "planted_app_user_91"
PLANTED_CONFIG = "planted-config-value-5d2a"

# Kinds whose registry keeps no metadata.generation (their spec, if any, is not versioned).
UNVERSIONED_KINDS = frozenset({"Namespace", "ConfigMap", "Secret", "ServiceAccount", "Service", "Pod",
                               "EndpointSlice"})


def _digest(*parts: str, length: int = 10) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _uid(kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tbyte-live-fixture/{kind}/{name}"))


def _pod_hash(name: str) -> str:
    # ReplicaSet pod-template-hash: lower-case alphanumerics, as the controller renders it
    return "".join(c for c in _digest("hash", name, length=16) if c.isalnum())[:10].replace("0", "b")


def _suffix(*parts: str) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    number = int(_digest(*parts, length=12), 16)
    return "".join(alphabet[(number >> (5 * i)) % len(alphabet)] for i in range(5))


def condition(kind: str, status: str, reason: str | None = None, message: str | None = None, **times) -> dict:
    entry = {"type": kind, "status": status, "lastTransitionTime": STARTED}
    if reason:
        entry["reason"] = reason
    if message:
        entry["message"] = message
    entry.update(times)
    return entry


def owner_reference(owner: dict) -> dict:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod["status"].get("conditions", []))


def _active(pod: dict) -> bool:
    return pod["status"].get("phase") not in ("Succeeded", "Failed") and "deletionTimestamp" not in pod["metadata"]


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# --- server-set metadata ---

def _apply_metadata(obj: dict) -> None:
    meta = obj["metadata"]
    applied = copy.deepcopy(obj)
    meta["uid"] = _uid(obj["kind"], meta["name"])
    if obj["kind"] not in UNVERSIONED_KINDS:
        meta["generation"] = 1
    meta["creationTimestamp"] = STARTED
    # `kubectl apply` keeps the applied manifest on the object (the collector strips it from Secrets).
    meta.setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = \
        json.dumps(applied, separators=(",", ":"), sort_keys=True) + "\n"


# --- the cluster ---

class _Lookup:
    """The objects of a cluster indexed once, so that settling 50,000 pods takes seconds, not hours."""

    def __init__(self, objects: list[dict]):
        self._by_kind: dict[str, list[dict]] = defaultdict(list)
        self._by_name: dict[tuple[str, str], dict] = {}
        self._owned: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self._pods_by_label: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for obj in objects:
            kind, meta = obj["kind"], obj["metadata"]
            self._by_kind[kind].append(obj)
            self._by_name.setdefault((kind, meta["name"]), obj)
            for uid in {ref.get("uid") for ref in meta.get("ownerReferences", [])}:
                self._owned[(kind, uid)].append(obj)
            if kind == "Pod":
                for pair in meta.get("labels", {}).items():
                    self._pods_by_label[pair].append(obj)

    def all(self, kind: str) -> list[dict]:
        return self._by_kind.get(kind, [])

    def find(self, kind: str, name: str) -> dict | None:
        return self._by_name.get((kind, name))

    def owned(self, kind: str, owner: dict) -> list[dict]:
        return self._owned.get((kind, owner["metadata"]["uid"]), [])

    def pods_selected(self, selector: dict) -> list[dict]:
        """The pods whose labels hold every pair of the map ``selector``, in the cluster's order."""
        if not selector:
            return self.all("Pod")
        candidates = self._pods_by_label.get(next(iter(selector.items())), [])
        return [pod for pod in candidates if _selects(selector, pod["metadata"]["labels"])]


@dataclass
class Cluster:
    objects: list[dict]

    # lookups
    def all(self, kind: str) -> list[dict]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        return next(obj for obj in self.objects if obj["kind"] == kind and obj["metadata"]["name"] == name)

    def find(self, kind: str, name: str) -> dict | None:
        return next((obj for obj in self.all(kind) if obj["metadata"]["name"] == name), None)

    def owned(self, kind: str, owner: dict) -> list[dict]:
        uid = owner["metadata"]["uid"]
        return [obj for obj in self.all(kind)
                if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences", []))]

    def pods_of(self, workload: dict) -> list[dict]:
        if workload["kind"] in ("Deployment", "Rollout"):
            return [pod for rs in self.owned("ReplicaSet", workload) for pod in self.owned("Pod", rs)]
        if workload["kind"] == "CronJob":
            return [pod for job in self.owned("Job", workload) for pod in self.owned("Pod", job)]
        return self.owned("Pod", workload)

    def remove(self, obj: dict) -> None:
        self.objects.remove(obj)

    def add(self, obj: dict) -> dict:
        self.objects.append(obj)
        return obj

    # --- controllers creating objects ---

    def replica_set(self, workload: dict, template: dict, replicas: int, revision: int) -> dict:
        name = workload["metadata"]["name"]
        hash_key = "rollouts-pod-template-hash" if workload["kind"] == "Rollout" else "pod-template-hash"
        pod_hash = _pod_hash(f"{name}-{revision}")
        template = copy.deepcopy(template)
        template["metadata"].setdefault("labels", {})[hash_key] = pod_hash
        selector = copy.deepcopy(workload["spec"]["selector"])
        selector["matchLabels"][hash_key] = pod_hash
        annotations = {"deployment.kubernetes.io/revision" if workload["kind"] == "Deployment"
                       else "rollout.argoproj.io/revision": str(revision)}
        if workload["kind"] == "Deployment":
            annotations.update({"deployment.kubernetes.io/desired-replicas": str(workload["spec"]["replicas"]),
                                "deployment.kubernetes.io/max-replicas": str(workload["spec"]["replicas"] + 1)})
        return self.add({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{name}-{pod_hash}", "namespace": NS, "uid": _uid("ReplicaSet", f"{name}-{pod_hash}"),
                         "generation": 1, "creationTimestamp": STARTED,
                         "labels": dict(template["metadata"]["labels"]), "annotations": annotations,
                         "ownerReferences": [owner_reference(workload)]},
            "spec": {"replicas": replicas, "minReadySeconds": workload["spec"].get("minReadySeconds", 0),
                     "selector": selector, "template": template},
            "status": {},
        })

    def pod(self, owner: dict, template: dict, name: str, index: int, restart_policy: str = "Always") -> dict:
        spec = copy.deepcopy(template["spec"])
        default_pod_spec(spec, restart_policy)
        spec["nodeName"] = NODES[index % len(NODES)]
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("enableServiceLinks", True)
        spec["tolerations"] = [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}]
        if spec.get("automountServiceAccountToken") is not False:
            volume = f"kube-api-access-{_suffix(name, 'token')}"
            spec.setdefault("volumes", []).append({"name": volume, "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}})
            for container in spec["containers"]:
                container.setdefault("volumeMounts", []).append(
                    {"name": volume, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
        for volume_claim in owner.get("spec", {}).get("volumeClaimTemplates", []):
            claim = volume_claim["metadata"]["name"]
            spec.setdefault("volumes", []).insert(0, {"name": claim, "persistentVolumeClaim": {
                "claimName": f"{claim}-{name}"}})
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "uid": _uid("Pod", name), "creationTimestamp": STARTED,
                         "labels": dict(template["metadata"].get("labels", {})),
                         "ownerReferences": [owner_reference(owner)]},
            "spec": spec,
            "status": {},
        }
        if owner["kind"] == "ReplicaSet":
            pod["metadata"]["generateName"] = owner["metadata"]["name"] + "-"
        self.running(pod, index)
        return self.add(pod)

    @staticmethod
    def running(pod: dict, index: int = 0, restarts: int = 0) -> dict:
        """A scheduled pod whose containers all run and are ready."""
        spec = pod["spec"]
        ip = f"10.0.{index % len(NODES) + 1}.{100 + int(_digest(pod['metadata']['name'], length=4), 16) % 150}"
        statuses = [{"name": c["name"], "image": c["image"],
                     "imageID": f"{c['image'].split(':')[0]}@sha256:{_digest('image', c['image'], length=64)}",
                     "containerID": "containerd://" + _digest("container", pod["metadata"]["name"], c["name"],
                                                              length=64),
                     "ready": True, "started": True, "restartCount": restarts,
                     "state": {"running": {"startedAt": STARTED}}, "lastState": {}} for c in spec["containers"]]
        pod["status"] = {
            "phase": "Running",
            "conditions": [condition("PodReadyToStartContainers", "True"), condition("Initialized", "True"),
                           condition("Ready", "True"), condition("ContainersReady", "True"),
                           condition("PodScheduled", "True")],
            "hostIP": "10.0.0.1" if not spec.get("nodeName") else f"10.0.{NODES.index(spec['nodeName']) + 1}.10",
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": STARTED, "qosClass": "Burstable",
            "containerStatuses": statuses,
        }
        return pod

    @staticmethod
    def not_ready(pod: dict, container_state: dict | None = None, restarts: int | None = None,
                  last_state: dict | None = None) -> dict:
        """Make the pod's (first) container not ready, optionally in ``container_state``."""
        status = pod["status"]
        container = status["containerStatuses"][0]
        container["ready"] = False
        if container_state is not None:
            container["state"] = container_state
            container["started"] = False
        if restarts is not None:
            container["restartCount"] = restarts
        if last_state is not None:
            container["lastState"] = last_state
        names = f"[{container['name']}]"
        for entry in status["conditions"]:
            if entry["type"] in ("Ready", "ContainersReady"):
                entry.update(status="False", reason="ContainersNotReady",
                             message=f"containers with unready status: {names}")
        return pod

    # --- controllers computing status ---

    def settle(self) -> Cluster:
        """Recompute every controller-derived status from the pods (and the workloads' specs)."""
        index = _Lookup(self.objects)
        for rs in index.all("ReplicaSet"):
            pods = [pod for pod in index.owned("Pod", rs) if _active(pod)]
            ready = sum(_ready(pod) for pod in pods)
            rs["status"] = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                            "availableReplicas": ready, "observedGeneration": 1}
        for workload in index.all("Deployment") + index.all("Rollout"):
            self._settle_replicated(workload, index)
        for statefulset in index.all("StatefulSet"):
            pods = [pod for pod in index.owned("Pod", statefulset) if _active(pod)]
            ready = sum(_ready(pod) for pod in pods)
            revision = f"{statefulset['metadata']['name']}-{_pod_hash(statefulset['metadata']['name'])}"
            statefulset["status"] = {"observedGeneration": 1, "replicas": len(pods), "readyReplicas": ready,
                                     "availableReplicas": ready, "currentReplicas": len(pods),
                                     "updatedReplicas": len(pods), "currentRevision": revision,
                                     "updateRevision": revision, "collisionCount": 0}
        for hpa in index.all("HorizontalPodAutoscaler"):
            target = index.find(hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"])
            if target is not None:
                replicas = target["spec"]["replicas"]
                hpa["status"].update(currentReplicas=replicas, desiredReplicas=replicas)
        for pdb in index.all("PodDisruptionBudget"):
            self._settle_pdb(pdb, index)
        slices = [endpoint_slice for service in index.all("Service")
                  if (endpoint_slice := self._endpoints(service, index)) is not None]
        renewed = {endpoint_slice["metadata"]["name"] for endpoint_slice in slices}
        self.objects[:] = [obj for obj in self.objects
                           if obj["kind"] != "EndpointSlice" or obj["metadata"]["name"] not in renewed]
        self.objects.extend(slices)
        return self

    def _settle_replicated(self, workload: dict, index: _Lookup) -> None:
        sets = index.owned("ReplicaSet", workload)
        newest = max(sets, key=lambda rs: int(next(iter(rs["metadata"]["annotations"].values()))))
        replicas = sum(rs["status"]["replicas"] for rs in sets)
        available = sum(rs["status"]["availableReplicas"] for rs in sets)
        desired = workload["spec"]["replicas"]
        status = workload.setdefault("status", {})
        status.update(observedGeneration=1, replicas=replicas, updatedReplicas=newest["status"]["replicas"],
                      readyReplicas=sum(rs["status"]["readyReplicas"] for rs in sets), availableReplicas=available)
        status.pop("unavailableReplicas", None)
        if desired > available:
            status["unavailableReplicas"] = desired - available
        if workload["kind"] == "Deployment":
            max_unavailable = workload["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"]
            enough = available >= desired - max_unavailable
            conditions = {entry["type"]: entry for entry in status.get("conditions", [])}
            conditions["Available"] = condition("Available", "True" if enough else "False",
                                                "MinimumReplicasAvailable" if enough else "MinimumReplicasUnavailable",
                                                "Deployment has minimum availability." if enough
                                                else "Deployment does not have minimum availability.",
                                                lastUpdateTime=NOW)
            conditions.setdefault("Progressing", condition(
                "Progressing", "True", "NewReplicaSetAvailable",
                f'ReplicaSet "{newest["metadata"]["name"]}" has successfully progressed.', lastUpdateTime=NOW))
            status["conditions"] = [conditions["Available"], conditions["Progressing"]]
        else:
            status.update(HPAReplicas=replicas, availableReplicas=available,
                          stableRS=newest["metadata"]["labels"]["rollouts-pod-template-hash"],
                          currentPodHash=newest["metadata"]["labels"]["rollouts-pod-template-hash"],
                          selector=",".join(f"{k}={v}" for k, v in workload["spec"]["selector"]["matchLabels"].items()))
            healthy = available >= desired
            status.setdefault("phase", "Healthy" if healthy else "Progressing")
            status.setdefault("conditions", [
                condition("Available", "True" if healthy else "False", "AvailableReason",
                          "Rollout has minimum availability", lastUpdateTime=NOW),
                condition("Progressing", "True", "NewReplicaSetAvailable", "Rollout is healthy", lastUpdateTime=NOW),
                condition("Healthy", "True" if healthy else "False", "RolloutHealthy", "Rollout is healthy",
                          lastUpdateTime=NOW)])

    @staticmethod
    def _top_controller(pod: dict, index: _Lookup) -> dict | None:
        node = pod
        while node["metadata"].get("ownerReferences"):
            ref = node["metadata"]["ownerReferences"][0]
            found = index.find(ref["kind"], ref["name"])
            if found is None:
                return None
            node = found
        return node if node is not pod else None

    def _settle_pdb(self, pdb: dict, index: _Lookup) -> None:
        pods = [pod for pod in index.pods_selected(pdb["spec"]["selector"]["matchLabels"]) if _active(pod)]
        healthy = sum(_ready(pod) for pod in pods)
        if "maxUnavailable" in pdb["spec"]:
            # the disruption controller counts the scale of the pods' controllers, not the pods
            controllers = {id(c): c for pod in pods if (c := self._top_controller(pod, index)) is not None}
            expected = sum(c["spec"].get("replicas", 1) for c in controllers.values())
            desired = max(expected - pdb["spec"]["maxUnavailable"], 0)
        else:
            expected, desired = len(pods), pdb["spec"]["minAvailable"]
        allowed = max(healthy - desired, 0)
        pdb["status"] = {"observedGeneration": 1, "currentHealthy": healthy, "desiredHealthy": desired,
                         "expectedPods": expected, "disruptionsAllowed": allowed,
                         "conditions": [condition("DisruptionAllowed", "True" if allowed else "False",
                                                  "SufficientPods" if allowed else "InsufficientPods",
                                                  observedGeneration=1)]}

    @staticmethod
    def _endpoints(service: dict, index: _Lookup) -> dict | None:
        """The EndpointSlice of a Service with a selector, as the EndpointSlice controller writes it."""
        selector = service["spec"].get("selector")
        if not selector or service["spec"].get("type") == "ExternalName":
            return None
        name = service["metadata"]["name"]
        pods = [pod for pod in index.pods_selected(selector) if _active(pod) and pod["status"].get("podIP")]
        slice_name = f"{name}-{_suffix(name, 'slice')}"
        ports = []
        for port in service["spec"]["ports"]:
            number = port["targetPort"]
            for pod in pods[:1]:
                for container in pod["spec"]["containers"]:
                    for declared in container.get("ports", []):
                        if declared.get("name") == port["targetPort"]:
                            number = declared["containerPort"]
            ports.append({"name": port["name"], "port": number, "protocol": port["protocol"]})
        return {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": slice_name, "namespace": NS, "generateName": f"{name}-",
                         "uid": _uid("EndpointSlice", slice_name), "creationTimestamp": STARTED,
                         "labels": {"kubernetes.io/service-name": name,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                         "ownerReferences": [owner_reference(service)]},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [pod["status"]["podIP"]],
                           "conditions": {"ready": _ready(pod), "serving": _ready(pod), "terminating": False},
                           "nodeName": pod["spec"]["nodeName"],
                           "targetRef": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": NS,
                                         "uid": pod["metadata"]["uid"]}} for pod in pods],
            "ports": ports,
        }


# --- from the reference manifests to a running namespace ---

SERVED = {(f"{group}/{version}" if group else version, kind) for group, version, _, kind, _ in
          (*BUILTIN_RESOURCES, *CRD_RESOURCES)}


def _manifests(variant: str) -> list[dict]:
    """The variant's objects of the kinds the API double serves (the audit reads no RBAC objects)."""
    loaded = load_paths([str(path) for path in reference.variant_files(variant)])
    assert not loaded.errors, loaded.errors
    return [json.loads(json.dumps(document.body)) for document in loaded.documents
            if (document.body["apiVersion"], document.body["kind"]) in SERVED]


def _renamed(obj: dict, name: str) -> dict:
    """A copy of one of the backend's objects for another app: its name and its app.kubernetes.io/name labels."""
    def walk(node):
        if isinstance(node, dict):
            return {key: name if key == "app.kubernetes.io/name" and value == "backend" else walk(value)
                    for key, value in node.items()}
        return [walk(item) for item in node] if isinstance(node, list) else node

    copied = walk(obj)
    copied["metadata"]["name"] = name
    return copied


def scaled_namespace(deployments: int, pods_per_deployment: int) -> Cluster:
    """The production namespace plus ``deployments`` copies of the backend (Deployment, Service, PDB,
    NetworkPolicy, HPA at ``pods_per_deployment`` replicas), all running and healthy."""
    manifests = _manifests("production")
    backend = [obj for obj in manifests if obj["metadata"]["name"] == "backend" and obj["kind"] in
               ("Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "HorizontalPodAutoscaler")]
    for index in range(deployments):
        for obj in backend:
            copied = _renamed(obj, f"app-{index:04}")
            if copied["kind"] == "HorizontalPodAutoscaler":
                copied["spec"]["scaleTargetRef"]["name"] = copied["metadata"]["name"]
                copied["spec"]["minReplicas"] = pods_per_deployment
                copied["spec"]["maxReplicas"] = max(10, 2 * pods_per_deployment)
            manifests.append(copied)
    return cluster(manifests=manifests)


def cluster(variant: str = "production", manifests: list[dict] | None = None) -> Cluster:
    """The variant's manifests applied with kubectl and reconciled by healthy controllers."""
    manifests = manifests if manifests is not None else _manifests(variant)
    for obj in manifests:
        _apply_metadata(obj)
        server_apply(obj, STARTED)
    live = Cluster(list(manifests))
    autoscaled = {(hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"]): hpa
                  for hpa in live.all("HorizontalPodAutoscaler")}
    live.add({"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "kube-root-ca.crt", "namespace": NS, "uid": _uid("ConfigMap", "kube-root-ca.crt"),
                           "creationTimestamp": STARTED,
                           "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to "
                                           "verify the kube-apiserver when using internal endpoints such as the "
                                           "internal service IP or kubernetes.default.svc. No other usage is "
                                           "guaranteed across distributions of Kubernetes clusters."}},
              "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIBfixture\n-----END CERTIFICATE-----\n"}})
    live.add({"apiVersion": "v1", "kind": "ServiceAccount",
              "metadata": {"name": "default", "namespace": NS, "uid": _uid("ServiceAccount", "default"),
                           "creationTimestamp": STARTED}})
    live.get("ConfigMap", "backend-config")["data"]["FEATURE_FLAGS"] = PLANTED_CONFIG
    for obj in list(live.objects):
        _run(live, obj, autoscaled)
    return live.settle()


def _run(live: Cluster, obj: dict, autoscaled: dict) -> None:
    kind, meta, spec = obj["kind"], obj["metadata"], obj.get("spec", {})
    if kind == "Namespace":
        meta["labels"]["kubernetes.io/metadata.name"] = meta["name"]
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    elif kind in ("Deployment", "Rollout"):
        hpa = autoscaled.get((kind, meta["name"]))
        spec["replicas"] = hpa["spec"]["minReplicas"] if hpa else spec.get("replicas", 1)
        meta["annotations"]["deployment.kubernetes.io/revision" if kind == "Deployment"
                            else "rollout.argoproj.io/revision"] = "1"
        rs = live.replica_set(obj, spec["template"], spec["replicas"], revision=1)
        rs_name = rs["metadata"]["name"]
        for index in range(spec["replicas"]):
            live.pod(rs, rs["spec"]["template"], f"{rs_name}-{_suffix(rs_name, str(index))}", index)
        if kind == "Rollout":
            _run_canary(live, obj, rs)
    elif kind == "StatefulSet":
        for claim in spec.get("volumeClaimTemplates", []):
            claim.update(apiVersion="v1", kind="PersistentVolumeClaim")
            claim["status"] = {"phase": "Pending"}
        template = copy.deepcopy(spec["template"])
        template["metadata"]["labels"]["controller-revision-hash"] = f"{meta['name']}-{_pod_hash(meta['name'])}"
        for index in range(spec["replicas"]):
            pod = live.pod(obj, template, f"{meta['name']}-{index}", index)
            pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] = f"{meta['name']}-{index}"
            pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] = str(index)
            pod["spec"].update(hostname=f"{meta['name']}-{index}", subdomain=spec["serviceName"])
    elif kind == "CronJob":
        _run_cronjob(live, obj)
    elif kind == "Service":
        if spec.get("type") != "ExternalName":  # the registry allocates the addresses
            address = spec.get("clusterIP") or f"172.20.{int(_digest(meta['name'], length=2), 16)}.{len(meta['name'])}"
            spec.update(clusterIP=address, clusterIPs=[address], ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack")
        obj["status"] = {"loadBalancer": {}}
    elif kind == "HorizontalPodAutoscaler":
        obj["status"] = {
            "lastScaleTime": STARTED,
            "currentMetrics": [{"type": "Resource", "resource": {"name": metric["resource"]["name"], "current": {
                "averageUtilization": 35, "averageValue": "70m" if metric["resource"]["name"] == "cpu" else "96Mi"}}}
                for metric in spec["metrics"]],
            "conditions": [
                condition("AbleToScale", "True", "ReadyForNewScale",
                          "recommended size matches current size"),
                condition("ScalingActive", "True", "ValidMetricFound",
                          "the HPA was able to successfully calculate a replica count from cpu resource "
                          "utilization (percentage of request)"),
                condition("ScalingLimited", "False", "DesiredWithinRange",
                          "the desired count is within the acceptable range")],
        }
    elif kind == "PodDisruptionBudget":
        obj["status"] = {}
    elif kind == "Ingress":
        obj["status"] = {"loadBalancer": {"ingress": [
            {"hostname": "a1b2c3-ingress-nginx.elb.eu-west-1.amazonaws.com"}]}}
    elif kind == "ExternalSecret":
        _run_external_secret(live, obj)
    elif kind == "SecretStore":
        obj["status"] = {"capabilities": "ReadWrite", "conditions": [
            condition("Ready", "True", "Valid", "store validated")]}
    if kind == "Ingress":
        for tls in spec.get("tls", []):
            _tls_secret(live, tls["secretName"], tls["hosts"])


def _run_canary(live: Cluster, rollout: dict, rs: dict) -> None:
    """Argo Rollouts after a completed canary: services pinned to the stable hash, the canary Ingress."""
    pod_hash = rs["metadata"]["labels"]["rollouts-pod-template-hash"]
    canary = rollout["spec"]["strategy"]["canary"]
    for role in ("stableService", "canaryService"):
        service = live.get("Service", canary[role])
        service["spec"]["selector"]["rollouts-pod-template-hash"] = pod_hash
        annotations = service["metadata"]["annotations"]
        annotations["argo-rollouts.argoproj.io/managed-by-rollouts"] = rollout["metadata"]["name"]
    rollout["status"] = {"currentStepIndex": len(canary["steps"]), "currentStepHash": _pod_hash("steps"),
                         "canary": {}, "blueGreen": {}, "message": "", "workloadObservedGeneration": "1"}
    stable = live.get("Ingress", canary["trafficRouting"]["nginx"]["stableIngress"])
    ingress = copy.deepcopy(stable)
    name = f"{rollout['metadata']['name']}-{stable['metadata']['name']}-canary"
    # Argo's nginx reconciler keeps the stable Ingress' TLS, class and rules (re-aimed at the canary
    # Service) and sets only the canary annotations.
    ingress["metadata"] = {"name": name, "namespace": NS, "uid": _uid("Ingress", name), "generation": 1,
                           "creationTimestamp": STARTED,
                           "annotations": {"nginx.ingress.kubernetes.io/canary": "true",
                                           "nginx.ingress.kubernetes.io/canary-weight": "0"},
                           "ownerReferences": [owner_reference(rollout)]}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            path["backend"]["service"]["name"] = canary["canaryService"]
    live.add(ingress)


def _run_cronjob(live: Cluster, cronjob: dict) -> None:
    spec = cronjob["spec"]
    template = spec["jobTemplate"]["spec"]["template"]
    cronjob["status"] = {"lastScheduleTime": "2024-05-01T11:17:00Z", "lastSuccessfulTime": "2024-05-01T11:17:42Z"}
    name = f"{cronjob['metadata']['name']}-28573277"
    job_uid = _uid("Job", name)
    labels = {**template["metadata"]["labels"], "batch.kubernetes.io/controller-uid": job_uid,
              "batch.kubernetes.io/job-name": name, "controller-uid": job_uid, "job-name": name}
    job_template = copy.deepcopy(template)
    job_template["metadata"]["labels"] = labels
    job = live.add({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": NS, "uid": job_uid, "generation": 1,
                     "creationTimestamp": "2024-05-01T11:17:00Z", "labels": dict(labels),
                     "annotations": {"batch.kubernetes.io/cronjob-scheduled-timestamp": "2024-05-01T11:17:00Z"},
                     "ownerReferences": [owner_reference(cronjob)]},
        "spec": {**copy.deepcopy(spec["jobTemplate"]["spec"]), "template": job_template, "completions": 1,
                 "parallelism": 1, "completionMode": "NonIndexed", "suspend": False, "manualSelector": False,
                 "podReplacementPolicy": "TerminatingOrFailed",
                 "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": job_uid}}},
        "status": {"startTime": "2024-05-01T11:17:00Z", "completionTime": "2024-05-01T11:17:42Z", "succeeded": 1,
                   "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
                   "conditions": [condition("SuccessCriteriaMet", "True", "CompletionsReached",
                                            "Reached expected number of succeeded pods"),
                                  condition("Complete", "True", "CompletionsReached",
                                            "Reached expected number of succeeded pods")]},
    })
    pod = live.pod(job, job_template, f"{name}-{_suffix(name)}", 0, restart_policy="Never")
    pod["metadata"]["generateName"] = f"{name}-"
    pod["status"]["phase"] = "Succeeded"
    for entry in pod["status"]["conditions"]:
        if entry["type"] in ("Ready", "ContainersReady"):
            entry.update(status="False", reason="PodCompleted")
    for container in pod["status"]["containerStatuses"]:
        container.update(ready=False, started=False, state={"terminated": {
            "exitCode": 0, "reason": "Completed", "startedAt": "2024-05-01T11:17:03Z",
            "finishedAt": "2024-05-01T11:17:41Z", "containerID": container["containerID"]}})


def _run_external_secret(live: Cluster, external_secret: dict) -> None:
    spec = external_secret["spec"]
    spec["target"].setdefault("deletionPolicy", "Retain")
    for entry in spec["data"]:
        entry["remoteRef"].update(conversionStrategy="Default", decodingStrategy="None", metadataPolicy="None")
    external_secret["status"] = {
        "binding": {"name": spec["target"]["name"]}, "refreshTime": NOW,
        "syncedResourceVersion": f"1-{_digest('eso', external_secret['metadata']['name'], length=32)}",
        "conditions": [condition("Ready", "True", "SecretSynced", "secret synced")]}
    values = {"DB_USER": PLANTED_USER}
    data = {entry["secretKey"]: base64.b64encode(values.get(entry["secretKey"], PLANTED_SECRET).encode()).decode()
            for entry in spec["data"]}
    name = spec["target"]["name"]
    live.add({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "immutable": False,
        "metadata": {"name": name, "namespace": NS, "uid": _uid("Secret", name), "creationTimestamp": STARTED,
                     "labels": {"reconcile.external-secrets.io/created-by": _digest("eso-owner", name, length=32),
                                "reconcile.external-secrets.io/managed": "true"},
                     "annotations": {"reconcile.external-secrets.io/data-hash": _digest("data", name, length=32)},
                     "ownerReferences": [owner_reference(external_secret)]},
        "data": data,
    })


def _tls_secret(live: Cluster, name: str, hosts: list[str]) -> None:
    """The certificate cert-manager issued for the Ingress (its ingress-shim names the Secret)."""
    live.add({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": NS, "uid": _uid("Secret", name), "creationTimestamp": STARTED,
                     "labels": {"controller.cert-manager.io/fao": "true"},
                     "annotations": {"cert-manager.io/certificate-name": name,
                                     "cert-manager.io/common-name": hosts[0],
                                     "cert-manager.io/alt-names": ",".join(hosts),
                                     "cert-manager.io/issuer-kind": "ClusterIssuer",
                                     "cert-manager.io/issuer-name": "letsencrypt-prod"}},
        "data": {"tls.crt": base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode(),
                 "tls.key": base64.b64encode(PLANTED_SECRET.encode()).decode()},
    })


# --- broken variants ---

def _pods(live: Cluster, kind: str, name: str) -> list[dict]:
    return sorted(live.pods_of(live.get(kind, name)), key=lambda pod: pod["metadata"]["name"])


def _rollout_new_revision(live: Cluster, kind: str, name: str, image: str) -> tuple[dict, dict]:
    """Start a rolling update to ``image``: a new ReplicaSet with one surge pod (maxSurge 1, maxUnavailable 0)."""
    workload = live.get(kind, name)
    template = copy.deepcopy(workload["spec"]["template"])
    template["spec"]["containers"][0]["image"] = image
    workload["spec"]["template"] = copy.deepcopy(template)
    workload["metadata"]["generation"] = 2
    workload["metadata"]["annotations"]["deployment.kubernetes.io/revision" if workload["kind"] == "Deployment"
                                        else "rollout.argoproj.io/revision"] = "2"
    if workload["kind"] == "Deployment":
        workload["status"]["conditions"][1] = condition(
            "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.', lastUpdateTime=NOW)
    rs = live.replica_set(workload, template, 1, revision=2)
    pod = live.pod(rs, rs["spec"]["template"], f"{rs['metadata']['name']}-{_suffix(rs['metadata']['name'])}", 3)
    return workload, pod


def crash_loop(live: Cluster) -> None:
    Cluster.not_ready(_pods(live, "Deployment", "backend")[1], {"waiting": {
        "reason": "CrashLoopBackOff",
        "message": "back-off 1m20s restarting failed container=backend pod=backend"}}, restarts=4,
        last_state={"terminated": {"exitCode": 1, "reason": "Error", "startedAt": NOW, "finishedAt": NOW}})


def pod_not_ready(live: Cluster) -> None:
    Cluster.not_ready(_pods(live, "Deployment", "backend")[0])


def image_pull(live: Cluster) -> None:
    _, pod = _rollout_new_revision(live, "Deployment", "frontend", "ghcr.io/tbyte/frontend:1.4.3-typo")
    Cluster.not_ready(pod, {"waiting": {"reason": "ImagePullBackOff",
                                        "message": 'Back-off pulling image "ghcr.io/tbyte/frontend:1.4.3-typo"'}})


def oom_killed(live: Cluster) -> None:
    container = _pods(live, "Deployment", "backend")[2]["status"]["containerStatuses"][0]
    container.update(restartCount=1, lastState={"terminated": {
        "exitCode": 137, "reason": "OOMKilled", "startedAt": STARTED, "finishedAt": NOW}})


def restarts(live: Cluster) -> None:
    container = _pods(live, "Deployment", "frontend")[0]["status"]["containerStatuses"][0]
    container.update(restartCount=9, lastState={"terminated": {
        "exitCode": 137, "reason": "Error", "startedAt": STARTED, "finishedAt": NOW}})


def unschedulable(live: Cluster) -> None:
    deployment = live.get("Deployment", "backend")
    deployment["spec"]["replicas"] = 4  # the HPA scaled it up
    rs = live.owned("ReplicaSet", deployment)[0]
    rs["spec"]["replicas"] = 4
    pod = live.pod(rs, rs["spec"]["template"], f"{rs['metadata']['name']}-{_suffix('extra')}", 3)
    del pod["spec"]["nodeName"]
    pod["status"] = {"phase": "Pending", "qosClass": "Burstable", "conditions": [condition(
        "PodScheduled", "False", "Unschedulable",
        "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod.")]}


def container_config_error(live: Cluster) -> None:
    external_secret = live.get("ExternalSecret", "backend-db-credentials")
    external_secret["status"]["conditions"] = [condition(
        "Ready", "False", "SecretSyncedError", "could not get secret data from provider")]
    Cluster.not_ready(_pods(live, "Deployment", "backend")[0], {"waiting": {
        "reason": "CreateContainerConfigError",
        "message": "couldn't find key DB_PASSWORD in Secret tbyte/backend-db-credentials"}})


def external_secret_failing(live: Cluster) -> None:
    live.get("ExternalSecret", "backend-db-credentials")["status"]["conditions"] = [condition(
        "Ready", "False", "SecretSyncedError", "could not get secret data from provider")]


def deployment_stuck(live: Cluster) -> None:
    deployment, pod = _rollout_new_revision(live, "Deployment", "backend", "ghcr.io/tbyte/backend:1.5.0")
    Cluster.not_ready(pod)
    deployment["status"] = {"conditions": [condition(
        "Progressing", "False", "ProgressDeadlineExceeded",
        f'ReplicaSet "{pod["metadata"]["ownerReferences"][0]["name"]}" has timed out progressing.',
        lastUpdateTime=NOW)]}


def deployment_paused(live: Cluster) -> None:
    deployment = live.get("Deployment", "frontend")
    deployment["spec"]["paused"] = True
    deployment["status"] = {"conditions": [condition("Progressing", "Unknown", "DeploymentPaused",
                                                     "Deployment is paused", lastUpdateTime=NOW)]}


def hpa_metrics(live: Cluster) -> None:
    hpa = live.get("HorizontalPodAutoscaler", "backend")
    del hpa["status"]["currentMetrics"]
    hpa["status"]["conditions"][1] = condition(
        "ScalingActive", "False", "FailedGetResourceMetric",
        "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics "
        "for resource cpu: unable to fetch metrics from resource metrics API: the server could not find the "
        "requested resource (get pods.metrics.k8s.io)")


def hpa_at_max(live: Cluster) -> None:
    deployment = live.get("Deployment", "frontend")
    deployment["spec"]["replicas"] = 10
    rs = live.owned("ReplicaSet", deployment)[0]
    rs["spec"]["replicas"] = 10
    for index in range(3, 10):
        live.pod(rs, rs["spec"]["template"], f"{rs['metadata']['name']}-{_suffix('scaled', str(index))}", index)
    hpa = live.get("HorizontalPodAutoscaler", "frontend")
    hpa["status"]["conditions"][2] = condition("ScalingLimited", "True", "TooManyReplicas",
                                               "the desired replica count is more than the maximum replica count")


def no_ready_endpoints(live: Cluster) -> None:
    for pod in _pods(live, "Deployment", "backend"):
        Cluster.not_ready(pod)


def pod_evicted(live: Cluster) -> None:
    pod = _pods(live, "Deployment", "frontend")[0]
    rs = live.get("ReplicaSet", pod["metadata"]["ownerReferences"][0]["name"])
    pod["status"] = {"phase": "Failed", "reason": "Evicted", "startTime": STARTED,
                     "message": "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91344Ki.",
                     "conditions": [condition("Ready", "False", "PodFailed")]}
    live.pod(rs, rs["spec"]["template"], f"{rs['metadata']['name']}-{_suffix('replacement')}", 0)


def bare_pod(live: Cluster) -> None:
    """A copy of a backend pod started by hand (kubectl debug --copy-to) and forgotten."""
    pod = copy.deepcopy(_pods(live, "Deployment", "backend")[0])
    pod["metadata"] = {"name": "backend-debug", "namespace": NS, "uid": _uid("Pod", "backend-debug"),
                       "creationTimestamp": NOW,
                       "labels": {"app.kubernetes.io/name": "backend-debug", "app.kubernetes.io/instance": "tbyte",
                                  "app.kubernetes.io/component": "backend", "app.kubernetes.io/part-of": "tbyte",
                                  "app.kubernetes.io/version": "1.4.2", "app.kubernetes.io/managed-by": "kubectl"}}
    live.add(pod)


def webhook_labelled_pods(live: Cluster) -> None:
    """Istio's sidecar injector labels the frontend's pods beyond their template; a second budget selects them
    by that label, which only the live pods carry."""
    for pod in _pods(live, "Deployment", "frontend"):
        pod["metadata"]["labels"]["service.istio.io/canonical-name"] = "frontend"
    budget = copy.deepcopy(live.get("PodDisruptionBudget", "frontend"))
    budget["metadata"] = {"name": "frontend-mesh", "namespace": NS, "uid": _uid("PodDisruptionBudget", "mesh"),
                          "creationTimestamp": NOW, "generation": 1}
    budget["spec"]["selector"] = {"matchLabels": {"service.istio.io/canonical-name": "frontend"}}
    budget.pop("status", None)
    live.add(budget)


def cronjob_image_pull(live: Cluster) -> None:
    cronjob = live.get("CronJob", "tbyte-policy-audit")
    job = live.owned("Job", cronjob)[0]
    pod = live.owned("Pod", job)[0]
    Cluster.running(pod)
    Cluster.not_ready(pod, {"waiting": {"reason": "ErrImagePull",
                                        "message": "failed to pull and unpack image: 403 Forbidden"}})
    job["status"] = {"startTime": NOW, "active": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}}


def rollout_aborted(live: Cluster) -> None:
    rollout = live.get("Rollout", "frontend")
    message = ('RolloutAborted: Rollout aborted update to revision 2: Metric "success-rate" assessed Failed due '
               'to failed (1) > failureLimit (0)')
    rollout["status"].update(abort=True, abortedAt=NOW, phase="Degraded", message=message, currentStepIndex=0,
                             conditions=[condition("Progressing", "False", "RolloutAborted", message,
                                                   lastUpdateTime=NOW)])


def rollout_paused(live: Cluster) -> None:
    rollout = live.get("Rollout", "frontend")
    rollout["status"].update(phase="Paused", currentStepIndex=2, controllerPause=True,
                             message="InconclusiveAnalysis: Rollout paused: analysis inconclusive",
                             pauseConditions=[{"reason": "InconclusiveAnalysis", "startTime": NOW}])


def rollout_canary_step(live: Cluster) -> None:
    """Paused on a canary step with a duration: it resumes by itself, nothing to report."""
    rollout = live.get("Rollout", "frontend")
    rollout["status"].update(phase="Paused", currentStepIndex=1, controllerPause=True, message="CanaryPauseStep",
                             pauseConditions=[{"reason": "CanaryPauseStep", "startTime": NOW}])


def statefulset_down(live: Cluster) -> None:
    Cluster.not_ready(live.get("Pod", "postgres-0"), {"waiting": {
        "reason": "CrashLoopBackOff",
        "message": "back-off 5m0s restarting failed container=postgres pod=postgres-0"}}, restarts=12,
        last_state={"terminated": {"exitCode": 1, "reason": "Error", "startedAt": NOW, "finishedAt": NOW}})


def keda(live: Cluster) -> None:
    """The backend scaled by KEDA instead of its HPA: a ScaledObject and the HPA KEDA creates for it."""
    hpa = live.get("HorizontalPodAutoscaler", "backend")
    live.remove(hpa)
    scaled = live.add({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "backend", "namespace": NS, "uid": _uid("ScaledObject", "backend"), "generation": 1,
                     "creationTimestamp": STARTED, "labels": dict(hpa["metadata"]["labels"]),
                     "finalizers": ["finalizer.keda.sh"]},
        "spec": {"scaleTargetRef": {"name": "backend"}, "minReplicaCount": 3, "maxReplicaCount": 10,
                 "pollingInterval": 30, "cooldownPeriod": 300,
                 "fallback": {"failureThreshold": 3, "replicas": 6},
                 "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}},
                              {"type": "prometheus", "metadata": {
                                  "serverAddress": "http://prometheus.monitoring.svc:9090",
                                  "query": 'sum(rate(http_requests_total{namespace="tbyte",service="backend"}[2m]))',
                                  "threshold": "100"}}]},
        "status": {"hpaName": "keda-hpa-backend", "originalReplicaCount": 3, "scaleTargetKind": "apps/v1.Deployment",
                   "scaleTargetGVKR": {"group": "apps", "kind": "Deployment", "resource": "deployments",
                                       "version": "v1"},
                   "externalMetricNames": ["s1-prometheus"], "resourceMetricNames": ["cpu"],
                   "lastActiveTime": NOW,
                   "conditions": [condition("Ready", "True", "ScaledObjectReady", "ScaledObject is defined correctly "
                                            "and is ready for scaling"),
                                  condition("Active", "True", "ScalerActive", "Scaling is performed because "
                                            "triggers are active"),
                                  condition("Fallback", "False", "NoFallbackFound",
                                            "No fallbacks are active on this scaled object"),
                                  condition("Paused", "False")]},
    })
    keda_hpa = copy.deepcopy(hpa)
    keda_hpa["metadata"] = {"name": "keda-hpa-backend", "namespace": NS, "uid": _uid("HPA", "keda-hpa-backend"),
                            "creationTimestamp": STARTED,
                            "labels": {**hpa["metadata"]["labels"], "scaledobject.keda.sh/name": "backend",
                                       "app.kubernetes.io/managed-by": "keda-operator"},
                            "ownerReferences": [owner_reference(scaled)]}
    keda_hpa["spec"]["metrics"].append({"type": "External", "external": {
        "metric": {"name": "s1-prometheus", "selector": {"matchLabels": {"scaledobject.keda.sh/name": "backend"}}},
        "target": {"type": "AverageValue", "averageValue": "100"}}})
    keda_hpa["status"]["currentMetrics"].append({"type": "External", "external": {
        "metric": {"name": "s1-prometheus"}, "current": {"averageValue": "42"}}})
    live.add(keda_hpa)


def keda_not_ready(live: Cluster) -> None:
    keda(live)
    live.get("ScaledObject", "backend")["status"]["conditions"][0] = condition(
        "Ready", "False", "ScaledObjectCheckFailed", "ScaledObject doesn't have correct scaleTargetRef specification")


def keda_fallback(live: Cluster) -> None:
    keda(live)
    live.get("ScaledObject", "backend")["status"]["conditions"][2] = condition(
        "Fallback", "True", "FallbackExists", "At least one trigger is falling back on this scaled object")


@dataclass(frozen=True)
class Broken:
    variant: str
    breaks: Callable[[Cluster], None]
    expected: frozenset[tuple[str, str]]  # (rule id, Kind/namespace/name)


def _expect(*pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(tuple(pair.split(" ")) for pair in pairs)


BACKEND, FRONTEND = f"Deployment/{NS}/backend", f"Deployment/{NS}/frontend"
BACKEND_PDB = f"PodDisruptionBudget/{NS}/backend"

# name -> the broken variant and exactly what it must produce (a cascade included: a pod down is also a
# replica missing from its Deployment and a disruption its PDB can no longer allow).
BROKEN: dict[str, Broken] = {
    "pod-not-ready": Broken("production", pod_not_ready,
                            _expect(f"RUN001 {BACKEND}", f"RUN007 {BACKEND}", f"RUN012 {BACKEND_PDB}")),
    "crash-loop": Broken("production", crash_loop,
                         _expect(f"RUN002 {BACKEND}", f"RUN007 {BACKEND}", f"RUN012 {BACKEND_PDB}")),
    "image-pull": Broken("production", image_pull, _expect(f"RUN003 {FRONTEND}")),
    "oom-killed": Broken("production", oom_killed, _expect(f"RUN004 {BACKEND}")),
    "restarts": Broken("production", restarts, _expect(f"RUN005 {FRONTEND}")),
    "unschedulable": Broken("production", unschedulable,
                            _expect(f"RUN006 {BACKEND}", f"RUN007 {BACKEND}", f"RUN012 {BACKEND_PDB}")),
    "deployment-stuck": Broken("production", deployment_stuck, _expect(f"RUN008 {BACKEND}", f"RUN001 {BACKEND}")),
    "deployment-paused": Broken("production", deployment_paused, _expect(f"RUN009 {FRONTEND}")),
    "hpa-metrics": Broken("production", hpa_metrics, _expect(f"RUN010 HorizontalPodAutoscaler/{NS}/backend")),
    "hpa-at-max": Broken("production", hpa_at_max, _expect(f"RUN011 HorizontalPodAutoscaler/{NS}/frontend")),
    "external-secret": Broken("production", external_secret_failing,
                              _expect(f"RUN013 ExternalSecret/{NS}/backend-db-credentials")),
    "container-config-error": Broken("production", container_config_error, _expect(
        f"RUN013 ExternalSecret/{NS}/backend-db-credentials", f"RUN017 {BACKEND}", f"RUN007 {BACKEND}",
        f"RUN012 {BACKEND_PDB}")),
    "no-ready-endpoints": Broken("production", no_ready_endpoints, _expect(
        f"RUN001 {BACKEND}", f"RUN007 {BACKEND}", f"RUN012 {BACKEND_PDB}", f"RUN015 Service/{NS}/backend")),
    "pod-evicted": Broken("production", pod_evicted, _expect(f"RUN001 {FRONTEND}")),
    # A copy of a backend pod under other labels: no controller, and the backend's egress to the
    # database no longer selects it although its environment still names the database Service.
    "bare-pod": Broken("production", bare_pod, _expect(f"RUN016 Pod/{NS}/backend-debug",
                                                       f"NET011 Pod/{NS}/backend-debug")),
    # A budget that selects pods by a label a mutating webhook added: only the live pods show it selects any.
    "webhook-labelled-pods": Broken("production", webhook_labelled_pods, frozenset()),
    "cronjob-image-pull": Broken("production", cronjob_image_pull,
                                 _expect(f"RUN003 CronJob/{NS}/tbyte-policy-audit")),
    "rollout-aborted": Broken("canary", rollout_aborted, _expect(f"RUN008 Rollout/{NS}/frontend")),
    "rollout-paused": Broken("canary", rollout_paused, _expect(f"RUN009 Rollout/{NS}/frontend")),
    "rollout-canary-step": Broken("canary", rollout_canary_step, frozenset()),
    "statefulset-down": Broken("in-cluster-db", statefulset_down, _expect(
        f"RUN002 StatefulSet/{NS}/postgres", f"RUN005 StatefulSet/{NS}/postgres", f"RUN007 StatefulSet/{NS}/postgres",
        f"RUN015 Service/{NS}/postgres")),
    "keda": Broken("production", keda, frozenset()),
    "keda-not-ready": Broken("production", keda_not_ready, _expect(f"RUN014 ScaledObject/{NS}/backend")),
    "keda-fallback": Broken("production", keda_fallback, _expect(f"RUN014 ScaledObject/{NS}/backend")),
}


def broken(name: str) -> Cluster:
    variant = BROKEN[name]
    live = cluster(variant.variant)
    variant.breaks(live)
    return live.settle()
