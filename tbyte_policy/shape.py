"""Structural type checks on the fields the rules read: a wrong type is an input error with its line.

Checks read fields through typed accessors (a wrong type reads as absent), so this pass is what tells
the user; it never prints a field's value, which could be a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tbyte_policy.model import CONTAINER_LISTS, POD_TEMPLATE_POINTERS, Resource, escape_pointer_part, resolve

_TYPE_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", bool: "a boolean"}

_OBJECT_FIELDS = ((("metadata",), dict), (("metadata", "name"), str), (("metadata", "namespace"), str),
                  (("metadata", "labels"), dict), (("metadata", "annotations"), dict), (("spec",), dict))
_WORKLOAD_FIELDS = ((("spec", "replicas"), int), (("spec", "selector"), dict), (("spec", "strategy"), dict))
_TEMPLATE_FIELDS = (((), dict), (("metadata",), dict), (("metadata", "labels"), dict), (("spec",), dict))
_POD_FIELDS = tuple(((name,), kind) for name, kind in (
    ("containers", list), ("initContainers", list), ("ephemeralContainers", list), ("volumes", list),
    ("securityContext", dict), ("hostNetwork", bool), ("hostPID", bool), ("hostIPC", bool),
    ("automountServiceAccountToken", bool), ("serviceAccountName", str)))
_CONTAINER_FIELDS = ((("name",), str), (("image",), str), (("ports",), list), (("env",), list), (("envFrom",), list),
                     (("resources",), dict), (("resources", "requests"), dict), (("resources", "limits"), dict),
                     (("securityContext",), dict), (("livenessProbe",), dict), (("readinessProbe",), dict),
                     (("startupProbe",), dict), (("volumeMounts",), list))
_MAPPING_LISTS = ("ports", "env", "envFrom", "volumeMounts")


def shape_problems(resource: Resource) -> Iterator[tuple[str, str]]:
    """(pointer, message) for each field of the wrong type."""
    raw = resource.raw
    yield from _fields(raw, "", _OBJECT_FIELDS)
    metadata = raw.get("metadata")
    if isinstance(metadata, dict):
        for key in ("labels", "annotations"):
            values = metadata.get(key)
            if isinstance(values, dict):
                for name, value in values.items():
                    if not isinstance(value, str):
                        yield (f"/metadata/{key}/{escape_pointer_part(name)}",
                               f"metadata.{key}.{name} must be a string, not {_kind_of(value)}")
    template_pointer = POD_TEMPLATE_POINTERS.get(resource.kind)
    if resource.kind == "Pod":
        pod_pointer = "/spec"
    elif template_pointer:
        yield from _fields(raw, "", _WORKLOAD_FIELDS)
        template = resolve(raw, template_pointer)
        if template is None:
            return
        yield from _fields(template, template_pointer, _TEMPLATE_FIELDS)
        pod_pointer = template_pointer + "/spec"
    else:
        return
    pod = resolve(raw, pod_pointer)
    if not isinstance(pod, dict):
        return
    yield from _fields(pod, pod_pointer, _POD_FIELDS)
    for key, _ in CONTAINER_LISTS:
        containers = pod.get(key)
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            pointer = f"{pod_pointer}/{key}/{index}"
            if not isinstance(container, dict):
                yield pointer, f"{_dotted(pointer)} must be a mapping, not {_kind_of(container)}"
                continue
            yield from _fields(container, pointer, _CONTAINER_FIELDS)
            for list_key in _MAPPING_LISTS:
                items = container.get(list_key)
                if isinstance(items, list):
                    for item_index, item in enumerate(items):
                        if not isinstance(item, dict):
                            item_pointer = f"{pointer}/{list_key}/{item_index}"
                            yield item_pointer, f"{_dotted(item_pointer)} must be a mapping, not {_kind_of(item)}"


def _fields(node: Any, base: str, fields: tuple[tuple[tuple[str, ...], type], ...]) -> Iterator[tuple[str, str]]:
    for path, expected in fields:
        value = node
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            continue
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            pointer = base + "".join(f"/{part}" for part in path)
            yield pointer, f"{_dotted(pointer)} must be {_TYPE_NAMES[expected]}, not {_kind_of(value)}"
def _dotted(pointer: str) -> str:
    return pointer.lstrip("/").replace("/", ".") or "the object"


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    for python_type, name in _TYPE_NAMES.items():
        if isinstance(value, python_type):
            return name
    if isinstance(value, float):
        return "a number"
    return "null" if value is None else type(value).__name__
