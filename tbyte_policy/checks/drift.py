"""drift: does what runs match the rendered manifests? (``live --against``, ``modes: [drift]``).

The ``rendered`` checks walk the manifests and look their objects up in the live inventory: a manifest
without its live object is reported on the manifest (its file and line); a difference, on the live object,
naming the manifest's file and line in ``related``. The unmanaged check walks the live objects and looks them
up in the manifests. See ``tbyte_policy.drift`` for how a manifest is compared with its live object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.runtime import MAX_NAMED_PODS, conditions, owned_pods
from tbyte_policy.checks.workloads import autoscalers
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import ObjectRef, Problem, Resource, integer, mapping, sequence

if TYPE_CHECKING:
    from tbyte_policy.drift import RenderedManifests

# tbyte_policy.drift is imported by the checks that use it: only `live --against` runs them, and every scan
# imports this module.

# Objects the cluster itself keeps in every namespace.
NAMESPACE_DEFAULTS = {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt"),
                      ("ConfigMap", "istio-ca-root-cert"), ("ConfigMap", "openshift-service-ca.crt")}
# Secrets that controllers create, known by their metadata (the live audit reads no more of a Secret):
# Helm's release records, legacy service-account tokens, ESO's and cert-manager's targets.
HELM_RELEASE_PREFIX = "sh.helm.release.v1."
CONTROLLER_SECRET_LABELS = ("reconcile.external-secrets.io/managed",)
CONTROLLER_SECRET_ANNOTATIONS = ("kubernetes.io/service-account.name", "cert-manager.io/certificate-name")


def _rendered(ctx: CheckContext) -> RenderedManifests:
    if ctx.rendered is None:
        raise ValueError("a drift check ran without rendered manifests")  # the engine runs them only with some
    return ctx.rendered


@check("drift-missing", "rendered")
def missing(manifest: Resource, ctx: CheckContext) -> Iterator[Problem]:
    rendered, live = _rendered(ctx), ctx.inventory
    if rendered.not_compared(manifest, live) is not None or live.get(manifest.kind, manifest.namespace,
                                                                      manifest.name) is not None:
        return
    if manifest.kind == "Job" and integer(manifest.spec.get("ttlSecondsAfterFinished")) is not None:
        return  # the TTL controller deletes a finished Job: its absence is what the manifest asked for
    where = f"namespace {manifest.namespace}" if manifest.namespace else "the cluster"
    why = f" (the {manifest.kind} CRD is not installed)" if manifest.kind in rendered.not_served else ""
    yield Problem(f"{manifest.local_ref} is in the manifests but not in {where}{why}")


def _skipped_fields(manifest: Resource, live: Resource, inventory: Inventory, rendered: Inventory) -> set[str]:
    from tbyte_policy.drift import server_dropped

    skip = set(server_dropped(manifest))
    if live in inventory.workload_ref_targets or autoscalers(inventory, live) or autoscalers(rendered, manifest):
        skip.add("/spec/replicas")  # the autoscaler (or the Rollout borrowing the template) owns the count
    return skip


@check("drift-changed", "rendered")
def changed(manifest: Resource, ctx: CheckContext) -> Iterator[Problem]:
    from tbyte_policy.drift import differences

    rendered = _rendered(ctx)
    live = rendered.live_object(manifest, ctx.inventory)
    if live is None:
        return
    for difference in differences(manifest, live, _skipped_fields(manifest, live, ctx.inventory, rendered.inventory)):
        yield Problem(difference.message, difference.live_pointer, difference.container,
                      [ObjectRef.of(manifest, difference.rendered_pointer)], resource=live)


def _images(spec: dict) -> Iterator[tuple[str, str, str]]:
    """(list, container name, image) of the regular and init containers of a pod spec."""
    for field in ("containers", "initContainers"):
        for entry in sequence(spec.get(field)):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("image"), str):
                yield field, entry["name"], entry["image"]


def _active(pod: Resource) -> bool:
    phase = mapping(pod.raw.get("status")).get("phase")
    return pod.metadata.get("deletionTimestamp") is None and phase not in ("Succeeded", "Failed")


def _rollout_state(live: Resource) -> str:
    """What the workload's status says about its rollout, for the message."""
    status = mapping(live.raw.get("status"))
    notes = []
    generation, observed = integer(live.metadata.get("generation")), integer(status.get("observedGeneration"))
    if generation is not None and observed is not None and observed < generation:
        notes.append(f"the controller has not yet seen generation {generation}")
    _, progressing = conditions(live.raw).get("Progressing", (0, {}))
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        notes.append("the rollout exceeded its progress deadline")
    if live.kind == "Rollout":
        if status.get("abort") is True:
            notes.append("the Rollout aborted the update and runs the stable revision")
        elif status.get("phase") in ("Paused", "Progressing"):
            steps = sequence(mapping(mapping(live.spec.get("strategy")).get("canary")).get("steps"))
            step = integer(status.get("currentStepIndex"))
            at = f" at step {step} of {len(steps)}" if step is not None and steps else ""
            notes.append(f"the Rollout is {status['phase'].lower()}{at}")
    if live.spec.get("paused") is True:
        notes.append(f"the {live.kind} is paused")
    if mapping(live.spec.get("updateStrategy")).get("type") == "OnDelete":
        notes.append("its updateStrategy is OnDelete: pods take the new template only when deleted")
    updated, replicas = integer(status.get("updatedReplicas")), integer(status.get("replicas"))
    if live.kind != "Rollout" and updated is not None and replicas is not None and updated < replicas:
        notes.append(f"{updated} of {replicas} replicas updated")
    return f": {'; '.join(notes)}" if notes else ""


