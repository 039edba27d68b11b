"""Hypothesis strategies that mutate the seed manifests: parsed objects (structure and meaning), then the text
and the bytes a file is made of.

A case is one input file as bytes plus the name it is scanned under (``.yaml`` or ``.json``): every strategy
here ends in ``cases`` or ``texts``, so the properties see exactly what a user could save and scan.
"""

from __future__ import annotations

import copy
import json
import sys
from contextlib import contextmanager
from typing import Any, NamedTuple

import yaml
from hypothesis import event
from hypothesis import strategies as st

from fuzz.corpus import SEED_OBJECTS, SEED_TEXTS
from tbyte_policy.model import POD_TEMPLATE_POINTERS

POD_BEARING = {
    "Pod": ["v1"], "Deployment": ["apps/v1"], "StatefulSet": ["apps/v1"], "DaemonSet": ["apps/v1"],
    "ReplicaSet": ["apps/v1"], "Job": ["batch/v1"], "CronJob": ["batch/v1", "batch/v1beta1"],
    "Rollout": ["argoproj.io/v1alpha1"],
}
CUSTOM = {
    "ExternalSecret": ["external-secrets.io/v1", "external-secrets.io/v1beta1"],
    "SecretStore": ["external-secrets.io/v1", "external-secrets.io/v1beta1"],
    "ClusterSecretStore": ["external-secrets.io/v1"], "ScaledObject": ["keda.sh/v1alpha1"],
    "AnalysisTemplate": ["argoproj.io/v1alpha1"], "Certificate": ["cert-manager.io/v1"],
}
OTHER = {
    "HorizontalPodAutoscaler": ["autoscaling/v2", "autoscaling/v1", "autoscaling/v2beta2"],
    "PodDisruptionBudget": ["policy/v1", "policy/v1beta1"], "NetworkPolicy": ["networking.k8s.io/v1"],
    "Ingress": ["networking.k8s.io/v1", "extensions/v1beta1"], "Service": ["v1"], "Secret": ["v1"],
    "ConfigMap": ["v1"], "Namespace": ["v1"], "List": ["v1"], "ServiceAccount": ["v1"],
}
KINDS = {**POD_BEARING, **CUSTOM, **OTHER}
API_VERSIONS = sorted({version for versions in KINDS.values() for version in versions} | {"v2", "apps/v1beta1", ""})

# --- values of odd shape ---------------------------------------------------------------------------------

ODD_CHARACTERS = [
    "\u202e", "\u202d", "\u200f", "\u200b", "\u200d", "\ufeff", "\u2028", "\u2029", "\u0085", "\x7f", "\x1b",
    "\x07", "\x0b", "\x0c", "\t", "\r", "\ud800", "\udfff", "\U0001f600", "\u0301", "\uffff", "\ufffd",
    "\x00", "\\", "\"", "'", ":", "#", "&", "*", "!", "|", ">", "%", "@", "`", "{", "}", "[", "]", ",", "-",
    "\u00e9", "\u4e2d", "\u0627", "\u00b2", "\u0661", "\u2460", "\u00bd", "\uff15",
]
odd_text = st.one_of(
    st.text(max_size=30),
    st.text(st.sampled_from(ODD_CHARACTERS), max_size=20),
    st.lists(st.sampled_from(["a", "0", *ODD_CHARACTERS]), max_size=20).map("".join),
    st.integers(1_000, 30_000).map(lambda size: "x" * size),
    st.sampled_from(["", " ", "-", "~", "null", "yes", "no", "on", "off", "y", "n", "true", "False", "0o17", "0x1F",
                     "1:30:00", ".inf", "-.inf", ".nan", "1e3", "0b101", "2001-12-14t21:59:43.10-05:00", "<<",
                     "{{ .Values.x }}", "${SECRET}", "!Ref", "*", "&a", "---", "...", "%YAML 1.1"]),
)
numbers = st.one_of(
    st.integers(-2**70, 2**70), st.sampled_from([0, -1, 1, 2**31, 2**31 - 1, -2**31 - 1, 2**63, -2**63 - 1,
                                                 2**64, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.5, -0.0, 1e308, 5e-324, 1.5, 80.0]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, odd_text)
garbage = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(odd_text, inner, max_size=3)),
                       max_leaves=10)

ports = st.one_of(st.sampled_from([0, -1, 65535, 65536, 80.5, 2**31, 2**63, "80", "http", "HTTP", "web-", "a" * 16,
                                   "\u00b2", "\u0668\u0660", "\uff18\uff10",
                                   "", "8080/tcp", "0x50", None, True, "nan", float("nan"), float("inf"),
                                   "-1", "1e3", " 80"]), numbers, odd_text)
