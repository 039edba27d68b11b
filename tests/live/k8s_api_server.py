"""A small, real Kubernetes API server double for the live-mode tests.

It is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 that speaks enough of the
Kubernetes REST API (discovery, GET/list of a fixed set of resources, label
selectors, limit/continue pagination, metadata-only lists, ``Status`` error
bodies; and, for policyreports only, the writes: server-side apply and create)
for the real ``kubernetes`` Python client to be pointed at it through a
kubeconfig file.  Fault knobs (see :class:`Knobs`) let a test make it refuse,
fail, hang, leak, trickle or answer with something else than it was asked for;
``Knobs.misbehave`` takes the classes of broken answers catalogued in ``misbehaviour.py``
(cut bodies, resets, HTML pages, throttling...), which the server puts on the wire as
:class:`Answer`. Every request is recorded, with the body of a write and the misbehaviour
it was answered with.

Nothing here imports the project: the tests drive it only through HTTP.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import os
import re
import socket
import ssl
import struct
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

TOKEN = "test-token"

# (group, version, plural, kind, namespaced)
BUILTIN_RESOURCES = [
    ("", "v1", "namespaces", "Namespace", False),
    ("", "v1", "pods", "Pod", True),
    ("", "v1", "services", "Service", True),
    ("", "v1", "configmaps", "ConfigMap", True),
    ("", "v1", "serviceaccounts", "ServiceAccount", True),
    ("", "v1", "secrets", "Secret", True),
    ("apps", "v1", "deployments", "Deployment", True),
    ("apps", "v1", "replicasets", "ReplicaSet", True),
    ("apps", "v1", "statefulsets", "StatefulSet", True),
    ("apps", "v1", "daemonsets", "DaemonSet", True),
    ("batch", "v1", "jobs", "Job", True),
    ("batch", "v1", "cronjobs", "CronJob", True),
    ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", True),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
]

CRD_RESOURCES = [
    ("argoproj.io", "v1alpha1", "rollouts", "Rollout", True),
    ("argoproj.io", "v1alpha1", "analysistemplates", "AnalysisTemplate", True),
    ("external-secrets.io", "v1", "externalsecrets", "ExternalSecret", True),
    ("external-secrets.io", "v1", "secretstores", "SecretStore", True),
    ("external-secrets.io", "v1", "clustersecretstores", "ClusterSecretStore", False),
    ("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", True),
    # the one kind a client may write: `tbyte-policy live --publish` applies its PolicyReport
    ("wgpolicyk8s.io", "v1alpha2", "policyreports", "PolicyReport", True),
]
CRD_GROUPS = sorted({r[0] for r in CRD_RESOURCES})
WRITABLE = frozenset({"policyreports"})
APPLY_PATCH = "application/apply-patch+yaml"

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "Timeout",
}

PARTIAL_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass
class Knobs:
    """Mutable fault knobs; tests may change them while the server runs.

    Dict knobs are keyed by resource plural (``"secrets"``); ``"*"`` means all.
    """

    token: str = TOKEN
    # plural -> HTTP status (403, 404, 500, 503, ...) answered with a Status body
    errors: dict[str, int] = field(default_factory=dict)
    # plural -> how many more continue tokens to reject with 410 Expired
    expire_continue: dict[str, int] = field(default_factory=dict)
    # plural or "*" -> never answer (sleep until the server stops)
    hang: set[str] = field(default_factory=set)
    # metadata-only lists still carry data/stringData/type
    leaky_metadata: bool = False

    # --- answers that are slow or not what was asked for (issue 20) ---
    # plural or request path -> the 200 answer to send instead (a JSON value, or bytes sent as they are)
    answers: dict[str, object] = field(default_factory=dict)
    # plural -> "cycle": continue tokens a -> b -> a ...; "endless": a new token on every page
    continue_tokens: dict[str, str] = field(default_factory=dict)
    # plural -> seconds over which the answer's body is sent, a piece at a time (headers at once)
    trickle_body: dict[str, float] = field(default_factory=dict)
    # plural -> seconds over which the status line and headers are sent, a piece at a time
    trickle_headers: dict[str, float] = field(default_factory=dict)

    # --- writes (issue 15: policyreports only) ---
    # plural -> HTTP status answered to its writes (PATCH, POST) only, reads being served
    write_errors: dict[str, int] = field(default_factory=dict)

    # --- broken answers (issue 16; the classes are in misbehaviour.py) ---
    # plural, request path or "*" -> a Misbehaviour, or several (the first whose ``nth`` matches the
    # request's number among that resource's requests answers it)
    misbehave: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    accept: str
    authorization: str
    resource: str | None  # plural, "discovery", or None if unrouted
    partial: bool  # answered as PartialObjectMetadata(List)
    content_type: str = ""
    body: bytes = b""  # what a write sent
    misbehaviour: object = None  # the Misbehaviour that answered it, if one did


@dataclass(frozen=True)
class Answer:
    """An answer as it goes on the wire, for the misbehaviours: ``framing`` says how the body is sent.

    ``whole``: with its Content-Length; ``claims_more``: a Content-Length ``missing`` bytes larger than
    the body, then the connection closed; ``chunked_cut``: chunked, the first half of the body and no last
    chunk; ``reset``: half the body, then a TCP reset; ``closed_at_once`` / ``reset_at_once``: no answer at
    all, the connection closed (FIN) or reset (RST) once the request is read."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    framing: str = "whole"
    missing: int = 0


