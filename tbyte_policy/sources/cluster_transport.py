"""HTTP for the live mode: every request bounded in total time, whatever the server sends, or how slowly.

urllib3's timeouts bound each wait on the socket, not a request: an answer that trickles in a byte at a
time, each byte within the read timeout, is waited for as long as the server likes. Here each request has
a deadline — ``--timeout`` after it starts, or the run's ``--deadline`` if that comes first — and a
watchdog thread shuts the request's socket down when it passes, which ends any read in progress, in
the headers or the body; the request then fails with a one-line error. Connections learn which
request they serve when the request is sent (``_watched``), so the watchdog never cuts a connection
that has gone back to the pool and serves another request.

A 429 or 5xx answer that says when to come back (``Retry-After``) is asked again then, as client-go does
(``rest.WithRetry``), but only within the same request's deadline: a wait that would end past it is not
begun, so a server that says "in 999999 s" is a failure now, not a run that never ends. (The client's own
``client_go_retries``, off by default, sleeps whatever the header says: it stays off, like urllib3's retries.)
A GET whose connection ends before any answer (closed or reset: a load balancer dropping the idle connection
the pool reuses, an API server restarting) is asked again a second later, as client-go does (``rest.Request``
takes it for a 500 with ``Retry-After: 1``); a write never is, and neither is an answer cut off midway.
"""

from __future__ import annotations

import email.utils
import heapq
import http.client
import itertools
import json
import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any, NamedTuple, TypeVar

from tbyte_policy.model import is_number_text
from tbyte_policy.sources.cluster_listing import MalformedAnswer, one_line, read_list

INSTALL_HINT = "the live mode needs the kubernetes client: pip install 'tbyte-policy[live]'"
JSON_ACCEPT = "application/json"
READ_CHUNK_BYTES = 256 << 10
# A namespace, a discovery document or a PolicyReport: read whole, up to this size.
MAX_DOCUMENT_BYTES = 16 << 20
# An error answer is read only for its Status message.
MAX_ERROR_BYTES = 64 << 10
# Attempts of one request whose answers keep saying Retry-After (client-go stops after 10 too).
MAX_ATTEMPTS = 10
# The wait before asking again a GET whose connection ended before any answer (client-go's artificial
# Retry-After).
DROPPED_RETRY_SECONDS = 1.0

T = TypeVar("T")


class Deadline(NamedTuple):
    """The run's deadline: ``seconds`` after it started, at ``at`` on the monotonic clock."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        if seconds <= 0:
            raise LiveError("the deadline must be positive")
        return cls(seconds, time.monotonic() + seconds)


class LiveError(Exception):
    """A one-line, user-facing error of the live mode (never contains secret values)."""


class _Dropped(Exception):
    """The connection ended before any answer to a GET: ``error`` says so, for when it is not asked again."""

    def __init__(self, error: LiveError):
        super().__init__(str(error))
        self.error = error


class Reply(NamedTuple):
    """An answer: its status, what was read of its body, and, when the server asked for a retry that was not
    made, why not (``asked to retry in 999999 s, past ...``), for the message that reports the status."""

    status: int
    body: Any
    not_retried: str = ""


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """The wait a Retry-After header asks for (RFC 9110: delay-seconds, or an HTTP-date), from ``now`` (epoch
    seconds); None when the header is absent or neither ("-1", "1.5", "soon")."""
    if value is None:
        return None
    value = value.strip()
    if is_number_text(value):
        return float(value)  # float, not int: a thousand digits are a long wait, not a ValueError
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, the source's zone unknown (RFC 5322)
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


# ---------------------------------------------------------------- the watchdog


class _Watch:
    """One request's deadline, and the connection serving it once it is sent."""

    __slots__ = ("connection", "deadline", "done", "fired")

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.connection: Any = None
        self.done = False
        self.fired = False


