"""Whether a Service, NetworkPolicy or PodDisruptionBudget selector can select pods of the run, counting the
labels controllers add to the pods they create, and when the run cannot tell. Shared by the services,
network-policy and pdb families.

Not a family module: it registers no checks.

Besides the workloads' pod templates (and the pods the run implies, see workload_ports.generated_pod_labels):
- the StatefulSet controller labels each pod `statefulset.kubernetes.io/pod-name: <statefulset>-<i>` and
  `apps.kubernetes.io/pod-index: "<i>"` (0 <= i < replicas), so a Service for one member of a StatefulSet does
  select a pod;
- some labels carry values the controllers compute (pod-template-hash, controller-revision-hash, a Job's
  controller-uid...): a selector that matches the run's pods once those keys are left out cannot be verified;
- an operator creates the pods of its custom resources with labels the run never shows: a selector whose key
  belongs to the API group of a custom resource of the namespace (strimzi.io/cluster and a kafka.strimzi.io
  Kafka), or whose value is such a resource's name, cannot be verified either.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any, NamedTuple

from tbyte_policy.checks.memo import per_inventory
from tbyte_policy.checks.workload_ports import generated_pod_labels
from tbyte_policy.checks.workloads import scale
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import Resource, is_number_text, mapping, sequence
from tbyte_policy.selectors import label_selector_matches

STATEFULSET_POD_NAME = "statefulset.kubernetes.io/pod-name"
POD_INDEX = "apps.kubernetes.io/pod-index"
# Labels controllers set with values computed at run time (a template hash, an object's uid, a run's name).
COMPUTED_LABELS = frozenset({
    "pod-template-hash", "controller-revision-hash", "pod-template-generation", "rollouts-pod-template-hash",
    "controller-uid", "batch.kubernetes.io/controller-uid", "job-name", "batch.kubernetes.io/job-name",
    "batch.kubernetes.io/job-completion-index"})
# API groups of custom resources that run no pods, or whose pods the run already resolves exactly
# (prometheus-operator's, Argo Rollouts').
_PODLESS_GROUPS = ("external-secrets.io", "cert-manager.io", "keda.sh", "argoproj.io", "monitoring.coreos.com")


class Outcome(NamedTuple):
    matches: bool
    unverifiable: str | None = None  # why the run cannot tell, when it cannot
    related: tuple[Resource, ...] = ()


def _values(selector: dict) -> set[str]:
    values = {str(value) for value in mapping(selector.get("matchLabels")).values()}
    for expression in sequence(selector.get("matchExpressions")):
        values.update(str(value) for value in sequence(mapping(expression).get("values")))
    return values


def _statefulset_pod_labels(namespace: str | None, inventory: Inventory, values: set[str]) -> Iterator[dict]:
    """Labels of the StatefulSets' pods as their controller sets them, for the ordinals the selector names
    (and the first one)."""
    for statefulset in inventory.kind("StatefulSet", namespace):
        pods = inventory.pods_of(statefulset)
        if pods is None:
            continue
        replicas = scale(inventory, statefulset).high
        ordinals = {0}
        for value in values:
            suffix = value[len(statefulset.name) + 1:] if value.startswith(f"{statefulset.name}-") else value
            if is_number_text(suffix):
                ordinals.add(int(suffix))
        for ordinal in sorted(ordinal for ordinal in ordinals if ordinal < replicas):
            yield {**pods.labels, STATEFULSET_POD_NAME: f"{statefulset.name}-{ordinal}", POD_INDEX: str(ordinal)}


def _implied_pod_labels(namespace: str | None, inventory: Inventory, values: set[str]) -> Iterator[dict]:
    """Labels of pods beyond the workloads' templates (which the inventory's indexes hold)."""
    yield from generated_pod_labels(namespace, inventory)
    yield from _statefulset_pod_labels(namespace, inventory, values)


def _without_computed(selector: dict) -> dict:
    return {"matchLabels": {key: value for key, value in mapping(selector.get("matchLabels")).items()
                            if key not in COMPUTED_LABELS},
            "matchExpressions": [expression for expression in sequence(selector.get("matchExpressions"))
                                 if mapping(expression).get("key") not in COMPUTED_LABELS]}


@per_inventory
def _custom_resources(inventory: Inventory) -> dict[str | None, list[Resource]]:
    """Namespace -> its custom resources that an operator may run pods for."""
    found: dict[str | None, list[Resource]] = defaultdict(list)
    for resource in inventory.resources:
        group = resource.group
        if "." in group and not group.endswith(("k8s.io", "kubernetes.io")) \
                and not any(group == podless or group.endswith(f".{podless}") for podless in _PODLESS_GROUPS):
            found[resource.namespace].append(resource)
    return found


def _related_domain(key: str, group: str) -> bool:
    prefix = key.partition("/")[0] if "/" in key else ""
    if not prefix or prefix.endswith(("k8s.io", "kubernetes.io")):
        return False
    return group == prefix or group.endswith(f".{prefix}") or prefix.endswith(f".{group}")


def _keys(selector: dict) -> set[str]:
    keys = {str(key) for key in mapping(selector.get("matchLabels"))}
    keys.update(str(mapping(expression).get("key")) for expression in sequence(selector.get("matchExpressions")))
    return keys


def resolve(namespace: str | None, selector: Any, inventory: Inventory) -> Outcome:
    """What the run can say of a (non-empty) metav1.LabelSelector; a Service's map selector is passed as
    {"matchLabels": map}."""
    selector = mapping(selector)
    if inventory.pods_matching(namespace, selector):
        return Outcome(True)
    values = _values(selector)
    if any(label_selector_matches(selector, labels) for labels in _implied_pod_labels(namespace, inventory, values)):
        return Outcome(True)
    computed = sorted(_keys(selector) & COMPUTED_LABELS)
    if computed:
        reduced = _without_computed(selector)
        implied = _implied_pod_labels(namespace, inventory, values)
        if inventory.pods_matching(namespace, reduced) or any(label_selector_matches(reduced, labels)
                                                               for labels in implied):
            return Outcome(False, f"it matches pods of the run only if their {', '.join(computed)} label has the "
                                  f"selected value, which a controller computes when it creates them")
    keys = _keys(selector)
    for resource in _custom_resources(inventory).get(namespace, ()):
        if resource.name in values or any(_related_domain(key, resource.group) for key in keys):
            return Outcome(False, f"it selects labels the run's templates do not carry, which the operator of "
                                  f"{resource.kind}/{resource.name} ({resource.group}) may put on the pods it creates",
                           (resource,))
    return Outcome(False)
