"""The catalogue of broken answers the test API server can give (``Knobs.misbehave``).

Each class is one way a real API server, or the proxy or load balancer in front of it, answers badly: text
that is not JSON, a body cut short (by a Content-Length that promises more, a chunked body without its last
chunk, a TCP reset), a connection that ends before any answer, an HTML error page, lists whose items are not
objects or not of the kind asked for, throttling (429 with Retry-After), 5xx with and without a Status body,
an empty 200, and full Secrets with their data to a client that asked for metadata only. ``nth`` restricts
one to the Nth request (1-based) of the resource it is set for; every request otherwise.

``effect`` says what the live audit must make of an answer: ``unreadable`` (that kind is reported unreadable,
the rest of the audit goes on), ``fatal`` (a one-line error, exit 2), ``retry`` (the client waits as told and
asks again) or ``harmless`` (read as if nothing happened).

Nothing here imports the project: like the server, it is driven only through HTTP.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from email.utils import formatdate
from typing import ClassVar

from .k8s_api_server import Answer, Exchange, status_body

# In every full Secret a misbehaving server sends: no output of the audit may ever contain it, in any form.
PLANTED_SECRET = "Pl4nted-full-secret-9f2d"
PLANTED_FORMS = (PLANTED_SECRET, base64.b64encode(PLANTED_SECRET.encode()).decode())

NGINX_PAGE = ("<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n<center><h1>{code} {phrase}</h1>"
              "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
PHRASES = {200: "OK", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def _list_kind(exchange: Exchange) -> str:
    return f"{exchange.kind}List" if exchange.kind else "List"


@dataclass(frozen=True)
class Misbehaviour:
    nth: int | None = None
    effect: ClassVar[str] = "unreadable"

    def answer(self, exchange: Exchange) -> Answer:
        raise NotImplementedError


# ---------------------------------------------------------------- bodies that are not a list of the kind


@dataclass(frozen=True)
class MalformedJson(Misbehaviour):
    """A list whose second item is broken off by a stray comma."""

    def answer(self, exchange):
        return Answer(200, (f'{{"kind": "{_list_kind(exchange)}", "apiVersion": "v1", "metadata": {{}}, '
                            '"items": [{"metadata": {"name": "a"}},, {}]}').encode())


@dataclass(frozen=True)
class HtmlPage(Misbehaviour):
    """What a proxy in front of the API server answers: an HTML page, as 200 or as an error."""

    status: int = 502

    @property
    def effect(self):  # type: ignore[override]
        return "unreadable" if self.status < 300 else "fatal"

    def answer(self, exchange):
        page = NGINX_PAGE.format(code=self.status, phrase=PHRASES[self.status])
        return Answer(self.status, page.encode(), content_type="text/html")


@dataclass(frozen=True)
class EmptyBody(Misbehaviour):
    """200 with no body at all."""

    def answer(self, exchange):
        return Answer(200, b"")


@dataclass(frozen=True)
class JunkItems(Misbehaviour):
    """``{"items": [null, 1, "x", {}]}`` in the list of the kind asked for."""

    def answer(self, exchange):
        return Answer(200, _json({"kind": _list_kind(exchange), "apiVersion": "v1", "metadata": {},
                                  "items": [None, 1, "x", {}]}))


# How an item's metadata is broken: the metadata the item gets (ABSENT: no metadata key at all).
ABSENT = object()
BROKEN_METADATA = {"missing": ABSENT, "null": None, "a string": "web", "name an integer": {"name": 7},
                   "name null": {"name": None}, "name a list": {"name": ["web"]}, "name empty": {"name": ""}}


def _append_item(exchange: Exchange, item: dict) -> bytes:
    """The answer the server would give, with ``item`` after its items."""
    _, normal = exchange.normal(exchange.partial)
    if not isinstance(normal, dict) or not isinstance(normal.get("items"), list):  # a GET, or discovery
        normal = {"kind": _list_kind(exchange), "apiVersion": "v1", "metadata": {}, "items": []}
    return _json({**normal, "items": [*normal["items"], item]})


@dataclass(frozen=True)
class ItemMetadata(Misbehaviour):
    """An item (after the real ones) whose metadata is missing, null, or without a string name."""

    broken: str = "missing"

    def answer(self, exchange):
        metadata = BROKEN_METADATA[self.broken]
        item = {"spec": {}} if metadata is ABSENT else {"metadata": metadata, "spec": {}}
        return Answer(200, _append_item(exchange, item))


@dataclass(frozen=True)
class WrongKindItem(Misbehaviour):
    """An item of another kind (after the real ones) in the list: ``other`` (ConfigMap, or Service in a list
    of ConfigMaps, by default), named ``name``."""

    other: str | None = None
    name: str = "intruder"

    def answer(self, exchange):
        other = self.other or ("Service" if exchange.kind == "ConfigMap" else "ConfigMap")
        return Answer(200, _append_item(exchange, {"kind": other, "apiVersion": "v1", "metadata": {"name": self.name}}))


@dataclass(frozen=True)
class WrongListKind(Misbehaviour):
    """An empty list of another kind than the one asked for (any text as its kind)."""

    kind: str = "EventList"

    def answer(self, exchange):
        return Answer(200, _json({"kind": self.kind, "apiVersion": "v1", "metadata": {}, "items": []}))


@dataclass(frozen=True)
class StatusIn200(Misbehaviour):
    """A Failure Status as a 200 answer (any text as its message), as some proxies and aggregated APIs send."""

    message: str = "etcdserver: leader changed"

    def answer(self, exchange):
        return Answer(200, _json(status_body(500, self.message)))


# ---------------------------------------------------------------- errors the client may retry

# Retry-After values (RFC 9110: delay-seconds or an HTTP-date) and whether a client may take them.
RETRY_AFTER_VALID = ("0", "1", "date-past", "date-1s")
RETRY_AFTER_TOO_LONG = ("999999", "date-far")
RETRY_AFTER_INVALID = ("-1", "1.5", "soon", "")


def retry_after_header(value: str, now: float | None = None) -> str:
    """The header's text; ``date-*`` values become an HTTP-date relative to ``now``."""
    import time

    offsets = {"date-past": -3600, "date-1s": 1, "date-far": 86400 * 365}
    if value in offsets:
        return formatdate((now or time.time()) + offsets[value], usegmt=True)
    return value