quantities = st.one_of(
    st.sampled_from(["1e999999999", "1e308Ei", "1e-999999999", "-1", "-100m", "0", "", "m", "Ki", "1.5.5", ".5",
                     "5.", "1E", "1e", "1ki", "1KI", "1Ki ", " 1", "+1", "1_000", "0x10", "NaN", "Infinity", "inf",
                     "1.0e+3", "100000000000000000000000000000Pi", "9" * 400, "0.0000000000000000000001", "1n",
                     "1u", "1µ", "1Mi", "12.5%", "1e3m", "1.5e3Mi"]),
    numbers, odd_text)
percents = st.one_of(
    st.sampled_from(["150%", "%", "1.5%", "-10%", "0%", "100%", "101%", "1e3%", "%50", "50 %", "50%%", "\u0665\u0660%",
                     "abc", "", "0", "1", "-1", 0, 1, -1, 1.5, 2**63, True, None, "50%\u200b", "\u00b2%",
                     "\uff15\uff10%", "+5%", "05%"]),
    numbers, odd_text)
counts = st.one_of(st.sampled_from([0, -1, 1, 2**31, 2**63, 1.5, "3", "", None, True, float("nan")]), numbers)
operators = st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "in", "", "Equals", "!=", None, 1])
label_values = st.one_of(st.sampled_from(["", "a" * 64, "-a", "a-", "a b", "a/b", "ü", None, 1, True, []]), odd_text)
match_expressions = st.lists(st.fixed_dictionaries(
    {"key": st.one_of(st.sampled_from(["app", "", "a/b/c", "k" * 300]), odd_text), "operator": operators},
    optional={"values": st.one_of(st.lists(label_values, max_size=3), scalars)}), max_size=3)
selectors = st.one_of(
    st.fixed_dictionaries({}, optional={"matchLabels": st.one_of(st.dictionaries(odd_text, label_values, max_size=3),
                                                                  scalars),
                                        "matchExpressions": st.one_of(match_expressions, scalars)}),
    st.dictionaries(odd_text, label_values, max_size=3), scalars)

