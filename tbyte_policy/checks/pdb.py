"""pdb: PodDisruptionBudgets that are missing, select nothing, block every eviction or overlap."""

from __future__ import annotations

from collections.abc import Iterator

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.scalability import singleton_by_design
from tbyte_policy.checks.selector_targets import resolve
from tbyte_policy.checks.workloads import Scale, is_zero, plural, scale, scaled_value
from tbyte_policy.inventory import SCALABLE_KINDS, Inventory
from tbyte_policy.model import POD_BEARING_KINDS, ObjectRef, PodView, Problem, Resource
from tbyte_policy.selectors import describe_label_selector, label_selector_matches


def _describe_labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in labels.items()) or "no labels"


def _unbudgeted(workload: Resource, ctx: CheckContext, single_replica: bool) -> tuple[PodView, Scale] | None:
    """The pods and size of a workload no PDB selects, when it runs a single replica without an autoscaler
    (``single_replica``) or when it does not."""
    inventory = ctx.inventory
    pods = inventory.pods_of(workload)
    if pods is None or workload in inventory.workload_ref_targets:
        return None
    size = scale(inventory, workload)
    single = size.autoscaler is None and size.high == 1
    if size.high == 0 or single != single_replica:
        return None
    if inventory.pdbs.matching(workload.namespace, pods.labels) or not inventory.sees("PodDisruptionBudget"):
        return None
    return pods, size


@check("single-replica-without-pdb", "object", non_serving=False)
def single_replica_without_pdb(workload: Resource, ctx: CheckContext) -> Iterator[Problem]:
    """Single-replica, unautoscaled workloads no PDB selects (a budget cannot keep one pod available), other
    than singletons by design."""
    found = _unbudgeted(workload, ctx, single_replica=True)
    if found is None or singleton_by_design(found[0], ctx.inventory, ctx.params["non_serving"]):
        return
    yield Problem(f"{workload.local_ref} runs a single replica and no PodDisruptionBudget selects its pod: a node "
                  "drain or cluster upgrade evicts it unannounced, and only a second replica makes a budget useful")


@check("workload-without-pdb", "object")
def workload_without_pdb(workload: Resource, ctx: CheckContext) -> Iterator[Problem]:
    """Replicated or autoscaled workloads no PDB selects."""
    found = _unbudgeted(workload, ctx, single_replica=False)
    if found is None:
        return
    pods, size = found
    runs = plural(size.high, "replica") if size.low == size.high else f"{size.low}-{size.high} replicas"
    if size.autoscaler is not None:
        runs += f" ({size.autoscaler.local_ref})"
    yield Problem(f"{workload.local_ref} runs {runs} and no PodDisruptionBudget selects its pods "
                  f"({_describe_labels(pods.labels)}): a node drain or cluster upgrade may evict them all at once",
                  related=[ObjectRef.of(size.autoscaler)] if size.autoscaler else [])


@check("pdb-selects-nothing", "object")
def pdb_selects_nothing(pdb: Resource, ctx: CheckContext) -> Iterator[Problem]:
    selector = pdb.spec.get("selector")
    if not isinstance(selector, dict):
        yield Problem("PodDisruptionBudget has no selector, so it selects no pods and protects nothing", "/spec")
        return
    if not ctx.inventory.sees(*POD_BEARING_KINDS):  # a live run denied a pod-bearing kind proves no absence
        return
    outcome = resolve(pdb.namespace, selector, ctx.inventory)
    if outcome.matches or outcome.unverifiable:  # the latter is SVC004's
        return
    # A cluster also holds pods of controllers the live mode does not read (operators' custom resources).
    if ctx.mode == "live" and any(label_selector_matches(selector, pod.labels)
                                  for pod in ctx.inventory.kind("Pod", pdb.namespace)):
        return
    yield Problem(f"selector ({describe_label_selector(selector)}) matches the pods of no workload in namespace "
                  f"{pdb.namespace}: every term must match, so the budget protects nothing", "/spec/selector")