@dataclass(frozen=True)
class _Throttling(Misbehaviour):
    retry_after: str | None = None  # None: no Retry-After header

    @property
    def effect(self):  # type: ignore[override]
        return "retry" if self.retry_after in RETRY_AFTER_VALID else self.given_up

    given_up: ClassVar[str] = "unreadable"

    def headers(self) -> tuple[tuple[str, str], ...]:
        return () if self.retry_after is None else (("Retry-After", retry_after_header(self.retry_after)),)


@dataclass(frozen=True)
class TooManyRequests(_Throttling):
    """429, as the API server's priority and fairness answers when a flow's queue is full."""

    def answer(self, exchange):
        body = status_body(429, "Too many requests, please try again later.", "TooManyRequests",
                           details={"retryAfterSeconds": 1})
        return Answer(429, _json(body), headers=self.headers())


@dataclass(frozen=True)
class ServerError(_Throttling):
    """5xx, with a Status body (the API server's own, any text as its message and reason) or a proxy's plain
    text."""

    status: int = 503
    with_status: bool = True
    message: str = "etcdserver: request timed out"
    reason: str | None = None  # None: the status's own
    given_up: ClassVar[str] = "fatal"

    def answer(self, exchange):
        if self.with_status:
            return Answer(self.status, _json(status_body(self.status, self.message, self.reason)),
                          headers=self.headers())
        return Answer(self.status, b"upstream connect error or disconnect/reset before headers",
                      content_type="text/plain", headers=self.headers())