# Fields whose meaning the rules read, and the odd values each may take.
SEMANTIC_FIELDS: dict[str, st.SearchStrategy] = {
    "containerPort": ports, "port": ports, "targetPort": ports, "number": ports, "endPort": ports,
    "hostPort": ports, "nodePort": ports,
    "cpu": quantities, "memory": quantities, "ephemeral-storage": quantities, "storage": quantities,
    "nvidia.com/gpu": quantities, "averageValue": quantities, "value": st.one_of(quantities, odd_text),
    "maxUnavailable": percents, "maxSurge": percents, "minAvailable": percents, "setWeight": percents,
    "weight": percents, "averageUtilization": percents,
    "replicas": counts, "minReplicas": counts, "maxReplicas": counts, "revisionHistoryLimit": counts,
    "initialDelaySeconds": counts, "periodSeconds": counts, "timeoutSeconds": counts, "failureThreshold": counts,
    "successThreshold": counts, "terminationGracePeriodSeconds": counts, "progressDeadlineSeconds": counts,
    "minReadySeconds": counts, "runAsUser": counts, "runAsGroup": counts, "fsGroup": counts,
    "selector": selectors, "podSelector": selectors, "namespaceSelector": selectors, "matchLabels": selectors,
    "matchExpressions": match_expressions, "operator": operators,
    "kind": st.one_of(st.sampled_from(sorted(KINDS)), odd_text), "apiVersion": st.sampled_from(API_VERSIONS),
    "name": st.one_of(st.sampled_from(["", "a" * 300, "UPPER", "-a", "a.b", "*"]), odd_text, counts),
    "image": st.one_of(st.sampled_from(["", "nginx", "nginx:latest", "a@sha256:", "a:b:c", "ghcr.io/x:1@sha256:00",
                                        "UPPER/Case:1", ":", "@"]), odd_text),
    "imagePullPolicy": st.sampled_from(["Always", "IfNotPresent", "Never", "always", "", None, 1]),
    "protocol": st.sampled_from(["TCP", "UDP", "SCTP", "tcp", "", None, 6]),
    "type": st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "Resource", "Pods",
                             "Object", "External", "ContainerResource", "RollingUpdate", "Recreate", "Opaque",
                             "kubernetes.io/tls", "", None, 1]),
    "policyTypes": st.one_of(st.lists(st.sampled_from(["Ingress", "Egress", "ingress", "", "Both"]), max_size=3),
                             scalars),
    "ingress": garbage, "egress": garbage, "from": garbage, "to": garbage, "ipBlock": garbage,
    "cidr": st.sampled_from(["10.0.0.0/8", "0.0.0.0/0", "::/0", "10.0.0.0/33", "10.0.0.0", "x", "", "1.2.3.4/-1"]),
    "except": st.lists(st.sampled_from(["10.0.0.0/24", "a", "", "::1/128"]), max_size=3),
    "scaleTargetRef": st.fixed_dictionaries({}, optional={"apiVersion": st.sampled_from(API_VERSIONS),
                                                          "kind": st.sampled_from(sorted(KINDS)),
                                                          "name": st.one_of(st.just("web"), odd_text)}),
    "workloadRef": st.fixed_dictionaries({}, optional={"apiVersion": st.sampled_from(API_VERSIONS),
                                                       "kind": st.sampled_from(sorted(KINDS)),
                                                       "name": st.one_of(st.just("web"), odd_text)}),
    "metrics": garbage, "behavior": garbage, "rules": garbage, "paths": garbage, "backend": garbage, "tls": garbage,
    "service": garbage, "hosts": garbage, "host": odd_text, "path": odd_text, "pathType": st.sampled_from(
        ["Prefix", "Exact", "ImplementationSpecific", "prefix", "", None]),
    "ingressClassName": odd_text, "schedule": st.sampled_from(["* * * * *", "@daily", "", "61 * * * *", "x", None]),
    "strategy": garbage, "canary": garbage, "steps": garbage, "analysis": garbage, "trafficRouting": garbage,
    "data": garbage, "stringData": garbage, "env": garbage, "envFrom": garbage, "valueFrom": garbage,
    "annotations": st.one_of(st.dictionaries(odd_text, st.one_of(odd_text, scalars), max_size=3), scalars),
    "labels": st.one_of(st.dictionaries(odd_text, label_values, max_size=3), scalars),
    "namespace": st.one_of(st.sampled_from(["", "kube-system", "default", "UPPER"]), odd_text, counts),
    "securityContext": garbage, "resources": garbage, "livenessProbe": garbage, "readinessProbe": garbage,
    "startupProbe": garbage, "httpGet": garbage, "tcpSocket": garbage, "grpc": garbage, "exec": garbage,
    "containers": garbage, "initContainers": garbage, "volumes": garbage, "template": garbage, "spec": garbage,
    "metadata": garbage, "items": garbage, "triggers": garbage, "provider": garbage, "secretStoreRef": garbage,
    "issuerRef": garbage, "dnsNames": garbage, "secretName": odd_text, "duration": odd_text,
}


# --- mutations of parsed objects --------------------------------------------------------------------------

