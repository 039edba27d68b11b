"""All resources of one run, indexed so that cross-resource rules never scan every object per object."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from types import EllipsisType
from typing import Any, Generic, TypeVar

from tbyte_policy.model import POD_BEARING_KINDS, PodView, Resource, mapping, pod_view
from tbyte_policy.selectors import label_selector_matches, map_selector_matches

T = TypeVar("T")

AUTOSCALER_KINDS = ("HorizontalPodAutoscaler", "ScaledObject")
SCALABLE_KINDS = ("Deployment", "StatefulSet", "Rollout", "ReplicaSet")


Pair = tuple[str, str]


class SelectorIndex(Generic[T]):
    """Objects carrying a label selector, found from a pod's labels without trying every object.

    Each object is filed under one of its matchLabels pairs (any pod it selects must carry that pair), the
    one ``choose`` picks (the inventory's: the pair fewest pods carry), or, when it has none, in a
    per-namespace list that is always tried.
    """

    def __init__(self, matches: Callable[[Any, dict], bool],
                 choose: Callable[[str | None, list[Pair]], Pair | None] = lambda _, pairs: next(iter(pairs), None)):
        self._matches = matches
        self._choose = choose
        self._by_pair: dict[tuple[str | None, str, str], list[tuple[T, Any]]] = defaultdict(list)
        self._unkeyed: dict[str | None, list[tuple[T, Any]]] = defaultdict(list)

    def add(self, item: T, namespace: str | None, selector: Any, match_labels: Any) -> None:
        pair = self._choose(namespace, string_pairs(match_labels))
        if pair is None:
            self._unkeyed[namespace].append((item, selector))
        else:
            self._by_pair[(namespace, *pair)].append((item, selector))

    def matching(self, namespace: str | None, labels: dict[str, str]) -> list[T]:
        found = [item for item, selector in self._unkeyed.get(namespace, ()) if self._matches(selector, labels)]
        for key, value in labels.items():
            for item, selector in self._by_pair.get((namespace, key, value), ()):
                if self._matches(selector, labels):
                    found.append(item)
        return found


class Inventory:
    def __init__(self, resources: Iterable[Resource], default_namespace: str = "default",
                 unreadable_kinds: Iterable[str] = (), collected_kinds: Iterable[str] | None = None):
        """``collected_kinds``: the kinds a live run reads (None for a scan, which holds all it was given);
        ``unreadable_kinds``: those of them it could not read."""
        self.resources: list[Resource] = list(resources)
        self.default_namespace = default_namespace
        self.unreadable_kinds: frozenset[str] = frozenset(unreadable_kinds)
        self.collected_kinds = frozenset(collected_kinds) if collected_kinds is not None else None
        self._by_kind: dict[str, list[Resource]] = defaultdict(list)
        self._by_name: dict[tuple[str, str | None, str], Resource] = {}
        self._by_namespace_kind: dict[tuple[str | None, str], list[Resource]] = defaultdict(list)
        for resource in self.resources:
            self._by_kind[resource.kind].append(resource)
            self._by_name.setdefault((resource.kind, resource.namespace, resource.name), resource)
            self._by_namespace_kind[(resource.namespace, resource.kind)].append(resource)

        # An Argo Rollout's workloadRef borrows another workload's pod template; that workload runs no pods of
        # its own (Argo Rollouts scales it to zero), so its template is filed as the Rollout's pods only.
        self._template_holders: dict[Resource, Resource | None] = {
            rollout: self.get(mapping(reference).get("kind") or "Deployment", rollout.namespace,
                              mapping(reference).get("name"))
            for rollout in self.kind("Rollout") if isinstance(reference := rollout.spec.get("workloadRef"), dict)}
        self.workload_ref_targets: frozenset[Resource] = frozenset(
            holder for holder in self._template_holders.values() if holder is not None)
        self._pods: dict[Resource, PodView] = {}
        self._pods_by_namespace: dict[str | None, list[PodView]] = defaultdict(list)
        self._pods_by_label: dict[tuple[str | None, str, str], list[PodView]] = defaultdict(list)
        for resource in self.resources:
            if resource.kind in POD_BEARING_KINDS and not resource.managed_by_workload:
                self._file_pods(resource)

        self.pdbs = SelectorIndex[Resource](label_selector_matches, self._rarest_pair)
        for pdb in self.kind("PodDisruptionBudget"):
            selector = pdb.spec.get("selector")
            self.pdbs.add(pdb, pdb.namespace, selector, mapping(selector).get("matchLabels"))
        self.network_policies = SelectorIndex[Resource](label_selector_matches, self._rarest_pair)
        for policy in self.kind("NetworkPolicy"):
            selector = policy.spec.get("podSelector")
            if selector is None:
                selector = {}  # not a pointer in the API: an absent podSelector is the empty one
            self.network_policies.add(policy, policy.namespace, selector, mapping(selector).get("matchLabels"))
        self.services = SelectorIndex[Resource](map_selector_matches, self._rarest_pair)
        for service in self.kind("Service"):
            selector = service.spec.get("selector")
            if isinstance(selector, dict) and selector:
                self.services.add(service, service.namespace, selector, selector)

        self._autoscalers: dict[tuple[str | None, str, str], list[Resource]] = defaultdict(list)
        for autoscaler in self.autoscalers():
            target = scale_target(autoscaler)
            if target:
                self._autoscalers[(autoscaler.namespace, *target)].append(autoscaler)

    def _file_pods(self, resource: Resource) -> None:
        holder = self._template_holders.get(resource)
        if holder is None and resource in self._template_holders:
            return  # the workloadRef names nothing in the run
        pods = pod_view(resource, holder)
        if pods is None:
            return
        self._pods[resource] = pods
        if resource in self.workload_ref_targets:
            return  # a template only: the pods that run are the Rollout's
        self._pods_by_namespace[resource.namespace].append(pods)
        for key, value in pods.labels.items():
            self._pods_by_label[(resource.namespace, key, value)].append(pods)

    def _rarest_pair(self, namespace: str | None, pairs: list[Pair]) -> Pair | None:
        """The label pair fewest pods of the namespace carry: where a selector is filed and looked up. Not the
        first pair: the API server returns labels sorted by key, so that is often one every pod of an app
        carries (``app.kubernetes.io/instance``), and lookups by it try every workload."""
        return min(pairs, key=lambda pair: len(self._pods_by_label.get((namespace, *pair), ())), default=None)

    # --- lookups ---

    def sees(self, *kinds: str) -> bool:
        """Whether objects of these kinds that are not in the run are absent for real.

        A scan holds everything it was given; a live run only the kinds it collects and could read.
        Cross-resource rules that conclude from an absence ask this first.
        """
        return all(kind not in self.unreadable_kinds
                   and (self.collected_kinds is None or kind in self.collected_kinds) for kind in kinds)

    def kind(self, kind: str, namespace: str | EllipsisType | None = ...) -> list[Resource]:
        if namespace is ...:
            return self._by_kind.get(kind, [])
        return self._by_namespace_kind.get((namespace, kind), [])

    def get(self, kind: Any, namespace: str | None, name: Any) -> Resource | None:
        if not isinstance(kind, str) or not isinstance(name, str):
            return None  # a reference of the wrong type names nothing
        return self._by_name.get((kind, namespace, name))

    def namespaces(self) -> list[str]:
        names = {resource.namespace for resource in self.resources if resource.namespace}
        names.update(namespace.name for namespace in self.kind("Namespace"))
        return sorted(names)

    def autoscalers(self, namespace: str | EllipsisType | None = ...) -> list[Resource]:
        return [scaler for kind in AUTOSCALER_KINDS for scaler in self.kind(kind, namespace)]

    def autoscalers_of(self, workload: Resource) -> list[Resource]:
        return self._autoscalers.get((workload.namespace, workload.kind, workload.name), [])

    # --- pods ---

    def pods_of(self, workload: Resource) -> PodView | None:
        """The pods a workload runs (the controller's template; a Rollout's workloadRef resolved); for the
        workload a workloadRef names, its template."""
        return self._pods.get(workload)

    def workloads(self, namespace: str | EllipsisType | None = ...) -> list[PodView]:
        """The pods of every workload that runs pods (not of those that only lend a Rollout their template)."""
        if namespace is ...:
            return list(self._pods.values())
        return self._pods_by_namespace.get(namespace, [])

    def pods_matching(self, namespace: str | None, selector: Any) -> list[PodView]:
        """Pods (by their workload) that a metav1.LabelSelector selects in ``namespace``."""
        if not isinstance(selector, dict):
            return []
        pair = self._rarest_pair(namespace, string_pairs(selector.get("matchLabels")))
        candidates = self._pods_by_label.get((namespace, *pair), []) if pair else self.workloads(namespace)
        return [pods for pods in candidates if label_selector_matches(selector, pods.labels)]

    def pods_matching_map(self, namespace: str | None, selector: Any) -> list[PodView]:
        """Pods that a Service-style map selector selects; an empty or absent map selects none."""
        if not isinstance(selector, dict) or not selector:
            return []
        return self.pods_matching(namespace, {"matchLabels": selector}) \
            if all(isinstance(value, str) for value in selector.values()) \
            else [pods for pods in self.workloads(namespace) if map_selector_matches(selector, pods.labels)]


def string_pairs(match_labels: Any) -> list[Pair]:
    """The (key, value) pairs of a matchLabels map that can select anything (string values)."""
    if not isinstance(match_labels, dict):
        return []
    return [(key, value) for key, value in match_labels.items() if isinstance(value, str)]


def scale_target(autoscaler: Resource) -> tuple[str, str] | None:
    """(kind, name) an HPA or KEDA ScaledObject scales; KEDA's kind defaults to Deployment."""
    target = autoscaler.spec.get("scaleTargetRef")
    if not isinstance(target, dict) or not isinstance(target.get("name"), str):
        return None
    kind = target.get("kind")
    if autoscaler.kind == "ScaledObject" and not kind:
        kind = "Deployment"
    return (kind, target["name"]) if isinstance(kind, str) else None
