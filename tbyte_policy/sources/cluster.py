"""The cluster source: a namespace's (or the cluster's) objects, read from a live API server.

The ``kubernetes`` client is imported lazily, inside functions, so the rest of
tbyte-policy works without it.  Only GET requests are issued: one list per kind
(plus one discovery GET per CRD group-version and the namespace itself), run
concurrently, so the request count does not grow with the object count; with a
chunk size, a list is read in chunks of that many objects instead, as kubectl's
``--chunk-size`` does.  Secrets are requested as metadata only and any data
that comes back anyway is dropped before it is stored.

Each answer is read as it arrives (``cluster_listing``) and its shape checked:
one that is not a list of the kind asked for makes that kind unreadable, never
empty. Of each object only what the rules read is kept (``cluster_trim``). Every
request is bounded in total time, and the run by its deadline
(``cluster_transport``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote

from tbyte_policy.sources import Document, LoadResult
from tbyte_policy.sources.cluster_listing import (
    STATUS_MESSAGE_CHARS,
    MalformedAnswer,
    describe,
    named_object,
    one_line,
)
from tbyte_policy.sources.cluster_transport import INSTALL_HINT, JSON_ACCEPT, Api, Deadline, LiveError, Reply
from tbyte_policy.sources.cluster_trim import Trimmer

SECRET_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
MAX_WORKERS = 8
# A list read in chunks stops after this many: 5 million objects with --chunk-size 500. A server whose
# continue tokens never end is not followed for ever.
MAX_PAGES = 10_000
# Where the kubelet mounts a pod's service-account token, the cluster's CA bundle and the pod's namespace.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Keys kept from a Secret: never data/stringData, nor anything that may embed them.
_SECRET_TOP_KEYS = ("type", "immutable")
_SECRET_META_KEYS = (
    "name", "namespace", "uid", "resourceVersion", "creationTimestamp",
    "labels", "annotations", "ownerReferences",
)
# `kubectl apply` stores the whole applied object, data included, in this annotation.
_SECRET_BAD_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


class Kind(NamedTuple):
    kind: str
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool = True
    crd: bool = False  # only listed when discovery says the group-version is served
    metadata_only: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def list_path(self, namespace: str | None) -> str:
        if self.namespaced and namespace is not None:
            return f"{self.group_version_path}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{self.group_version_path}/{self.plural}"


NAMESPACE = Kind("Namespace", "", "v1", "namespaces", namespaced=False)

# The single source of truth for what the live mode reads (the RBAC manifest derives from it).
KINDS: tuple[Kind, ...] = (
    Kind("Pod", "", "v1", "pods"),
    Kind("Deployment", "apps", "v1", "deployments"),
    Kind("ReplicaSet", "apps", "v1", "replicasets"),
    Kind("StatefulSet", "apps", "v1", "statefulsets"),
    Kind("DaemonSet", "apps", "v1", "daemonsets"),
    Kind("Job", "batch", "v1", "jobs"),
    Kind("CronJob", "batch", "v1", "cronjobs"),
    Kind("Service", "", "v1", "services"),
    Kind("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices"),
    Kind("Ingress", "networking.k8s.io", "v1", "ingresses"),
    Kind("ConfigMap", "", "v1", "configmaps"),
    Kind("ServiceAccount", "", "v1", "serviceaccounts"),
    Kind("Secret", "", "v1", "secrets", metadata_only=True),
    Kind("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers"),
    Kind("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets"),
    Kind("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies"),
    Kind("Rollout", "argoproj.io", "v1alpha1", "rollouts", crd=True),
    Kind("AnalysisTemplate", "argoproj.io", "v1alpha1", "analysistemplates", crd=True),
    Kind("ExternalSecret", "external-secrets.io", "v1", "externalsecrets", crd=True),
    Kind("SecretStore", "external-secrets.io", "v1", "secretstores", crd=True),
    Kind("ClusterSecretStore", "external-secrets.io", "v1", "clustersecretstores", namespaced=False, crd=True),
    Kind("ScaledObject", "keda.sh", "v1alpha1", "scaledobjects", crd=True),
)

ALL_KINDS: tuple[Kind, ...] = (NAMESPACE, *KINDS)


@dataclass
class Collection:
    objects: list[dict] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # kind -> reason
    skipped_crds: list[str] = field(default_factory=list)  # kinds whose CRD is not installed
    requests: int = 0
    namespace: str | None = None  # the audited namespace (None with --all-namespaces)


class ClusterSource:
    """The objects a collection holds, as documents without a source file: findings locate them as
    ``Kind/namespace/name``."""

    def __init__(self, objects: list[dict]) -> None:
        self.objects = objects

    def load(self) -> LoadResult:
        result = LoadResult()
        result.documents = [Document(path=None, line=None, column=None, body=body) for body in self.objects]
        return result


class _KindUnreadable(Exception):
    """This kind cannot be read (403, 404, a malformed answer...); the audit goes on without it."""


# ---------------------------------------------------------------- sanitising


def sanitize(obj: dict, kind: Kind) -> dict:
    """Set apiVersion/kind, strip managedFields, reduce Secrets to metadata + type."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    if kind.kind == "Secret":
        meta = {k: meta[k] for k in _SECRET_META_KEYS if k in meta}
        if isinstance(meta.get("annotations"), dict):
            meta["annotations"] = {
                k: v for k, v in meta["annotations"].items() if k not in _SECRET_BAD_ANNOTATIONS
            }
        out = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta}
        for key in _SECRET_TOP_KEYS:
            if key in obj:
                out[key] = obj[key]
        return out
    out = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta}
    for key, value in obj.items():
        if key not in ("apiVersion", "kind", "metadata"):
            out[key] = value
    return out