def paths_of(node: Any, prefix: tuple = ()):
    """Every node's path; not below depth 40, where only a nesting mutation puts anything."""
    yield prefix
    if len(prefix) >= 40:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths_of(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths_of(value, (*prefix, index))


def _at(document: Any, path: tuple) -> Any:
    for part in path:
        document = document[part]
    return document


def nested(depth: int, leaf: Any, as_list: bool) -> Any:
    for _ in range(depth):
        leaf = [leaf] if as_list else {"a": leaf}
    return leaf


@st.composite
def structural_mutation(draw, documents: list) -> None:
    """Delete, retype, replace, duplicate, nest or transplant one node of one document, in place."""
    document = draw(st.sampled_from(documents))
    candidates = [path for path in paths_of(document) if path]
    if not candidates:
        return
    path = draw(st.sampled_from(candidates))
    parent, key = _at(document, path[:-1]), path[-1]
    action = draw(st.sampled_from(["delete", "retype", "garbage", "duplicate", "nest", "transplant", "rename",
                                   "null"]))
    event(f"object: {action}")
    if action == "delete":
        del parent[key]
    elif action == "retype":
        parent[key] = draw(scalars)
    elif action == "garbage":
        parent[key] = draw(garbage)
    elif action == "null":
        parent[key] = None
    elif action == "duplicate":
        # A list item twice (the same container name, port, env name), or a map copied into a sibling key.
        value = copy.deepcopy(parent[key])
        if isinstance(parent, list):
            parent.insert(key, value)
        else:
            parent[draw(odd_text)] = value
    elif action == "nest":
        parent[key] = nested(draw(st.sampled_from([50, 300, 999, 1000, 1500, 5000])), parent[key], draw(st.booleans()))
    elif action == "transplant":
        other = draw(st.sampled_from(SEED_OBJECTS))
        other_paths = [p for p in paths_of(other) if p]
        parent[key] = copy.deepcopy(_at(other, draw(st.sampled_from(other_paths)))) if other_paths else None
    elif isinstance(parent, dict):  # rename
        parent[draw(odd_text)] = parent.pop(key)


@st.composite
def semantic_mutation(draw, documents: list) -> None:
    """Give a field the rules read an odd value, or swap an object's kind and apiVersion, in place."""
    document = draw(st.sampled_from(documents))
    if not isinstance(document, dict):
        return
    if draw(st.integers(0, 3)) == 0:
        group = draw(st.sampled_from([POD_BEARING, CUSTOM, KINDS]))
        document["kind"] = draw(st.sampled_from(sorted(group)))
        document["apiVersion"] = draw(st.sampled_from([*group[document["kind"]], *API_VERSIONS]))
        event("semantic: kind and apiVersion swapped")
        return
    fields = [path for path in paths_of(document) if path and isinstance(path[-1], str)
              and path[-1] in SEMANTIC_FIELDS]
    if not fields:
        return
    path = draw(st.sampled_from(fields))
    _at(document, path[:-1])[path[-1]] = draw(SEMANTIC_FIELDS[path[-1]])
    event(f"semantic: {path[-1]}")


booleans_of_any_type = st.one_of(st.booleans(), st.sampled_from(["true", "yes", 1, 0, None, "False", []]))
probes = st.fixed_dictionaries({}, optional={
    "httpGet": st.fixed_dictionaries({"port": ports}, optional={"path": odd_text, "scheme": odd_text}),
    "tcpSocket": st.fixed_dictionaries({"port": ports}), "grpc": st.fixed_dictionaries({"port": ports}),
    "exec": st.fixed_dictionaries({"command": st.one_of(st.lists(odd_text, max_size=3), scalars)}),
    "periodSeconds": counts, "timeoutSeconds": counts, "failureThreshold": counts, "initialDelaySeconds": counts})
# Fields the rules read that the seeds may not set, at their place in a pod-bearing object's pod spec (the
# first container's, for the container fields), with the odd values each may take.
POD_INJECTIONS: dict[tuple, st.SearchStrategy] = {
    ("containers", 0, "ports"): st.lists(st.fixed_dictionaries({"containerPort": ports}, optional={
        "name": st.one_of(st.sampled_from(["http", "web", "metrics"]), odd_text),
        "protocol": SEMANTIC_FIELDS["protocol"]}), max_size=3),
    ("containers", 0, "readinessProbe"): probes, ("containers", 0, "livenessProbe"): probes,
    ("containers", 0, "startupProbe"): probes,
    ("containers", 0, "resources"): st.fixed_dictionaries({}, optional={
        "requests": st.dictionaries(st.sampled_from(["cpu", "memory", "ephemeral-storage", "nvidia.com/gpu"]),
                                    quantities, max_size=3),
        "limits": st.dictionaries(st.sampled_from(["cpu", "memory", "ephemeral-storage"]), quantities, max_size=3)}),
    ("containers", 0, "env"): st.lists(st.fixed_dictionaries({"name": st.one_of(st.sampled_from(
        ["DB_PASSWORD", "API_TOKEN", "X"]), odd_text)}, optional={"value": st.one_of(odd_text, scalars),
                                                                    "valueFrom": garbage}), max_size=3),
    ("containers", 0, "securityContext"): st.fixed_dictionaries({}, optional={
        "privileged": booleans_of_any_type, "runAsNonRoot": booleans_of_any_type, "runAsUser": counts,
        "readOnlyRootFilesystem": booleans_of_any_type, "allowPrivilegeEscalation": booleans_of_any_type,
        "capabilities": st.fixed_dictionaries({}, optional={"add": st.one_of(st.lists(odd_text, max_size=3), scalars),
                                                            "drop": st.one_of(st.lists(st.sampled_from(
                                                                ["ALL", "all", "NET_RAW", ""]), max_size=3),
                                                                scalars)}),
        "seccompProfile": garbage}),
    ("containers", 0, "image"): SEMANTIC_FIELDS["image"],
    ("containers", 0, "imagePullPolicy"): SEMANTIC_FIELDS["imagePullPolicy"],
    ("containers", 0, "restartPolicy"): st.sampled_from(["Always", "Never", "", None, 1]),
    ("initContainers",): st.lists(st.fixed_dictionaries({"name": odd_text}, optional={
        "restartPolicy": st.sampled_from(["Always", "Never", None]), "image": odd_text, "readinessProbe": probes}),
        max_size=2),
    ("securityContext",): garbage, ("affinity",): garbage, ("topologySpreadConstraints",): garbage,
    ("automountServiceAccountToken",): booleans_of_any_type, ("hostNetwork",): booleans_of_any_type,
    ("terminationGracePeriodSeconds",): counts, ("priorityClassName",): odd_text, ("volumes",): garbage,
}
WORKLOAD_INJECTIONS: dict[tuple, st.SearchStrategy] = {
    ("spec", "replicas"): counts, ("spec", "minReadySeconds"): counts,
    ("spec", "strategy"): st.one_of(
        st.fixed_dictionaries({"type": SEMANTIC_FIELDS["type"]}, optional={"rollingUpdate": st.fixed_dictionaries(
            {}, optional={"maxUnavailable": percents, "maxSurge": percents})}),
        st.fixed_dictionaries({"canary": st.fixed_dictionaries({}, optional={
            "steps": st.lists(st.one_of(st.fixed_dictionaries({"setWeight": percents}),
                                        st.fixed_dictionaries({"pause": st.fixed_dictionaries(
                                            {}, optional={"duration": st.one_of(odd_text, counts)})}),
                                        garbage), max_size=3),
            "maxUnavailable": percents, "maxSurge": percents, "canaryService": odd_text,
            "stableService": odd_text, "analysis": garbage, "trafficRouting": garbage})})),
    ("spec", "selector"): selectors, ("spec", "updateStrategy"): garbage, ("spec", "podManagementPolicy"): odd_text,
}


@st.composite
def injection(draw, documents: list) -> None:
    """Set a field the rules read, which the seed may lack, on a pod-bearing object, in place."""
    workloads = [document for document in documents if isinstance(document, dict)
                 and isinstance(document.get("kind"), str) and document["kind"] in POD_TEMPLATE_POINTERS
                 and isinstance(document.get("spec"), dict)]
    if not workloads:
        return
    document = draw(st.sampled_from(workloads))
    if draw(st.booleans()):
        path = draw(st.sampled_from(sorted(WORKLOAD_INJECTIONS, key=str)))
        value, node = draw(WORKLOAD_INJECTIONS[path]), document
    else:
        path = draw(st.sampled_from(sorted(POD_INJECTIONS, key=str)))
        value, node = draw(POD_INJECTIONS[path]), document
        for part in [part for part in POD_TEMPLATE_POINTERS[document["kind"]].split("/") if part] + ["spec"]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else {}
    for part in path[:-1]:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and len(node) > part else None
        else:
            node = node.setdefault(part, {} if not isinstance(path[path.index(part) + 1], int) else [{}]) \
                if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node[path[-1]] = value
        event(f"injected: {'/'.join(map(str, path))}")


def companion(name: str, labels: Any) -> st.SearchStrategy:
    """An HPA, PDB, NetworkPolicy, Service or Ingress aimed at a workload of the run, with odd fields."""
    metadata = st.fixed_dictionaries({"name": st.sampled_from([name, f"{name}-x"])})
    target = st.fixed_dictionaries({"apiVersion": st.sampled_from(API_VERSIONS),
                                    "kind": st.sampled_from(sorted(POD_BEARING)), "name": st.just(name)})
    return st.one_of(
        st.fixed_dictionaries({"apiVersion": st.sampled_from(OTHER["HorizontalPodAutoscaler"]),
                               "kind": st.just("HorizontalPodAutoscaler"), "metadata": metadata,
                               "spec": st.fixed_dictionaries({"scaleTargetRef": target}, optional={
                                   "minReplicas": counts, "maxReplicas": counts, "metrics": garbage,
                                   "behavior": garbage, "targetCPUUtilizationPercentage": percents})}),
        st.fixed_dictionaries({"apiVersion": st.sampled_from(OTHER["PodDisruptionBudget"]),
                               "kind": st.just("PodDisruptionBudget"), "metadata": metadata,
                               "spec": st.fixed_dictionaries({"selector": st.one_of(
                                   st.just({"matchLabels": labels}), selectors)}, optional={
                                   "minAvailable": percents, "maxUnavailable": percents,
                                   "unhealthyPodEvictionPolicy": odd_text})}),
        st.fixed_dictionaries({"apiVersion": st.just("networking.k8s.io/v1"), "kind": st.just("NetworkPolicy"),
                               "metadata": metadata,
                               "spec": st.fixed_dictionaries({"podSelector": st.one_of(
                                   st.just({"matchLabels": labels}), selectors)}, optional={
                                   "policyTypes": SEMANTIC_FIELDS["policyTypes"], "ingress": garbage,
                                   "egress": st.lists(st.fixed_dictionaries({}, optional={
                                       "to": st.lists(st.fixed_dictionaries({}, optional={
                                           "ipBlock": st.fixed_dictionaries({"cidr": SEMANTIC_FIELDS["cidr"]}),
                                           "podSelector": selectors, "namespaceSelector": selectors}), max_size=2),
                                       "ports": st.lists(st.fixed_dictionaries({}, optional={
                                           "port": ports, "endPort": ports, "protocol": SEMANTIC_FIELDS["protocol"]}),
                                           max_size=2)}), max_size=2)})}),
        st.fixed_dictionaries({"apiVersion": st.just("v1"), "kind": st.just("Service"), "metadata": metadata,
                               "spec": st.fixed_dictionaries({"selector": st.one_of(st.just(labels), selectors)},
                                                             optional={"type": SEMANTIC_FIELDS["type"],
                                                                       "ports": st.lists(st.fixed_dictionaries(
                                                                           {"port": ports},
                                                                           optional={"targetPort": ports,
                                                                                     "name": odd_text}),
                                                                           max_size=3)})}),
        st.fixed_dictionaries({"apiVersion": st.sampled_from(OTHER["Ingress"]), "kind": st.just("Ingress"),
                               "metadata": metadata,
                               "spec": st.fixed_dictionaries({}, optional={"rules": st.lists(st.fixed_dictionaries(
                                   {}, optional={"host": odd_text, "http": st.fixed_dictionaries({"paths": st.lists(
                                       st.fixed_dictionaries({"backend": st.fixed_dictionaries({"service": st.
                                                              fixed_dictionaries({"name": st.just(name)},
                                                                                 optional={"port": st.one_of(
                                                                                     st.fixed_dictionaries(
                                                                                         {"number": ports}),
                                                                                     st.fixed_dictionaries(
                                                                                         {"name": ports}),
                                                                                     garbage)})})},
                                                             optional={"path": odd_text,
                                                                       "pathType": SEMANTIC_FIELDS["pathType"]}),
                                       max_size=2)})}), max_size=2), "tls": garbage,
                                   "defaultBackend": garbage})}),
    )


def _workload_of(documents: list) -> tuple[str, Any] | None:
    for document in documents:
        if isinstance(document, dict) and isinstance(document.get("kind"), str) and document["kind"] in POD_BEARING:
            metadata = document.get("metadata")
            name = metadata.get("name") if isinstance(metadata, dict) else None
            spec = document.get("spec")
            selector = spec.get("selector") if isinstance(spec, dict) else None
            labels = selector.get("matchLabels") if isinstance(selector, dict) else None
            if isinstance(name, str):
                return name, labels
    return None


@contextmanager
def deep_recursion():
    """Room for deepcopy and the emitters, which recurse per level of a nesting mutation (5000 levels)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 50_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


@st.composite
def mutated_objects(draw) -> list:
    """A few seed objects (from the same file or not), mutated; sometimes with a companion object aimed at
    one of their workloads."""
    documents = copy.deepcopy(draw(st.lists(st.sampled_from(SEED_OBJECTS), min_size=1, max_size=5)))
    workload = _workload_of(documents)
    if workload is not None and draw(st.booleans()):
        documents.append(draw(companion(*workload)))
        event(f"companion: {documents[-1]['kind']}")
    with deep_recursion():
        for _ in range(draw(st.integers(1, 6))):
            draw(draw(st.sampled_from([structural_mutation, semantic_mutation, injection]))(documents))
    return documents


# --- serialisation ----------------------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    """Dumps what the mutations make: strings with lone surrogates and 1000 levels of nesting included."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if any("\ud800" <= character <= "\udfff" for character in value):
        # YAML cannot carry a lone surrogate as text; its \u escape can (and libyaml reads it back).
        escaped = json.dumps(value)
        return yaml.ScalarNode("tag:yaml.org,2002:str", escaped[1:-1].replace('\\"', '"'), style='"')
    return dumper.represent_str(value)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(documents: list, flow: bool) -> str:
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                         default_flow_style=flow, width=80)


