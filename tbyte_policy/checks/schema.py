"""schema: objects the API server would reject — fields against the Kubernetes and CRD schemas, API
versions no longer served, selectors that miss their own pod template — and pods that reference a
ConfigMap or ServiceAccount the scan shows does not exist.

The schema files are read and compiled only when the schema-valid check first runs (``tbyte_policy.schemas``
imports nothing heavy at import time); the other checks here need no schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from tbyte_policy import schemas
from tbyte_policy.checks import CheckContext, check
from tbyte_policy.model import ObjectRef, PodView, Problem, Resource, mapping, sequence
from tbyte_policy.selectors import describe_label_selector, label_selector_matches, selector_is_empty

MAX_SCHEMA_PROBLEMS = 10
# Created by the control plane in every namespace (root CA bundle since 1.21; the default account).
AUTOMATIC_CONFIGMAPS = frozenset({"kube-root-ca.crt"})
AUTOMATIC_SERVICE_ACCOUNTS = frozenset({"default"})


class RemovedApi(NamedTuple):
    api_version: str
    kinds: frozenset[str]
    removed_in: str  # the release of `product` that stopped serving it
    replacement: str  # what to write instead
    product: str = "Kubernetes"


def _removed(api_version: str, kinds: str, removed_in: str, replacement: str,
             product: str = "Kubernetes") -> RemovedApi:
    return RemovedApi(api_version, frozenset(kinds.split()), removed_in, replacement, product)


# The Kubernetes deprecation guide (kubernetes.io/docs/reference/using-api/deprecation-guide) and the
# External Secrets Operator 0.17 release notes ("stops serving v1beta1 apis").
REMOVED_APIS = (
    _removed("extensions/v1beta1", "Deployment DaemonSet ReplicaSet", "1.16", "apps/v1"),
    _removed("extensions/v1beta1", "NetworkPolicy", "1.16", "networking.k8s.io/v1"),
    _removed("extensions/v1beta1", "PodSecurityPolicy", "1.16",
             "Pod Security Admission (pod-security.kubernetes.io/* namespace labels)"),
    _removed("extensions/v1beta1", "Ingress", "1.22", "networking.k8s.io/v1"),
    _removed("apps/v1beta1", "Deployment StatefulSet ReplicaSet ControllerRevision", "1.16", "apps/v1"),
    _removed("apps/v1beta2", "Deployment StatefulSet DaemonSet ReplicaSet ControllerRevision", "1.16", "apps/v1"),
    _removed("networking.k8s.io/v1beta1", "Ingress IngressClass", "1.22", "networking.k8s.io/v1"),
    _removed("admissionregistration.k8s.io/v1beta1", "MutatingWebhookConfiguration ValidatingWebhookConfiguration",
             "1.22", "admissionregistration.k8s.io/v1"),
    _removed("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", "1.22", "apiextensions.k8s.io/v1"),
    _removed("apiregistration.k8s.io/v1beta1", "APIService", "1.22", "apiregistration.k8s.io/v1"),
    _removed("certificates.k8s.io/v1beta1", "CertificateSigningRequest", "1.22", "certificates.k8s.io/v1"),
    _removed("coordination.k8s.io/v1beta1", "Lease", "1.22", "coordination.k8s.io/v1"),
    _removed("rbac.authorization.k8s.io/v1beta1", "ClusterRole ClusterRoleBinding Role RoleBinding", "1.22",
             "rbac.authorization.k8s.io/v1"),
    _removed("rbac.authorization.k8s.io/v1alpha1", "ClusterRole ClusterRoleBinding Role RoleBinding", "1.22",
             "rbac.authorization.k8s.io/v1"),
    _removed("scheduling.k8s.io/v1beta1", "PriorityClass", "1.22", "scheduling.k8s.io/v1"),
    _removed("storage.k8s.io/v1beta1", "CSIDriver CSINode StorageClass VolumeAttachment", "1.22", "storage.k8s.io/v1"),
    _removed("batch/v1beta1", "CronJob", "1.25", "batch/v1"),
    _removed("discovery.k8s.io/v1beta1", "EndpointSlice", "1.25", "discovery.k8s.io/v1"),
    _removed("events.k8s.io/v1beta1", "Event", "1.25", "events.k8s.io/v1"),
    _removed("autoscaling/v2beta1", "HorizontalPodAutoscaler", "1.25", "autoscaling/v2"),
    _removed("policy/v1beta1", "PodDisruptionBudget", "1.25", "policy/v1"),
    _removed("policy/v1beta1", "PodSecurityPolicy", "1.25",
             "Pod Security Admission (pod-security.kubernetes.io/* namespace labels)"),
    _removed("node.k8s.io/v1beta1", "RuntimeClass", "1.25", "node.k8s.io/v1"),
    _removed("autoscaling/v2beta2", "HorizontalPodAutoscaler", "1.26", "autoscaling/v2"),
    _removed("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema PriorityLevelConfiguration", "1.26",
             "flowcontrol.apiserver.k8s.io/v1"),
    _removed("storage.k8s.io/v1beta1", "CSIStorageCapacity", "1.27", "storage.k8s.io/v1"),
    _removed("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema PriorityLevelConfiguration", "1.29",
             "flowcontrol.apiserver.k8s.io/v1"),
    _removed("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema PriorityLevelConfiguration", "1.32",
             "flowcontrol.apiserver.k8s.io/v1"),
    _removed("external-secrets.io/v1beta1", "ExternalSecret SecretStore ClusterSecretStore ClusterExternalSecret",
             "0.17", "external-secrets.io/v1", "External Secrets Operator"),
)
_REMOVED_BY_KEY = {(entry.api_version, kind): entry for entry in REMOVED_APIS for kind in entry.kinds}


def removed_api(api_version: str, kind: str, kubernetes_version: str | None) -> RemovedApi | None:
    """The table entry when ``kind`` at ``api_version`` is no longer served by the target release
    (an add-on's removal applies whatever the Kubernetes version)."""
    entry = _REMOVED_BY_KEY.get((api_version, kind))
    if entry is None:
        return None
    target = schemas.parse_kubernetes_version(kubernetes_version)
    if entry.product == "Kubernetes" and target is not None \
            and target < schemas.release_of(entry.removed_in):
        return None
    return entry


@check("removed-api-version", "object", kubernetes_version=schemas.LATEST)
def removed_api_version(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    entry = removed_api(resource.api_version, resource.kind, ctx.params["kubernetes_version"])
    if entry is not None:
        yield Problem(f"{resource.kind} {resource.api_version} is no longer served since {entry.product} "
                      f"{entry.removed_in}: applying it fails; use {entry.replacement}", "/apiVersion")


@check("schema-valid", "object", kubernetes_version=schemas.LATEST)
def schema_valid(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    version = ctx.params["kubernetes_version"]
    catalog = schemas.schema_set(version)
    validator = catalog.validator(resource.api_version, resource.kind)
    if validator is None:
        yield from _unserved(resource, catalog, version)
        return
    problems = sorted(validator.problems(resource.raw), key=lambda problem: _in_file_order(resource, problem.pointer))
    yield from _capped([Problem(problem.message, problem.pointer) for problem in problems], "schema problems")


def _capped(problems: list[Problem], what: str) -> Iterator[Problem]:
    """The first MAX_SCHEMA_PROBLEMS problems of one object; the last of them says how many more there are."""
    for index, problem in enumerate(problems[:MAX_SCHEMA_PROBLEMS]):
        if index == MAX_SCHEMA_PROBLEMS - 1 and len(problems) > MAX_SCHEMA_PROBLEMS:
            problem = problem._replace(message=f"{problem.message}; {len(problems) - MAX_SCHEMA_PROBLEMS} more {what} "
                                               f"in this object are not reported (at most {MAX_SCHEMA_PROBLEMS} "
                                               f"per object)")
        yield problem


def _in_file_order(resource: Resource, pointer: str) -> tuple[int, int, str]:
    line, column = resource.position(pointer)
    return line or 0, column or 0, pointer


def _unserved(resource: Resource, catalog: schemas.SchemaSet, version: str) -> Iterator[Problem]:
    """A kind we know at an apiVersion nobody serves it at: `apiVersion: v1` on a Deployment.

    Only where the group is one whose kinds we all know (a Kubernetes group) or one that serves this kind:
    Knative's serving.knative.dev/v1 Service is a different kind, not a misplaced core Service."""
    if removed_api(resource.api_version, resource.kind, version) is not None:
        return  # removed-api-version says it, with the release and the replacement
    served = catalog.served(resource.kind)
    group = resource.group
    if not served or not (catalog.knows_group(group) or group in {api.rpartition("/")[0] for api in served}):
        return
    yield Problem(f"{resource.kind} is not served at apiVersion {resource.api_version}, only at {', '.join(served)} "
                  f"({catalog.source(served[0], resource.kind)}): applying it fails", "/apiVersion")


@check("selector-matches-template", "object")
def selector_matches_template(workload: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if workload.kind == "Job" and workload.spec.get("manualSelector") is not True:
        return  # the Job controller generates the selector itself
    selector = workload.spec.get("selector")
    pods = ctx.inventory.pods_of(workload)
    if not isinstance(selector, dict) or set(selector) - {"matchLabels", "matchExpressions"} or pods is None:
        return  # a missing selector, or a Service-style map in its place, is a schema problem
    related, whose = [], "its pod template"
    holder = pods.template_holder
    if holder is not None:
        related, whose = [ObjectRef.of(holder, "/spec/template/metadata/labels")], \
            f"the pod template of {holder.local_ref} (its workloadRef)"
    # Argo Rollouts has no admission webhook: its controller refuses the spec instead of the API server.
    outcome = "the Argo Rollouts controller marks it InvalidSpec and runs no pods" if workload.kind == "Rollout" \
        else f"the API server rejects the {workload.kind}"
    if selector_is_empty(selector) and workload.kind != "Job":
        yield Problem(f"spec.selector of {workload.local_ref} is empty, which would select every pod of "
                      f"the namespace: {outcome}", "/spec/selector", related=related)
    elif not label_selector_matches(selector, pods.labels):
        labels = ", ".join(f"{key}={value}" for key, value in pods.labels.items()) or "no labels"
        yield Problem(f"spec.selector of {workload.local_ref} ({describe_label_selector(selector)}) does "
                      f"not match the labels of {whose} ({labels}): {outcome}", "/spec/selector", related=related)


class _ConfigMapUse(NamedTuple):
    name: str
    pointer: str
    how: str
    container: str | None = None


def _configmap_uses(pods: PodView) -> Iterator[_ConfigMapUse]:
    """Every required ConfigMap reference of the pod (``optional: true`` ones may be missing)."""
    def required(reference: dict) -> bool:
        return isinstance(reference.get("name"), str) and reference.get("optional") is not True

    for container in pods.containers():
        for index, env in enumerate(sequence(container.raw.get("env"))):
            reference = mapping(mapping(mapping(env).get("valueFrom")).get("configMapKeyRef"))
            if required(reference):
                yield _ConfigMapUse(reference["name"],
                                    f"{container.pointer}/env/{index}/valueFrom/configMapKeyRef/name",
                                    f"container {container.name} reads it into an env var", container.name)
        for index, source in enumerate(sequence(container.raw.get("envFrom"))):
            reference = mapping(mapping(source).get("configMapRef"))
            if required(reference):
                yield _ConfigMapUse(reference["name"], f"{container.pointer}/envFrom/{index}/configMapRef/name",
                                    f"container {container.name} loads it with envFrom", container.name)
    for index, volume in enumerate(sequence(pods.spec.get("volumes"))):
        volume = mapping(volume)
        reference = mapping(volume.get("configMap"))
        if required(reference):
            yield _ConfigMapUse(reference["name"], f"{pods.pointer}/volumes/{index}/configMap/name",
                                f"volume {volume.get('name')} mounts it")
        for position, source in enumerate(sequence(mapping(volume.get("projected")).get("sources"))):
            reference = mapping(mapping(source).get("configMap"))
            if required(reference):
                yield _ConfigMapUse(reference["name"],
                                    f"{pods.pointer}/volumes/{index}/projected/sources/{position}/configMap/name",
                                    f"projected volume {volume.get('name')} mounts it")


@check("configmap-reference-missing", "pod")
def configmap_reference_missing(pods: PodView, ctx: CheckContext) -> Iterator[Problem]:
    namespace = pods.resource.namespace
    present = ctx.inventory.kind("ConfigMap", namespace)
    if not present:
        return  # the scan holds none of this namespace's ConfigMaps: their absence proves nothing
    missing: dict[str, Problem] = {}
    for use in _configmap_uses(pods):
        if use.name in missing or use.name in AUTOMATIC_CONFIGMAPS \
                or ctx.inventory.get("ConfigMap", namespace, use.name) is not None:
            continue
        missing[use.name] = Problem(
            f"{use.how}, but ConfigMap {use.name} is not among the {len(present)} ConfigMaps the scan holds for "
            f"namespace {namespace}: the pod cannot start until it exists (mark the reference optional: true if it "
            f"may be absent)", use.pointer, use.container, related=[ObjectRef("ConfigMap", use.name, namespace)])
    yield from _capped(list(missing.values()), "missing ConfigMaps")


@check("service-account-missing", "pod")
def service_account_missing(pods: PodView, ctx: CheckContext) -> Iterator[Problem]:
    key = "serviceAccountName" if "serviceAccountName" in pods.spec else "serviceAccount"
    name = pods.spec.get(key)
    namespace = pods.resource.namespace
    if not isinstance(name, str) or not name or name in AUTOMATIC_SERVICE_ACCOUNTS:
        return
    present = ctx.inventory.kind("ServiceAccount", namespace)
    if not present or ctx.inventory.get("ServiceAccount", namespace, name) is not None:
        return
    yield Problem(f"the pod runs as ServiceAccount {name}, which is not among the {len(present)} ServiceAccounts the "
                  f"scan holds for namespace {namespace}: the API server refuses to create its pods until it exists",
                  f"{pods.pointer}/{key}", related=[ObjectRef("ServiceAccount", name, namespace)])