class Watchdog:
    """Shuts down the socket of each request still running at its deadline (one thread for all)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._due: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._current = threading.local()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, deadline: float) -> _Watch:
        """Start watching the request this thread is about to send."""
        watch = _Watch(deadline)
        with self._lock:
            heapq.heappush(self._due, (deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tbyte-live-watchdog", daemon=True)
                self._thread.start()
            self._changed.notify()
        self._current.watch = watch
        return watch

    def done(self, watch: _Watch) -> bool:
        """Stop watching; whether the deadline passed (and the socket was shut) first."""
        with self._lock:
            watch.done = True
            watch.connection = None
        self._current.watch = None
        return watch.fired

    def bind(self, connection: Any) -> None:
        """The connection this thread's request goes out on (called as it connects and as it sends)."""
        watch = getattr(self._current, "watch", None)
        if watch is None:
            return
        with self._lock:
            watch.connection = connection
            connection._tbyte_watch = watch
            if watch.fired:
                self._cut(watch)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify()

    def _run(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._due:
                    self._changed.wait()
                    continue
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                _, _, watch = heapq.heappop(self._due)
                if not watch.done:
                    watch.fired = True
                    self._cut(watch)

    @staticmethod
    def _cut(watch: _Watch) -> None:
        connection = watch.connection
        if connection is None or getattr(connection, "_tbyte_watch", None) is not watch:
            return  # not yet sent (the connect timeout bounds that), or the connection serves another request
        sock = getattr(connection, "sock", None)
        if sock is not None:
            try:
                # socket.socket's own shutdown, also for a TLS socket: it ends the blocked read in the other
                # thread without tearing down the TLS state under it.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


def _watched(connection_class: Any, watchdog: Watchdog) -> type:
    class Watched(connection_class):
        def connect(self, *args, **kwargs):
            watchdog.bind(self)
            return super().connect(*args, **kwargs)

        def request(self, *args, **kwargs):
            watchdog.bind(self)
            return super().request(*args, **kwargs)

    Watched.__name__ = f"Watched{connection_class.__name__}"
    return Watched


# ---------------------------------------------------------------- the API client


class Api:
    """JSON requests to the API server over the kubernetes client's ApiClient, each bounded in time."""

    def __init__(self, configuration, timeout: float, deadline: Deadline | None, verbose: bool, max_workers: int):
        try:
            from kubernetes import client
        except ImportError:
            raise LiveError(INSTALL_HINT) from None
        configuration.retries = False  # no urllib3 retries: fail fast, report clearly
        configuration.connection_pool_maxsize = max_workers
        self.host = configuration.host
        self.timeout = timeout
        self.run_deadline = deadline
        self.verbose = verbose
        self.client = client.ApiClient(configuration)
        self._watchdog = Watchdog()
        pools: Any = self.client.rest_client.pool_manager
        pools.pool_classes_by_scheme = {
            scheme: type(pool.__name__, (pool,), {"ConnectionCls": _watched(pool.ConnectionCls, self._watchdog)})
            for scheme, pool in pools.pool_classes_by_scheme.items()}
        self._lock = threading.Lock()
        self.requests = 0

    def close(self) -> None:
        self._watchdog.close()
        try:
            self.client.close()
        except Exception:
            pass

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"[live] {message}", file=sys.stderr)

    # -- the three kinds of exchange

    def get_document(self, path: str, what: str, query: list[tuple[str, Any]] | None = None,
                     accept: str = JSON_ACCEPT) -> Reply:
        """-> the reply with the JSON body (None when it is not JSON). Raises MalformedAnswer for a 2xx answer
        larger than MAX_DOCUMENT_BYTES."""
        return self._exchange("GET", path, what, query, accept, None, None, _read_document)

    def get_list(self, path: str, what: str, query: list[tuple[str, Any]], accept: str,
                 expected_kinds: tuple[str, ...], on_item: Callable[[Any, int], None]) -> Reply:
        """-> a 200 reply with a ListPage, ``on_item`` called per item as it arrives, or an error's reply.
        Raises MalformedAnswer when a 2xx answer is not such a list."""
        def consume(status: int, chunks: Iterator[bytes]) -> Any:
            if 200 <= status < 300:
                return read_list(chunks, expected_kinds, on_item)
            return _read_document(status, chunks)

        return self._exchange("GET", path, what, query, accept, None, None, consume)

    def send(self, method: str, path: str, what: str, body: bytes, content_type: str,
             query: list[tuple[str, Any]] | None = None) -> Reply:
        """A write (the one the live mode sends: the PolicyReport of ``--publish``) -> the reply, its JSON body."""
        return self._exchange(method, path, what, query, JSON_ACCEPT, body, content_type, _read_document)

    # -- one request

    def _exchange(self, method: str, path: str, what: str, query, accept: str, body: bytes | None,
                  content_type: str | None, consume: Callable[[int, Iterator[bytes]], T]) -> Reply:
        """The request, asked again while its answer says Retry-After and the wait ends before its deadline."""
        header_params = {"Accept": accept, **({"Content-Type": content_type} if content_type else {})}
        method, url, headers, _body, _post = self.client.param_serialize(
            method, path, query_params=query or [], header_params=header_params, auth_settings=["BearerToken"])
        if isinstance(headers.get("authorization"), str):
            # A token written by hand often ends in a newline, which no HTTP header may carry. Trimmed here,
            # per request: the client's refresh hooks put the token back as read before each one.
            headers["authorization"] = headers["authorization"].strip()
        deadline, by_run = self._deadline(time.monotonic(), what)
        attempt = 0
        while True:
            attempt += 1
            try:
                status, result, asked = self._attempt(method, path, url, headers, body, consume, deadline, by_run,
                                                      what)
            except _Dropped as dropped:
                if attempt == MAX_ATTEMPTS or time.monotonic() + DROPPED_RETRY_SECONDS >= deadline:
                    raise LiveError(f"{dropped.error} (asked {attempt} time{'s' if attempt > 1 else ''})") from None
                self.log(f"{what}: the connection ended before an answer, asked again in "
                         f"{DROPPED_RETRY_SECONDS:g} s (attempt {attempt + 1})")
                time.sleep(DROPPED_RETRY_SECONDS)
                continue
            wait = retry_after_seconds(asked, time.time())
            if wait is None:
                return Reply(status, result)
            if attempt == MAX_ATTEMPTS:
                return Reply(status, result, f"still {'throttled' if status == 429 else 'failing'} after "
                                             f"{MAX_ATTEMPTS} attempts")
            if time.monotonic() + wait >= deadline:
                bound = (f"the audit's --deadline of {self.run_deadline.seconds:g} s"
                         if by_run and self.run_deadline is not None
                         else f"the request's --timeout of {self.timeout:g} s")
                return Reply(status, result, f"asked to retry in {math.ceil(wait)} s, past {bound}")
            self.log(f"{what}: {status}, asked again in {wait:.3g} s as the API server said (attempt {attempt + 1})")
            time.sleep(wait)

    def _attempt(self, method: str, path: str, url: str, headers: dict, body: bytes | None,
                 consume: Callable[[int, Iterator[bytes]], T], deadline: float, by_run: bool,
                 what: str) -> tuple[int, T, str | None]:
        """One HTTP request -> (status, what ``consume`` made of the body, the Retry-After of a 429 or 5xx)."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        started = time.monotonic()
        budget = max(deadline - started, 0.001)
        with self._lock:
            self.requests += 1
        watch = self._watchdog.watch(deadline)
        answer = None
        try:
            try:
                try:
                    response = self.client.call_api(method, url, header_params=headers, body=body,
                                                    _request_timeout=(budget, budget))
                except ValueError:  # a header http.client refuses; its message would quote the token
                    raise LiveError(f"cannot send a request to the API server at {self.host}: a request header "
                                    "is malformed (check the credentials)") from None
                answer = _Body(response.response)
                status = response.status
                asked = response.getheader("Retry-After") if status == 429 or status >= 500 else None
                result = consume(status, iter(answer))
            finally:
                fired = self._watchdog.done(watch)
                if answer is not None:
                    answer.release()
        except (MalformedAnswer, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError,
                ApiException) as exc:
            if fired:
                raise self._too_slow(by_run, what) from None
            if isinstance(exc, MalformedAnswer):
                raise
            if answer is None and method == "GET" and _ended_before_answer(exc):
                raise _Dropped(self._transport_error(exc, what)) from None
            raise self._transport_error(exc, what) from None
        self.log(f"{method} {path} -> {status} ({time.monotonic() - started:.2f}s)")
        return status, result, asked

    def _deadline(self, now: float, what: str) -> tuple[float, bool]:
        """(this request's deadline, whether it is the run's)."""
        deadline = now + self.timeout
        if self.run_deadline is not None and self.run_deadline.at <= deadline:
            if self.run_deadline.at <= now:
                raise self._too_slow(True, what)
            return self.run_deadline.at, True
        return deadline, False

    def _too_slow(self, by_run: bool, what: str) -> LiveError:
        if by_run and self.run_deadline is not None:
            return LiveError(f"the audit did not finish within its deadline of {self.run_deadline.seconds:g} s "
                             f"(--deadline), {what}")
        return LiveError(f"the API server did not answer within {self.timeout:g} s ({self.host}, {what}; "
                         "--timeout bounds each request, its answer included)")

    def _transport_error(self, exc: BaseException, what: str) -> LiveError:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        if isinstance(exc, urllib3.exceptions.MaxRetryError):
            exc = exc.reason or exc
        if isinstance(exc, ApiException):  # status 0: the client turns urllib3's SSLError into this
            kind, _, detail = str(exc.reason).partition("\n")
            if kind == "SSLError":
                return LiveError(f"TLS error talking to the API server at {self.host}: {one_line(detail)}")
            return LiveError(f"cannot talk to the API server at {self.host}: {one_line(exc.reason)}")
        if isinstance(exc, urllib3.exceptions.NameResolutionError):
            return LiveError(f"cannot reach the API server at {self.host}: name resolution failed")
        if isinstance(exc, urllib3.exceptions.NewConnectionError):
            detail = "connection refused" if "refused" in str(exc).lower() else one_line(exc)
            return LiveError(f"cannot reach the API server at {self.host}: {detail}")
        if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
            return LiveError(f"the API server did not answer within {self.timeout:g} s ({self.host}, {what})")
        if isinstance(exc, urllib3.exceptions.SSLError):
            return LiveError(f"TLS error talking to the API server at {self.host}: {one_line(exc)}")
        if isinstance(exc, urllib3.exceptions.ProtocolError):
            detail = str(exc.args[0]) if exc.args else str(exc)
            cause = _protocol_cause(exc)
            if cause is not None and str(cause) and str(cause) not in detail and repr(cause) not in detail:
                detail = f"{detail.rstrip('.')} ({cause})"  # ("Connection aborted.", RemoteDisconnected(...))
            return LiveError(f"the connection to the API server at {self.host} broke while {what}: "
                             f"{one_line(detail)}")
        return LiveError(f"cannot talk to the API server at {self.host}: {one_line(exc)}")


def _protocol_cause(exc: BaseException) -> BaseException | None:
    """The error urllib3's ProtocolError wraps (``("Connection aborted.", RemoteDisconnected(...))``)."""
    return exc.args[-1] if len(exc.args) > 1 and isinstance(exc.args[-1], BaseException) else None


