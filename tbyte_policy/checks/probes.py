"""probes: readiness and liveness probes, and probes aimed at ports the container does not declare."""

from __future__ import annotations

from collections.abc import Iterator

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.model import ContainerView, Problem, mapping

PROBE_HANDLERS = ("httpGet", "tcpSocket", "grpc")
PROBE_NAMES = ("readinessProbe", "livenessProbe", "startupProbe")


@check("probe-missing", "container", probe="readinessProbe")
def probe_missing(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    probe = ctx.params["probe"]
    if not isinstance(container.raw.get(probe), dict):
        yield Problem(f"container {container.name} has no {probe}", f"{container.pointer}", container.name)


@check("probe-port-undeclared", "container")
def probe_port_undeclared(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    for probe_name in PROBE_NAMES:
        probe = mapping(container.raw.get(probe_name))
        for handler in PROBE_HANDLERS:
            port = mapping(probe.get(handler)).get("port")
            declared = [entry for entry in container.ports if port in (entry.get("name"), entry.get("containerPort"))]
            pointer = f"{container.pointer}/{probe_name}/{handler}/port"
            if isinstance(port, str) and not port.isdigit() and not declared:
                yield Problem(f"{probe_name} of container {container.name} targets port {port!r}, "
                              f"which the container does not declare", pointer, container.name)
            elif isinstance(port, int) and container.ports and not declared:
                # Declaring ports is optional, but a container that lists its ports and not this one is wrong.
                yield Problem(f"{probe_name} of container {container.name} targets port {port}, which is not "
                              f"among the ports the container declares", pointer, container.name)
            elif declared and all(entry.get("protocol", "TCP") == "UDP" for entry in declared):
                yield Problem(f"{probe_name} of container {container.name} probes port {port!r} over TCP, "
                              f"but the container declares it as UDP", pointer, container.name)


@check("probes-identical", "container")
def probes_identical(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    readiness, liveness = container.raw.get("readinessProbe"), container.raw.get("livenessProbe")
    handler = _handler(readiness)
    if handler is not None and handler == _handler(liveness):
        yield Problem(f"container {container.name} uses the same check for its readiness and liveness probes",
                      f"{container.pointer}/livenessProbe", container.name)


def _handler(probe: object) -> object:
    """What a probe runs, without its timings: two probes with the same handler test the same thing."""
    probe = mapping(probe)
    return next(((key, probe[key]) for key in (*PROBE_HANDLERS, "exec") if key in probe), None)