@dataclass(frozen=True)
class Exchange:
    """What a misbehaviour is told about the request it answers."""

    kind: str | None  # the resource's kind; None for discovery and unrouted paths
    list_request: bool
    partial: bool  # the client asked for metadata only
    # normal(partial) -> (status, JSON body): the answer the server would send (a write is done when called)
    normal: Callable[[bool], tuple[int, object]]


class _ApiError(Exception):
    def __init__(self, code: int, message: str, reason: str | None = None, **extra):
        super().__init__(message)
        self.code, self.message = code, message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.extra = extra


def status_body(code: int, message: str, reason: str | None = None, **extra) -> dict:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "Unknown"),
        "code": code,
    }
    body.update(extra)
    return body


# ---------------------------------------------------------------- selectors

_SET_RE = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")


def parse_label_selector(text: str):
    """Return a predicate over a labels dict; raise ValueError when malformed."""
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    preds = []
    for term in terms:
        if not term.strip():
            if text.strip():
                raise ValueError(f"empty term in selector {text!r}")
            continue
        if m := _SET_RE.match(term):
            neg, key, op, vals = m.groups()
            if neg:
                raise ValueError(term)
            values = {v.strip() for v in vals.split(",") if v.strip()}
            if op == "in":
                preds.append(lambda lb, k=key, vs=values: k in lb and lb[k] in vs)
            else:
                preds.append(lambda lb, k=key, vs=values: k not in lb or lb[k] not in vs)
        elif m := _EQ_RE.match(term):
            key, op, value = m.groups()
            if op == "!=":
                preds.append(lambda lb, k=key, v=value: lb.get(k) != v)
            else:
                preds.append(lambda lb, k=key, v=value: k in lb and lb[k] == v)
        elif m := _EXISTS_RE.match(term):
            neg, key = m.groups()
            if neg:
                preds.append(lambda lb, k=key: k not in lb)
            else:
                preds.append(lambda lb, k=key: k in lb)
        else:
            raise ValueError(f"unable to parse requirement: {term!r}")
    return lambda labels: all(p(labels or {}) for p in preds)


# ---------------------------------------------------------------- the store