@check("drift-not-rolled-out", "rendered")
def not_rolled_out(manifest: Resource, ctx: CheckContext) -> Iterator[Problem]:
    from tbyte_policy.drift import manifest_place

    inventory = ctx.inventory
    live = _rendered(ctx).live_object(manifest, inventory)
    rendered_pods = _rendered(ctx).inventory.pods_of(manifest)
    live_pods = inventory.pods_of(live) if live is not None else None
    if live is None or rendered_pods is None or live_pods is None or not inventory.sees("Pod"):
        return
    live_images = {(field, name): image for field, name, image in _images(live_pods.spec)}
    pods = sorted((pod for pod in owned_pods(live, ctx) if _active(pod)), key=lambda pod: pod.name)
    for field, name, image in _images(rendered_pods.spec):
        if live_images.get((field, name)) != image:
            continue  # the live template differs from the manifest: drift-changed reports that
        stale: dict[str, list[Resource]] = defaultdict(list)
        for pod in pods:
            running = {(kind, container): used
                       for kind, container, used in _images(mapping(pod.raw.get("spec")))}
            if running.get((field, name), image) != image:
                stale[running[(field, name)]].append(pod)
        if not stale:
            continue
        behind = sorted((pod for group in stale.values() for pod in group), key=lambda pod: pod.name)
        names = ", ".join(pod.name for pod in behind[:MAX_NAMED_PODS]) + \
            (f" and {len(behind) - MAX_NAMED_PODS} more" if len(behind) > MAX_NAMED_PODS else "")
        images = " and ".join(sorted(stale))
        index = next(position for position, entry in enumerate(sequence(live_pods.spec.get(field)))
                     if mapping(entry).get("name") == name)
        rendered_index = next(position for position, entry in enumerate(sequence(rendered_pods.spec.get(field)))
                              if mapping(entry).get("name") == name)
        rendered_pointer = f"{rendered_pods.pointer}/{field}/{rendered_index}/image"
        yield Problem(f"{len(behind)} of {len(pods)} pods of {live.local_ref} ({names}) still run {images} in "
                      f"container {name}, not {image} as rendered ({manifest_place(manifest, rendered_pointer)})"
                      f"{_rollout_state(live)}",
                      f"{live_pods.pointer}/{field}/{index}/image", name,
                      [ObjectRef.of(manifest, rendered_pointer), *(ObjectRef.of(pod) for pod in behind)], resource=live)


def _controller_made(resource: Resource, rendered: RenderedManifests) -> bool:
    """Objects that controllers create and own, which no manifest lists."""
    if resource.metadata.get("ownerReferences") or (resource.kind, resource.name) in NAMESPACE_DEFAULTS:
        return True  # its owner accounts for it (ReplicaSets, Pods, Jobs, EndpointSlices, KEDA's HPA, ...)
    if resource.kind == "EndpointSlice" and "endpointslice.kubernetes.io/managed-by" in resource.labels:
        return True
    if resource.kind == "Secret":
        if (resource.name.startswith(HELM_RELEASE_PREFIX) and resource.labels.get("owner") == "helm") \
                or any(label in resource.labels for label in CONTROLLER_SECRET_LABELS) \
                or any(annotation in resource.annotations for annotation in CONTROLLER_SECRET_ANNOTATIONS):
            return True  # ESO with creationPolicy Merge/Orphan leaves no owner, cert-manager none by default
        return any((mapping(external.spec.get("target")).get("name") or external.name) == resource.name
                   for external in rendered.inventory.kind("ExternalSecret", resource.namespace))
    return False


def _managed_by(resource: Resource) -> str:
    manager = resource.labels.get("app.kubernetes.io/managed-by")
    release = resource.annotations.get("meta.helm.sh/release-name")
    parts = [f"managed-by: {manager}"] if manager else []
    if release:
        parts.append(f"Helm release {release}")
    return f" (labelled {', '.join(parts)})" if parts else ""


@check("drift-unmanaged", "object")
def unmanaged(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    from tbyte_policy.drift import HELM_HOOK

    rendered = _rendered(ctx)
    if resource.namespace is None or resource.namespace not in rendered.namespaces:
        return  # cluster-wide objects, and namespaces the manifests do not deploy to, are someone else's
    if rendered.inventory.get(resource.kind, resource.namespace, resource.name) is not None \
            or _controller_made(resource, rendered) or HELM_HOOK in resource.annotations:
        return
    yield Problem(f"{resource.local_ref} is in namespace {resource.namespace} but in none of the rendered "
                  f"manifests{_managed_by(resource)}")
