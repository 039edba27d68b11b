"""A throttled or failing API server that says when to come back (Retry-After): asked again as it says, within
the request's --timeout and the audit's --deadline, never waited for past them, at most MAX_ATTEMPTS times.
A GET whose connection ends before any answer is asked again a second later, as client-go does; a write is
not."""

from __future__ import annotations

import json
import threading

import pytest
from typer.testing import CliRunner

from tbyte_policy.cli import app
from tbyte_policy.sources.cluster_transport import DROPPED_RETRY_SECONDS, MAX_ATTEMPTS

from .cluster_fixtures import NS, cluster
from .misbehaviour import RETRY_AFTER_INVALID, RETRY_AFTER_VALID, Dropped, ServerError, TooManyRequests

HEALTHY = cluster("production").objects
THROTTLED = "HTTP 429 TooManyRequests{note}: Too many requests, please try again later."
BOUND_SECONDS = 60  # far past any --timeout here: a run this long waited for what it was told not to


def live(server, *args: str, timeout: str = "5"):
    """The live run, failed rather than waited for when it does not end."""
    outcome: list = []
    argv = ["live", "--kubeconfig", server.kubeconfig_path, "--namespace", NS, "--timeout", timeout,
            "--format", "json", *args]
    runner = threading.Thread(target=lambda: outcome.append(CliRunner().invoke(app, argv)), daemon=True)
    runner.start()
    runner.join(BOUND_SECONDS)
    assert not runner.is_alive(), f"the live run did not end within {BOUND_SECONDS} s"
    (result,) = outcome
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("retry_after", RETRY_AFTER_VALID)
def test_a_429_with_retry_after_is_asked_again_and_read(k8s_server, retry_after):
    server = k8s_server(HEALTHY, misbehave={"pods": TooManyRequests(nth=1, retry_after=retry_after)})
    result = live(server)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["resources"] == len(HEALTHY)
    assert [type(r.misbehaviour) for r in server.requests_for("pods")] == [TooManyRequests, type(None)]


def test_a_5xx_with_retry_after_is_asked_again_and_read(k8s_server):
    server = k8s_server(HEALTHY, misbehave={"deployments": ServerError(nth=1, retry_after="0", status=503)})
    result = live(server)
    assert result.exit_code == 0, result.output
    assert len(server.requests_for("deployments")) == 2


@pytest.mark.parametrize(("retry_after", "seconds"), [("999999", "999999"), ("date-far", "31536000")])
def test_a_retry_after_past_the_timeout_is_not_waited_for(k8s_server, retry_after, seconds):
    server = k8s_server(HEALTHY, misbehave={"pods": TooManyRequests(retry_after=retry_after)})
    result = live(server)
    assert result.exit_code == 2, result.output
    note = f" (asked to retry in {seconds} s, past the request's --timeout of 5 s)"
    assert json.loads(result.stdout)["unreadable_kinds"] == {"Pod": THROTTLED.format(note=note)}
    assert len(server.requests_for("pods")) == 1


def test_a_retry_after_past_the_deadline_is_not_waited_for(k8s_server):
    server = k8s_server(HEALTHY, misbehave={"pods": ServerError(retry_after="4", status=503)})
    result = live(server, "--deadline", "2")
    assert result.exit_code == 2, result.output
    assert result.stderr == ("tbyte-policy: the API server failed (503 ServiceUnavailable) listing Pod (asked to "
                             "retry in 4 s, past the audit's --deadline of 2 s): etcdserver: request timed out\n")
    assert len(server.requests_for("pods")) == 1


@pytest.mark.parametrize("retry_after", [*RETRY_AFTER_INVALID, None])
def test_a_retry_after_that_is_no_delay_is_not_retried(k8s_server, retry_after):
    """RFC 9110: delay-seconds is digits, else an HTTP-date; "-1", "1.5", "soon" are neither."""
    server = k8s_server(HEALTHY, misbehave={"pods": TooManyRequests(retry_after=retry_after)})
    result = live(server)
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["unreadable_kinds"] == {"Pod": THROTTLED.format(note="")}
    assert len(server.requests_for("pods")) == 1


