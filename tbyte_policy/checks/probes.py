"""probes: readiness and liveness probes, and probes aimed at ports the container does not declare."""

from __future__ import annotations

from typing import Iterator

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.model import ContainerView, Problem, mapping

PROBE_HANDLERS = ("httpGet", "tcpSocket", "grpc")


@check("probe-missing", "container", probe="readinessProbe")
def probe_missing(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    probe = ctx.params["probe"]
    if not isinstance(container.raw.get(probe), dict):
        yield Problem(f"container {container.name} has no {probe}", f"{container.pointer}", container.name)


@check("probe-port-undeclared", "container")
def probe_port_undeclared(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = mapping(container.raw.get(probe_name))
        for handler in PROBE_HANDLERS:
            port = mapping(probe.get(handler)).get("port")
            if isinstance(port, str) and not port.isdigit() and not container.declares_port(port):
                yield Problem(f"{probe_name} of container {container.name} targets port {port!r}, "
                              f"which the container does not declare",
                              f"{container.pointer}/{probe_name}/{handler}/port", container.name)
