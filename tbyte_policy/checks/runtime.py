"""runtime: is the deployment actually running? Status checks on live objects (``modes: [live]``).

Controller-owned pods and ReplicaSets are not checked on their own (the engine skips them): pod and
container status is judged on the workload at the top of the pod's ownerReference chain, and each
finding names the pods. Messages quote only controller-written reasons (kubelet, scheduler, controller
manager), never a container's termination message, which the application writes and may hold anything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.memo import per_inventory
from tbyte_policy.inventory import Inventory, scale_target
from tbyte_policy.model import (
    POD_TEMPLATE_POINTERS,
    ObjectRef,
    Problem,
    Resource,
    integer,
    mapping,
    pod_view,
    sequence,
    text,
)

# Waiting reasons that mean a container cannot run; each is the subject of a rule, so a pod stuck on one
# of them is not also reported as merely "not ready".
CRASH_REASONS = ("CrashLoopBackOff",)
IMAGE_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")
START_REASONS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
FAILING_WAITING_REASONS = frozenset((*CRASH_REASONS, *IMAGE_REASONS, *START_REASONS))
# status list -> (the pod spec list it reports on, how messages name its containers)
STATUS_LISTS = {"initContainerStatuses": ("initContainers", "init container"),
                "containerStatuses": ("containers", "container"),
                "ephemeralContainerStatuses": ("ephemeralContainers", "ephemeral container")}
MAX_NAMED_PODS = 5
OWNER_DEPTH = 4  # Pod -> ReplicaSet -> Deployment/Rollout, Pod -> Job -> CronJob; a longer chain is a cycle


# --- the per-run indexes: pods by the workload that owns them, EndpointSlices by Service ---

class _Index(NamedTuple):
    pods_by_root: dict[Resource, list[Resource]]
    slices_by_service: dict[tuple[str | None, str], list[Resource]]


@per_inventory
def _index(inventory: Inventory) -> _Index:
    index = _Index(defaultdict(list), defaultdict(list))
    for pod in inventory.kind("Pod"):
        index.pods_by_root[root_owner(pod, inventory)].append(pod)
    for endpoint_slice in inventory.kind("EndpointSlice"):
        service = endpoint_slice.labels.get("kubernetes.io/service-name")
        if service:
            index.slices_by_service[(endpoint_slice.namespace, service)].append(endpoint_slice)
    return index


def controller_of(resource: Resource, inventory: Inventory) -> Resource | None:
    """The object of the run that the resource's controller ownerReference points at (uid checked)."""
    owner = resource.controller_owner
    if owner is None:
        return None
    found = inventory.get(owner.get("kind"), resource.namespace, owner.get("name"))
    uid = owner.get("uid")
    if found is not None and uid and found.metadata.get("uid") not in (None, uid):
        return None  # a namesake created after the owner was deleted
    return found


def root_owner(resource: Resource, inventory: Inventory) -> Resource:
    """The top of the resource's controller chain within the run: the object the engine judges it through
    (a pod whose controller is not in the run stays its own root, and the engine decides whether it is
    judged on its own)."""
    node = resource
    for _ in range(OWNER_DEPTH):
        owner = controller_of(node, inventory)
        if owner is None:
            break
        node = owner
    return node


def owned_pods(resource: Resource, ctx: CheckContext) -> list[Resource]:
    """The live pods a workload owns (through its ReplicaSets or Jobs), or a bare pod itself."""
    return _index(ctx.inventory).pods_by_root.get(resource, [])


# --- reading status ---

def conditions(raw: dict) -> dict[str, tuple[int, dict]]:
    """status.conditions by type -> (index, condition)."""
    found: dict[str, tuple[int, dict]] = {}
    for position, condition in enumerate(sequence(mapping(raw.get("status")).get("conditions"))):
        if isinstance(condition, dict) and isinstance(condition.get("type"), str):
            found.setdefault(condition["type"], (position, condition))
    return found


def _reason(condition: dict, with_message: bool = True) -> str:
    """``Reason: message`` of a condition (or of a status with reason and message), either part optional."""
    reason = text(condition.get("reason"))
    message = text(condition.get("message")) if with_message else ""
    return ": ".join(part for part in (reason, " ".join(message.split())) if part)