class Store:
    def __init__(self, objects, installed_crds):
        self.resources = [Resource(*r) for r in BUILTIN_RESOURCES]
        self.installed_groups = set(installed_crds)
        unknown = self.installed_groups - set(CRD_GROUPS)
        if unknown:
            raise ValueError(f"unknown CRD groups {sorted(unknown)}; known: {CRD_GROUPS}")
        self.resources += [Resource(*r) for r in CRD_RESOURCES if r[0] in self.installed_groups]
        self.by_kind = {(r.api_version, r.kind): r for r in self.resources}
        self.by_path = {(r.group, r.version, r.plural): r for r in self.resources}
        self._rv = itertools.count(1000)
        self.objects: dict[Resource, list[dict]] = {r: [] for r in self.resources}
        namespaces = set()
        for obj in objects:
            self.add(obj, keep_sorted=False)  # sorted once below: 50,000 sorted inserts take minutes
            ns = obj.get("metadata", {}).get("namespace")
            if ns:
                namespaces.add(ns)
        have = {o["metadata"]["name"] for o in self.objects[self.by_kind[("v1", "Namespace")]]}
        for ns in sorted(namespaces - have):
            self.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, keep_sorted=False)
        for stored in self.objects.values():
            stored.sort(key=_sort_key)

    @property
    def resource_version(self) -> str:
        return str(next(self._rv))

    def add(self, obj: dict, keep_sorted: bool = True) -> None:
        obj = copy.deepcopy(obj)
        key = (obj.get("apiVersion"), obj.get("kind"))
        res = self.by_kind.get(key)
        if res is None:
            raise ValueError(f"the fake API server does not serve {key} (CRD not installed?)")
        meta = obj.setdefault("metadata", {})
        if "name" not in meta:
            raise ValueError(f"object without metadata.name: {obj}")
        if res.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("resourceVersion", self.resource_version)
        meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
        meta.setdefault(
            "managedFields",
            [
                {
                    "manager": "kubectl",
                    "operation": "Apply",
                    "apiVersion": res.api_version,
                    "time": "2024-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {}}},
                }
            ],
        )
        self.objects[res].append(obj)
        if keep_sorted:
            self.objects[res].sort(key=_sort_key)


def _sort_key(obj: dict) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


# ---------------------------------------------------------------- the server


