"""Drift: the rendered manifests a live run compares the namespace with (``live --against``), and how one
manifest is compared with its live object.

What is compared is what the manifest sets, and only that: a field the manifest leaves out is not looked at
on the live object, so whatever the API server defaults (``protocol: TCP``, ``imagePullPolicy``, probe
timeouts, ``strategy``, ``revisionHistoryLimit``, a Service's ``clusterIP`` ...) and whatever controllers
add (``pod-template-hash``, ``deployment.kubernetes.io/revision``, the ``kubectl apply`` annotation,
``status``, ``managedFields``) never shows as drift. Inside what the manifest sets, the comparison follows
the API's semantics rather than the text:

- maps compare the keys the manifest sets, in any order; label selectors, ``nodeSelector`` and resource
  requests/limits compare whole (a key added live changes what they mean), minus the hash labels that
  controllers add to selectors;
- lists that the API merges by key (containers and env by name, container ports by port and protocol,
  Service ports, volumes, volume mounts ...) match entries by key, not by index; other lists compare
  item by item, in order;
- lists the API server never fills in (a container's env, ports, command ...; a pod's containers and
  volumes; a NetworkPolicy's rules) count as empty when the manifest leaves them out, so an entry added by
  hand is seen;
- quantities compare by value (``1000m`` = ``1``, ``1Gi`` = ``1024Mi``), int-or-string fields by text
  (``8080`` = ``"8080"``), and a zero value in the manifest (``false``, ``0``, ``""``, ``[]``, ``{}``) equals
  a field the server leaves out (Go's ``omitempty``).

Values are quoted in messages except where they may be secret: nothing of a Secret, no env ``value``, no
ConfigMap data (those say "differs").

``COMPARED_FIELDS`` and ``ROLLOUT_FIELDS`` declare every field drift reads of a live object: a collector that
trims objects to save memory must keep them.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

from tbyte_policy.findings import ReportError
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import (
    POD_TEMPLATE_POINTERS,
    Resource,
    escape_pointer_part,
    is_number_text,
    mapping,
    split_pointer,
)
from tbyte_policy.quantity import try_quantity

# --- what drift reads of a live object ---

_METADATA = ("/metadata/labels", "/metadata/annotations")
_SPEC = (*_METADATA, "/spec")
# kind -> the fields compared with the manifest (JSON pointers; ``*`` stands for any list index).
COMPARED_FIELDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys((
        "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Rollout", "Service", "Ingress",
        "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ExternalSecret", "SecretStore",
        "ClusterSecretStore", "ScaledObject", "AnalysisTemplate"), _SPEC),
    # A pod is mutated by admission (service-account volumes, tolerations, injected sidecars): only what
    # a pod's spec may change afterwards, its images, is compared.
    "Pod": (*_METADATA, "/spec/containers/*/image", "/spec/initContainers/*/image"),
    "ConfigMap": (*_METADATA, "/data", "/binaryData", "/immutable"),
    "Secret": _METADATA,  # read as metadata only (PartialObjectMetadata): not even its type
    "ServiceAccount": (*_METADATA, "/automountServiceAccountToken", "/imagePullSecrets"),
    "EndpointSlice": (*_METADATA, "/addressType", "/endpoints", "/ports"),
    "Namespace": _METADATA,
}
_IDENTITY = ("/apiVersion", "/kind", "/metadata/name", "/metadata/namespace", "/metadata/uid",
             "/metadata/ownerReferences")
# kind -> what the not-rolled-out and unmanaged rules read besides the compared fields.
ROLLOUT_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("/metadata/deletionTimestamp", "/spec/containers/*/name", "/spec/initContainers/*/name",
            "/status/phase"),
    **dict.fromkeys(("Deployment", "StatefulSet", "DaemonSet", "Rollout"), ("/metadata/generation", "/status")),
}


def fields_read(kind: str) -> tuple[str, ...]:
    """Every field drift reads of a live object of this kind (identity, compared fields, rollout state)."""
    return (*_IDENTITY, *COMPARED_FIELDS.get(kind, _METADATA), *ROLLOUT_FIELDS.get(kind, ()))


# --- the rendered side and what a live run can compare of it ---

HELM_HOOK = "helm.sh/hook"
NOT_READ, OUT_OF_SCOPE, UNKNOWN, HOOK, GENERATED = (
    "kind not read by the live audit", "outside the namespace read", "unknown", "Helm hook", "generated name")


class RenderedManifests:
    """The rendered side of ``live --against``: its objects indexed like the live ones, and what the live run
    read (``namespace``: the one namespace, None for all; ``not_served``: kinds whose CRD the cluster lacks)."""

    def __init__(self, resources: Iterable[Resource], *, namespace: str | None, default_namespace: str,
                 not_served: Iterable[str] = ()) -> None:
        self.inventory = Inventory(resources, default_namespace)
        self.namespace = namespace
        self.not_served = frozenset(not_served)
        self.namespaces = frozenset(
            {resource.namespace for resource in self.inventory.resources if resource.namespace}
            | {resource.name for resource in self.inventory.kind("Namespace")})

    def not_compared(self, manifest: Resource, live: Inventory) -> str | None:
        """Why the live run cannot compare this manifest (one of the reasons above), or None."""
        if live.collected_kinds is not None and manifest.kind not in live.collected_kinds:
            return NOT_READ
        if self.namespace is not None and (
                manifest.namespace not in (None, self.namespace)
                or (manifest.kind == "Namespace" and manifest.name != self.namespace)):
            return OUT_OF_SCOPE
        if manifest.kind in live.unreadable_kinds:
            return UNKNOWN
        if HELM_HOOK in manifest.annotations:
            return HOOK  # Helm creates and deletes hooks around a release: they are not part of what runs
        if manifest.name.endswith("*"):
            return GENERATED
        return None

    def live_object(self, manifest: Resource, live: Inventory) -> Resource | None:
        """The live object this manifest describes, when the run can compare them."""
        if self.not_compared(manifest, live) is not None:
            return None
        return live.get(manifest.kind, manifest.namespace, manifest.name)

    def coverage_warnings(self, live: Inventory) -> list[ReportError]:
        """What of the manifests the run could not compare: nothing is skipped without a word."""
        skipped: dict[str, Counter] = defaultdict(Counter)
        warnings = []
        for manifest in self.inventory.resources:
            reason = self.not_compared(manifest, live)
            if reason is not None:
                skipped[reason][manifest.kind] += 1
            elif manifest.kind in COMPARED_FIELDS and (counterpart := live.get(
                    manifest.kind, manifest.namespace, manifest.name)) is not None \
                    and counterpart.api_version != manifest.api_version:
                warnings.append(ReportError(manifest.source.path, manifest.source.line, (
                    f"drift: only the labels and annotations of {manifest.ref} are compared: the manifest is "
                    f"{manifest.api_version}, the live audit reads {counterpart.api_version}")))
        explanations = {
            NOT_READ: "of kinds the live audit does not read",
            OUT_OF_SCOPE: f"outside namespace {self.namespace}, which the run read",
            UNKNOWN: "of kinds the run could not read: unknown, neither missing nor compared",
            HOOK: "are Helm hooks (created and deleted around a release)",
            GENERATED: "have only a generateName, which no live object can be matched by",
        }
        for reason, kinds in skipped.items():
            listed = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
            warnings.append(ReportError(None, None, f"drift: not compared: {sum(kinds.values())} rendered "
                                                    f"object(s) {explanations[reason]} ({listed})"))
        return warnings

    def scope_error(self) -> str | None:
        """Why comparing is pointless (nothing rendered, or nothing where the run looked), else None."""
        if not self.inventory.resources:
            return "--against: found no Kubernetes objects to compare the namespace with"
        if self.namespace is not None and self.namespace not in self.namespaces:
            return (f"--against: none of the {len(self.inventory.resources)} rendered objects is in namespace "
                    f"{self.namespace}, which the run read (their namespaces: "
                    f"{', '.join(sorted(self.namespaces)) or 'none'})")
        return None


# --- comparing a manifest with its live object ---

class Difference(NamedTuple):
    live_pointer: str  # where the live object differs (or where the missing field would be)
    rendered_pointer: str  # the field in the manifest (its nearest parent when the manifest leaves it out)
    container: str | None
    message: str


CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# Labels controllers add to the selectors they manage (Argo Rollouts pins its Services to a ReplicaSet).
CONTROLLER_SELECTOR_KEYS = frozenset({"pod-template-hash", "rollouts-pod-template-hash", "controller-revision-hash"})
# Annotations controllers and kubectl write; a manifest copied from a live object (kubectl get -o yaml) has them.
CONTROLLER_ANNOTATIONS = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision",
    "rollout.argoproj.io/revision", "kubectl.kubernetes.io/restartedAt"})
# Lists the API server never fills in: absent from the manifest, they are empty, and an entry added live is drift.
_CONTAINER_COMPLETE = ("env", "envFrom", "ports", "volumeMounts", "volumeDevices", "command", "args")
_POD_SPEC_COMPLETE = ("containers", "initContainers", "volumes", "imagePullSecrets")
_MAX_VALUE = 100


def _by(*fields: str, defaults: tuple = ()):
    """The key of a list-map entry: these fields (with their server defaults), or None when it has none."""
    padded = (*defaults, *[None] * (len(fields) - len(defaults)))

    def key(item: Any) -> tuple | None:
        if not isinstance(item, dict) or item.get(fields[0]) is None:
            return None
        return tuple(item.get(name, default) for name, default in zip(fields, padded, strict=True))
    return key


_BY_NAME = _by("name")
_CONTAINER_LIST_KEYS = {"env": _BY_NAME, "ports": _by("containerPort", "protocol", defaults=(None, "TCP")),
                        "volumeMounts": _by("mountPath"), "volumeDevices": _by("devicePath"),
                        "resizePolicy": _by("resourceName")}
_LIST_KEYS = {**dict.fromkeys((*CONTAINER_LISTS, "volumes", "imagePullSecrets", "resourceClaims"), _BY_NAME),
              "topologySpreadConstraints": _by("topologyKey", "whenUnsatisfiable"), "hostAliases": _by("ip")}
_SERVICE_PORT = _by("port", "protocol", defaults=(None, "TCP"))


def differences(manifest: Resource, live: Resource, skip: Iterable[str] = ()) -> list[Difference]:
    """How ``live`` differs from what ``manifest`` sets (``skip``: pointers not to compare, e.g. the replicas
    an autoscaler owns)."""
    patterns = COMPARED_FIELDS.get(manifest.kind, _METADATA) if manifest.api_version == live.api_version \
        else _METADATA
    walk = _Walk(manifest, live, frozenset(tuple(split_pointer(pointer)) for pointer in skip))
    walk.node(manifest.raw, live.raw, (), (), _trie(patterns))
    return walk.found


# The compared fields below a node: all of them (True), or some (a trie of field names, ``*`` for list items).
Selection = dict[str, Any] | Literal[True]


def _trie(patterns: Iterable[str]) -> dict[str, Any]:
    root: dict = {}
    for pattern in patterns:
        node = root
        parts = split_pointer(pattern)
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            node = child if isinstance(child, dict) else {}
        node[parts[-1]] = True
    return root


def _unset(value: Any) -> bool:
    """A value Go's ``omitempty`` leaves out: the same as absent."""
    if isinstance(value, dict):
        return all(_unset(item) for item in value.values())
    return value is None or value is False or value == "" or value == [] or (
        isinstance(value, int | float) and not isinstance(value, bool) and value == 0)


