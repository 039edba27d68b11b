"""What the pdb, hpa, replicas and rollout families share: how many replicas a workload runs, which
autoscalers drive it, and the int-or-percent arithmetic of the Kubernetes controllers.

Not a family module: it registers no checks.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from tbyte_policy.inventory import Inventory
from tbyte_policy.model import Resource, integer, is_number_text

# kind -> (field, default) of the lower and the upper bound; an HPA's maxReplicas is required.
_BOUNDS = {"HorizontalPodAutoscaler": (("minReplicas", 1), ("maxReplicas", None)),
           "ScaledObject": (("minReplicaCount", 0), ("maxReplicaCount", 100))}


def declared_replicas(workload: Resource) -> int:
    """spec.replicas, which the API server defaults to 1."""
    replicas = integer(workload.spec.get("replicas"))
    return 1 if replicas is None else replicas


def keda_managed(autoscaler: Resource) -> bool:
    """KEDA creates (and owns) one HPA per ScaledObject; in a cluster both show up, but they are one
    autoscaler, judged through the ScaledObject."""
    owner = autoscaler.controller_owner
    return autoscaler.kind == "HorizontalPodAutoscaler" and owner is not None and owner.get("kind") == "ScaledObject"


def autoscalers(inventory: Inventory, workload: Resource) -> list[Resource]:
    """The autoscalers that set this workload's replica count (KEDA's own HPA folded into its ScaledObject)."""
    return [scaler for scaler in inventory.autoscalers_of(workload) if not keda_managed(scaler)]


def bound_field(autoscaler: Resource, upper: bool) -> str:
    return _BOUNDS.get(autoscaler.kind, _BOUNDS["HorizontalPodAutoscaler"])[upper][0]


def _bound(autoscaler: Resource, upper: bool) -> tuple[int | None, bool]:
    """(value, whether the value is the default)."""
    _, default = _BOUNDS.get(autoscaler.kind, _BOUNDS["HorizontalPodAutoscaler"])[upper]
    value = integer(autoscaler.spec.get(bound_field(autoscaler, upper)))
    return (default, True) if value is None else (value, False)


def min_replicas(autoscaler: Resource) -> int:
    # Both kinds default their lower bound (to 1 and 0), so it is never None.
    return cast(int, _bound(autoscaler, upper=False)[0])


def max_replicas(autoscaler: Resource) -> int | None:
    return _bound(autoscaler, upper=True)[0]


def bound_text(autoscaler: Resource, upper: bool, note: str = "") -> str:
    """e.g. "minReplicas 1 (the default)"."""
    value, defaulted = _bound(autoscaler, upper)
    notes = "; ".join(part for part in ("the default" if defaulted else "", note) if part)
    return f"{bound_field(autoscaler, upper)} {value}{f' ({notes})' if notes else ''}"


def bound_pointer(autoscaler: Resource, upper: bool) -> str:
    field = bound_field(autoscaler, upper)
    return f"/spec/{field}" if field in autoscaler.spec else "/spec"


class Scale(NamedTuple):
    """The replica counts a workload runs at: fixed by spec.replicas, or an autoscaler's range."""

    low: int
    high: int
    autoscaler: Resource | None = None
    defaulted: bool = False  # spec.replicas unset

    @property
    def _replicas(self) -> str:
        return f"replicas {self.low}{' (the default)' if self.defaulted else ''}"

    @property
    def low_source(self) -> str:
        if self.autoscaler is None:
            return self._replicas
        note = "1 pod whenever it runs" if min_replicas(self.autoscaler) < self.low else ""
        return f"{self.autoscaler.local_ref} {bound_text(self.autoscaler, False, note)}"

    @property
    def high_source(self) -> str:
        if self.autoscaler is None:
            return self._replicas
        return f"{self.autoscaler.local_ref} {bound_text(self.autoscaler, upper=True)}"


def scale(inventory: Inventory, workload: Resource) -> Scale:
    """The workload's replica range. An autoscaler's bounds win over spec.replicas; a KEDA minimum of 0
    still runs one pod whenever it runs any, the count that matters to a rollout or a drain, so the low
    end is at least 1."""
    scalers = autoscalers(inventory, workload)
    if not scalers:
        replicas = declared_replicas(workload)
        return Scale(replicas, replicas, defaulted=integer(workload.spec.get("replicas")) is None)
    first = scalers[0]
    low = max(min_replicas(first), 1)
    high = max_replicas(first)
    return Scale(low, max(low, high if high is not None else low), first)


def scaled_value(value: Any, total: int, round_up: bool) -> int | None:
    """intstr.GetScaledValueFromIntOrPercent: an integer as is, "N%" of ``total`` rounded up or down.

    Anything else (a bare numeric string, a fraction) is an error in the controllers too: None.
    """
    number = integer(value)
    if number is not None:
        return number
    if isinstance(value, str) and value.endswith("%") and is_number_text(value[:-1]):
        percent = int(value[:-1])
        return -(-percent * total // 100) if round_up else percent * total // 100
    return None


def is_zero(value: Any) -> bool:
    """0 or "0%": any other percentage of a non-empty workload rounds up to at least one pod."""
    return scaled_value(value, 100, round_up=True) == 0


def exposure(pods: int) -> str:
    """What running only ``pods`` pods means for availability, for messages."""
    if pods <= 0:
        return "it scales to zero, so the first request after an idle period waits for a pod to start"
    if pods == 1:
        return "a single pod serves everything, so losing it (a crash, a node drain, an eviction) is an outage"
    return f"losing one pod (a node drain, a zone outage) leaves {pods - 1} to carry all the traffic"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
