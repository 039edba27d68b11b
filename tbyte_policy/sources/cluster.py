"""The cluster source: a namespace's (or the cluster's) objects, read from a live API server.

The ``kubernetes`` client is imported lazily, inside functions, so the rest of
tbyte-policy works without it.  Only GET requests are issued: one list per kind
(plus one discovery GET per CRD group-version and the namespace itself), run
concurrently, so the request count does not grow with the object count; with a
chunk size, a list is read in chunks of that many objects instead, as kubectl's
``--chunk-size`` does.  Secrets are requested as metadata only and any data
that comes back anyway is dropped before it is stored.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote

from tbyte_policy.sources import Document, LoadResult

INSTALL_HINT = "the live mode needs the kubernetes client: pip install 'tbyte-policy[live]'"
SECRET_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
JSON_ACCEPT = "application/json"
MAX_WORKERS = 8
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


class LiveError(Exception):
    """A one-line, user-facing error of the live mode (never contains secret values)."""


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
    """This kind cannot be read (403, 404, ...); the audit goes on without it."""


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
                raise LiveError(f"in-cluster configuration failed: {_one_line(e)}") from None
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
        raise LiveError(f"cannot use kubeconfig {config_file}: {_one_line(e)}") from None
    except (OSError, ValueError) as e:  # unreadable file, bad YAML
        raise LiveError(f"cannot read kubeconfig {config_file}: {_one_line(e)}") from None
    return configuration, context_namespace


def _one_line(exc: BaseException | str, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- HTTP


class _Api:
    """GET-only JSON access over the kubernetes client's ApiClient."""

    def __init__(self, configuration, timeout: float, verbose: bool):
        client, _ = _import_kubernetes()
        configuration.retries = False  # no urllib3 retries: fail fast, report clearly
        configuration.connection_pool_maxsize = MAX_WORKERS
        self.host = configuration.host
        self.timeout = timeout
        self.verbose = verbose
        self.client = client.ApiClient(configuration)
        self._lock = threading.Lock()
        self.requests = 0

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:
            pass

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"[live] {message}", file=sys.stderr)

    def get(self, path: str, query: list[tuple[str, Any]] | None = None, accept: str = JSON_ACCEPT):
        """-> (status, parsed JSON body or None). Raises LiveError on transport failures."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        method, url, headers, _body, _post = self.client.param_serialize(
            "GET", path, query_params=query or [], header_params={"Accept": accept},
            auth_settings=["BearerToken"],
        )
        if isinstance(headers.get("authorization"), str):
            # A token written by hand often ends in a newline, which no HTTP header may carry. Trimmed here,
            # per request: the client's refresh hooks put the token back as read before each one.
            headers["authorization"] = headers["authorization"].strip()
        with self._lock:
            self.requests += 1
        started = time.monotonic()
        try:
            response = self.client.call_api(method, url, header_params=headers, _request_timeout=self.timeout)
            raw = response.read()
        except urllib3.exceptions.MaxRetryError as e:
            raise self._transport_error(e.reason or e) from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise self._transport_error(e) from None
        except ValueError:  # a header http.client refuses; its message would quote the header, i.e. the token
            raise LiveError(f"cannot send a request to the API server at {self.host}: a request header is "
                            "malformed (check the credentials)") from None
        except ApiException as e:  # status 0: the client turns urllib3's SSLError into this
            kind, _, detail = str(e.reason).partition("\n")
            if kind == "SSLError":
                raise LiveError(f"TLS error talking to the API server at {self.host}: {_one_line(detail)}") from None
            raise LiveError(f"cannot talk to the API server at {self.host}: {_one_line(e.reason)}") from None
        status = response.status
        self.log(f"GET {path} -> {status} ({time.monotonic() - started:.2f}s)")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None  # never echo a body: it might hold secret data
        return status, body

    def _transport_error(self, exc: BaseException) -> LiveError:
        import urllib3

        if isinstance(exc, urllib3.exceptions.NameResolutionError):
            return LiveError(f"cannot reach the API server at {self.host}: name resolution failed")
        if isinstance(exc, urllib3.exceptions.NewConnectionError):
            detail = "connection refused" if "refused" in str(exc).lower() else _one_line(exc)
            return LiveError(f"cannot reach the API server at {self.host}: {detail}")
        if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
            return LiveError(f"the API server did not answer within {self.timeout:g} s ({self.host})")
        if isinstance(exc, urllib3.exceptions.SSLError):
            return LiveError(f"TLS error talking to the API server at {self.host}: {_one_line(exc)}")
        return LiveError(f"cannot talk to the API server at {self.host}: {_one_line(exc)}")


def _status_message(body: Any) -> str:
    if isinstance(body, dict) and body.get("kind") == "Status" and body.get("message"):
        return _one_line(body["message"])
    return ""


def _status_reason(body: Any) -> str:
    return body.get("reason", "") if isinstance(body, dict) else ""


def _check(status: int, body: Any, what: str, host: str) -> None:
    """Raise LiveError for fatal statuses, _KindUnreadable for per-kind ones."""
    if 200 <= status < 300:
        if not isinstance(body, dict):
            raise LiveError(f"the API server at {host} returned a non-JSON answer to {what}")
        return
    message = _status_message(body)
    suffix = f": {message}" if message else ""
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


# ---------------------------------------------------------------- collection


def _list_kind(api: _Api, kind: Kind, namespace: str | None, chunk_size: int) -> list[dict]:
    """All items of one kind, in one request or (``chunk_size`` > 0) in chunks; a 410 Expired while
    chunking restarts the list once."""
    path = kind.list_path(namespace)
    accept = SECRET_ACCEPT if kind.metadata_only else JSON_ACCEPT
    what = f"listing {kind.kind}"
    for attempt in (1, 2):
        items: list[dict] = []
        token: str | None = None
        requests = 0
        while True:
            query: list[tuple[str, Any]] = [("limit", chunk_size)] if chunk_size else []
            if token:
                query.append(("continue", token))
            status, body = api.get(path, query, accept)
            if status == 410 and token:
                if attempt == 1:
                    api.log(f"{kind.kind}: continue token expired, restarting the list")
                    break
                raise _KindUnreadable("the list kept expiring (410 Expired) while reading it in chunks")
            _check(status, body, what, api.host)
            requests += 1
            # Sanitise chunk by chunk: raw Secret data is never kept past this point.
            items.extend(sanitize(item, kind) for item in body.get("items") or [] if isinstance(item, dict))
            next_token = (body.get("metadata") or {}).get("continue")
            if not next_token:
                api.log(f"{kind.kind}: {len(items)} object(s) in {requests} request(s)")
                return items
            if next_token == token:
                raise LiveError(f"the API server returned the same continue token twice {what}")
            token = next_token
    raise AssertionError("unreachable")


def _crd_kinds_served(api: _Api, group: str, version: str) -> tuple[set[str], str | None]:
    """-> (plurals served by group/version, reason if discovery was unreadable)."""
    status, body = api.get(f"/apis/{group}/{version}")
    if status == 404:
        return set(), None
    try:
        _check(status, body, f"discovering {group}/{version}", api.host)
    except _KindUnreadable as e:
        return set(), str(e)
    return {r.get("name") for r in body.get("resources") or [] if isinstance(r, dict)}, None


def collect(
    namespace: str | None,
    *,
    kubeconfig: str | None,
    context: str | None,
    timeout: float,
    all_namespaces: bool = False,
    verbose: bool = False,
    chunk_size: int = 0,
) -> Collection:
    """Read every audited kind from the API server (GET only). See the module docstring."""
    if timeout <= 0:
        raise LiveError("the timeout must be positive")
    if chunk_size < 0:
        raise LiveError("the chunk size must be 0 (one request per kind) or positive")
    configuration, context_namespace = _load_configuration(kubeconfig, context)
    if all_namespaces:
        namespace = None
    elif not namespace:
        namespace = context_namespace or "default"
    api = _Api(configuration, timeout, verbose)
    try:
        return _collect(api, namespace, chunk_size)
    finally:
        api.close()


def _collect(api: _Api, namespace: str | None, chunk_size: int) -> Collection:
    result = Collection(namespace=namespace)
    by_kind: dict[str, list[dict]] = {}

    # 1. The namespace itself (GET), or all namespaces (list).
    if namespace is not None:
        status, body = api.get(NAMESPACE.list_path(None) + "/" + quote(namespace, safe=""))
        if status == 404:
            raise LiveError(f"namespace {namespace} not found")
        try:
            _check(status, body, f"getting namespace {namespace}", api.host)
            by_kind[NAMESPACE.kind] = [sanitize(body, NAMESPACE)]
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
        futures = {kind: pool.submit(_list_kind, api, kind, namespace, chunk_size) for kind in to_list}
        for kind, future in futures.items():
            try:
                by_kind[kind.kind] = _result(future, pool)
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