def _because(condition: dict, with_message: bool = True) -> str:
    text = _reason(condition, with_message)
    return f" ({text})" if text else ""


def container_statuses(pod: Resource) -> Iterator[tuple[str, dict]]:
    """(status list, status) of every container of a pod: init, regular and ephemeral."""
    status = mapping(pod.raw.get("status"))
    for key in STATUS_LISTS:
        for entry in sequence(status.get(key)):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                yield key, entry


def waiting_reason(status: dict) -> str | None:
    reason = mapping(mapping(status.get("state")).get("waiting")).get("reason")
    return reason if isinstance(reason, str) else None


def unschedulable(pod: Resource) -> dict | None:
    """The PodScheduled condition of a pod the scheduler cannot place, else None."""
    _, scheduled = conditions(pod.raw).get("PodScheduled", (0, {}))
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return scheduled
    return None


def _phase(pod: Resource) -> str | None:
    phase = mapping(pod.raw.get("status")).get("phase")
    return phase if isinstance(phase, str) else None


def _terminating(pod: Resource) -> bool:
    return pod.metadata.get("deletionTimestamp") is not None


def not_ready_reason(pod: Resource) -> str | None:
    """Why a pod that should serve does not, when no more specific runtime rule names the cause."""
    phase = _phase(pod)
    if phase == "Succeeded" or _terminating(pod):
        return None
    if phase == "Failed":
        return ": ".join(part for part in ("failed", _reason(mapping(pod.raw.get("status")))) if part)
    if unschedulable(pod) or any(waiting_reason(status) in FAILING_WAITING_REASONS
                                 for _, status in container_statuses(pod)):
        return None
    _, ready = conditions(pod.raw).get("Ready", (0, None))
    if ready is None:
        return f"{phase or 'no phase'}, no Ready condition"
    if ready.get("status") == "True":
        return None
    return ": ".join(part for part in ("not ready", _reason(ready)) if part)


# --- where and how findings are reported ---

def _pods_pointer(resource: Resource) -> str:
    return POD_TEMPLATE_POINTERS.get(resource.kind, "/status")


def _container_pointer(resource: Resource, status_list: str, name: str) -> str:
    """The container's entry in the workload's pod template (or the pod's spec), where a fix goes."""
    pods = pod_view(resource)
    spec_list = STATUS_LISTS[status_list][0]
    if pods is not None:
        for index, container in enumerate(sequence(pods.spec.get(spec_list))):
            if isinstance(container, dict) and container.get("name") == name:
                return f"{pods.pointer}/{spec_list}/{index}"
    return _pods_pointer(resource)


def _pod_list(pods: Iterable[tuple[str, str]]) -> str:
    """``pod a`` / ``pods a (detail), b (detail) and 3 more`` from (name, detail) pairs."""
    ordered = sorted(pods)
    shown = ", ".join(f"{name} ({detail})" if detail else name for name, detail in ordered[:MAX_NAMED_PODS])
    more = len(ordered) - MAX_NAMED_PODS
    return f"{'pod' if len(ordered) == 1 else 'pods'} {shown}" + (f" and {more} more" if more > 0 else "")


def _pod_refs(pods: Iterable[Resource]) -> list[ObjectRef]:
    return [ObjectRef.of(pod) for pod in sorted(pods, key=lambda pod: pod.name)]


def _container_problems(resource: Resource, ctx: CheckContext, describe, why: str = "") -> Iterator[Problem]:
    """One problem per container of the workload's pods for which ``describe(status)`` gives a
    ``(state, detail)``: "container api is in CrashLoopBackOff in pods a (restarted 5 times), b (...)"."""
    affected: dict[tuple[str, str], list[tuple[Resource, str, str]]] = defaultdict(list)
    for pod in owned_pods(resource, ctx):
        if _terminating(pod):
            continue
        for status_list, status in container_statuses(pod):
            described = describe(status)
            if described:
                affected[(status_list, status["name"])].append((pod, *described))
    for (status_list, name), hits in sorted(affected.items()):
        states = " / ".join(sorted({state for _, state, _ in hits}))
        pods = _pod_list((pod.name, detail) for pod, _, detail in hits)
        yield Problem(f"{STATUS_LISTS[status_list][1]} {name} {states} in {pods}{why}",
                      _container_pointer(resource, status_list, name), name, _pod_refs(pod for pod, _, _ in hits))


