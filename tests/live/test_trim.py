"""Trimming: the live mode keeps of each object only what the checks read, and that changes no report.

The kept fields (``tbyte_policy/live/trim.py``) are checked against what the checks really read: every
object that trimming would cut is audited wrapped in a recorder of the fields read, over every live
fixture; each field read must be kept, and each kept field must be read by some check."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings

from tbyte_policy.audit import AuditOptions, audit_resources, build_resources
from tbyte_policy.live.command import audit_collection
from tbyte_policy.reporters import render
from tbyte_policy.sources.cluster import ALL_KINDS, ClusterSource, collect
from tbyte_policy.sources.cluster_trim import (
    ENDPOINT_SLICE,
    KEEP,
    MANAGED,
    MANAGED_POD,
    Each,
    Prefixed,
    Trimmer,
    spec_for,
)

from .cluster_fixtures import BROKEN, NS, Cluster, broken, cluster, scaled_namespace
from .test_runtime_robustness import mutated_objects

SPECS = {"managed": MANAGED, "managed pod": MANAGED_POD, "endpoint slice": ENDPOINT_SLICE}
# Read when the resource is built, before any check runs: always kept.
IDENTITY = {("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"), ("metadata", "namespace")}
# Read by the drift rules (live --against), which these fixtures do not run: tests/live/test_drift.py holds
# drift to what it declares (drift.ROLLOUT_FIELDS) and shows its findings on trimmed objects.
DRIFT_READS = {"managed pod": {("spec", "containers", "*", "name"), ("spec", "containers", "*", "image"),
                               ("spec", "initContainers", "*", "name"), ("spec", "initContainers", "*", "image")}}


def pod_details() -> Cluster:
    """What the other fixtures' pods lack: annotations (an ignore annotation among them), init and
    ephemeral container statuses, and a PodDisruptionBudget that selects pods by a label their
    controller's template does not have."""
    live = cluster("production")
    frontend = live.get("Deployment", "frontend")
    pods = sorted(live.pods_of(frontend), key=lambda pod: pod["metadata"]["name"])
    pods[0]["metadata"]["annotations"] = {"prometheus.io/scrape": "true",
                                          "tbyte-policy.io/ignore.no-such-rule": "not a rule: an error",
                                          "tbyte-policy.io/ignore.readiness-probe-missing": "a pod: no effect"}
    running = pods[1]["status"]["containerStatuses"][0]
    pods[1]["status"]["initContainerStatuses"] = [{**copy.deepcopy(running), "name": "migrate", "restartCount": 9,
                                                   "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
    pods[1]["status"]["ephemeralContainerStatuses"] = [{**copy.deepcopy(running), "name": "debugger"}]
    pod_hash = pods[0]["metadata"]["labels"]["pod-template-hash"]
    live.add({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
              "metadata": {"name": "frontend-revision", "namespace": NS, "uid": "frontend-revision-pdb"},
              "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"pod-template-hash": pod_hash}}}})
    return live.settle()


def fixtures() -> dict[str, Cluster]:
    found = {variant: cluster(variant) for variant in ("production", "canary", "in-cluster-db")}
    found.update({name: broken(name) for name in BROKEN})
    found["scaled"] = scaled_namespace(3, pods_per_deployment=4)
    found["pod-details"] = pod_details()
    return found


FIXTURES = fixtures()


def collected(server, **options):
    return collect(NS, kubeconfig=server.kubeconfig_path, context="test", timeout=10, **options)


def test_trimming_keeps_less(k8s_server):
    server = k8s_server(FIXTURES["production"].objects)
    whole, trimmed = collected(server, trimmed=False), collected(server)
    assert [(o["kind"], o["metadata"]["name"]) for o in whole.objects] == \
           [(o["kind"], o["metadata"]["name"]) for o in trimmed.objects]
    pod = next(o for o in trimmed.objects if o["kind"] == "Pod" and o["metadata"]["name"].startswith("backend-"))
    assert set(pod) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert pod["spec"] == {"containers": [{"name": "backend", "image": pod["spec"]["containers"][0]["image"]}]}
    assert all(set(owner) == {"kind", "name", "uid", "controller"} for owner in pod["metadata"]["ownerReferences"])
    assert all(set(condition) <= {"type", "status", "reason", "message"} for condition in pod["status"]["conditions"])
    deployment = next(o for o in trimmed.objects if o["kind"] == "Deployment")
    assert "kubectl.kubernetes.io/last-applied-configuration" not in deployment["metadata"]["annotations"]
    untrimmed = next(o for o in whole.objects if o["kind"] == "Deployment")
    assert "kubectl.kubernetes.io/last-applied-configuration" in untrimmed["metadata"]["annotations"]
    assert deployment["spec"] == untrimmed["spec"] and deployment["status"] == untrimmed["status"]
    assert len(json.dumps(trimmed.objects)) < len(json.dumps(whole.objects)) / 2


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_trimming_changes_no_report(k8s_server, name):
    """Every live fixture, audited from whole objects and from trimmed ones (in chunks too): the same
    report, findings, errors and summary alike."""
    server = k8s_server(FIXTURES[name].objects)
    reports = [audit_collection(collected(server, **options), AuditOptions())
               for options in ({"trimmed": False}, {}, {"chunk_size": 7})]
    rendered = [json.loads(render("json", report)) for report in reports]
    assert rendered[0]["summary"]["resources"] == len(FIXTURES[name].objects)
    assert rendered[1] == rendered[0]
    assert rendered[2] == rendered[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_objects())
def test_trimming_changes_no_finding_of_mutated_objects(objects):
    """Whatever the status and metadata of live objects (wrong types, missing fields, broken owners),
    trimming them changes no finding."""
    whole = _audit(copy.deepcopy(objects))
    trimmer = Trimmer()
    trimmed = _audit([trimmer.trim(obj) for obj in objects])
    assert [finding._asdict() for finding in trimmed.findings] == [finding._asdict() for finding in whole.findings]
    assert trimmed.internal_errors == whole.internal_errors == []


def _audit(objects, wrap=None):
    errors: list = []
    resources = build_resources(ClusterSource(objects).load().documents, NS, errors)
    if wrap is not None:
        wrap(resources)
    return audit_resources(resources, AuditOptions(namespace=NS), "live", errors,
                           collected_kinds=[kind.kind for kind in ALL_KINDS])


# --- what the checks read ---

class _Reads(dict):
    """spec name -> the paths read (list positions as "*", a mapping's keys or values as "*")."""

    def add(self, spec: str, path: tuple) -> None:
        self.setdefault(spec, set()).add(path)


def _recorded(value, spec: str, path: tuple, reads: _Reads):
    if isinstance(value, dict):
        return _RecordedDict(value, spec, path, reads)
    if isinstance(value, list):
        return _RecordedList(value, spec, path, reads)
    return value


class _RecordedDict(dict):
    def __init__(self, value, spec, path, reads):
        super().__init__(value)
        self._where = (spec, path, reads)

    def _read(self, key):
        spec, path, reads = self._where
        reads.add(spec, (*path, key))

    def _child(self, key, value):
        spec, path, reads = self._where
        return _recorded(value, spec, (*path, key), reads)

    def __getitem__(self, key):
        self._read(key)
        return self._child(key, super().__getitem__(key))

    def get(self, key, default=None):
        self._read(key)
        return self._child(key, super().__getitem__(key)) if super().__contains__(key) else default

    def __contains__(self, key):
        self._read(key)
        return super().__contains__(key)

    def items(self):
        self._read("*")
        return [(key, self._child(key, value)) for key, value in super().items()]

    def values(self):
        return [value for _, value in self.items()]

    def keys(self):
        self._read("*")
        return list(super().keys())

    def __iter__(self):
        return iter(self.keys())


class _RecordedList(list):
    def __init__(self, value, spec, path, reads):
        super().__init__(value)
        self._where = (spec, path, reads)

    def _child(self, value):
        spec, path, reads = self._where
        return _recorded(value, spec, (*path, "*"), reads)

    def __getitem__(self, index):
        found = super().__getitem__(index)
        return [self._child(item) for item in found] if isinstance(index, slice) else self._child(found)

    def __iter__(self):
        return (self._child(item) for item in super().__iter__())


def _spec_name(raw: dict) -> str | None:
    spec = spec_for(raw)
    return next((name for name, known in SPECS.items() if known is spec), None)


def _covered(spec, path: tuple) -> bool:
    for part in path:
        if spec is KEEP:
            return True
        if isinstance(spec, Prefixed):
            return part == "*" or str(part).startswith(spec.prefix)
        if isinstance(spec, Each):
            if part != "*":
                return False
            spec = spec.spec
        elif part not in spec:
            return False
        else:
            spec = spec[part]
    return True


def _kept_leaves(spec, path: tuple = ()):
    """The paths of a spec's kept fields, list positions as "*"."""
    if spec is KEEP:
        yield path
    elif isinstance(spec, Prefixed):
        yield (*path, "*")
    elif isinstance(spec, Each):
        yield from _kept_leaves(spec.spec, (*path, "*"))
    else:
        for key, inner in spec.items():
            yield from _kept_leaves(inner, (*path, key))


def _read_beneath(reads: set[tuple], leaf: tuple) -> bool:
    return any(read[:len(leaf)] == leaf for read in reads)


def test_kept_fields_are_the_fields_the_checks_read():
    reads = _Reads()

    def record(resources):
        for resource in resources:
            name = _spec_name(resource.raw)
            if name is not None:
                resource.raw = _RecordedDict(resource.raw, name, (), reads)

    for live in FIXTURES.values():
        _audit(copy.deepcopy(live.objects), wrap=record)
    assert set(reads) == set(SPECS)
    for name, spec in SPECS.items():
        not_kept = sorted(path for path in reads[name] if not _covered(spec, path))
        assert not_kept == [], f"the checks read fields of {name} objects that trimming drops"
        unread = sorted(leaf for leaf in _kept_leaves(spec)
                        if leaf not in IDENTITY and leaf not in DRIFT_READS.get(name, ())
                        and not _read_beneath(reads[name], leaf))
        assert unread == [], f"trimming keeps fields of {name} objects that no check reads"
    # the recorder sees reads at all
    assert ("status", "containerStatuses", "*", "restartCount") in reads["managed pod"]
    assert ("metadata", "ownerReferences", "*", "uid") in reads["managed"]


def test_ignore_annotations_of_trimmed_pods_are_still_read(k8s_server):
    report = audit_collection(collected(k8s_server(FIXTURES["pod-details"].objects)), AuditOptions())
    pod = next(o["metadata"]["name"] for o in FIXTURES["pod-details"].objects
               if o["kind"] == "Pod" and "no-such-rule" in str(o["metadata"].get("annotations")))
    assert [error.message for error in report.errors] == [
        f"Pod/{NS}/{pod}: annotation tbyte-policy.io/ignore.no-such-rule names no known rule"]