@dataclass(frozen=True)
class Refused(Misbehaviour):
    """A 4xx the client cannot retry (forbidden, bad request, conflict...), any text as its message."""

    status: int = 403
    message: str = "policy says no"

    def answer(self, exchange):
        return Answer(self.status, _json(status_body(self.status, self.message)))


# ---------------------------------------------------------------- bodies cut short


@dataclass(frozen=True)
class TruncatedBody(Misbehaviour):
    """The real answer, under a Content-Length that promises ``missing`` more bytes; then the connection
    closes."""

    missing: int = 100
    effect: ClassVar[str] = "fatal"

    def answer(self, exchange):
        status, normal = exchange.normal(exchange.partial)
        return Answer(status, _json(normal), framing="claims_more", missing=self.missing)


@dataclass(frozen=True)
class ChunkedCut(Misbehaviour):
    """The real answer, chunked, cut after its first half: the last chunk never comes."""

    effect: ClassVar[str] = "fatal"

    def answer(self, exchange):
        status, normal = exchange.normal(exchange.partial)
        return Answer(status, _json(normal), framing="chunked_cut")


@dataclass(frozen=True)
class ResetMidBody(Misbehaviour):
    """Half the real answer, then a TCP reset."""

    effect: ClassVar[str] = "fatal"

    def answer(self, exchange):
        status, normal = exchange.normal(exchange.partial)
        return Answer(status, _json(normal), framing="reset")


@dataclass(frozen=True)
class Dropped(Misbehaviour):
    """No answer at all: the connection is closed (a load balancer dropping the idle connection a client
    reuses, an API server restarting) or reset once the request is read. A client asks a GET again a second
    later, as client-go does (a 500 with ``Retry-After: 1`` to it); a write it never sends twice, so that one
    fails."""

    reset: bool = False
    effect: ClassVar[str] = "retry"
    given_up: ClassVar[str] = "fatal"
    retry_after: ClassVar[str] = "1"  # the wait the client takes before asking again

    def answer(self, exchange):
        return Answer(0, b"", framing="reset_at_once" if self.reset else "closed_at_once")


# ---------------------------------------------------------------- more than was asked for


@dataclass(frozen=True)
class FullSecrets(Misbehaviour):
    """Whole objects whatever the Accept header asked for: Secrets with their ``data``, plus a planted
    value in ``stringData`` and in the ``kubectl apply`` annotation. ``envelope``: the list kind sent
    (``SecretList``, or ``PartialObjectMetadataList`` around the whole objects)."""

    envelope: str = "SecretList"
    effect: ClassVar[str] = "harmless"

    def answer(self, exchange):
        status, normal = exchange.normal(False)
        if not exchange.list_request or status != 200 or not isinstance(normal, dict):
            return Answer(status, _json(normal))
        items = [_planted(item) for item in normal.get("items") or []] if exchange.kind == "Secret" \
            else normal.get("items") or []
        if self.envelope == "PartialObjectMetadataList":
            normal = {**normal, "apiVersion": "meta.k8s.io/v1"}
        return Answer(200, _json({**normal, "kind": self.envelope if exchange.kind == "Secret" else normal["kind"],
                                  "items": items}))


def _planted(secret: dict) -> dict:
    metadata = dict(secret.get("metadata") or {})
    applied = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": metadata.get("name")},
               "stringData": {"planted": PLANTED_SECRET}}
    metadata["annotations"] = {**(metadata.get("annotations") or {}),
                               "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)}
    return {**secret, "metadata": metadata, "data": {**(secret.get("data") or {}), "planted": PLANTED_FORMS[1]},
            "stringData": {"planted": PLANTED_SECRET}}


CATALOGUE: tuple[type[Misbehaviour], ...] = (
    MalformedJson, HtmlPage, EmptyBody, JunkItems, ItemMetadata, WrongKindItem, WrongListKind, StatusIn200,
    TooManyRequests, ServerError, Refused, TruncatedBody, ChunkedCut, ResetMidBody, Dropped, FullSecrets,
)
