"""The controllers' int-or-percent arithmetic the pdb, hpa, replicas and rollout families rely on."""

from __future__ import annotations

import pytest

from tbyte_policy.checks.rollout import DEFAULT_MAX_SURGE, DEFAULT_MAX_UNAVAILABLE, Fenceposts, resolve_fenceposts
from tbyte_policy.checks.workloads import Scale, is_zero, scale, scaled_value
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import Resource, Source


@pytest.mark.parametrize(("value", "total", "round_up", "expected"), [
    (3, 10, False, 3),          # an integer is taken as is
    ("25%", 4, False, 1),
    ("25%", 2, False, 0),       # 0.5 rounds down
    ("25%", 2, True, 1),        # and up
    ("67%", 3, True, 3),        # 2.01 rounds up: the disruption controller's minAvailable
    ("50%", 3, True, 2),
    ("10%", 3, True, 1),        # the disruption controller's maxUnavailable, rounded up
    ("150%", 10, True, 15),
    ("0%", 50, True, 0),
])
def test_scaled_value_rounds_like_get_scaled_value_from_int_or_percent(value, total, round_up, expected):
    assert scaled_value(value, total, round_up) == expected


@pytest.mark.parametrize("value", ["25", "abc%", "-5%", "2.5%", 1.5, True, None, [1]])
def test_scaled_value_rejects_what_the_controllers_reject(value):
    assert scaled_value(value, 10, round_up=True) is None


@pytest.mark.parametrize(("value", "zero"), [(0, True), ("0%", True), (1, False), ("1%", False), ("25%", False),
                                             (None, False)])
def test_is_zero(value, zero):
    assert is_zero(value) is zero


# The cases of the comment above deploymentutil.ResolveFenceposts in the Kubernetes source.
@pytest.mark.parametrize(("desired", "unavailable", "surge", "expected"), [
    (2, "1%", "0%", Fenceposts(0, 1, forced=True)),
    (1, "1%", "0%", Fenceposts(0, 1, forced=True)),
    (2, "25%", "1%", Fenceposts(1, 0, forced=False)),
    (1, "25%", "1%", Fenceposts(1, 0, forced=False)),
    (2, "0%", "1%", Fenceposts(1, 0, forced=False)),
    (1, "0%", "1%", Fenceposts(1, 0, forced=False)),
])
def test_resolve_fenceposts_matches_the_kubernetes_examples(desired, unavailable, surge, expected):
    assert resolve_fenceposts(surge, unavailable, desired) == expected


@pytest.mark.parametrize(("replicas", "surge", "unavailable"), [(1, 1, 0), (2, 1, 0), (3, 1, 0), (4, 1, 1), (10, 3, 2)])
def test_default_rolling_update_resolves_as_documented(replicas, surge, unavailable):
    # replicas 2 with the 25%/25% defaults keeps every pod serving; replicas 4 takes one down.
    assert resolve_fenceposts(DEFAULT_MAX_SURGE, DEFAULT_MAX_UNAVAILABLE, replicas) == \
        Fenceposts(surge, unavailable, forced=False)


def test_resolve_fenceposts_gives_up_on_values_the_controller_rejects():
    assert resolve_fenceposts("one", 0, 3) is None
    assert resolve_fenceposts(1, "25", 3) is None


def _resource(kind: str, name: str, spec: dict, api_version: str = "apps/v1") -> Resource:
    raw = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": "shop"}, "spec": spec}
    return Resource(api_version, kind, name, "shop", raw, Source("test.yaml", 1))


def test_scale_uses_spec_replicas_defaulting_to_one():
    web, admin = _resource("Deployment", "web", {"replicas": 4}), _resource("Deployment", "admin", {})
    inventory = Inventory([web, admin])
    assert scale(inventory, web) == Scale(4, 4)
    assert scale(inventory, admin) == Scale(1, 1, defaulted=True)


def test_scale_prefers_the_autoscaler_and_counts_a_keda_minimum_of_zero_as_one_running_pod():
    web = _resource("Deployment", "web", {"replicas": 8})
    hpa = _resource("HorizontalPodAutoscaler", "web", {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                                                       "maxReplicas": 5}, "autoscaling/v2")
    assert scale(Inventory([web, hpa]), web) == Scale(1, 5, hpa)  # minReplicas defaults to 1

    worker = _resource("Deployment", "worker", {})
    keda = _resource("ScaledObject", "worker", {"scaleTargetRef": {"name": "worker"}}, "keda.sh/v1alpha1")
    size = scale(Inventory([worker, keda]), worker)
    assert size == Scale(1, 100, keda)  # minReplicaCount 0 and maxReplicaCount 100 by default
    assert size.low_source == "ScaledObject/worker minReplicaCount 0 (the default; 1 pod whenever it runs)"
    assert size.high_source == "ScaledObject/worker maxReplicaCount 100 (the default)"


def test_scale_ignores_the_hpa_keda_creates_for_its_scaled_object():
    worker = _resource("Deployment", "worker", {"replicas": 2})
    keda_hpa = _resource("HorizontalPodAutoscaler", "keda-hpa-worker",
                         {"scaleTargetRef": {"kind": "Deployment", "name": "worker"}, "minReplicas": 7,
                          "maxReplicas": 9}, "autoscaling/v2")
    keda_hpa.raw["metadata"]["ownerReferences"] = [{"kind": "ScaledObject", "name": "worker", "controller": True}]
    assert scale(Inventory([worker, keda_hpa]), worker) == Scale(2, 2)