def _holds_secrets(value: Any) -> bool:
    """Whether a block of a manifest holds env entries or a command line (whose values are never quoted)."""
    if isinstance(value, dict):
        return any(key in ("env", "command", "args") or _holds_secrets(item) for key, item in value.items())
    return isinstance(value, list) and any(_holds_secrets(item) for item in value)


def _pointer(parts: tuple[str, ...]) -> str:
    return "".join(f"/{escape_pointer_part(part)}" for part in parts)


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), default=str)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _same_scalar(rendered: Any, live: Any, quantity: bool) -> bool:
    if isinstance(rendered, bool) or isinstance(live, bool):
        return rendered is live
    if rendered == live:
        return True
    if quantity:
        value = try_quantity(rendered)
        return value is not None and value == try_quantity(live)
    # int-or-string fields (ports, maxSurge, minAvailable): 8080 and "8080" are the same value
    return isinstance(rendered, int | str) and isinstance(live, int | str) and str(rendered) == str(live)


class _Walk:
    def __init__(self, manifest: Resource, live: Resource, skip: frozenset[tuple[str, ...]]) -> None:
        self.manifest = manifest
        self.live = live
        self.skip = skip
        self.kind = manifest.kind
        template = POD_TEMPLATE_POINTERS.get(self.kind)
        self.pod_spec = tuple(split_pointer(f"{template}/spec")) if template else ("spec",) if self.kind == "Pod" \
            else None
        self.found: list[Difference] = []
        self.keyed: dict[tuple[str, ...], str] = {}  # a keyed list entry of the manifest -> its key, for messages

    # --- walking ---

    def node(self, rendered: Any, live: Any, rparts: tuple[str, ...], lparts: tuple[str, ...],
             selected: Selection) -> None:
        """Compare what is ``selected`` below this node."""
        if rparts in self.skip:
            return
        if selected is True:
            self.value(rendered, live, rparts, lparts)
        elif isinstance(rendered, dict):
            live_map = live if isinstance(live, dict) else {}
            for key, value in rendered.items():
                child = selected.get(key)
                if child is not None:
                    self.node(value, live_map.get(key), (*rparts, key), (*lparts, key), child)
        elif isinstance(rendered, list) and "*" in selected:
            self.entries(rendered, live if isinstance(live, list) else [], rparts, lparts, selected["*"])

    def value(self, rendered: Any, live: Any, rparts: tuple[str, ...], lparts: tuple[str, ...]) -> None:
        if rendered is None or rparts in self.skip:
            return  # null in a manifest (Helm's output is full of them) sets nothing
        if live is None:
            if not _unset(rendered):
                self.report(rparts, lparts, "absent", rendered, None)
            return
        if isinstance(rendered, dict):
            if not isinstance(live, dict):
                self.report(rparts, lparts, "changed", rendered, live)
                return
            ignored = CONTROLLER_ANNOTATIONS if rparts[-2:] == ("metadata", "annotations") else frozenset()
            for key, value in rendered.items():
                if key not in ignored:
                    self.value(value, live.get(key), (*rparts, key), (*lparts, key))
            if self.compared_whole(rparts):
                for key in sorted(set(live) - set(rendered) - CONTROLLER_SELECTOR_KEYS):
                    self.report(rparts, (*lparts, key), "added", None, live[key])
            for key in self.complete_lists(rparts):
                if key not in rendered and live.get(key):
                    self.value([], live[key], (*rparts, key), (*lparts, key))
            return
        if isinstance(rendered, list):
            if isinstance(live, list):
                self.entries(rendered, live, rparts, lparts, True)
            else:
                self.report(rparts, lparts, "changed", rendered, live)
            return
        if isinstance(live, dict | list) or not _same_scalar(rendered, live, self.is_quantity(rparts)):
            self.report(rparts, lparts, "changed", rendered, live)

    def entries(self, rendered: list, live: list, rparts: tuple[str, ...], lparts: tuple[str, ...],
                selected: Selection) -> None:
        key = self.list_key(rparts)
        keys = [key(item) for item in rendered] if key else []
        if key is None or None in keys or len(set(keys)) < len(keys):
            if len(rendered) == len(live):
                for index, (mine, theirs) in enumerate(zip(rendered, live, strict=True)):
                    self.node(mine, theirs, (*rparts, str(index)), (*lparts, str(index)), selected)
            elif selected is True:
                self.report(rparts, lparts, "added" if not rendered else "changed", rendered, live)
            return
        live_index: dict[tuple, int] = {}
        for index, item in enumerate(live):
            live_index.setdefault(key(item) or (None,), index)
        for index, (item, item_key) in enumerate(zip(rendered, keys, strict=True)):
            self.keyed[(*rparts, str(index))] = _key_text(item_key)
            matched = live_index.pop(item_key, None)
            if matched is None:
                self.report((*rparts, str(index)), lparts, "missing", item, None)
            else:
                self.node(item, live[matched], (*rparts, str(index)), (*lparts, str(matched)), selected)
        if selected is True:
            for item_key, index in sorted(live_index.items(), key=lambda entry: entry[1]):
                self.report(rparts, (*lparts, str(index)), "added entry", None, live[index], _key_text(item_key))

    # --- the API's semantics, by path ---

    def list_key(self, parts: tuple[str, ...]):
        field = parts[-1] if parts else ""
        if len(parts) >= 3 and parts[-3] in CONTAINER_LISTS and field in _CONTAINER_LIST_KEYS:
            return _CONTAINER_LIST_KEYS[field]
        if self.kind == "Service" and parts == ("spec", "ports"):
            return _SERVICE_PORT
        if field in ("env", "ports", "volumeMounts", "volumeDevices"):
            return None  # outside a container (NetworkPolicy ports, ...): compared in order
        return _LIST_KEYS.get(field)

    def compared_whole(self, parts: tuple[str, ...]) -> bool:
        """Maps whose every key counts: a key added live changes their meaning."""
        if not parts:
            return False
        return parts[-1] in ("matchLabels", "nodeSelector") \
            or (len(parts) >= 2 and parts[-2] == "resources" and parts[-1] in ("requests", "limits")) \
            or (self.kind == "Service" and parts == ("spec", "selector"))

    def complete_lists(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        if len(parts) >= 2 and parts[-2] in CONTAINER_LISTS and self.pod_spec and parts[:-2] == self.pod_spec:
            return _CONTAINER_COMPLETE
        if parts == self.pod_spec:
            return _POD_SPEC_COMPLETE
        if self.kind == "NetworkPolicy" and parts == ("spec",):
            return ("ingress", "egress")
        return ()

    def is_quantity(self, parts: tuple[str, ...]) -> bool:
        if len(parts) < 2:
            return False
        return (parts[-2] in ("requests", "limits") and "resources" in parts) or parts[-2] == "overhead" \
            or parts[-1] in ("sizeLimit", "averageValue", "tolerance") \
            or (parts[-2] == "target" and parts[-1] == "value")

    def redacted(self, parts: tuple[str, ...], *values: Any) -> bool:
        """Values never quoted: anything of a Secret, ConfigMap data, env values, command lines (flags carry
        passwords), and any block that holds one of those."""
        if self.kind == "Secret" or (self.kind == "ConfigMap" and parts[:1] in (("data",), ("binaryData",))):
            return True
        if len(parts) >= 3 and parts[-3] == "env" and parts[-1] == "value":
            return True
        return any(part in ("command", "args") for part in parts) or any(_holds_secrets(value) for value in values)

    # --- messages ---

    def container_of(self, parts: tuple[str, ...]) -> tuple[str | None, int]:
        """The container a path is in (its name) and where the path below it starts."""
        for position in range(len(parts) - 1):
            if parts[position] in CONTAINER_LISTS and is_number_text(parts[position + 1]):
                name = mapping(self.manifest.get(_pointer(parts[: position + 2]))).get("name")
                return (name if isinstance(name, str) else f"#{parts[position + 1]}"), position + 2
        return None, 0

    def field_text(self, parts: tuple[str, ...], start: int) -> str:
        """``resources.limits.memory``, ``env[DB_USER].valueFrom``, ``metadata.labels["app.kubernetes.io/name"]``."""
        text = ""
        for position in range(start, len(parts)):
            part = parts[position]
            keyed = self.keyed.get(parts[: position + 1])
            if keyed is not None:
                text += f"[{keyed}]"
            elif is_number_text(part) and text:
                text += f"[{part}]"
            elif "." in part or "/" in part:
                text += f'["{part}"]'
            else:
                text += f".{part}" if text else part
        return text

    def report(self, rparts: tuple[str, ...], lparts: tuple[str, ...], how: str, rendered: Any, live: Any,
               entry: str | None = None) -> None:
        """``how``: changed | absent (live) | missing (a keyed entry, live) | added (live: a key of a map compared
        whole, a list the manifest leaves empty) | added entry (a keyed entry, live)."""
        container, start = self.container_of(rparts)
        field = self.field_text(rparts, start)
        if how == "added" and len(lparts) > len(rparts):  # a key of a map compared whole
            field = self.field_text((*rparts, lparts[-1]), start)
        elif how == "added entry":
            field = f"{field}[{entry}]"
        secret = self.redacted(lparts if how == "added" else rparts, rendered, live)
        place = manifest_place(self.manifest, _pointer(rparts))
        if how == "changed" and secret:
            message = f"{field} differs from the manifest ({place})"
        elif how == "changed":
            message = f"{field} is {_show(live)} live but {_show(rendered)} in the manifest ({place})"
        elif how == "absent":
            shown = "set" if secret else _show(rendered)
            message = f"{field} is {shown} in the manifest ({place}) but absent live"
        elif how == "missing":
            message = f"{field} is in the manifest ({place}) but not live"
        else:  # a keyed entry's value is never shown: a container or env entry holds env values
            shown = "set" if secret or how == "added entry" else _show(live)
            message = f"{field} is {shown} live but not in the manifest ({place})"
        where = f"container {container}: " if container else ""
        self.found.append(Difference(_pointer(lparts), _pointer(rparts), container, where + message))


def manifest_place(manifest: Resource, pointer: str = "") -> str:
    """``path:line`` of a manifest's field (its nearest parent present), for messages about its live object."""
    line = manifest.position(pointer)[0]
    path = manifest.source.path
    return f"{path}:{line}" if path and line else path or "the manifest"


def _key_text(key: tuple) -> str:
    return "/".join(str(part) for part in key if part is not None)


def server_dropped(manifest: Resource) -> frozenset[str]:
    """Fields of the manifest the API server clears on write, which the live object therefore never has."""
    dropped = set()
    if manifest.kind == "Service" and manifest.spec.get("sessionAffinity") != "ClientIP":
        dropped.add("/spec/sessionAffinityConfig")  # SetDefaults_Service: only ClientIP affinity keeps its config
    return frozenset(dropped)

