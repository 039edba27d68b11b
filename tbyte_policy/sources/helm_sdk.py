"""Rendering through the Helm SDK: the one module that imports helm-python-sdk (``helm_python``).

The SDK's render returns each template's text; ``render`` turns that into what ``helm template`` prints for
the same flags (values merged in Helm's order, hooks after the manifests, objects in Helm's install order,
a ``# Source:`` comment before each document), so both ways of rendering give the scan the same text and
the same rendered line numbers. It reaches into ``helm_python._native`` for the render options
``Chart.render`` does not pass on (``kube_version``): the extra pins the exact version this was written for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import helm_python as helm
from helm_python import _native

PINNED_VERSION = "0.2.2"  # keep in step with the `helm` extra in pyproject.toml

# pkg/release/v1/util/manifest.go splits a template's output with this expression.
_DOCUMENT_SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")
# Helm's -f reads every document of a values file (loader.LoadValues); values_from_yaml reads the first only.
_VALUES_DOCUMENT = re.compile(r"^---[ \t\r\f\v]*$", re.MULTILINE)
_KIND = re.compile(r"^kind:[ \t]*['\"]?([A-Za-z0-9]+)", re.MULTILINE)
_HOOK_EVENTS = frozenset({"pre-install", "post-install", "pre-delete", "post-delete", "pre-upgrade", "post-upgrade",
                          "pre-rollback", "post-rollback", "test", "test-success"})
# pkg/release/v1/util/kind_sorter.go: InstallOrder.
_INSTALL_ORDER = {kind: rank for rank, kind in enumerate((
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
    "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
    "IngressClass", "Ingress", "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"))}


class RenderFailed(Exception):
    """Helm's own message for a chart that does not render (or for values it cannot read)."""


def render(chart: str, *, values_files: Sequence[str], set_values: Sequence[str], set_string_values: Sequence[str],
           release: str, namespace: str, kube_version: str) -> str:
    """The chart as ``helm template RELEASE CHART -n NAMESPACE --kube-version V -f ... --set ... --set-string ...``
    prints it."""
    if helm.__version__ != PINNED_VERSION:
        raise RenderFailed(f"helm-python-sdk {helm.__version__} is installed; tbyte-policy needs {PINNED_VERSION} "
                           "(pip install 'tbyte-policy[helm]')")
    try:
        helm.validate_release_name(release)
        values = _merged_values(values_files, set_values, set_string_values)
        # A fresh handle per render: rendering processes the chart's dependencies in place, so a loaded chart
        # rendered once (say with a subchart's condition off) never renders that subchart again.
        with helm.Chart.load(chart) as loaded:
            _check_installable(loaded)
            options = {"name": release, "namespace": namespace, "kube_version": kube_version}
            files = json.loads(_native.call_string("helm_render", loaded._raw(), json.dumps(values),
                                                   json.dumps(options)))
    except helm.HelmError as exc:
        raise RenderFailed(str(exc)) from None
    return template_stream(files)


def _merged_values(values_files: Sequence[str], set_values: Sequence[str],
                   set_string_values: Sequence[str]) -> dict[str, Any]:
    """Helm's order whatever the command line's: every -f file, then every --set, then every --set-string.

    Unlike Helm, ``--set list[1]=x`` replaces the list instead of editing one item (the SDK parses an
    expression on its own, not into the values so far).
    """
    merged: dict[str, Any] = {}
    for path in values_files:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise RenderFailed(f"cannot read values file {path}: {getattr(exc, 'strerror', None) or exc}") from None
        for document in _VALUES_DOCUMENT.split(text):
            if document.strip():
                try:
                    merged = merge_maps(merged, helm.values_from_yaml(document) or {})
                except helm.HelmValuesError as exc:
                    raise RenderFailed(f"failed to parse {path}: {exc}") from None
    for expression in set_values:
        merged = merge_maps(merged, helm.parse_set_string(expression))
    for expression in set_string_values:
        merged = merge_maps(merged, helm.parse_set_string_values(expression))
    return merged


def merge_maps(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's MergeMaps: maps merge key by key, anything else in ``override`` replaces."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        merged[key] = merge_maps(current, value) if isinstance(value, dict) and isinstance(current, dict) else value
    return merged


def _check_installable(chart: Any) -> None:
    """What ``helm template`` refuses and the SDK's render lets through."""
    metadata = chart.metadata
    chart_type = metadata.get("type") or "application"
    if chart_type != "application":
        raise RenderFailed(f"{chart_type} charts are not installable")
    loaded = {dependency.get("name") for dependency in chart.dependencies}
    missing = [dependency.get("name") for dependency in metadata.get("dependencies") or []
               if dependency.get("name") not in loaded]
    if missing:
        raise RenderFailed("found in Chart.yaml, but missing in charts/ directory: " + ", ".join(map(str, missing)))


def template_stream(files: dict[str, str]) -> str:
    """``helm template``'s output for the engine's {template path: rendered text}: manifests sorted by kind in
    install order, then hooks; unknown hook kinds dropped, as Helm drops them; NOTES.txt and partials left out."""
    manifests: list[tuple[int, str, str]] = []
    hooks: list[tuple[int, str, str]] = []
    for path in sorted(files):
        name = path.rsplit("/", 1)[-1]
        if name == "NOTES.txt" or name.startswith("_"):
            continue
        for document in _DOCUMENT_SEPARATOR.split(files[path]):
            if not document.strip():
                continue
            document = document.lstrip()
            events = _hook_events(document)
            if events is not None and not events <= _HOOK_EVENTS:
                continue
            match = _KIND.search(document)
            entry = (_INSTALL_ORDER.get(match.group(1), len(_INSTALL_ORDER)) if match else len(_INSTALL_ORDER),
                     path, document)
            (hooks if events else manifests).append(entry)
    # Helm sorts stably by rank, unknown kinds last and among themselves by kind name.
    manifests.sort(key=_kind_order)
    hooks.sort(key=_kind_order)
    manifest = "".join(f"---\n# Source: {path}\n{document}\n" for _, path, document in manifests)
    return manifest.strip() + "\n" + "".join(f"---\n# Source: {path}\n{document}\n" for _, path, document in hooks)


def _kind_order(entry: tuple[int, str, str]) -> tuple[int, str]:
    rank, _, document = entry
    if rank < len(_INSTALL_ORDER):
        return rank, ""
    match = _KIND.search(document)
    return rank, match.group(1) if match else ""


def _hook_events(document: str) -> frozenset[str] | None:
    """The ``helm.sh/hook`` events of a document, None when it is no hook."""
    if "helm.sh/hook" not in document:
        return None
    body = _safe_yaml(document)
    metadata = body.get("metadata") if isinstance(body, dict) else None
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    hook = annotations.get("helm.sh/hook") if isinstance(annotations, dict) else None
    if hook is None:
        return None
    return frozenset(event.strip().lower() for event in str(hook).split(","))


def _safe_yaml(document: str) -> Any:
    import yaml

    try:
        return yaml.load(document, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return None