def test_a_server_that_always_says_retry_is_asked_max_attempts_times(k8s_server):
    server = k8s_server(HEALTHY, misbehave={"pods": TooManyRequests(retry_after="0")})
    result = live(server)
    assert result.exit_code == 2, result.output
    note = f" (still throttled after {MAX_ATTEMPTS} attempts)"
    assert json.loads(result.stdout)["unreadable_kinds"] == {"Pod": THROTTLED.format(note=note)}
    assert len(server.requests_for("pods")) == MAX_ATTEMPTS


def test_the_publish_write_is_asked_again_when_throttled(k8s_server):
    server = k8s_server(HEALTHY, misbehave={"policyreports": TooManyRequests(nth=2, retry_after="0")})
    result = live(server, "--publish")
    assert result.exit_code == 0, result.output
    assert [(r.method, type(r.misbehaviour)) for r in server.requests_for("policyreports")] == [
        ("GET", type(None)), ("PATCH", TooManyRequests), ("PATCH", type(None))]
    assert server.stored("policyreports", NS, "tbyte-policy") is not None


DROPPED = {False: "Remote end closed connection without response", True: "[Errno 104] Connection reset by peer"}


@pytest.mark.parametrize("reset", [False, True])
def test_a_get_whose_connection_ends_before_an_answer_is_asked_again(k8s_server, reset):
    """A load balancer that drops the idle connection the client's pool reuses, an API server restarting."""
    server = k8s_server(HEALTHY, misbehave={"pods": Dropped(nth=1, reset=reset),
                                            "namespaces": Dropped(nth=1, reset=reset)})
    result = live(server)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["resources"] == len(HEALTHY)
    for resource in ("pods", "namespaces"):
        assert [type(r.misbehaviour) for r in server.requests_for(resource)] == [Dropped, type(None)]


@pytest.mark.parametrize("reset", [False, True])
def test_a_connection_that_always_ends_before_an_answer_is_given_up_within_the_timeout(k8s_server, reset):
    server = k8s_server(HEALTHY, misbehave={"pods": Dropped(reset=reset)})
    result = live(server, timeout="3")
    asked = len(server.requests_for("pods"))
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"tbyte-policy: the connection to the API server at {server.url} broke while listing "
                             f"Pod: Connection aborted ({DROPPED[reset]}) (asked {asked} times)\n")
    # a second apart, within --timeout 3: the third attempt is the last one a second's wait leaves room for
    assert 2 <= asked <= 3 and DROPPED_RETRY_SECONDS == 1


def test_a_connection_that_always_ends_before_an_answer_is_asked_max_attempts_times(k8s_server):
    server = k8s_server(HEALTHY, misbehave={"deployments": Dropped()})
    result = live(server, timeout="30")
    assert result.exit_code == 2, result.output
    assert result.stderr.endswith(f"broke while listing Deployment: Connection aborted ({DROPPED[False]}) "
                                  f"(asked {MAX_ATTEMPTS} times)\n"), result.stderr
    assert len(server.requests_for("deployments")) == MAX_ATTEMPTS


def test_a_write_whose_connection_ends_before_an_answer_is_not_sent_again(k8s_server):
    """The apply may have been done: client-go never repeats a write, and neither does --publish."""
    server = k8s_server(HEALTHY, misbehave={"policyreports": Dropped(nth=2)})
    result = live(server, "--publish")
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["summary"]["resources"] == len(HEALTHY)  # the audit's report is written
    assert result.stderr == (f"tbyte-policy: the connection to the API server at {server.url} broke while applying "
                             f"PolicyReport {NS}/tbyte-policy: Connection aborted ({DROPPED[False]})\n")
    assert [(r.method, type(r.misbehaviour)) for r in server.requests_for("policyreports")] == [
        ("GET", type(None)), ("PATCH", Dropped)]
