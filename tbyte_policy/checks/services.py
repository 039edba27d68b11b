"""services: Services whose selector finds no pods, or whose targetPort the selected pods do not declare."""

from __future__ import annotations

from collections.abc import Iterator

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.serving import service_selector
from tbyte_policy.checks.workload_ports import (
    declares_ports,
    describe_ports,
    generated_pod_labels,
    port_name,
    port_number,
    protocol_of,
    workload_names,
)
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import POD_BEARING_KINDS, ObjectRef, PodView, Problem, Resource, sequence
from tbyte_policy.selectors import describe_label_selector, map_selector_matches


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
    if ctx.inventory.pods_matching_map(service.namespace, selector):
        return
    if not any(map_selector_matches(selector, labels)
               for labels in generated_pod_labels(service.namespace, ctx.inventory)):
        described = describe_label_selector({"matchLabels": selector})
        yield Problem(f"selector ({described}) of Service {service.name} matches no pods in namespace "
                      f"{service.namespace}; the Service has no endpoints", "/spec/selector")


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