def dump_json(documents: list) -> str:
    # One object per file is JSON; more are a JSON stream, which is YAML (kubectl reads it so too).
    return "\n---\n".join(json.dumps(document, indent=2, ensure_ascii=False) for document in documents)


def _dump(documents: list, style: str) -> str:
    with deep_recursion():
        return dump_json(documents) if style == "json" else dump_yaml(documents, style == "flow")


class Case(NamedTuple):
    """One input file: its bytes and the name it is scanned under."""

    name: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "surrogatepass")


@st.composite
def object_cases(draw) -> Case:
    documents = draw(mutated_objects())
    style = draw(st.sampled_from(["block", "flow", "json"]))
    event(f"written as {style}")
    text = _dump(documents, style)
    return Case("mutated.json" if style == "json" and len(documents) == 1 else "mutated.yaml",
                text.encode("utf-8", "surrogatepass"))


# --- mutations of text ------------------------------------------------------------------------------------

YAML11_SCALARS = ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "True", "~", "null", "Null", "0o17", "017",
                  "0x1F", "0b1010", "1:30:00", "190:20:30.15", ".inf", "-.inf", ".NaN", "1_000", "+12", "1e3",
                  "2001-12-14", "2001-12-14t21:59:43.10-05:00", "=", "<<", "''", '""']
