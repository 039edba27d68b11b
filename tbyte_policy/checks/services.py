"""services: Services whose selector finds no pods, or whose targetPort the selected pods do not declare."""

from __future__ import annotations

from collections.abc import Iterator

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.selector_targets import resolve
from tbyte_policy.checks.serving import service_selector
from tbyte_policy.checks.workload_ports import (
    declares_ports,
    describe_ports,
    port_name,
    port_number,
    protocol_of,
    workload_names,
)
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import POD_BEARING_KINDS, ObjectRef, PodView, Problem, Resource, sequence
from tbyte_policy.selectors import describe_label_selector, selector_is_empty


def selected_pods(service: Resource, inventory: Inventory) -> list[PodView]:
    """The pods the Service selects; none when that cannot be told (a live run missing a pod-bearing kind)."""
    selector = service_selector(service)
    if selector is None or not inventory.sees(*POD_BEARING_KINDS):
        return []
    return inventory.pods_matching_map(service.namespace, selector)


@check("service-selects-no-pods", "object")
def service_selects_no_pods(service: Resource, ctx: CheckContext) -> Iterator[Problem]:
    selector = service_selector(service)
    # A scan without any workload (a folder of Services alone) holds nothing to resolve the selector against.
    if selector is None or not ctx.inventory.sees(*POD_BEARING_KINDS) \
            or not any(ctx.inventory.kind(kind) for kind in POD_BEARING_KINDS):
        return
    outcome = resolve(service.namespace, {"matchLabels": selector}, ctx.inventory)
    if outcome.matches or outcome.unverifiable:  # the latter is SVC004's
        return
    described = describe_label_selector({"matchLabels": selector})
    yield Problem(f"selector ({described}) of Service {service.name} matches no pods in namespace "
                  f"{service.namespace}; the Service has no endpoints", "/spec/selector")


def _selector_of(resource: Resource) -> dict | None:
    """The label selector a Service, NetworkPolicy or PodDisruptionBudget chooses its pods with, when it has a
    non-empty one (an empty one selects every pod of the namespace, or, for a Service, no pods by label)."""
    if resource.kind == "Service":
        selector = service_selector(resource)
        return {"matchLabels": selector} if selector else None
    selector = resource.spec.get("podSelector" if resource.kind == "NetworkPolicy" else "selector")
    return selector if isinstance(selector, dict) and not selector_is_empty(selector) else None


@check("selector-unverifiable", "object")
def selector_unverifiable(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    selector = _selector_of(resource)
    if selector is None or not ctx.inventory.sees(*POD_BEARING_KINDS) \
            or not any(ctx.inventory.kind(kind) for kind in POD_BEARING_KINDS):
        return
    outcome = resolve(resource.namespace, selector, ctx.inventory)
    if outcome.matches or not outcome.unverifiable:
        return
    field = {"Service": "selector", "NetworkPolicy": "podSelector"}.get(resource.kind, "selector")
    yield Problem(f"{field} ({describe_label_selector(selector)}) of {resource.kind} {resource.name} matches no pod "
                  f"template of the run, and the run cannot tell whether it selects pods: {outcome.unverifiable}",
                  f"/spec/{field}", related=[ObjectRef.of(other) for other in outcome.related])


@check("service-target-port-undeclared", "object", named=True)
def service_target_port_undeclared(service: Resource, ctx: CheckContext) -> Iterator[Problem]:
    """``named``: judge targetPorts given by name (which must be declared) or by number (judged only when
    every selected pod declares its ports: containerPort is informational, a pod may listen on others)."""
    pods_list = selected_pods(service, ctx.inventory)
    if not pods_list:
        return
    named = ctx.params["named"]
    if not named and not all(declares_ports(pods) for pods in pods_list):
        return
    for index, entry in enumerate(sequence(service.spec.get("ports"))):
        if not isinstance(entry, dict):
            continue
        # targetPort defaults to port.
        field = "targetPort" if entry.get("targetPort") is not None else "port"
        target = port_name(entry.get(field)) if named else port_number(entry.get(field))
        if target is None:
            continue
        protocol = protocol_of(entry)
        if any(pods.exposes(target, protocol) for pods in pods_list):
            continue
        label = entry.get("name") or entry.get("port")
        what = f"targetPort {target!r}" if field == "targetPort" else f"targetPort (by default the port, {target})"
        yield Problem(f"{what} of port {label} of Service {service.name} matches no {protocol} port of the pods it "
                      f"selects ({workload_names(pods_list)}: {describe_ports(pods_list)})",
                      f"/spec/ports/{index}/{field}", related=[ObjectRef.of(pods.resource) for pods in pods_list])
