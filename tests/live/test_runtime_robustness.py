"""Property: live objects with any status (wrong types, missing fields, broken ownerReferences) never
make a rule raise; the audit of a live namespace reports, it does not crash."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_robustness import garbage, parent_of, paths_of

from tbyte_policy.audit import AuditOptions, audit_resources, build_resources
from tbyte_policy.reporters import render
from tbyte_policy.sources.cluster import ClusterSource

from .cluster_fixtures import broken

LIVE = [obj for name in ("crash-loop", "rollout-paused", "keda-fallback", "statefulset-down", "unschedulable")
        for obj in broken(name).objects]
OPTIONS = AuditOptions()
# Where the live mode reads what manifests do not have.
LIVE_ONLY = ("status", "metadata", "endpoints")


@st.composite
def mutated_objects(draw):
    objects = copy.deepcopy(LIVE)
    for _ in range(draw(st.integers(1, 10))):
        target = draw(st.sampled_from(objects))
        candidates = [path for path in paths_of(target) if path and path[0] in LIVE_ONLY and path != ("metadata",)
                      and path[:2] != ("metadata", "name")]
        if not candidates:
            continue
        path = draw(st.sampled_from(candidates))
        parent = parent_of(target, path)
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(garbage)
    return objects


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_objects())
def test_mutated_live_objects_never_crash_the_audit(objects):
    errors = []
    resources = build_resources(ClusterSource(objects).load().documents, "tbyte", errors)
    report = audit_resources(resources, OPTIONS, "live", errors)
    assert report.internal_errors == []
    render("table", report)
    render("json", report)

