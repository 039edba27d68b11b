"""Which workloads and containers serve traffic: the ones a Service routes to. Shared by the probes and hpa
families, whose rules are about serving (readiness gates a Service's endpoints; an autoscaler adds capacity
to a Service).

Not a family module: it registers no checks.

A workload serves when a Service of the run selects its pods (a Service whose every port is a metrics port,
named like `metrics`, `http-metrics` or `telemetry`, is for scraping and does not count). A container serves
when it declares a port, or when it is the only container (native sidecars aside) of pods a Service selects.
Where the run holds no Service of the namespace (a file scanned alone, a live run that could not read
Services), nothing tells a helper from a server, and every workload and container counts as serving.
"""

from __future__ import annotations

from tbyte_policy.checks.memo import per_inventory
from tbyte_policy.inventory import Inventory, SelectorIndex
from tbyte_policy.model import ContainerView, PodView, Resource, mapping, sequence
from tbyte_policy.selectors import map_selector_matches

# Argo Rollouts adds this key to a stable or canary Service's selector at run time, with the hash of a
# ReplicaSet's template; the Rollout's own template never carries it.
ROLLOUT_HASH_LABEL = "rollouts-pod-template-hash"


def service_selector(service: Resource) -> dict | None:
    """The selector that decides the Service's endpoints; None for a Service whose endpoints are not
    chosen by labels (ExternalName, or no selector: endpoints managed by hand or by another controller)."""
    selector = service.spec.get("selector")
    if service.spec.get("type") == "ExternalName" or not isinstance(selector, dict):
        return None
    selector = {key: value for key, value in selector.items() if key != ROLLOUT_HASH_LABEL}
    return selector or None


def _metrics_only(service: Resource) -> bool:
    names = [str(mapping(port).get("name") or mapping(port).get("targetPort") or "")
             for port in sequence(service.spec.get("ports"))]
    return bool(names) and all("metrics" in name or "telemetry" in name for name in names)


@per_inventory
def _services_by_selector(inventory: Inventory) -> SelectorIndex[Resource]:
    index = SelectorIndex[Resource](map_selector_matches)
    for service in inventory.kind("Service"):
        selector = service_selector(service)
        if selector and not _metrics_only(service):
            index.add(service, service.namespace, selector, selector)
    return index


def selecting_services(pods: PodView, inventory: Inventory) -> list[Resource]:
    """The Services of the run whose selector selects these pods."""
    return _services_by_selector(inventory).matching(pods.resource.namespace, pods.labels)


def services_known(namespace: str | None, inventory: Inventory) -> bool:
    """Whether the run can tell which pods of ``namespace`` a Service selects."""
    return inventory.sees("Service") and bool(inventory.kind("Service", namespace))


def serving_workload(pods: PodView, inventory: Inventory) -> bool:
    return not services_known(pods.resource.namespace, inventory) or bool(selecting_services(pods, inventory))


def serving_container(container: ContainerView, inventory: Inventory) -> bool:
    if container.ports or not services_known(container.pod.resource.namespace, inventory):
        return True
    regular = list(container.pod.containers(frozenset({"container"})))
    return container.role == "container" and len(regular) == 1 and bool(selecting_services(container.pod, inventory))
