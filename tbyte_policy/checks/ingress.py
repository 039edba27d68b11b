"""ingress: TLS on every host, and backends that name a Service, or a Service port, that does not exist."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.workload_ports import port_name, port_number
from tbyte_policy.model import ObjectRef, Problem, Resource, integer, mapping, sequence

# Cloud load balancers that terminate TLS with a certificate named here, not in spec.tls.
LOAD_BALANCER_CERTIFICATE_ANNOTATIONS = ("alb.ingress.kubernetes.io/certificate-arn",
                                         "networking.gke.io/managed-certificates")
# The AWS Load Balancer Controller reads a backend with this port name as an action defined in the annotation
# alb.ingress.kubernetes.io/actions.<service name>, not as a Service.
ALB_ACTION_PORT = "use-annotation"


class Backend(NamedTuple):
    service: str
    number: int | None
    name: str | None
    name_pointer: str
    port_pointer: str


def backends(ingress: Resource) -> Iterator[Backend]:
    """Service backends of the default backend and of every path; resource backends are not Services."""
    spec = ingress.spec
    # spec.backend and serviceName/servicePort are the extensions/v1beta1 and networking.k8s.io/v1beta1 forms.
    candidates = [("/spec/defaultBackend", spec.get("defaultBackend")), ("/spec/backend", spec.get("backend"))]
    for index, rule in enumerate(sequence(spec.get("rules"))):
        for number, path in enumerate(sequence(mapping(mapping(mapping(rule).get("http"))).get("paths"))):
            candidates.append((f"/spec/rules/{index}/http/paths/{number}/backend", mapping(path).get("backend")))
    for pointer, candidate in candidates:
        backend = mapping(candidate)
        service = backend.get("service")
        if isinstance(service, dict) and isinstance(service.get("name"), str):
            port = mapping(service.get("port"))
            if port.get("name") == ALB_ACTION_PORT:
                continue
            yield Backend(service["name"], integer(port.get("number")), port_name(port.get("name")),
                          f"{pointer}/service/name", f"{pointer}/service/port")
        elif isinstance(backend.get("serviceName"), str) and backend.get("servicePort") != ALB_ACTION_PORT:
            legacy_port = backend.get("servicePort")
            yield Backend(backend["serviceName"], port_number(legacy_port), port_name(legacy_port),
                          f"{pointer}/serviceName", f"{pointer}/servicePort")


def tls_hosts_cover(host: str, tls_hosts: list[str]) -> bool:
    # A wildcard certificate name covers exactly one label: *.example.com covers a.example.com only.
    return host in tls_hosts or any(entry.startswith("*.") and host.partition(".")[2] == entry[2:]
                                    for entry in tls_hosts)


@check("ingress-tls-missing", "object")
def ingress_tls_missing(ingress: Resource, ctx: CheckContext) -> Iterator[Problem]:
    tls = [mapping(entry) for entry in sequence(ingress.spec.get("tls"))]
    if not tls:
        if not any(annotation in ingress.annotations for annotation in LOAD_BALANCER_CERTIFICATE_ANNOTATIONS):
            yield Problem(f"Ingress {ingress.name} has no spec.tls: it serves plain HTTP",
                          "/spec/tls" if "tls" in ingress.spec else "/spec")
        return
    # A tls entry without hosts takes the controller's default certificate for every host.
    if any(not sequence(entry.get("hosts")) for entry in tls):
        return
    tls_hosts = [host for entry in tls for host in sequence(entry.get("hosts")) if isinstance(host, str)]
    for index, rule in enumerate(sequence(ingress.spec.get("rules"))):
        host = mapping(rule).get("host")
        if isinstance(host, str) and host and not tls_hosts_cover(host, tls_hosts):
            yield Problem(f"host {host} of Ingress {ingress.name} is in no spec.tls hosts entry: it is served "
                          f"without its certificate", f"/spec/rules/{index}/host")


@check("ingress-backend-service-missing", "object")
def ingress_backend_service_missing(ingress: Resource, ctx: CheckContext) -> Iterator[Problem]:
    # A scan without any Service (an Ingress on its own, or a live run that could not read Services) holds
    # nothing to resolve backends against.
    if not ctx.inventory.kind("Service"):
        return
    for backend in backends(ingress):
        if ctx.inventory.get("Service", ingress.namespace, backend.service) is None:
            yield Problem(f"backend Service {backend.service} of Ingress {ingress.name} does not exist in namespace "
                          f"{ingress.namespace}", backend.name_pointer,
                          related=[ObjectRef("Service", backend.service, ingress.namespace)])


@check("ingress-backend-port-missing", "object")
def ingress_backend_port_missing(ingress: Resource, ctx: CheckContext) -> Iterator[Problem]:
    for backend in backends(ingress):
        service = ctx.inventory.get("Service", ingress.namespace, backend.service)
        # An ExternalName Service is a DNS alias; its ports are informational.
        if service is None or service.spec.get("type") == "ExternalName":
            continue
        ports = [entry for entry in sequence(service.spec.get("ports")) if isinstance(entry, dict)]
        if backend.number is not None and backend.number not in [integer(entry.get("port")) for entry in ports]:
            wanted = f"port {backend.number}"
        elif backend.name is not None and backend.name not in [entry.get("name") for entry in ports]:
            wanted = f"port named {backend.name!r}"
        else:
            continue
        offered = ", ".join(f"{entry.get('port')}" + (f" ({entry['name']})" if entry.get("name") else "")
                            for entry in ports) or "none"
        yield Problem(f"Ingress {ingress.name} sends traffic to {wanted} of Service {service.name}, which has no "
                      f"such port (its ports: {offered})", backend.port_pointer, related=[ObjectRef.of(service)])