TAGS = ["!!binary", "!!python/object:os.system", "!!python/object/apply:os.system", "!!python/name:os.system",
        "!!python/tuple", "!custom", "!Ref", "!", "!!str", "!!int", "!!float", "!!bool", "!!null", "!!set", "!!omap",
        "!!pairs", "!!timestamp", "!!map", "!!seq", "!<tag:example.com,2000:x>", "!e!x", "!!merge"]
# Were a Python tag ever constructed, this file would appear (harness.check_run looks for it).
CANARY = "/tmp/tbyte-policy-fuzz-canary"
SNIPPETS = [
    f'x: !!python/object/apply:os.system ["touch {CANARY}"]\n',
    f"- !!python/object/apply:subprocess.check_call [[touch, {CANARY}]]\n",
    # billion laughs, small enough to write, too large to expand
    "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
    "base: &base {a: 1}\nmerged:\n  <<: *base\n  <<: [*base, *base]\n", "x: &x\n  <<: *x\n", "<<: 1\n",
    "<<: [1, 2]\n", "k: *undefined\n", "&a a: *a\n", "? [a, b]\n: c\n", "? {a: b}\n: c\n", "%YAML 1.1\n---\n",
    "%TAG !e! tag:example.com,2000:\n---\n", "...\n", "---\n", "--- |\n  text\n", "- a\n- b\n", "\t\n",
    "a: b: c\n", "a: 'unterminated\n", 'a: "unterminated\n', "a: [1, 2\n", "a: {b: 1\n", "  - x\n", "@\n", "`\n",
    "? \n", "a:\n- b\n  c\n", "{\"a\": 1, \"a\": 2}\n", "\u2028\n", "\u0085\n",
]