def _covered(inventory: Inventory, pdb: Resource) -> tuple[list[Resource], int | None, str]:
    """The workloads a PDB covers, how many pods they run at their lowest (None when a DaemonSet or Job
    makes it unknowable), and where each count comes from."""
    workloads, total, sources, countable = [], 0, [], True
    for pods in inventory.pods_matching(pdb.namespace, pdb.spec.get("selector")):
        workload = pods.resource
        workloads.append(workload)
        if workload.kind in SCALABLE_KINDS:
            size = scale(inventory, workload)
            total += size.low
            sources.append(f"{workload.local_ref} at {size.low_source}")
        elif workload.kind == "Pod":
            total += 1
            sources.append(workload.local_ref)
        else:
            countable = False
    return workloads, (total if workloads and countable else None), "; ".join(sources)


@check("pdb-blocks-disruption", "object")
def pdb_blocks_disruption(pdb: Resource, ctx: CheckContext) -> Iterator[Problem]:
    """maxUnavailable 0, or a minAvailable (percentages rounded up, as the disruption controller does)
    that reaches the number of pods covered at their lowest scale."""
    spec = pdb.spec
    blocks = "allows no voluntary disruption: node drains and cluster upgrades block on this budget"
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None and is_zero(max_unavailable):
        yield Problem(f"maxUnavailable {max_unavailable} {blocks}", "/spec/maxUnavailable")
    if min_available is None:
        return
    if isinstance(min_available, str) and (scaled_value(min_available, 100, round_up=True) or 0) >= 100:
        yield Problem(f"minAvailable {min_available} {blocks}", "/spec/minAvailable")
        return
    workloads, total, sources = _covered(ctx.inventory, pdb)
    if not total:
        return
    required = scaled_value(min_available, total, round_up=True)
    if required is not None and required >= total:
        yield Problem(f"minAvailable {min_available} with {plural(total, 'pod')} ({sources}) {blocks}",
                      "/spec/minAvailable", related=[ObjectRef.of(workload) for workload in workloads])


@check("pdb-overlap", "object")
def pdb_overlap(workload: Resource, ctx: CheckContext) -> Iterator[Problem]:
    pods = ctx.inventory.pods_of(workload)
    if pods is None or workload in ctx.inventory.workload_ref_targets:
        return
    budgets = sorted(ctx.inventory.pdbs.matching(workload.namespace, pods.labels), key=lambda pdb: pdb.name)
    if len(budgets) > 1:
        names = ", ".join(pdb.name for pdb in budgets)
        yield Problem(f"the pods of {workload.local_ref} are selected by {len(budgets)} PodDisruptionBudgets "
                      f"({names}): the eviction API refuses pods with more than one budget, so drains stall on them",
                      related=[ObjectRef.of(pdb) for pdb in budgets])


@check("pdb-unhealthy-pod-eviction-policy", "object")
def pdb_unhealthy_pod_eviction_policy(pdb: Resource, ctx: CheckContext) -> Iterator[Problem]:
    # An explicit IfHealthyBudget is a deliberate choice (quorum-based applications); only the unset default is flagged.
    if "unhealthyPodEvictionPolicy" not in pdb.spec:
        yield Problem("PodDisruptionBudget sets no unhealthyPodEvictionPolicy: under the IfHealthyBudget default a "
                      "drain cannot evict pods that are running but not ready (crash-looping, stuck) while the "
                      "application is below its budget", "/spec")


@check("pdb-without-budget", "object")
def pdb_without_budget(pdb: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if pdb.spec.get("minAvailable") is None and pdb.spec.get("maxUnavailable") is None:
        yield Problem("PodDisruptionBudget sets neither minAvailable nor maxUnavailable: the disruption controller "
                      "then allows every selected pod to be evicted at once", "/spec")
