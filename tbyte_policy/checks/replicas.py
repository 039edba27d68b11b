"""replicas: workloads that run too few replicas, or that fight their autoscaler over the count."""

from __future__ import annotations

from collections.abc import Iterator

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.scalability import singleton_by_design
from tbyte_policy.checks.workloads import autoscalers, declared_replicas, exposure, plural
from tbyte_policy.model import ObjectRef, Problem, Resource, integer


@check("too-few-replicas", "object", fewer_than=2, at_least=1, non_serving=False)
def too_few_replicas(workload: Resource, ctx: CheckContext) -> Iterator[Problem]:
    """Unautoscaled workloads with at_least <= spec.replicas < fewer_than (0 is scaled down on purpose);
    not singletons by design (see scalability.singleton_by_design)."""
    if workload in ctx.inventory.workload_ref_targets or autoscalers(ctx.inventory, workload):
        return
    if singleton_by_design(ctx.inventory.pods_of(workload), ctx.inventory, ctx.params["non_serving"]):
        return
    replicas = declared_replicas(workload)
    if ctx.params["at_least"] <= replicas < ctx.params["fewer_than"]:
        declared = "" if integer(workload.spec.get("replicas")) is not None else " (spec.replicas unset: the default)"
        yield Problem(f"{workload.local_ref} runs {plural(replicas, 'replica')}{declared} and no autoscaler: "
                      f"{exposure(replicas)}", "/spec/replicas")


@check("replicas-with-autoscaler", "object")
def replicas_with_autoscaler(workload: Resource, ctx: CheckContext) -> Iterator[Problem]:
    replicas = integer(workload.spec.get("replicas"))
    scalers = autoscalers(ctx.inventory, workload)
    if replicas is None or not scalers:
        return
    yield Problem(f"{workload.local_ref} sets spec.replicas: {replicas} while {scalers[0].local_ref} manages its "
                  f"scale: every apply resets the count to {replicas} until the autoscaler corrects it again",
                  "/spec/replicas", related=[ObjectRef.of(scalers[0])])
