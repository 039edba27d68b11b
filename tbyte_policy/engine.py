"""The engine: walks every rule to what it targets and turns the problems checks report into findings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tbyte_policy.catalogue import Rule, active_rules
from tbyte_policy.checks import CheckContext, RuleEvaluationError
from tbyte_policy.findings import Finding, Location, ReportError, ResourceId
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import ObjectRef, Problem, Resource, pod_view

if TYPE_CHECKING:
    from tbyte_policy.drift import RenderedManifests


class Engine:
    def __init__(self, rules: Iterable[Rule], mode: str = "scan", *, drift: bool = False):
        """``drift``: the run has rendered manifests to compare with (``live --against``)."""
        self.mode = mode
        self.rules = active_rules(list(rules), mode, drift=drift)
        self._by_target_kind: dict[tuple[str, str], list[Rule]] = defaultdict(list)
        for rule in self.rules:
            for kind in rule.kinds:
                self._by_target_kind[(rule.target, kind)].append(rule)

    def run(self, inventory: Inventory, rendered: RenderedManifests | None = None,
            ) -> tuple[list[Finding], list[ReportError], list[ReportError]]:
        """Findings, input errors met while checking, and internal errors (a check's own bug); ``rendered``:
        the manifests a drift run compares the inventory with, whose objects the ``rendered`` rules walk."""
        findings: list[Finding] = []
        failures: list[ReportError] = []
        nested: list[ReportError] = []
        contexts = {rule.id: CheckContext(rule.params, inventory, self.mode, rendered) for rule in self.rules}

        def apply(rule: Rule, subject, resource: Resource | None) -> None:
            try:
                for problem in rule.check.function(subject, contexts[rule.id]):
                    findings.append(_finding(rule, problem, resource))
            except RuleEvaluationError as exc:
                nested.extend(_error_on(resource, subject, inventory, f"rule {rule.id} ({rule.name}): {message}")
                              for message in exc.messages)
            except RecursionError:
                nested.append(_error_on(resource, subject, inventory,
                                        f"document is nested too deeply for rule {rule.id} to read"))
            except Exception as exc:  # a check's bug must not take the run down; it is reported (exit 3)
                failures.append(_error_on(resource, subject, inventory,
                                          f"internal error in rule {rule.id} ({rule.name}): {type(exc).__name__}"))

        for resource in inventory.resources:
            if resource.managed_by_workload:
                # Judged through the controller that owns it, not once more on its own.
                continue
            for rule in self._by_target_kind.get(("object", resource.kind), ()):
                apply(rule, resource, resource)
            pod_rules = self._by_target_kind.get(("pod", resource.kind), ())
            container_rules = self._by_target_kind.get(("container", resource.kind), ())
            if not pod_rules and not container_rules:
                continue
            pods = pod_view(resource)
            if pods is None:
                continue
            for rule in pod_rules:
                apply(rule, pods, resource)
            if container_rules:
                containers = list(pods.containers())
                for rule in container_rules:
                    for container in containers:
                        if container.role in rule.container_roles:
                            apply(rule, container, resource)
        for namespace in inventory.namespaces():
            for rule in self._by_target_kind.get(("namespace", "Namespace"), ()):
                apply(rule, namespace, None)
        for manifest in rendered.inventory.resources if rendered is not None else ():
            for rule in self._by_target_kind.get(("rendered", manifest.kind), ()):
                apply(rule, manifest, manifest)
        findings.sort(key=Finding.sort_key)
        return findings, nested, failures


def _error_on(resource: Resource | None, subject, inventory: Inventory, message: str) -> ReportError:
    """An error about the checked object: the resource, or for a namespace check the Namespace if the run holds it."""
    where = resource or inventory.get("Namespace", None, subject)
    if where is None:
        return ReportError(None, None, f"{subject}: {message}")
    return ReportError(where.source.path, where.source.line, f"{where.ref}: {message}")


def _finding(rule: Rule, problem: Problem, checked: Resource | None) -> Finding:
    subject = problem.resource or checked
    if isinstance(subject, Resource):
        line, column = subject.position(problem.pointer)
        source = subject.source
        rendered = source.origin.rendered(subject, problem.pointer) if source.origin is not None else None
        location = Location(source.path, line, column, source.pointer_prefix + problem.pointer, source.helm_source,
                            rendered)
        resource = ResourceId(subject.api_version, subject.kind, subject.name, subject.namespace)
    elif isinstance(subject, ObjectRef):
        location = Location(subject.path, subject.line, None, problem.pointer)
        resource = ResourceId(None, subject.kind, subject.name, subject.namespace)
    else:
        raise TypeError(f"rule {rule.id} reported a problem without a resource")
    return Finding(rule_id=rule.id, rule_name=rule.name, family=rule.family, severity=rule.severity,
                   message=problem.message, resource=resource, container=problem.container, location=location,
                   related=list(problem.related), remediation=rule.remediation)