# ---------------------------------------------------------------- client setup


def _import_kubernetes():
    try:
        import kubernetes  # noqa: F401
        from kubernetes import client, config
    except ImportError:
        raise LiveError(INSTALL_HINT) from None
    return client, config


def _kubeconfig_paths(kubeconfig: str | None) -> list[str]:
    raw = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    return [os.path.expanduser(p) for p in raw.split(os.pathsep) if p]


def _load_configuration(kubeconfig: str | None, context: str | None):
    """Return (Configuration, default namespace of the context or None)."""
    client, config = _import_kubernetes()
    configuration = client.Configuration()
    paths = _kubeconfig_paths(kubeconfig)
    existing = [p for p in paths if os.path.exists(p)]
    if kubeconfig and len(existing) != len(paths):
        missing = next(p for p in paths if p not in existing)
        raise LiveError(f"kubeconfig {missing} not found")
    context_namespace = None
    if not existing:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not context:
            try:
                config.incluster_config.InClusterConfigLoader(
                    token_filename=os.path.join(SERVICE_ACCOUNT_DIR, "token"),
                    cert_filename=os.path.join(SERVICE_ACCOUNT_DIR, "ca.crt"),
                ).load_and_set(configuration)
            except config.ConfigException as e:
                raise LiveError(f"in-cluster configuration failed: {one_line(e)}") from None
            try:
                with open(os.path.join(SERVICE_ACCOUNT_DIR, "namespace")) as fh:
                    context_namespace = fh.read().strip() or None
            except OSError:
                pass
            return configuration, context_namespace
        raise LiveError(
            f"no kubeconfig found ({os.pathsep.join(paths)}); pass --kubeconfig or set KUBECONFIG"
        )
    config_file = os.pathsep.join(existing)
    try:
        config.load_kube_config(
            config_file=config_file,
            context=context,
            client_configuration=configuration,
            persist_config=False,  # a read-only tool never rewrites the user's kubeconfig
        )
        contexts, current = config.list_kube_config_contexts(config_file=config_file)
        chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
        context_namespace = ((chosen or {}).get("context") or {}).get("namespace")
    except config.ConfigException as e:
        raise LiveError(f"cannot use kubeconfig {config_file}: {one_line(e)}") from None
    except (OSError, ValueError) as e:  # unreadable file, bad YAML
        raise LiveError(f"cannot read kubeconfig {config_file}: {one_line(e)}") from None
    return configuration, context_namespace


# ---------------------------------------------------------------- answers


def _status_message(body: Any) -> str:
    message = body.get("message") if isinstance(body, dict) and body.get("kind") == "Status" else None
    return one_line(message, STATUS_MESSAGE_CHARS) if isinstance(message, str) else ""


def _status_reason(body: Any) -> str:
    reason = body.get("reason") if isinstance(body, dict) else None
    return one_line(reason, 60) if isinstance(reason, str) else ""


def _check(reply: Reply, what: str) -> None:
    """Raise LiveError for fatal statuses, _KindUnreadable for per-kind ones; a 2xx answer passes (its shape
    is checked by whoever reads it)."""
    status, body = reply.status, reply.body
    if 200 <= status < 300:
        return
    message = _status_message(body)
    suffix = (f" ({reply.not_retried})" if reply.not_retried else "") + (f": {message}" if message else "")
    if status == 401:
        raise LiveError(f"unauthorized (401) {what}: check the credentials (the kubeconfig context, or the "
                        "service account token in a pod)")
    if status >= 500:
        raise LiveError(f"the API server failed ({status} {_status_reason(body) or 'error'}) {what}{suffix}")
    if status == 403:
        raise _KindUnreadable(f"forbidden{suffix or ' (403)'}")
    if status == 404:
        raise _KindUnreadable(f"not found{suffix or ' (404)'}")
    raise _KindUnreadable(f"HTTP {status}{' ' + _status_reason(body) if _status_reason(body) else ''}{suffix}")


