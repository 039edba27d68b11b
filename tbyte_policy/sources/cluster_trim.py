"""What the live mode keeps of an object it reads: the fields the rules read, and nothing else.

A running namespace is mostly objects no rule judges on their own: the pods, ReplicaSets and Jobs that
workload controllers own (the engine judges them through their controller). Of a ReplicaSet or Job the
checks read only its owner (``checks/runtime.py`` follows a pod's owners up to its workload); of a pod,
its owner, labels (``checks/pdb.py``) and status (``checks/runtime.py``: phase, conditions, container
states), and its containers' names and images (``checks/drift.py``: not rolled out); of both, the ignore
annotations (``config.py``). That is all that is kept of them: the rest of their pod spec, a copy of the
controller's template, is dropped. Of an EndpointSlice, the checks read the
endpoints' conditions (``runtime-service-no-ready-endpoints``); of every other object, all but the
``kubectl apply`` annotation (a copy of the whole manifest that no rule reads) and ``managedFields``.

``tests/live/test_trim.py`` records every field the checks read while auditing the live fixtures and
fails when one is not kept here, or one kept here is never read; and it audits every fixture with and
without trimming to show that the reports are the same.

What is kept is rebuilt with interned keys and short strings (items parsed one at a time share no key
objects, and a namespace repeats the same labels, reasons and timestamps thousands of times), and equal
flat mappings are stored once: an audit of 50,000 pods peaks at 321 MiB instead of 1.9 GiB
(benchmarks/live_benchmark.py).
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

from tbyte_policy.config import IGNORE_ANNOTATION_PREFIX
from tbyte_policy.model import managed_by_workload

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SHORT_STRING = 64  # longer strings are rarely repeated: not worth an intern-table entry
MAX_SHARED_KEYS = 16
_SHAREABLE = frozenset({str, int, bool, type(None)})  # not float: 0.0 and -0.0 are equal

KEEP = True  # the whole value


class Each(NamedTuple):
    """A list: each of its items by ``spec`` (items of another type are kept as they are)."""

    spec: Any


class Prefixed(NamedTuple):
    """A mapping: the entries whose key starts with ``prefix``."""

    prefix: str


Spec = Any  # KEEP | dict[str, Spec] | Each | Prefixed

_CONDITION = {"type": KEEP, "status": KEEP, "reason": KEEP, "message": KEEP}
_CONTAINER_STATUS = {"name": KEEP, "restartCount": KEEP, "state": KEEP, "lastState": KEEP}
_CONTROLLER = Each({"kind": KEEP, "name": KEEP, "uid": KEEP, "controller": KEEP})
_IGNORES = Prefixed(IGNORE_ANNOTATION_PREFIX)
# A ReplicaSet or Job a workload controller owns: a link in its pods' chain of owners.
MANAGED: dict[str, Spec] = {
    "apiVersion": KEEP, "kind": KEEP,
    "metadata": {"name": KEEP, "namespace": KEEP, "uid": KEEP, "ownerReferences": _CONTROLLER, "annotations": _IGNORES},
}
# A pod a workload controller owns: its owner, its labels (a PodDisruptionBudget may select them where the
# controller's template does not), its status, and its containers' names and images (``live --against``
# compares them with the rendered images: drift.ROLLOUT_FIELDS).
_IMAGE = Each({"name": KEEP, "image": KEEP})
MANAGED_POD: dict[str, Spec] = {
    "apiVersion": KEEP, "kind": KEEP,
    "metadata": {"name": KEEP, "namespace": KEEP, "labels": KEEP, "deletionTimestamp": KEEP,
                 "ownerReferences": _CONTROLLER, "annotations": _IGNORES},
    "spec": {"containers": _IMAGE, "initContainers": _IMAGE},
    "status": {"phase": KEEP, "reason": KEEP, "message": KEEP, "conditions": Each(_CONDITION),
               **{key: Each(_CONTAINER_STATUS)
                  for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses")}},
}
ENDPOINT_SLICE: dict[str, Spec] = {"apiVersion": KEEP, "kind": KEEP, "metadata": KEEP,
                                   "endpoints": Each({"conditions": KEEP})}


def spec_for(obj: dict) -> Spec:
    """The fields of ``obj`` (as sanitised: apiVersion and kind set) that the rules read."""
    if managed_by_workload(obj):
        return MANAGED_POD if obj.get("kind") == "Pod" else MANAGED
    if obj.get("kind") == "EndpointSlice":
        return ENDPOINT_SLICE
    return KEEP


class Trimmer:
    """Trims the objects of one run. Equal flat mappings (the labels of a ReplicaSet's pods, their
    conditions, an endpoint's) are stored once: nothing writes to an object once it is read."""

    def __init__(self) -> None:
        self._shared: dict[tuple, dict] = {}

    def trim(self, obj: dict) -> dict:
        """``obj`` reduced to :func:`spec_for` it, without the ``kubectl apply`` annotation, compacted."""
        metadata = obj.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("annotations"), dict) \
                and LAST_APPLIED in metadata["annotations"]:
            annotations = {key: value for key, value in metadata["annotations"].items() if key != LAST_APPLIED}
            obj = {**obj, "metadata": {**metadata, "annotations": annotations}}
        return self._kept(obj, spec_for(obj))

    def _kept(self, value: Any, spec: Spec) -> Any:
        if spec is KEEP:
            return self.compact(value)
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                return self.compact(value)  # a wrong type is kept as it is: the shape pass reports it
            return self._mapping({key: self._kept(item, spec[key]) for key, item in value.items() if key in spec})
        if isinstance(spec, Each):
            if not isinstance(value, list):
                return self.compact(value)
            return [self._kept(item, spec.spec) if isinstance(item, dict) else self.compact(item) for item in value]
        if not isinstance(value, dict):
            return self.compact(value)
        return self._mapping({key: self.compact(item) for key, item in value.items()
                              if isinstance(key, str) and key.startswith(spec.prefix)})

    def compact(self, value: Any) -> Any:
        """The same value, its keys and short strings interned, its flat mappings shared."""
        if isinstance(value, dict):
            return self._mapping({sys.intern(key) if type(key) is str else key: self.compact(item)
                                  for key, item in value.items()})
        if isinstance(value, list):
            return [self.compact(item) for item in value]
        if type(value) is str and len(value) <= SHORT_STRING:
            return sys.intern(value)
        return value

    def _mapping(self, value: dict) -> dict:
        """``value``, or the equal flat mapping stored before (keys, values and their types equal)."""
        if len(value) > MAX_SHARED_KEYS or not all(type(item) in _SHAREABLE for item in value.values()):
            return value
        key = tuple((name, type(item), item) for name, item in value.items())
        return self._shared.setdefault(key, value)
