"""probes: readiness and liveness probes of serving containers, probes aimed at named ports the container
does not declare, and liveness probes that give up as soon as readiness does."""

from __future__ import annotations

from collections.abc import Iterator

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.serving import serving_container
from tbyte_policy.model import ContainerView, Problem, integer, is_number_text, mapping

PROBE_HANDLERS = ("httpGet", "tcpSocket", "grpc")
PROBE_NAMES = ("readinessProbe", "livenessProbe", "startupProbe")


# The API server's defaults for a probe's timing (SetDefaults_Probe).
DEFAULT_PERIOD_SECONDS = 10
DEFAULT_FAILURE_THRESHOLD = 3


@check("probe-missing", "container", probe="readinessProbe")
def probe_missing(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    probe = ctx.params["probe"]
    if isinstance(container.raw.get(probe), dict) or not serving_container(container, ctx.inventory):
        return
    yield Problem(f"container {container.name} has no {probe}", f"{container.pointer}", container.name)


@check("probe-port-undeclared", "container")
def probe_port_undeclared(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    for probe_name in PROBE_NAMES:
        probe = mapping(container.raw.get(probe_name))
        for handler in PROBE_HANDLERS:
            port = mapping(probe.get(handler)).get("port")
            declared = [entry for entry in container.ports if port in (entry.get("name"), entry.get("containerPort"))]
            pointer = f"{container.pointer}/{probe_name}/{handler}/port"
            # A port number need not be declared: the kubelet probes it whatever the container lists.
            if not isinstance(port, str) or is_number_text(port):
                continue
            if not declared:
                yield Problem(f"{probe_name} of container {container.name} targets port {port!r}, "
                              f"which the container does not declare", pointer, container.name)
            elif all(entry.get("protocol", "TCP") == "UDP" for entry in declared):
                yield Problem(f"{probe_name} of container {container.name} probes port {port!r} over TCP, "
                              f"but the container declares it as UDP", pointer, container.name)


@check("probes-identical", "container")
def probes_identical(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    readiness, liveness = container.raw.get("readinessProbe"), container.raw.get("livenessProbe")
    handler = _handler(readiness)
    if handler is None or handler != _handler(liveness):
        return
    ready_failures, ready_window = _tolerance(readiness)
    live_failures, live_window = _tolerance(liveness)
    if live_failures > ready_failures or live_window > ready_window:
        return  # a slow pod leaves the endpoints before the kubelet restarts it: the two probes do differ
    yield Problem(f"container {container.name} uses the same check for its readiness and liveness probes, and "
                  f"liveness gives up no later than readiness (failureThreshold {live_failures} every "
                  f"{live_window // max(live_failures, 1)}s against {ready_failures} every "
                  f"{ready_window // max(ready_failures, 1)}s): a pod too busy to answer is restarted instead of "
                  f"only taken out of the endpoints", f"{container.pointer}/livenessProbe", container.name)


def _tolerance(probe: object) -> tuple[int, int]:
    """(failureThreshold, failureThreshold x periodSeconds): how many failures, and how many seconds of
    them, the probe takes before it acts. API defaults for fields left out (or not positive)."""
    probe = mapping(probe)
    failures, period = integer(probe.get("failureThreshold")), integer(probe.get("periodSeconds"))
    failures = failures if failures and failures > 0 else DEFAULT_FAILURE_THRESHOLD
    period = period if period and period > 0 else DEFAULT_PERIOD_SECONDS
    return failures, failures * period


def _handler(probe: object) -> object:
    """What a probe runs, without its timings: two probes with the same handler test the same thing."""
    probe = mapping(probe)
    return next(((key, probe[key]) for key in (*PROBE_HANDLERS, "exec") if key in probe), None)