class FakeK8sServer:
    def __init__(self, objects=(), installed_crds=CRD_GROUPS, knobs: Knobs | None = None,
                 tls: tuple[str, str] | None = None):
        """``tls``: (certificate file, key file) to serve HTTPS instead of HTTP."""
        self.store = Store(objects, installed_crds)
        self.knobs = knobs or Knobs()
        self.requests: list[Request] = []
        self._request_numbers: dict[str, int] = {}  # resource or path -> requests so far
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- lifecycle
    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> FakeK8sServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def add(self, obj: dict) -> None:
        with self._lock:
            self.store.add(obj)

    # -- request log helpers
    def record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)

    def requests_for(self, plural: str) -> list[Request]:
        return [r for r in list(self.requests) if r.resource == plural]

    def count_by_resource(self) -> dict[str | None, int]:
        counts: dict[str | None, int] = {}
        for r in list(self.requests):
            counts[r.resource] = counts.get(r.resource, 0) + 1
        return counts

    @property
    def methods(self) -> set[str]:
        return {r.method for r in list(self.requests)}

    @property
    def full_secret_reads(self) -> list[Request]:
        """Secret requests answered with full objects (i.e. with data)."""
        return [r for r in self.requests_for("secrets") if not r.partial]

    # -- request handling
    def handle(self, method: str, raw_path: str, headers, body: bytes = b"") -> tuple[int, dict | None]:
        split = urlsplit(raw_path)
        path = unquote(split.path).rstrip("/") or "/"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        accept = headers.get("Accept", "") or ""
        route = self._route(path)
        resource = route[0] if route else None
        partial = False
        misbehaviour = None
        try:
            writing = method in ("PATCH", "POST") and resource in WRITABLE
            if method != "GET" and not writing:
                raise _ApiError(405, f"the fake API server only serves reads (and writes of policyreports), "
                                     f"not {method} of {resource or path}")
            if "*" in self.knobs.hang or (resource and resource in self.knobs.hang):
                self._stopping.wait()
                return 0, None  # never answer
            scheme, _, token = headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token != self.knobs.token:  # the scheme is case-insensitive (RFC 7235)
                raise _ApiError(401, "Unauthorized")
            code = self.knobs.errors.get(resource or "", self.knobs.errors.get("*"))
            if code:
                raise _ApiError(code, self._error_message(code, resource, route, method))
            if writing:
                code = self.knobs.write_errors.get(resource or "")
                if code:
                    raise _ApiError(code, self._error_message(code, resource, route, method))
            misbehaviour = self._misbehaviour(resource, path)
            if misbehaviour is not None:
                broken = misbehaviour.answer(self._exchange(route, query, accept, method, headers, body, writing))
                return broken.status, broken
            if writing:
                return self._write(method, route, query, headers.get("Content-Type", ""), body)
            answer = self.knobs.answers.get(resource or "", self.knobs.answers.get(path))
            if answer is not None:
                return 200, answer
            if route is None:
                raise _ApiError(404, "the server could not find the requested resource")
            partial = _wants_partial(accept, list_request=route[1] == "list")
            return 200, self._serve(route, query, partial)
        except _ApiError as e:
            return e.code, status_body(e.code, e.message, e.reason, **e.extra)
        finally:
            self.record(
                Request(
                    method,
                    path,
                    query,
                    accept,
                    headers.get("Authorization", ""),
                    resource,
                    partial,
                    headers.get("Content-Type", "") or "",
                    body,
                    misbehaviour,
                )
            )

    def _misbehaviour(self, resource, path):
        """The misbehaviour that answers this request, if any (and counts the request)."""
        knob = self.knobs.misbehave
        configured = knob.get(resource or "", knob.get(path, knob.get("*")))
        if configured is None:
            return None
        key = resource or path
        with self._lock:
            number = self._request_numbers[key] = self._request_numbers.get(key, 0) + 1
        candidates = configured if isinstance(configured, (list, tuple)) else (configured,)
        return next((m for m in candidates if m.nth is None or m.nth == number), None)

    def _exchange(self, route, query, accept, method, headers, body, writing) -> Exchange:
        served = route is not None and route[1] != "discovery"
        return Exchange(kind=route[4].kind if served else None,
                        list_request=served and route[1] == "list" and not writing,
                        partial=served and not writing and _wants_partial(accept, list_request=route[1] == "list"),
                        normal=lambda partial: self._normal(route, query, partial, method,
                                                            headers.get("Content-Type", ""), body))

    def _normal(self, route, query, partial, method, content_type, body):
        """(status, body) of the answer this request would get from a healthy server; a write is done when
        this is called."""
        if route is None:
            return 404, status_body(404, "the server could not find the requested resource")
        try:
            if method != "GET":
                return self._write(method, route, query, content_type, body)
            return 200, self._serve(route, query, partial)
        except _ApiError as e:
            return e.code, status_body(e.code, e.message, e.reason, **e.extra)

    def _error_message(self, code, resource, route, method="GET"):
        if code == 403:
            ns = route[2] if route and route[2] else None
            scope = f' in the namespace "{ns}"' if ns else " at the cluster scope"
            verb = {"PATCH": "patch", "POST": "create"}.get(method) or (route[1] if route else "get")
            return (
                f'{resource} is forbidden: User "system:serviceaccount:audit:tbyte" '
                f'cannot {verb} resource "{resource}" in API group ""{scope}'
            )
        return f"injected failure ({code}) for {resource or 'request'}"

    def _route(self, path):
        """-> (plural|'discovery', 'list'|'get'|'discovery', namespace, name, payload)"""
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"]:
            group, rest = "", parts[1:]
            if not rest:
                return ("discovery", "discovery", None, None, ("api",))
            version, rest = rest[0], rest[1:]
        elif parts[:1] == ["apis"]:
            if len(parts) == 1:
                return ("discovery", "discovery", None, None, ("apis",))
            if len(parts) == 2:
                return ("discovery", "discovery", None, None, ("group", parts[1]))
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        if not rest:
            return ("discovery", "discovery", None, None, ("resources", group, version))
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        res = self.store.by_path.get((group, version, rest[0]))
        if res is None or len(rest) > 2:
            return None
        if namespace is not None and not res.namespaced:
            return None
        if len(rest) == 1:
            return (res.plural, "list", namespace, None, res)
        return (res.plural, "get", namespace, rest[1], res)

    def _serve(self, route, query, partial):
        plural, verb, namespace, name, payload = route
        if verb == "discovery":
            return self._discovery(payload)
        res: Resource = payload
        with self._lock:
            objs = list(self.store.objects[res])
            list_rv = self.store.resource_version
        if namespace is not None:
            objs = [o for o in objs if o["metadata"].get("namespace") == namespace]
        if verb == "get":
            for o in objs:
                if o["metadata"]["name"] == name:
                    return self._render(o, res, partial, as_item=False)
            raise _ApiError(
                404,
                f'{res.plural} "{name}" not found',
                details={"name": name, "kind": res.plural},
            )
        selector = query.get("labelSelector")
        if selector:
            try:
                pred = parse_label_selector(selector)
            except ValueError as e:
                raise _ApiError(400, f"unable to parse requirement: {e}") from None
            objs = [o for o in objs if pred(o["metadata"].get("labels"))]
        if plural in self.knobs.continue_tokens:
            return self._misleading_page(res, objs, query, partial, self.knobs.continue_tokens[plural])
        start = 0
        token = query.get("continue")
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, list_rv = int(decoded["start"]), decoded["rv"]
                if decoded["path"] != res.plural:
                    raise ValueError
            except Exception:
                raise _ApiError(400, "continue key is not valid") from None
            left = self.knobs.expire_continue.get(plural, self.knobs.expire_continue.get("*", 0))
            if left:
                key = plural if plural in self.knobs.expire_continue else "*"
                self.knobs.expire_continue[key] = left - 1
                raise _ApiError(
                    410,
                    "The provided continue parameter is too old to display a consistent "
                    "list result. You can start a new list without the continue parameter.",
                    "Expired",
                )
        limit = int(query.get("limit") or 0)
        end = start + limit if limit > 0 else len(objs)
        page = objs[start:end]
        meta = {"resourceVersion": list_rv}
        if end < len(objs):
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"start": end, "rv": list_rv, "path": res.plural}).encode()
            ).decode()
            if not selector:
                meta["remainingItemCount"] = len(objs) - end
        if partial:
            return {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": [self._render(o, res, True, as_item=True) for o in page],
            }
        return {
            "kind": f"{res.kind}List",
            "apiVersion": res.api_version,
            "metadata": meta,
            "items": [self._render(o, res, False, as_item=True) for o in page],
        }

    # -- writes: server-side apply (PATCH) and create (POST) of policyreports

    def _write(self, method, route, query, content_type, body):
        plural, verb, namespace, name, res = route
        try:
            obj = yaml.safe_load(body)  # JSON is YAML
        except yaml.YAMLError:
            raise _ApiError(400, "the request body is not YAML or JSON") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
            raise _ApiError(400, "the request body is not an object with metadata")
        if (obj.get("apiVersion"), obj.get("kind")) != (res.api_version, res.kind):
            raise _ApiError(400, f"the body is a {obj.get('apiVersion')} {obj.get('kind')}, not a {res.api_version} "
                                 f"{res.kind}")
        body_name, body_namespace = obj["metadata"].get("name"), obj["metadata"].get("namespace", namespace)
        if body_namespace != namespace:
            raise _ApiError(400, "the namespace of the provided object does not match the namespace sent on the "
                                 "request")
        if method == "POST":
            if verb != "list" or content_type.split(";")[0].strip() != "application/json":
                raise _ApiError(415 if verb == "list" else 405, "create takes application/json on the list path")
            with self._lock:
                if self._find(res, namespace, body_name) is not None:
                    raise _ApiError(409, f'{plural}.{res.group} "{body_name}" already exists', "AlreadyExists")
                self.store.add({**obj, "metadata": {**obj["metadata"], "namespace": namespace, "managedFields": [
                    _managed_field(query.get("fieldManager") or "unknown", "Update", res)]}})
                return 201, self._stored(res, namespace, body_name)
        if verb != "get":
            raise _ApiError(405, "apply names the object in the path")
        if content_type.split(";")[0].strip() != APPLY_PATCH:
            raise _ApiError(415, f"the fake API server applies only {APPLY_PATCH}, not {content_type or 'nothing'}")
        manager = query.get("fieldManager")
        if not manager:
            raise _ApiError(400, "PATCH is missing the fieldManager query parameter (required for apply)")
        if body_name != name:
            raise _ApiError(400, "the name of the object does not match the name on the URL")
        force = query.get("force") == "true"
        with self._lock:
            current = self._find(res, namespace, name)
            if current is None:
                self.store.add({**obj, "metadata": {**obj["metadata"], "namespace": namespace,
                                                    "managedFields": [_managed_field(manager, "Apply", res)]}})
                return 201, self._stored(res, namespace, name)
            others = sorted({entry.get("manager") for entry in current["metadata"].get("managedFields", [])
                             if entry.get("manager") != manager})
            if others and not force:
                raise _ApiError(409, f"Apply failed with {len(others)} conflict(s): fields managed by "
                                     f"{', '.join(others)}", "Conflict")
            # This manager now owns every field it applied; what it no longer applies is gone (one manager left).
            kept = {key: current["metadata"][key] for key in ("uid", "creationTimestamp")}
            current.clear()
            current.update(copy.deepcopy(obj))
            current["metadata"].update(kept, namespace=namespace, resourceVersion=self.store.resource_version,
                                       managedFields=[_managed_field(manager, "Apply", res)])
            return 200, copy.deepcopy(current)

    def _find(self, res, namespace, name):
        return next((o for o in self.store.objects[res]
                     if o["metadata"].get("namespace") == namespace and o["metadata"]["name"] == name), None)

    def _stored(self, res, namespace, name):
        found = self._find(res, namespace, name)
        return copy.deepcopy(found) if found is not None else None

    def stored(self, plural: str, namespace: str, name: str) -> dict | None:
        """An object as the server holds it (the tests read what was written)."""
        res = next(r for r in self.store.resources if r.plural == plural)
        with self._lock:
            return self._stored(res, namespace, name)

    def _misleading_page(self, res, objs, query, partial, mode):
        """The first page again, with a continue token that cycles (a, b, a, ...) or never ends."""
        token = query.get("continue")
        if mode == "cycle":
            following = {None: "cycle-a", "cycle-a": "cycle-b", "cycle-b": "cycle-a"}[token]
        else:
            following = f"endless-{int(token.rpartition('-')[2]) + 1 if token else 1}"
        page = objs[: int(query.get("limit") or 0) or len(objs)]
        return {"kind": "PartialObjectMetadataList" if partial else f"{res.kind}List",
                "apiVersion": "meta.k8s.io/v1" if partial else res.api_version,
                "metadata": {"resourceVersion": self.store.resource_version, "continue": following},
                "items": [self._render(o, res, partial, as_item=True) for o in page]}

    def slowness(self, raw_path: str) -> tuple[float, float]:
        """(seconds for the headers, seconds for the body) of the answer to this request."""
        route = self._route(unquote(urlsplit(raw_path).path).rstrip("/") or "/")
        resource = route[0] if route else ""
        return self.knobs.trickle_headers.get(resource, 0.0), self.knobs.trickle_body.get(resource, 0.0)

    def trickle(self, out, data: bytes, seconds: float) -> None:
        """Write ``data`` in about 50 pieces spread over ``seconds`` (stops when the server does)."""
        pieces = max(1, min(50, len(data)))
        size = -(-len(data) // pieces)
        for start in range(0, len(data), size):
            out.write(data[start:start + size])
            out.flush()
            if self._stopping.wait(seconds / pieces):
                return

    def _render(self, obj, res, partial, *, as_item):
        obj = copy.deepcopy(obj)
        if partial:
            out = {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"]}
            if self.knobs.leaky_metadata:
                for k, v in obj.items():
                    out.setdefault(k, v)
            return out
        if as_item:
            # like the real server for built-in types, list items carry no TypeMeta
            obj.pop("apiVersion", None)
            obj.pop("kind", None)
        return obj

    def _discovery(self, payload):
        store = self.store
        if payload[0] == "api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
            }
        groups: dict[str, list[str]] = {}
        for r in store.resources:
            if r.group:
                groups.setdefault(r.group, [])
                if r.version not in groups[r.group]:
                    groups[r.group].append(r.version)

        def group_obj(name):
            versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in groups[name]]
            return {"name": name, "versions": versions, "preferredVersion": versions[0]}

        if payload[0] == "apis":
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [group_obj(g) for g in groups],
            }
        if payload[0] == "group":
            if payload[1] not in groups:
                raise _ApiError(404, "the server could not find the requested resource")
            return {"kind": "APIGroup", "apiVersion": "v1", **group_obj(payload[1])}
        _, group, version = payload
        resources = [r for r in store.resources if r.group == group and r.version == version]
        if not resources or (group == "" and version != "v1"):
            raise _ApiError(404, "the server could not find the requested resource")
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": [
                {
                    "name": r.plural,
                    "singularName": r.kind.lower(),
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "list", "watch"],
                }
                for r in resources
            ],
        }


