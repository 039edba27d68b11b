"""Check functions, grouped by family in the modules of this package.

A check is registered with ``@check(name, target, **param_defaults)``; rules in ``rules/*.yaml`` name it.
Targets: ``container`` (gets a ContainerView), ``pod`` (a PodView), ``object`` (a Resource of the rule's
kinds), ``namespace`` (a namespace name, once per namespace of the run), ``rendered`` (a Resource of the
rendered manifests a live run compares with, ``live --against``). Every check also gets a ``CheckContext``
with the params, the inventory, the mode and, in a drift run, the rendered manifests; it yields ``Problem``s.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from tbyte_policy.drift import RenderedManifests
    from tbyte_policy.inventory import Inventory
    from tbyte_policy.model import Problem

TARGETS = ("container", "pod", "object", "namespace", "rendered")
FAMILY_MODULES = ("probes", "resources", "security_context", "images", "pdb", "hpa", "network_policy",
                  "secrets", "replicas", "rollout", "services", "ingress", "schema", "runtime", "drift")


class CheckContext(NamedTuple):
    params: dict[str, Any]
    inventory: Inventory
    mode: str = "scan"
    rendered: RenderedManifests | None = None  # what a drift run compares the (live) inventory with


class Check(NamedTuple):
    name: str
    target: str
    function: Callable[[Any, CheckContext], Iterable[Problem]]
    defaults: dict[str, Any]


class RuleEvaluationError(Exception):
    """A rule that could not judge one object (a CEL expression that fails on it): each message becomes an
    input error on the object, and the run goes on."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


CHECKS: dict[str, Check] = {}


def check(name: str, target: str, **defaults: Any):
    if target not in TARGETS:
        raise ValueError(f"unknown check target {target!r}")

    def register(function):
        if name in CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        CHECKS[name] = Check(name, target, function, defaults)
        return function

    return register


def load_check_modules() -> None:
    for module in FAMILY_MODULES:
        importlib.import_module(f"tbyte_policy.checks.{module}")