# --- pods and containers, judged on their workload ---

@check("runtime-pods-not-ready", "object")
def pods_not_ready(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    pods = owned_pods(resource, ctx)
    reasons = [(pod, reason) for pod in pods if (reason := not_ready_reason(pod))]
    if reasons:
        listed = _pod_list((pod.name, reason) for pod, reason in reasons)
        yield Problem(f"{len(reasons)} of {len(pods)} pods are not serving: {listed}", _pods_pointer(resource),
                      related=_pod_refs(pod for pod, _ in reasons))


@check("runtime-pods-unschedulable", "object")
def pods_unschedulable(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    stuck = [(pod, condition) for pod in owned_pods(resource, ctx)
             if _phase(pod) == "Pending" and not _terminating(pod) and (condition := unschedulable(pod))]
    if stuck:
        _, first = min(stuck, key=lambda item: item[0].name)
        yield Problem(f"{_pod_list((pod.name, '') for pod, _ in stuck)} cannot be scheduled{_because(first)}",
                      _pods_pointer(resource), related=_pod_refs(pod for pod, _ in stuck))


@check("runtime-containers-waiting", "object", reasons=list(CRASH_REASONS))
def containers_waiting(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    wanted = set(ctx.params["reasons"])

    def describe(status: dict) -> tuple[str, str] | None:
        reason = waiting_reason(status)
        if reason not in wanted:
            return None
        restarts = integer(status.get("restartCount")) or 0
        return f"is in {reason}", f"restarted {restarts} times" if restarts else ""

    yield from _container_problems(resource, ctx, describe)


@check("runtime-containers-oom-killed", "object")
def containers_oom_killed(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    def describe(status: dict) -> tuple[str, str] | None:
        for key, when in (("state", "its current run"), ("lastState", "its previous run")):
            if mapping(mapping(status.get(key)).get("terminated")).get("reason") == "OOMKilled":
                return "was OOMKilled", when
        return None

    yield from _container_problems(resource, ctx, describe,
                                   ": it reached its memory limit (too low for its peak use, or a leak)")


@check("runtime-containers-restarting", "object", max_restarts=5)
def containers_restarting(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    limit = ctx.params["max_restarts"]

    def describe(status: dict) -> tuple[str, str] | None:
        restarts = integer(status.get("restartCount"))
        if restarts is None or restarts <= limit:
            return None
        last = mapping(mapping(status.get("lastState")).get("terminated")).get("reason")
        return f"restarted more than {limit} times", f"{restarts} restarts" + (
            f", last exit: {last}" if isinstance(last, str) else "")

    yield from _container_problems(resource, ctx, describe)


@check("runtime-bare-pod", "object")
def bare_pod(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if resource.controller_owner is None and _phase(resource) not in ("Succeeded", "Failed"):
        yield Problem(f"pod {resource.name} runs without a controller: nothing recreates it when it is evicted, "
                      f"its node fails or it is deleted", "/metadata")


# --- workloads ---

def _desired_and_available(resource: Resource) -> tuple[int, int, str] | None:
    """(desired, available, pointer of the available count) from the workload's spec and status."""
    status = mapping(resource.raw.get("status"))
    if resource.kind == "DaemonSet":
        desired, key = integer(status.get("desiredNumberScheduled")), "numberAvailable"
        if desired is None:
            return None
    else:
        replicas = resource.spec.get("replicas", 1)
        desired = integer(replicas)
        if desired is None:
            return None
        key = "availableReplicas" if resource.kind != "StatefulSet" or "availableReplicas" in status \
            else "readyReplicas"
    available = integer(status.get(key)) or 0
    return desired, available, f"/status/{key}" if key in status else "/status"


@check("runtime-workload-unavailable", "object")
def workload_unavailable(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    counts = _desired_and_available(resource)
    if counts is None:
        return
    desired, available, pointer = counts
    if available < desired:
        yield Problem(f"{resource.kind} {resource.name} has {available} of {desired} replicas available",
                      pointer, related=_pod_refs(owned_pods(resource, ctx)))


@check("runtime-rollout-stuck", "object")
def rollout_stuck(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    found = conditions(resource.raw)
    position, progressing = found.get("Progressing", (0, {}))
    if progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
        yield Problem(f"{resource.kind} {resource.name} stopped progressing: its rollout exceeded "
                      f"progressDeadlineSeconds{_because(progressing)}", f"/status/conditions/{position}")
        return
    if resource.kind != "Rollout":
        return
    status = mapping(resource.raw.get("status"))
    if status.get("abort") is True:
        yield Problem(f"Rollout {resource.name} was aborted{_because(status)}", "/status/abort")
    elif status.get("phase") == "Degraded":
        yield Problem(f"Rollout {resource.name} is Degraded{_because(status)}", "/status/phase")


def _timed_pause_step(resource: Resource) -> bool:
    """Whether an Argo Rollout is waiting in a canary step ``pause`` that has a duration (it resumes by itself)."""
    status = mapping(resource.raw.get("status"))
    step = integer(status.get("currentStepIndex"))
    steps = sequence(mapping(mapping(resource.spec.get("strategy")).get("canary")).get("steps"))
    if step is None or not 0 <= step < len(steps):
        return False
    pause = mapping(steps[step]).get("pause")
    return isinstance(pause, dict) and pause.get("duration") not in (None, "", 0)


@check("runtime-rollout-paused", "object")
def rollout_paused(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if resource.spec.get("paused") is True:
        yield Problem(f"{resource.kind} {resource.name} is paused (spec.paused): new revisions are not rolled out",
                      "/spec/paused")
        return
    if resource.kind != "Rollout":
        return
    status = mapping(resource.raw.get("status"))
    reasons = sorted({text(condition.get("reason")) for condition in sequence(status.get("pauseConditions"))
                      if isinstance(condition, dict)} - {""})
    if (reasons or status.get("phase") == "Paused") and not _timed_pause_step(resource):
        why = f" ({', '.join(reasons)})" if reasons else ""
        yield Problem(f"Rollout {resource.name} is paused{why} and waits for a manual promote or resume",
                      "/status/pauseConditions" if reasons else "/status/phase")


# --- autoscalers, disruption budgets, secrets, services ---

def _target_refs(autoscaler: Resource, ctx: CheckContext) -> list[ObjectRef]:
    target = scale_target(autoscaler)
    found = ctx.inventory.get(target[0], autoscaler.namespace, target[1]) if target else None
    return [ObjectRef.of(found)] if found is not None else []


@check("runtime-hpa-not-scaling", "object")
def hpa_not_scaling(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    found = conditions(resource.raw)
    for kind, ignored in (("AbleToScale", ()), ("ScalingActive", ("ScalingDisabled",))):
        position, condition = found.get(kind, (0, {}))
        if condition.get("status") == "False" and condition.get("reason") not in ignored:
            yield Problem(f"HPA {resource.name} cannot scale: {kind} is False{_because(condition)}",
                          f"/status/conditions/{position}", related=_target_refs(resource, ctx))


@check("runtime-hpa-at-max", "object")
def hpa_at_max(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    current = integer(mapping(resource.raw.get("status")).get("currentReplicas"))
    maximum = integer(resource.spec.get("maxReplicas"))
    position, limited = conditions(resource.raw).get("ScalingLimited", (0, {}))
    if (current is not None and maximum is not None and current >= maximum
            and limited.get("status") == "True" and limited.get("reason") == "TooManyReplicas"):
        yield Problem(f"HPA {resource.name} runs {current} replicas, its maxReplicas, and its metrics ask for more"
                      f"{_because(limited)}", f"/status/conditions/{position}", related=_target_refs(resource, ctx))


@check("runtime-pdb-blocking", "object")
def pdb_blocking(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    status = mapping(resource.raw.get("status"))
    allowed = integer(status.get("disruptionsAllowed"))
    if allowed is None:
        return  # not yet reconciled by the disruption controller
    healthy, wanted, expected = (integer(status.get(key)) for key in ("currentHealthy", "desiredHealthy",
                                                                       "expectedPods"))
    if expected == 0:
        yield Problem(f"PodDisruptionBudget {resource.name} selects no pods", "/status/expectedPods")
    elif healthy is not None and wanted is not None and healthy < wanted:
        yield Problem(f"PodDisruptionBudget {resource.name} has {healthy} healthy pods of the {wanted} it requires: "
                      f"the workload is degraded and no eviction is allowed", "/status/currentHealthy")
    elif allowed == 0:
        yield Problem(f"PodDisruptionBudget {resource.name} allows no disruption ({healthy} healthy, {wanted} "
                      f"required): node drains and cluster upgrades will block on its pods",
                      "/status/disruptionsAllowed")


@check("runtime-externalsecret-not-synced", "object")
def externalsecret_not_synced(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    target = mapping(resource.spec.get("target")).get("name") or resource.name
    secret = ctx.inventory.get("Secret", resource.namespace, target)
    related = [ObjectRef.of(secret)] if secret is not None else [ObjectRef("Secret", str(target), resource.namespace)]
    position, ready = conditions(resource.raw).get("Ready", (0, None))
    # Only the reason: the operator's message quotes provider errors, which are not ours to print.
    if ready is None:
        yield Problem(f"ExternalSecret {resource.name} has no Ready condition: the External Secrets operator has not "
                      f"synced Secret {target}", "/status", related=related)
    elif ready.get("status") != "True":
        why = ": ".join(part for part in (f"Ready {ready.get('status')}", _reason(ready, with_message=False)) if part)
        yield Problem(f"ExternalSecret {resource.name} is not synced ({why}): "
                      f"Secret {target} is missing or stale", f"/status/conditions/{position}", related=related)


@check("runtime-scaledobject-not-ready", "object")
def scaledobject_not_ready(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    found = conditions(resource.raw)
    position, ready = found.get("Ready", (0, None))
    if ready is None:
        yield Problem(f"ScaledObject {resource.name} has no Ready condition: KEDA has not reconciled it", "/status",
                      related=_target_refs(resource, ctx))
    elif ready.get("status") != "True":
        why = _because(ready) or f" (Ready {ready.get('status')})"
        yield Problem(f"ScaledObject {resource.name} is not ready{why}", f"/status/conditions/{position}",
                      related=_target_refs(resource, ctx))
    position, fallback = found.get("Fallback", (0, {}))
    if fallback.get("status") == "True":
        yield Problem(f"ScaledObject {resource.name} runs on its fallback replica count: its scalers fail"
                      f"{_because(fallback)}", f"/status/conditions/{position}", related=_target_refs(resource, ctx))


def _endpoint_ready(endpoint: dict) -> bool:
    # discovery/v1: a nil `ready` is an unknown state that consumers treat as ready.
    return mapping(endpoint.get("conditions")).get("ready") is not False


@check("runtime-service-no-ready-endpoints", "object")
def service_no_ready_endpoints(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    selector = resource.spec.get("selector")
    if resource.spec.get("type") == "ExternalName" or not isinstance(selector, dict) or not selector \
            or not ctx.inventory.sees("EndpointSlice"):
        return
    slices = _index(ctx.inventory).slices_by_service.get((resource.namespace, resource.name), [])
    endpoints = [endpoint for endpoint_slice in slices for endpoint in sequence(endpoint_slice.raw.get("endpoints"))
                 if isinstance(endpoint, dict)]
    if any(_endpoint_ready(endpoint) for endpoint in endpoints):
        return
    workloads = ctx.inventory.pods_matching_map(resource.namespace, selector)
    related = [ObjectRef.of(endpoint_slice) for endpoint_slice in slices] + \
              [ObjectRef.of(pods.resource) for pods in workloads]
    if endpoints:
        why = f"its {len(endpoints)} endpoints are all not ready"
    elif workloads:
        why = "no pod of " + ", ".join(f"{pods.resource.kind} {pods.resource.name}" for pods in workloads) + " is ready"
    else:
        why = "its selector matches no workload"
    yield Problem(f"Service {resource.name} has no ready endpoints: {why}; connections to it fail",
                  "/spec/selector", related=related)