@st.composite
def text_mutation(draw, text: str) -> str:
    lines = text.split("\n")
    action = draw(st.sampled_from(["truncate", "insert", "duplicate-line", "delete-line", "crlf", "scalar", "tag",
                                   "snippet", "anchor", "indent", "bom-key", "nest"]))
    event(f"text: {action}")
    if action == "truncate":
        return text[:draw(st.integers(0, len(text)))]
    if action == "insert":
        position = draw(st.integers(0, len(text)))
        return text[:position] + draw(odd_text) + text[position:]
    if action == "crlf":
        return text.replace("\n", draw(st.sampled_from(["\r\n", "\r", "\n\r", "\u2028"])))
    if action == "snippet":
        position = draw(st.integers(0, len(lines)))
        return "\n".join([*lines[:position], *draw(st.sampled_from(SNIPPETS)).split("\n"), *lines[position:]])
    if action == "nest":
        depth = draw(st.sampled_from([100, 999, 1000, 1001, 3000, 20_000]))
        bracket = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", "")]))
        value = bracket[0] * depth + "x" + bracket[1] * depth if bracket[1] else "".join(
            "  " * level + "- " + "\n" for level in range(min(depth, 1500))) + "  " * min(depth, 1500) + "x"
        return text + f"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\ndata:\n  k: {value}\n"
    if not lines:
        return text
    index = draw(st.integers(0, len(lines) - 1))
    line = lines[index]
    if action == "duplicate-line":
        lines.insert(index, line)
    elif action == "delete-line":
        del lines[index]
    elif action == "indent":
        lines[index] = draw(st.sampled_from(["\t", " ", "   ", "\u3000", "\u00a0"])) + line
    elif action == "bom-key":
        stripped = line.lstrip(" -")
        lines[index] = line[:len(line) - len(stripped)] + "\ufeff" + stripped
    elif ": " in line or line.endswith(":"):
        head, _, value = line.partition(":")
        if action == "scalar":
            value = " " + draw(st.sampled_from(YAML11_SCALARS))
        elif action == "tag":
            value = " " + draw(st.sampled_from(TAGS)) + value
        else:  # anchor here, alias on another line
            name = draw(st.sampled_from(["a", "b", "x"]))
            value = f" &{name}{value}"
            target = draw(st.integers(0, len(lines) - 1))
            if ":" in lines[target]:
                target_head = lines[target].partition(":")[0]
                lines[target] = f"{target_head}: *{name}"
        lines[index] = head + ":" + value
    return "\n".join(lines)


