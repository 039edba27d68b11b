"""hpa: workloads no autoscaler drives, and HorizontalPodAutoscalers / KEDA ScaledObjects that
cannot work: a missing target, too few replicas, no room to scale, utilization without requests."""

from __future__ import annotations

from collections.abc import Iterator

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.scalability import not_horizontally_scalable
from tbyte_policy.checks.serving import serving_workload
from tbyte_policy.checks.workloads import (
    autoscalers,
    bound_pointer,
    bound_text,
    declared_replicas,
    exposure,
    keda_managed,
    max_replicas,
    min_replicas,
    plural,
)
from tbyte_policy.inventory import AUTOSCALER_KINDS, scale_target
from tbyte_policy.model import ContainerView, ObjectRef, Problem, Resource, mapping, sequence

# An HPA without metrics (autoscaling/v1 without targetCPUUtilizationPercentage, v2 without metrics)
# is defaulted by the API server to 80% average CPU utilization.
_DEFAULT_METRIC = "cpu"


@check("workload-not-autoscaled", "object", non_serving=False)
def workload_not_autoscaled(workload: Resource, ctx: CheckContext) -> Iterator[Problem]:
    inventory = ctx.inventory
    if workload in inventory.workload_ref_targets or autoscalers(inventory, workload) \
            or not inventory.sees(*AUTOSCALER_KINDS):
        return
    replicas = declared_replicas(workload)
    if replicas == 0:  # scaled to zero on purpose
        return
    pods = inventory.pods_of(workload)
    if not_horizontally_scalable(workload, pods) is not None:
        return
    if not ctx.params["non_serving"] and pods is not None and not serving_workload(pods, inventory):
        return
    yield Problem(f"no HorizontalPodAutoscaler or ScaledObject targets {workload.local_ref}: it runs "
                  f"{plural(replicas, 'replica')} whatever the load", "/spec/replicas")


