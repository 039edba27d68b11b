"""The engine: walks every rule to what it targets and turns the problems checks report into findings."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from tbyte_policy.catalogue import Rule
from tbyte_policy.checks import CheckContext
from tbyte_policy.findings import Finding, Location, ReportError, ResourceId
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import ObjectRef, Problem, Resource, pod_view


class Engine:
    def __init__(self, rules: Iterable[Rule], mode: str = "scan"):
        self.mode = mode
        self.rules = [rule for rule in rules if mode in rule.modes]
        self._by_target_kind: dict[tuple[str, str], list[Rule]] = defaultdict(list)
        for rule in self.rules:
            for kind in rule.kinds:
                self._by_target_kind[(rule.target, kind)].append(rule)

    def run(self, inventory: Inventory) -> tuple[list[Finding], list[ReportError], list[ReportError]]:
        """Findings, input errors met while checking, and internal errors (a check's own bug)."""
        findings: list[Finding] = []
        failures: list[ReportError] = []
        nested: list[ReportError] = []
        contexts = {rule.id: CheckContext(rule.params, inventory, self.mode) for rule in self.rules}

        def apply(rule: Rule, subject, resource: Resource | None) -> None:
            try:
                for problem in rule.check.function(subject, contexts[rule.id]):
                    findings.append(_finding(rule, problem, resource))
            except RecursionError:
                where = resource or inventory.get("Namespace", None, subject)
                nested.append(ReportError(where.source.path if where else None, where.source.line if where else None,
                                          f"{where.ref if where else subject}: document is nested too deeply for "
                                          f"rule {rule.id} to read"))
            except Exception as exc:  # a check's bug must not take the run down; it is reported (exit 3)
                where = resource.ref if resource is not None else str(subject)
                failures.append(ReportError(resource.source.path if resource else None,
                                            resource.source.line if resource else None,
                                            f"internal error in rule {rule.id} ({rule.name}) on {where}: "
                                            f"{type(exc).__name__}"))

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
        findings.sort(key=Finding.sort_key)
        return findings, nested, failures


def _finding(rule: Rule, problem: Problem, checked: Resource | None) -> Finding:
    subject = problem.resource or checked
    if isinstance(subject, Resource):
        line, column = subject.position(problem.pointer)
        source = subject.source
        location = Location(source.path, line, column, source.pointer_prefix + problem.pointer, source.helm_source)
        resource = ResourceId(subject.api_version, subject.kind, subject.name, subject.namespace)
    elif isinstance(subject, ObjectRef):
        location = Location(subject.path, subject.line, None, problem.pointer)
        resource = ResourceId(None, subject.kind, subject.name, subject.namespace)
    else:
        raise TypeError(f"rule {rule.id} reported a problem without a resource")
    return Finding(rule_id=rule.id, rule_name=rule.name, family=rule.family, severity=rule.severity,
                   message=problem.message, resource=resource, container=problem.container, location=location,
                   related=list(problem.related), remediation=rule.remediation)