def _malformed(problem: str) -> _KindUnreadable:
    return _KindUnreadable(f"malformed answer from the API server: {problem}")


def _check_item(item: Any, index: int, kind: Kind) -> None:
    """An item of a list of ``kind``: an object with metadata and a name (and no other kind)."""
    where = f"item {index + 1}"
    if not isinstance(item, dict):
        raise MalformedAnswer(f"{where} is {describe(item)}, not an object")
    metadata = item.get("metadata")
    if not isinstance(metadata, dict):
        raise MalformedAnswer(f"the metadata of {where} is {describe(metadata)}, not an object")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedAnswer(f"{where} has no metadata.name")
    item_kind = item.get("kind")
    if item_kind is not None and item_kind not in (kind.kind, *(("PartialObjectMetadata",) if kind.metadata_only
                                                               else ())):
        what = f"a {one_line(item_kind, 60)}" if isinstance(item_kind, str) \
            else f"an object whose kind is {describe(item_kind)}"
        raise MalformedAnswer(f"{where} ({one_line(name, 60)}) is {what}, not a {kind.kind}")


# ---------------------------------------------------------------- collection


def _list_kind(api: Api, kind: Kind, namespace: str | None, chunk_size: int,
               keep: Callable[[dict], dict]) -> list[dict]:
    """All items of one kind, in one request or (``chunk_size`` > 0) in chunks; a 410 Expired while
    chunking restarts the list once."""
    items = _read_pages(api, kind, namespace, chunk_size, keep, restart_on_expiry=True)
    if items is None:
        api.log(f"{kind.kind}: continue token expired, restarting the list")
        items = _read_pages(api, kind, namespace, chunk_size, keep, restart_on_expiry=False)
    assert items is not None
    return items


def _read_pages(api: Api, kind: Kind, namespace: str | None, chunk_size: int, keep: Callable[[dict], dict],
                restart_on_expiry: bool) -> list[dict] | None:
    """The list's pages, its items sanitised (and ``keep``-trimmed) one by one as they arrive; None when a
    continue token expired and ``restart_on_expiry``."""
    path = kind.list_path(namespace)
    accept = SECRET_ACCEPT if kind.metadata_only else JSON_ACCEPT
    expected = (f"{kind.kind}List", *(("PartialObjectMetadataList",) if kind.metadata_only else ()))
    what = f"listing {kind.kind}"
    items: list[dict] = []

    def take(item: Any, index: int) -> None:
        _check_item(item, index, kind)
        # Sanitised item by item: raw Secret data is never kept past this point.
        items.append(keep(sanitize(item, kind)))

    token: str | None = None
    seen: set[str] = set()
    pages = 0
    while True:
        query: list[tuple[str, Any]] = [("limit", chunk_size)] if chunk_size else []
        if token:
            query.append(("continue", token))
        try:
            reply = api.get_list(path, what, query, accept, expected, take)
        except MalformedAnswer as e:
            raise _malformed(str(e)) from None
        if reply.status == 410 and token:
            if restart_on_expiry:
                return None
            raise _KindUnreadable("the list kept expiring (410 Expired) while reading it in chunks")
        _check(reply, what)
        pages += 1
        next_token = reply.body.continue_token
        if not next_token:
            api.log(f"{kind.kind}: {len(items)} object(s) in {pages} request(s)")
            return items
        if next_token in seen:
            raise _KindUnreadable(f"the API server's continue tokens go round in a circle (page {pages + 1} would "
                                  "repeat an earlier page): the list never ends")
        if pages >= MAX_PAGES:
            raise _KindUnreadable(f"the list did not end after {MAX_PAGES:,} pages of {chunk_size or 'all'} objects "
                                  "(the API server keeps sending continue tokens)")
        seen.add(next_token)
        token = next_token


def _crd_kinds_served(api: Api, group: str, version: str) -> tuple[set[str], str | None]:
    """-> (plurals served by group/version, reason if discovery was unreadable)."""
    what = f"discovering {group}/{version}"
    try:
        reply = api.get_document(f"/apis/{group}/{version}", what)
    except MalformedAnswer as e:
        return set(), f"malformed discovery answer from the API server: {e}"
    if reply.status == 404:
        return set(), None
    try:
        _check(reply, what)
        return _served_plurals(reply.body), None
    except _KindUnreadable as e:
        return set(), str(e)


