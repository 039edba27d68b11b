"""Workloads and the ports their pods declare, shared by the network-policy and services families."""

from __future__ import annotations

from typing import Any, Iterable

from tbyte_policy.inventory import Inventory
from tbyte_policy.model import PodView, Resource, integer


def workload_pods(resource: Resource, inventory: Inventory) -> PodView | None:
    """The pods ``resource`` runs, or None when another object reports them: a Deployment that a
    Rollout's ``workloadRef`` points at only lends its template; its pods are the Rollout's."""
    if resource in inventory.workload_ref_targets:
        return None
    return inventory.pods_of(resource)


def workload_name(pods: PodView) -> str:
    return f"{pods.resource.kind}/{pods.resource.name}"


def workload_names(pods_list: Iterable[PodView]) -> str:
    return ", ".join(sorted({workload_name(pods) for pods in pods_list}))


def protocol_of(entry: dict) -> str:
    protocol = entry.get("protocol")
    return protocol if isinstance(protocol, str) and protocol else "TCP"


def port_number(value: Any) -> int | None:
    """A port given as a number (or a numeric string, which IntOrString fields also accept)."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return integer(value)


def port_name(value: Any) -> str | None:
    return value if isinstance(value, str) and value and not value.isdigit() else None


def declares_ports(pods: PodView) -> bool:
    return bool(pods.container_ports())


def exposes_range(pods: PodView, low: int, high: int, protocol: str) -> bool:
    return any(isinstance(number := integer(entry.get("containerPort")), int) and low <= number <= high
               and protocol_of(entry) == protocol for entry in pods.container_ports())


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