@st.composite
def mutated_texts(draw) -> str:
    """A seed file's text, or a mutated object set's, changed a few times as text."""
    text = draw(st.one_of(st.sampled_from([text for _, text in SEED_TEXTS]), object_cases().map(lambda c: c.text)))
    for _ in range(draw(st.integers(1, 4))):
        text = draw(text_mutation(text))
    return text


# --- bytes ------------------------------------------------------------------------------------------------

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
             "latin-1", "cp1252"]


@st.composite
def encoded(draw, text: str) -> bytes:
    encoding = draw(st.sampled_from(ENCODINGS))
    data = text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")
    action = draw(st.sampled_from(["none", "truncate", "flip", "invalid", "bom"]))
    event(f"bytes: {encoding}, {action}")
    if action == "truncate":
        return data[:draw(st.integers(0, len(data)))]
    if action == "flip":
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        return data[:position] + bytes([draw(st.integers(0, 255))]) + data[position + 1:]
    if action == "invalid":
        position = draw(st.integers(0, len(data)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                     b"\xc0\xaf", b"\x80", b"\xfe\xff", b"\x00"]))
        return data[:position] + junk + data[position:]
    if action == "bom":
        return draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00",
                                     b"\xef\xbb\xbf\xef\xbb\xbf"])) + data
    return data


@st.composite
def text_cases(draw) -> Case:
    text = draw(mutated_texts())
    name = draw(st.sampled_from(["mutated.yaml", "mutated.yml", "mutated.json"]))
    return Case(name, text.encode("utf-8", "surrogatepass"))


@st.composite
def byte_cases(draw) -> Case:
    text = draw(st.one_of(st.sampled_from([text for _, text in SEED_TEXTS]), mutated_texts()))
    return Case(draw(st.sampled_from(["mutated.yaml", "mutated.json"])), draw(encoded(text)))


cases = st.one_of(object_cases(), text_cases(), byte_cases())


# --- planted secrets --------------------------------------------------------------------------------------

@st.composite
def secret_preserving(draw, text: str) -> bytes:
    """The planted manifest written another way that keeps every value where it was: another encoding with its
    BOM, other line ends, a BOM before keys, flow style or JSON, the value inside a JSON object."""
    action = draw(st.sampled_from(["encoding", "crlf", "bom-keys", "flow", "json", "json-fallback",
                                   "json-object-value"]))
    event(f"planted secret written: {action}")
    if action in ("flow", "json", "json-fallback", "json-object-value"):
        try:
            documents = [document for document in yaml.safe_load_all(text) if document is not None]
        except yaml.YAMLError:
            documents = None
        if documents is not None and action == "json-object-value":
            text = _values_as_json_objects(text)
        elif documents is not None and action == "json-fallback":
            # One JSON object that libyaml refuses (a lone surrogate escape), which the JSON parser then reads:
            # the text format can show none of its lines.
            text = json.dumps({**documents[-1], "x": "\ud800"})
        elif documents is not None:
            text = dump_json(documents) if action == "json" else dump_yaml(documents, flow=True)
    elif action == "crlf":
        text = text.replace("\n", "\r\n")
    elif action == "bom-keys":
        text = "\n".join(line[:len(line) - len(line.lstrip(" -"))] + "\ufeff" + line.lstrip(" -")
                         if ":" in line and draw(st.booleans()) else line for line in text.split("\n"))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"])) if action == "encoding" else "utf-8"
    return text.encode(encoding)


def _values_as_json_objects(text: str) -> str:
    # `password: "v"` becomes `password: '{"password": "v"}'`: a credential file's JSON, as a string value.
    lines = []
    for line in text.split("\n"):
        head, separator, value = line.partition(": ")
        if separator and value.startswith('"') and not head.strip().startswith(("name", "- name", "kind")):
            try:
                inner = json.loads(value)
            except ValueError:
                lines.append(line)
                continue
            line = head + ": " + "'" + json.dumps({"password": inner}) + "'"
        lines.append(line)
    return "\n".join(lines)