def _served_plurals(body: Any) -> set[str]:
    """The resources an APIResourceList names."""
    def malformed(problem: str) -> _KindUnreadable:
        return _KindUnreadable(f"malformed discovery answer from the API server: {problem}")

    if not isinstance(body, dict):
        raise malformed(f"{describe(body)}, not an APIResourceList" if body is not None else "not JSON")
    if body.get("kind") not in (None, "APIResourceList"):
        raise malformed(f"a {one_line(str(body['kind']), 60)}, not an APIResourceList")
    resources = body.get("resources")
    if not isinstance(resources, list):
        raise malformed(f"its resources are {describe(resources)}, not a list")
    plurals = set()
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict) or not isinstance(resource.get("name"), str):
            raise malformed(f"resource {index + 1} is {describe(resource)} without a name")
        plurals.add(resource["name"])
    return plurals


def collect(
    namespace: str | None,
    *,
    kubeconfig: str | None,
    context: str | None,
    timeout: float,
    all_namespaces: bool = False,
    verbose: bool = False,
    chunk_size: int = 0,
    deadline: Deadline | float | None = None,
    trimmed: bool = True,
) -> Collection:
    """Read every audited kind from the API server (GET only). See the module docstring.

    ``timeout`` bounds each request, ``deadline`` (seconds from now, or a running Deadline; None for none)
    all of them together; ``trimmed=False`` keeps whole objects (the tests compare the two).
    """
    if timeout <= 0:
        raise LiveError("the timeout must be positive")
    if isinstance(deadline, (int, float)):
        deadline = Deadline.after(deadline)
    if chunk_size < 0:
        raise LiveError("the chunk size must be 0 (one request per kind) or positive")
    configuration, context_namespace = _load_configuration(kubeconfig, context)
    if all_namespaces:
        namespace = None
    elif not namespace:
        namespace = context_namespace or "default"
    api = Api(configuration, timeout, deadline, verbose, MAX_WORKERS)
    try:
        return _collect(api, namespace, chunk_size, Trimmer().trim if trimmed else _whole)
    finally:
        api.close()


def _whole(obj: dict) -> dict:
    return obj


def _collect(api: Api, namespace: str | None, chunk_size: int, keep: Callable[[dict], dict]) -> Collection:
    result = Collection(namespace=namespace)
    by_kind: dict[str, list[dict]] = {}

    # 1. The namespace itself (GET), or all namespaces (list).
    if namespace is not None:
        what = f"getting namespace {namespace}"
        try:
            reply = api.get_document(NAMESPACE.list_path(None) + "/" + quote(namespace, safe=""), what)
            if reply.status == 404:
                raise LiveError(f"namespace {namespace} not found")
            _check(reply, what)
            found = named_object(reply.body, "Namespace", namespace, f"Namespace {namespace}")
            by_kind[NAMESPACE.kind] = [keep(sanitize(found, NAMESPACE))]
        except MalformedAnswer as e:
            result.unreadable[NAMESPACE.kind] = str(_malformed(str(e)))
        except _KindUnreadable as e:
            result.unreadable[NAMESPACE.kind] = str(e)
    to_list = [NAMESPACE] if namespace is None else []

    with ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="tbyte-live") as pool:
        # 2. Discovery: one GET per CRD group-version.
        groups = sorted({(kind.group, kind.version) for kind in KINDS if kind.crd})
        discovery = {gv: pool.submit(_crd_kinds_served, api, *gv) for gv in groups}
        served: dict[tuple[str, str], tuple[set[str], str | None]] = {}
        for gv, future in discovery.items():
            served[gv] = _result(future, pool)
        for kind in KINDS:
            if not kind.crd:
                to_list.append(kind)
                continue
            plurals, problem = served[(kind.group, kind.version)]
            if problem:
                result.unreadable[kind.kind] = problem
            elif kind.plural in plurals:
                to_list.append(kind)
            else:
                result.skipped_crds.append(kind.kind)
        if result.skipped_crds:
            api.log(f"CRDs not installed, skipped: {', '.join(result.skipped_crds)}")

        # 3. One list per kind (in chunks with a chunk size), concurrently.
        lists = {kind: pool.submit(_list_kind, api, kind, namespace, chunk_size, keep) for kind in to_list}
        for kind, listed in lists.items():
            try:
                by_kind[kind.kind] = _result(listed, pool)
            except _KindUnreadable as e:
                result.unreadable[kind.kind] = str(e)
                api.log(f"{kind.kind}: unreadable: {e}")

    attempted = len(to_list) + (1 if namespace is not None else 0)
    if attempted and len(by_kind) == 0:
        first = next(iter(result.unreadable.items()), ("", "nothing could be read"))
        raise LiveError(f"could not read any resource kind ({first[0]}: {first[1]})")

    for kind in ALL_KINDS:
        result.objects.extend(by_kind.get(kind.kind, ()))
    result.requests = api.requests
    return result


def _result(future, pool):
    """future.result(), cancelling the pending work when it raises a fatal LiveError."""
    try:
        return future.result()
    except LiveError:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