def _ended_before_answer(exc: BaseException) -> bool:
    """Whether the connection was closed or reset before the answer's status line (client-go's
    IsConnectionReset and IsProbableEOF), not refused, timed out or broken by TLS."""
    import urllib3

    cause = _protocol_cause(exc) if isinstance(exc, urllib3.exceptions.ProtocolError) else exc
    return isinstance(cause, (http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError,
                              BrokenPipeError))


class _Body:
    """A response's body, chunk by chunk; whether it was read to its end."""

    def __init__(self, response: Any):
        self._response = response
        self.complete = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.stream(READ_CHUNK_BYTES)
        self.complete = True

    def release(self) -> None:
        if not self.complete:
            self._response.close()  # data left unread: the connection cannot serve another request
        self._response.release_conn()


def _read_document(status: int, chunks: Iterator[bytes]) -> Any:
    """A whole JSON answer (None when it is not JSON; an error answer is read only up to MAX_ERROR_BYTES)."""
    limit = MAX_DOCUMENT_BYTES if 200 <= status < 300 else MAX_ERROR_BYTES
    parts, size = [], 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            if 200 <= status < 300:
                raise MalformedAnswer(f"an answer larger than {MAX_DOCUMENT_BYTES >> 20} MiB")
            return None  # the reason is the status; the rest of the body is not read
    raw = b"".join(parts)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None  # never echo a body: it might hold secret data

