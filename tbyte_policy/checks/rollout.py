"""rollout: zero-downtime updates. Deployment strategies and rolling-update arithmetic, Argo Rollouts
canary analysis and the objects a Rollout's strategy names, StatefulSet update strategies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.workloads import is_zero, plural, scale, scaled_value
from tbyte_policy.model import ObjectRef, Problem, Resource, integer, mapping, sequence

# Both the Deployment controller and Argo Rollouts' canary default maxSurge and maxUnavailable to 25%
# (Argo writes the default as the string "25" and reads any string as a percentage).
DEFAULT_MAX_SURGE = DEFAULT_MAX_UNAVAILABLE = "25%"


class Fenceposts(NamedTuple):
    surge: int
    unavailable: int
    forced: bool  # both resolved to 0, so the controller took maxUnavailable as 1


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> Fenceposts | None:
    """deploymentutil.ResolveFenceposts (and Argo's copy of it): maxSurge rounded up, maxUnavailable
    rounded down; when both come to 0, maxUnavailable becomes 1 "on the theory that surge might not
    work due to quota". None when a value is not an integer or a percentage."""
    surge = scaled_value(max_surge, desired, round_up=True)
    unavailable = scaled_value(max_unavailable, desired, round_up=False)
    if surge is None or unavailable is None:
        return None
    if surge == 0 and unavailable == 0:
        return Fenceposts(0, 1, forced=True)
    return Fenceposts(surge, unavailable, forced=False)


def _update_params(workload: Resource) -> tuple[dict, str, bool] | None:
    """(the mapping holding maxSurge/maxUnavailable, its pointer, whether traffic routing is in use)."""
    strategy = mapping(workload.spec.get("strategy"))
    if workload.kind == "Deployment":
        if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
            return None
        return mapping(strategy.get("rollingUpdate")), "/spec/strategy/rollingUpdate", False
    canary = strategy.get("canary")
    if not isinstance(canary, dict):
        return None
    return canary, "/spec/strategy/canary", isinstance(canary.get("trafficRouting"), dict)


def _setting(params: dict, pointer: str, field: str, default: str) -> tuple[Any, str, str]:
    """(value, pointer, description) of maxSurge or maxUnavailable, defaulted."""
    value = params.get(field)
    if value is None:
        return default, pointer, f"{field} {default} (the default)"
    return value, f"{pointer}/{field}", f"{field} {value}"


@check("rolling-update-max-unavailable", "object")
def rolling_update_max_unavailable(workload: Resource, ctx: CheckContext) -> Iterator[Problem]:
    """The largest replica count rounds maxUnavailable down the least, so that is where it is judged."""
    found = _update_params(workload)
    if found is None or found[2] or workload in ctx.inventory.workload_ref_targets:
        return
    params, pointer, _ = found
    size = scale(ctx.inventory, workload)
    if size.high == 0:
        return
    surge, _, _ = _setting(params, pointer, "maxSurge", DEFAULT_MAX_SURGE)
    unavailable, at, described = _setting(params, pointer, "maxUnavailable", DEFAULT_MAX_UNAVAILABLE)
    posts = resolve_fenceposts(surge, unavailable, size.high)
    if posts is None or posts.forced or posts.unavailable == 0:
        return  # the forced case is rolling-update-zero-surge-and-unavailable's
    resolves = "" if integer(unavailable) is not None else f" resolves to {posts.unavailable}"
    yield Problem(f"{described}{resolves} at {size.high_source}: a rollout takes "
                  f"{plural(posts.unavailable, 'serving pod')} out of service before replacements are ready",
                  at, related=[ObjectRef.of(size.autoscaler)] if size.autoscaler else [])


@check("rolling-update-zero-surge-and-unavailable", "object")
def rolling_update_zero_surge_and_unavailable(workload: Resource, ctx: CheckContext) -> Iterator[Problem]:
    found = _update_params(workload)
    if found is None or workload in ctx.inventory.workload_ref_targets:
        return
    params, pointer, traffic_routed = found
    surge, surge_at, surge_text = _setting(params, pointer, "maxSurge", DEFAULT_MAX_SURGE)
    unavailable, _, unavailable_text = _setting(params, pointer, "maxUnavailable", DEFAULT_MAX_UNAVAILABLE)
    if is_zero(surge) and is_zero(unavailable):
        outcome = "the API server rejects the Deployment" if workload.kind == "Deployment" else \
            "Argo Rollouts marks the Rollout InvalidSpec and does not roll it out"
        yield Problem(f"{surge_text} and {unavailable_text}: no pod can be added or removed, so {outcome}", surge_at)
        return
    if traffic_routed:
        return
    # maxSurge only resolves to 0 when it is 0; maxUnavailable rounds down the most at the smallest count.
    size = scale(ctx.inventory, workload)
    posts = resolve_fenceposts(surge, unavailable, size.low) if size.low > 0 else None
    if posts is not None and posts.forced:
        yield Problem(f"{surge_text} and {unavailable_text} both resolve to 0 at {size.low_source}: the controller "
                      f"then takes maxUnavailable as 1 and stops a serving pod before its replacement is ready",
                      surge_at, related=[ObjectRef.of(size.autoscaler)] if size.autoscaler else [])


@check("deployment-not-rolling-update", "object")
def deployment_not_rolling_update(deployment: Resource, ctx: CheckContext) -> Iterator[Problem]:
    kind = mapping(deployment.spec.get("strategy")).get("type")
    if kind in (None, "", "RollingUpdate") or deployment in ctx.inventory.workload_ref_targets:
        return
    if kind == "Recreate":
        yield Problem("strategy Recreate stops every pod before the new ones start: each rollout is an outage",
                      "/spec/strategy/type")
    else:
        yield Problem(f"strategy type {kind!r} is neither RollingUpdate nor Recreate: the API server rejects it",
                      "/spec/strategy/type")


@check("statefulset-on-delete", "object")
def statefulset_on_delete(statefulset: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if mapping(statefulset.spec.get("updateStrategy")).get("type") == "OnDelete":
        yield Problem("updateStrategy OnDelete: a changed template reaches a pod only when someone deletes it, so "
                      "updates never complete on their own and pods run mixed versions", "/spec/updateStrategy/type")


# --- Argo Rollouts ---

def _walk(node: Any, path: str, pointer: str) -> Iterator[tuple[str, Any]]:
    """(pointer, value) at a slash path below ``node``; a segment ending in [] fans out over a list."""
    if not path:
        yield pointer, node
        return
    head, _, rest = path.partition("/")
    if head.endswith("[]"):
        for index, item in enumerate(sequence(mapping(node).get(head[:-2]))):
            yield from _walk(item, rest, f"{pointer}/{head[:-2]}/{index}")
    else:
        yield from _walk(mapping(node).get(head), rest, f"{pointer}/{head}")


_STRATEGY = "/spec/strategy"
# Where a Rollout's strategy names an object, below spec.strategy, and that object's kind.
_REFERENCES = (
    ("canary/stableService", "Service"),
    ("canary/canaryService", "Service"),
    ("canary/pingPong/pingService", "Service"),
    ("canary/pingPong/pongService", "Service"),
    ("blueGreen/activeService", "Service"),
    ("blueGreen/previewService", "Service"),
    ("canary/trafficRouting/nginx/stableIngress", "Ingress"),
    ("canary/trafficRouting/nginx/stableIngresses[]", "Ingress"),
    ("canary/trafficRouting/alb/ingress", "Ingress"),
    ("canary/trafficRouting/alb/ingresses[]", "Ingress"),
    ("canary/trafficRouting/alb/rootService", "Service"),
    ("canary/trafficRouting/smi/rootService", "Service"),
    ("canary/trafficRouting/istio/virtualService/name", "VirtualService"),
    ("canary/trafficRouting/istio/virtualServices[]/name", "VirtualService"),
    ("canary/trafficRouting/istio/destinationRule/name", "DestinationRule"),
    ("canary/trafficRouting/traefik/weightedTraefikServiceName", "TraefikService"),
    ("canary/trafficRouting/apisix/route/name", "ApisixRoute"),
    ("canary/trafficRouting/ambassador/mappings[]", "Mapping"),
)
# Where a Rollout's strategy lists AnalysisTemplate references ({templateName, clusterScope}).
_ANALYSES = (
    "canary/analysis/templates[]",
    "canary/steps[]/analysis/templates[]",
    "canary/steps[]/experiment/analyses[]",
    "blueGreen/prePromotionAnalysis/templates[]",
    "blueGreen/postPromotionAnalysis/templates[]",
)


def _analysis_references(rollout: Resource) -> Iterator[tuple[str, dict]]:
    strategy = rollout.spec.get("strategy")
    for path in _ANALYSES:
        for pointer, entry in _walk(strategy, path, _STRATEGY):
            if isinstance(entry, dict):
                yield pointer, entry


def _references(rollout: Resource) -> Iterator[tuple[str, str, str, str | None]]:
    """(pointer, kind, name, namespace) of every object the strategy names."""
    strategy = rollout.spec.get("strategy")
    for path, kind in _REFERENCES:
        for pointer, name in _walk(strategy, path, _STRATEGY):
            if not isinstance(name, str) or not name:
                continue
            namespace = rollout.namespace
            if kind == "VirtualService" and "." in name:  # Argo reads "name.namespace"
                name, namespace = name.split(".")[:2]
            yield pointer, kind, name, namespace
    for pointer, entry in _analysis_references(rollout):
        name = entry.get("templateName")
        if isinstance(name, str) and name:
            if entry.get("clusterScope") is True:
                yield f"{pointer}/templateName", "ClusterAnalysisTemplate", name, None
            else:
                yield f"{pointer}/templateName", "AnalysisTemplate", name, rollout.namespace


def _field(pointer: str) -> str:
    """/spec/strategy/canary/steps/1/analysis -> strategy.canary.steps[1].analysis"""
    return re.sub(r"/(\d+)", r"[\1]", pointer.removeprefix("/spec/")).replace("/", ".")


@check("canary-without-analysis", "object")
def canary_without_analysis(rollout: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if not isinstance(mapping(rollout.spec.get("strategy")).get("canary"), dict):
        return
    if any(pointer.startswith(f"{_STRATEGY}/canary/") for pointer, _ in _analysis_references(rollout)):
        return
    yield Problem("canary strategy runs no analysis (no steps[].analysis, no background strategy.canary.analysis): "
                  "a failing version is promoted on the timer alone", f"{_STRATEGY}/canary")


@check("rollout-reference-unresolved", "object")
def rollout_reference_unresolved(rollout: Resource, ctx: CheckContext) -> Iterator[Problem]:
    where = "the cluster" if ctx.mode == "live" else "the scanned manifests"
    for pointer, kind, name, namespace in _references(rollout):
        if not ctx.inventory.sees(kind) or ctx.inventory.get(kind, namespace, name) is not None:
            continue
        scope = f" (namespace {namespace})" if namespace else ""
        yield Problem(f"{_field(pointer)} names {kind}/{name}, which is not in {where}{scope}: Argo Rollouts marks "
                      f"the Rollout InvalidSpec and does not progress it", pointer,
                      related=[ObjectRef(kind, name, namespace)])


@check("bluegreen-without-active-service", "object")
def bluegreen_without_active_service(rollout: Resource, ctx: CheckContext) -> Iterator[Problem]:
    blue_green = mapping(rollout.spec.get("strategy")).get("blueGreen")
    if isinstance(blue_green, dict) and not (isinstance(blue_green.get("activeService"), str)
                                             and blue_green["activeService"]):
        yield Problem("blueGreen strategy names no activeService: the Rollout CRD requires it, and no Service would "
                      "send traffic to the promoted version", f"{_STRATEGY}/blueGreen")
