"""resources: requests, limits and quantities that cannot be what was meant."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.model import ContainerView, Problem, mapping
from tbyte_policy.quantity import EXACT, QuantityError, is_beyond_int64, parse_quantity, try_quantity

_MEBIBYTE = Decimal(2**20)


@check("resource-field-missing", "container", section="requests", resource="cpu")
def resource_field_missing(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    section, resource = ctx.params["section"], ctx.params["resource"]
    values = container.resources.get(section)
    if section == "requests" and _set(mapping(container.resources.get("limits")), resource):
        return  # the API server defaults a missing request to the limit (SetDefaults_Pod)
    if not isinstance(values, dict) or not _set(values, resource):
        singular = {"requests": "request", "limits": "limit"}[section]
        pointer = f"{container.pointer}/resources" + (f"/{section}" if isinstance(values, dict) else "")
        yield Problem(f"container {container.name} sets no {resource} {singular}", pointer, container.name)


def _set(values: dict, resource: str) -> bool:
    return values.get(resource) not in (None, "")


def effective_requests(container: ContainerView) -> dict:
    """The container's requests as the API server stores them: a resource with a limit and no request
    requests its limit."""
    return {**mapping(container.resources.get("limits")), **mapping(container.resources.get("requests"))}


@check("request-above-limit", "container")
def request_above_limit(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    requests, limits = mapping(container.resources.get("requests")), mapping(container.resources.get("limits"))
    for resource in sorted(set(requests) & set(limits), key=str):
        request, limit = try_quantity(requests[resource]), try_quantity(limits[resource])
        if request is not None and limit is not None and request > limit:
            yield Problem(f"container {container.name} requests more {resource} ({requests[resource]}) than its "
                          f"limit ({limits[resource]}); the API server rejects this",
                          f"{container.pointer}/resources/requests/{resource}", container.name)


@check("requests-equal-limits", "container", resources=["cpu", "memory"])
def requests_equal_limits(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    requests, limits = effective_requests(container), mapping(container.resources.get("limits"))
    for resource in ctx.params["resources"]:
        request, limit = try_quantity(requests.get(resource)), try_quantity(limits.get(resource))
        if limit is None or request != limit:
            yield Problem(f"container {container.name}: {resource} request and limit differ (or one is missing), "
                          f"so the pod is not in the Guaranteed QoS class",
                          f"{container.pointer}/resources", container.name)


@check("quantity-invalid", "container")
def quantity_invalid(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    for section in ("requests", "limits"):
        for resource, value in mapping(container.resources.get(section)).items():
            problem = _quantity_problem(section, resource, value)
            if problem:
                yield Problem(f"container {container.name}: {problem}",
                              f"{container.pointer}/resources/{section}/{resource}", container.name)


def _quantity_problem(section: str, resource: str, value: object) -> str | None:
    try:
        quantity = parse_quantity(value)
    except QuantityError:
        return f"{section}.{resource} {value!r} is not a Kubernetes quantity"
    if quantity < 0:
        return f"{section}.{resource} {value!r} is negative; the API server rejects it (must be greater than or " \
               f"equal to 0)"
    if is_beyond_int64(quantity):
        return f"{section}.{resource} {value!r} is 2^63-1 or more: the API server caps a binary quantity there " \
               f"and keeps a larger decimal one, which the scheduler's and kubelet's 64-bit arithmetic overflows"
    if resource == "memory" and quantity < _MEBIBYTE:
        hint = f" ({value!r} means {quantity.normalize(EXACT):f} bytes; did you mean {str(value)[:-1]}Mi?)" \
            if isinstance(value, str) and value.endswith("m") else ""
        return f"memory {section[:-1]} {value!r} is under 1Mi{hint}"
    return None
