"""Workloads and the ports their pods declare, shared by the network-policy and services families."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from tbyte_policy.checks.memo import per_inventory
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import (
    POD_BEARING_KINDS,
    PodView,
    Resource,
    integer,
    is_number_text,
    mapping,
    pod_view,
    sequence,
    string_map,
)

# prometheus-operator runs the pods of these resources, labelled with spec.podMetadata.labels, the managed-by
# and instance labels, and "<this key>: <resource name>".
PROMETHEUS_OPERATOR_KINDS = {"Prometheus": "prometheus", "Alertmanager": "alertmanager", "ThanosRuler": "thanos-ruler"}


def workload_pods(resource: Resource, inventory: Inventory) -> PodView | None:
    """The pods ``resource`` runs, or None when another object reports them: a Deployment that a
    Rollout's ``workloadRef`` points at only lends its template; its pods are the Rollout's."""
    if resource in inventory.workload_ref_targets:
        return None
    return inventory.pods_of(resource)


def workload_names(pods_list: Iterable[PodView]) -> str:
    return ", ".join(sorted({pods.resource.local_ref for pods in pods_list}))


def protocol_of(entry: dict) -> str:
    protocol = entry.get("protocol")
    return protocol if isinstance(protocol, str) and protocol else "TCP"


def port_number(value: Any) -> int | None:
    """A port given as a number (or a numeric string, which IntOrString fields also accept)."""
    if isinstance(value, str) and is_number_text(value):
        return int(value)
    return integer(value)


def port_name(value: Any) -> str | None:
    return value if isinstance(value, str) and value and not is_number_text(value) else None


def declares_ports(pods: PodView) -> bool:
    return bool(pods.container_ports())


def exposes_range(pods: PodView, low: int, high: int, protocol: str) -> bool:
    for entry in pods.container_ports():
        number = integer(entry.get("containerPort"))
        if number is not None and low <= number <= high and protocol_of(entry) == protocol:
            return True
    return False


def describe_ports(pods_list: Iterable[PodView]) -> str:
    """The ports the pods declare, e.g. ``3000/TCP (http)``, for a message."""
    described = set()
    for pods in pods_list:
        for entry in pods.container_ports():
            number = integer(entry.get("containerPort"))
            if number is None:
                continue
            name = entry.get("name")
            described.add(f"{number}/{protocol_of(entry)}" + (f" ({name})" if isinstance(name, str) and name else ""))
    return ", ".join(sorted(described)) if described else "no ports"


def generated_pod_labels(namespace: str | None, inventory: Inventory) -> list[dict]:
    """Labels of pods that the run implies but whose template the inventory does not file as a workload:
    the pods prometheus-operator runs for its resources, those of Argo Rollouts experiments (a Rollout's
    experiment steps, Experiment objects), and workloads another controller owns (an operator's StatefulSet,
    as read from a cluster). For selectors that match no workload before they are reported."""
    return _generated_pods(inventory).get(namespace, [])


@per_inventory
def _generated_pods(inventory: Inventory) -> dict[str | None, list[dict]]:
    found: dict[str | None, list[dict]] = defaultdict(list)
    for kind, key in PROMETHEUS_OPERATOR_KINDS.items():
        for resource in inventory.kind(kind):
            found[resource.namespace].append({
                **string_map(mapping(resource.spec.get("podMetadata")).get("labels")),
                "app.kubernetes.io/managed-by": "prometheus-operator", "app.kubernetes.io/name": key,
                "app.kubernetes.io/instance": resource.name, key: resource.name})
    for rollout in inventory.kind("Rollout"):
        pods = inventory.pods_of(rollout)
        for step in sequence(mapping(mapping(rollout.spec.get("strategy")).get("canary")).get("steps")):
            for template in sequence(mapping(mapping(step).get("experiment")).get("templates")):
                labels = string_map(mapping(mapping(template).get("metadata")).get("labels"))
                found[rollout.namespace].append({**(pods.labels if pods else {}), **labels})
    for experiment in inventory.kind("Experiment"):
        for template in sequence(experiment.spec.get("templates")):
            metadata = mapping(mapping(mapping(template).get("template")).get("metadata"))
            found[experiment.namespace].append(string_map(metadata.get("labels")))
    for kind in POD_BEARING_KINDS:
        for resource in inventory.kind(kind):
            owner = resource.controller_owner
            pods = pod_view(resource) if owner is not None and owner.get("kind") not in POD_BEARING_KINDS else None
            if pods is not None:
                found[resource.namespace].append(pods.labels)
    return found