@check("autoscaler-target-missing", "object")
def autoscaler_target_missing(autoscaler: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if keda_managed(autoscaler):
        return
    target = scale_target(autoscaler)
    if target is None:
        yield Problem(f"{autoscaler.kind} has no scaleTargetRef kind and name: it scales nothing",
                      "/spec/scaleTargetRef")
        return
    kind, name = target
    if not ctx.inventory.sees(kind) or ctx.inventory.get(kind, autoscaler.namespace, name) is not None:
        return
    where = "the cluster" if ctx.mode == "live" else "the scanned manifests"
    yield Problem(f"scaleTargetRef names {kind}/{name}, which is not in {where} (namespace {autoscaler.namespace}): "
                  f"the autoscaler scales nothing", "/spec/scaleTargetRef/name",
                  related=[ObjectRef(kind, name, autoscaler.namespace)])


@check("autoscaler-min-replicas", "object", fewer_than=2, at_least=0)
def autoscaler_min_replicas(autoscaler: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if keda_managed(autoscaler):
        return
    minimum = min_replicas(autoscaler)
    if ctx.params["at_least"] <= minimum < ctx.params["fewer_than"]:
        yield Problem(f"{bound_text(autoscaler, upper=False)}: {exposure(minimum)}",
                      bound_pointer(autoscaler, upper=False))


@check("autoscaler-cannot-scale", "object")
def autoscaler_cannot_scale(autoscaler: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if keda_managed(autoscaler):
        return
    low, high = min_replicas(autoscaler), max_replicas(autoscaler)
    if high is None or high > low:
        return
    bounds = f"{bound_text(autoscaler, upper=True)} and {bound_text(autoscaler, upper=False)}"
    pointer = bound_pointer(autoscaler, upper=True)
    if high < low:
        yield Problem(f"{bounds}: the maximum is below the minimum, which is rejected", pointer)
    else:
        yield Problem(f"{bounds}: the maximum equals the minimum, so the autoscaler never changes the replica count",
                      pointer)


def _utilization_metrics(autoscaler: Resource) -> Iterator[tuple[str, str | None, str, str]]:
    """(resource, container or None for all, pointer, description) of each utilization target."""
    spec = autoscaler.spec
    if autoscaler.kind == "ScaledObject":
        for index, trigger in enumerate(sequence(spec.get("triggers"))):
            trigger = mapping(trigger)
            metadata = mapping(trigger.get("metadata"))
            # trigger.metricType replaced metadata.type; both default to Utilization for cpu and memory.
            kind = trigger.get("metricType") or metadata.get("type") or "Utilization"
            if trigger.get("type") in ("cpu", "memory") and kind == "Utilization":
                container = metadata.get("containerName")
                yield (trigger["type"], container if isinstance(container, str) and container else None,
                       f"/spec/triggers/{index}", f"the {trigger['type']} trigger")
        return
    metrics = sequence(spec.get("metrics"))
    if "targetCPUUtilizationPercentage" in spec:
        yield "cpu", None, "/spec/targetCPUUtilizationPercentage", "targetCPUUtilizationPercentage"
    elif not metrics:
        yield _DEFAULT_METRIC, None, "/spec", "the default metric (80% CPU; no metrics are set)"
    for index, metric in enumerate(metrics):
        for key in ("resource", "containerResource"):
            source = mapping(mapping(metric).get(key))
            name = source.get("name")
            # autoscaling/v2 (and v2beta2): target.type; v2beta1: targetAverageUtilization
            utilization = mapping(source.get("target")).get("type") == "Utilization" \
                or "targetAverageUtilization" in source
            if isinstance(name, str) and utilization:
                container = source.get("container") if key == "containerResource" else None
                yield (name, container if isinstance(container, str) else None, f"/spec/metrics/{index}/{key}",
                       f"the {name} metric")


def _limit_range_defaults(ctx: CheckContext, namespace: str | None) -> set[str]:
    """Resources a LimitRange of the namespace gives every container a request for."""
    defaults: set[str] = set()
    for limit_range in ctx.inventory.kind("LimitRange", namespace):
        for limit in sequence(limit_range.spec.get("limits")):
            limit = mapping(limit)
            if limit.get("type") == "Container":
                defaults.update(mapping(limit.get("defaultRequest")))
                defaults.update(mapping(limit.get("default")))
    return defaults


def _requests(container: ContainerView, resource: str) -> bool:
    # The API server defaults a missing request to the limit.
    return any(mapping(container.resources.get(section)).get(resource) not in (None, "")
               for section in ("requests", "limits"))


@check("utilization-without-request", "object")
def utilization_without_request(autoscaler: Resource, ctx: CheckContext) -> Iterator[Problem]:
    """The HPA computes utilization against the requests of the pod's containers and native sidecars
    (or of the one container a containerResource metric names); one missing request stops it."""
    target = scale_target(autoscaler)
    if target is None or keda_managed(autoscaler):
        return
    workload = ctx.inventory.get(target[0], autoscaler.namespace, target[1])
    pods = ctx.inventory.pods_of(workload) if workload is not None else None
    if workload is None or pods is None:
        return
    defaulted: set[str] | None = None
    containers = list(pods.containers(frozenset({"container", "sidecar"})))
    for resource, only, pointer, metric in _utilization_metrics(autoscaler):
        selected = [container for container in containers if only is None or container.name == only]
        if only is not None and not selected:
            yield Problem(f"{metric} measures container {only}, which the pods of {workload.local_ref} do not run: "
                          f"the autoscaler cannot compute utilization and does not scale", pointer,
                          related=[ObjectRef.of(workload)])
            continue
        missing = [container for container in selected if not _requests(container, resource)]
        if not missing:
            continue
        if defaulted is None:
            defaulted = _limit_range_defaults(ctx, autoscaler.namespace)
        if resource not in defaulted:
            names = ", ".join(container.name for container in missing)
            who = f"container {names} requests" if len(missing) == 1 else f"containers {names} request"
            yield Problem(f"{metric} scales {workload.local_ref} on utilization, but {who} no {resource} (no request, "
                          f"no limit, no LimitRange default): the autoscaler cannot compute utilization and does not "
                          f"scale",
                          pointer, related=[ObjectRef.of(workload, missing[0].pointer)])


@check("autoscaler-conflict", "object")
def autoscaler_conflict(workload: Resource, ctx: CheckContext) -> Iterator[Problem]:
    scalers = autoscalers(ctx.inventory, workload)
    if len(scalers) > 1:
        names = ", ".join(scaler.local_ref for scaler in scalers)
        yield Problem(f"{workload.local_ref} is scaled by {len(scalers)} autoscalers ({names}): each overwrites the "
                      f"replica count the other sets, so the workload flaps between their decisions",
                      related=[ObjectRef.of(scaler) for scaler in scalers])