def _managed_field(manager: str, operation: str, res: Resource) -> dict:
    return {"manager": manager, "operation": operation, "apiVersion": res.api_version, "time": "2024-05-01T12:00:00Z",
            "fieldsType": "FieldsV1", "fieldsV1": {}}


def _wants_partial(accept: str, *, list_request: bool) -> bool:
    """Content negotiation: the first acceptable media range wins."""
    if not accept:
        return False
    wanted = "PartialObjectMetadataList" if list_request else "PartialObjectMetadata"
    for media_range in accept.split(","):
        parts = [p.strip() for p in media_range.split(";")]
        mime, params = parts[0].lower(), dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if mime not in ("application/json", "application/*", "*/*"):
            continue
        if "as" not in params:
            return False
        if params.get("as") == wanted and params.get("g") == "meta.k8s.io" and params.get("v") == "v1":
            return True
    raise _ApiError(406, f"only the following media types are accepted: application/json (got {accept!r})")


def _make_handler(server: FakeK8sServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self):
            length = int(self.headers.get("Content-Length") or 0)
            sent = self.rfile.read(length) if length else b""
            code, body = server.handle(self.command, self.path, self.headers, sent)
            if isinstance(body, Answer):
                self._send_answer(body)
                return
            if code == 0:  # hang knob: the server is stopping, say nothing
                self.close_connection = True
                return
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            header_seconds, body_seconds = server.slowness(self.path)
            if header_seconds or body_seconds:
                head = (f"HTTP/1.1 {code} {REASONS.get(code, 'OK')}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n").encode()
                try:
                    server.trickle(self.wfile, head, header_seconds)
                    server.trickle(self.wfile, data, body_seconds)
                except OSError:
                    pass  # the client gave up
                self.close_connection = True
                return
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                if self.command != "GET":
                    self.close_connection = True
            except OSError:
                self.close_connection = True

        def _send_answer(self, answer: Answer) -> None:
            body, framing = answer.body, answer.framing
            if framing in ("closed_at_once", "reset_at_once"):
                try:
                    if framing == "reset_at_once":
                        # SO_LINGER 0, and the descriptor closed now (the handler's files would keep it open
                        # until the handler ends): the client gets RST, never FIN
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        os.close(self.connection.detach())
                    else:
                        self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.close_connection = True
                return
            head = [f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, 'OK')}",
                    f"Content-Type: {answer.content_type}",
                    *(f"{name}: {value}" for name, value in answer.headers)]
            if framing == "chunked_cut":
                head.append("Transfer-Encoding: chunked")
                half = body[: len(body) // 2]
                payload = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece)
                                   for piece in (half[:len(half) // 2], half[len(half) // 2:]) if piece)
            else:
                head.append(f"Content-Length: {len(body) + (answer.missing if framing == 'claims_more' else 0)}")
                payload = body[: len(body) // 2] if framing == "reset" else body
            try:
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
                self.wfile.flush()
                if framing == "reset":
                    # SO_LINGER 0: close() sends RST, not FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
            except OSError:
                pass  # the client gave up
            if framing != "whole":
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

        def log_message(self, *args):  # keep pytest output quiet
            pass

    return Handler


def kubeconfig_yaml(url: str, token: str = TOKEN, namespace: str | None = None,
                    certificate_authority: str | None = None) -> str:
    ctx_ns = f"\n    namespace: {namespace}" if namespace else ""
    ca = f"\n    certificate-authority: {certificate_authority}" if certificate_authority else ""
    return f"""apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}{ca}
users:
- name: tester
  user:
    token: {token}
contexts:
- name: test
  context:
    cluster: fake
    user: tester{ctx_ns}
current-context: test
"""
