"""Built-in rules' CEL twins (the `cel:` of their rules entry) judge every object as their Python checks do.

For every rule with a twin, every object of its kinds in every rule fixture, every reference manifest and (when
it is beside the checkout) every manifest of ../shared/realworld gets two verdicts: the Python check's (does the
engine report a finding on the object?) and the twin's (does a validation of the policy `export vap` writes for
it evaluate to false?). They must agree object by object; and each twin must fail on some object and pass on
another, so that no agreement is vacuous.

Objects are taken as the API server would hand them to an admission policy: a field set to null is absent, and
objects with fields of the wrong type (reported by the shape pass; the API server rejects them before admission)
are left out, as are pods and ReplicaSets a workload owns (the scan judges them through their controller).
"""

from __future__ import annotations

import os
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

pytest.importorskip("cel", reason="the cel extra is not installed")

from tbyte_policy import k8s_cel, reference
from tbyte_policy.audit import build_resources
from tbyte_policy.catalogue import Rule, load_catalogue
from tbyte_policy.cel_rules import (
    _NotAPodSpec,
    compile_rule,
    containers_expression,
    evaluate,
    pod_spec_expression,
    predefined_value,
    spec_of,
)
from tbyte_policy.engine import Engine
from tbyte_policy.findings import ReportError
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import POD_BEARING_KINDS, Resource
from tbyte_policy.shape import shape_problems
from tbyte_policy.sources.files import load_paths

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "rules"
# ../shared beside the checkout (as CI lays it); TBYTE_POLICY_SHARED points elsewhere (a worktree).
REALWORLD = Path(os.environ.get("TBYTE_POLICY_SHARED", ROOT.parent / "shared")) / "realworld"
TWINS = [rule.with_overrides(enabled=True) for rule in load_catalogue() if rule.cel is not None]


def _corpus_files() -> list[tuple[str, list[Path]]]:
    files = [(str(path.relative_to(ROOT)), [path]) for path in sorted(FIXTURES.glob("*/*.yaml"))]
    for variant in reference.variants():
        files.append((f"reference:{variant}", reference.variant_files(variant)))
    if REALWORLD.is_dir():
        files.extend((f"realworld:{path.name}", [path]) for path in sorted(REALWORLD.rglob("*.yaml")))
    return files


@cache
def corpus() -> tuple[tuple[str, tuple[Resource, ...], Inventory], ...]:
    """(name, the objects an admission policy could see, the inventory of the whole file) per corpus file."""
    groups = []
    for name, paths in _corpus_files():
        loaded = load_paths([str(path) for path in paths])
        errors: list[ReportError] = []
        resources = build_resources(loaded.documents, "default", errors)
        admitted = tuple(resource for resource in resources
                         if not any(shape_problems(resource)) and not resource.managed_by_workload)
        groups.append((name, admitted, Inventory(resources, "default")))
    return tuple(groups)


@cache
def python_verdicts() -> dict[str, set[int]]:
    """rule id -> ids of the objects the Python checks report a finding on."""
    failing: dict[str, set[int]] = defaultdict(set)
    for _name, resources, inventory in corpus():
        by_ref = {(resource.source.path, resource.kind, resource.namespace, resource.name): resource
                  for resource in inventory.resources}
        findings, nested, internal = Engine(TWINS).run(inventory)
        assert not internal, internal
        for finding in findings:
            resource = by_ref[(finding.location.path, finding.resource.kind, finding.resource.namespace,
                               finding.resource.name)]
            failing[finding.rule_id].add(id(resource))
        del resources, nested
    return failing


def as_admitted(value):
    """The object as the API server hands it to admission: a field set to null is a field not set."""
    if isinstance(value, dict):
        return {key: as_admitted(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [as_admitted(item) for item in value]
    return value


def cel_verdict(rule: Rule, resource: Resource, inventory: Inventory) -> bool:
    """Whether the twin denies the object (a validation evaluates to false)."""
    namespace = inventory.get("Namespace", None, resource.namespace) if resource.namespace else None
    context = k8s_cel.context({"object": as_admitted(resource.raw), "oldObject": None,
                               "namespaceObject": as_admitted(namespace.raw) if namespace is not None else None})
    return bool(list(evaluate(compile_rule(rule, as_exported=True), context, spec_of(rule))))


ROLE_SETS = sorted({rule.container_roles for rule in TWINS}, key=sorted)


def test_a_scan_computes_the_predefined_variables_as_their_cel_definitions_do():
    """A scan computes podSpec and containers in Python, once per object (cel_rules.predefined_value); the
    exported policies define them in CEL. Both agree on every object of the corpus, as the scan reads it (nulls
    and fields of the wrong type included), and on shapes no valid object has."""
    odd = [{"kind": "Deployment", "spec": {"template": None}}, {"kind": "Deployment", "spec": "x"},
           {"kind": "Pod", "spec": {"containers": "a", "initContainers": "b"}},
           # (not a list joined with a map: cel-rust appends the map's keys, where Kubernetes' CEL fails)
           {"kind": "Pod", "spec": {"initContainers": [1]}}, {"kind": "Pod", "spec": {"containers": None}},
           {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {}}}}, {"kind": "Job"}, {"kind": "Pod", "spec": 3}]
    objects = [resource.raw for _name, resources, _inventory in corpus() for resource in resources] + odd
    programs = {}
    for roles in ROLE_SETS:
        containers = k8s_cel.substitute(containers_expression(roles), {"variables.podSpec": pod_spec_expression(
            POD_BEARING_KINDS)})
        programs[roles] = k8s_cel.check_expression(containers)
    pod_spec = k8s_cel.check_expression(pod_spec_expression(POD_BEARING_KINDS))
    compared = 0
    for raw in objects:
        if raw.get("kind") not in POD_BEARING_KINDS:
            continue
        context = k8s_cel.context({"object": raw})
        for name, program, roles in [("podSpec", pod_spec, frozenset()),
                                     *(("containers", programs[roles], roles) for roles in ROLE_SETS)]:
            try:
                expected = program.execute(context)
            except Exception:  # the CEL definition fails on the object
                with pytest.raises(_NotAPodSpec):
                    predefined_value(name, raw, roles)
                continue
            assert predefined_value(name, raw, roles) == expected, (name, sorted(roles), raw)
            compared += 1
    assert compared > 1000


def test_there_are_twins_of_every_family_the_issue_names():
    assert {rule.family for rule in TWINS} >= {"security-context", "probes", "resources", "images"}


@pytest.mark.parametrize("rule", TWINS, ids=[rule.id for rule in TWINS])
def test_the_twin_judges_every_object_as_the_python_check(rule):
    expected = python_verdicts()[rule.id]
    mismatches = []
    judged = {True: 0, False: 0}
    for name, resources, inventory in corpus():
        for resource in resources:
            if resource.kind not in rule.kinds:
                continue
            denied = cel_verdict(rule, resource, inventory)
            judged[denied] += 1
            if denied != (id(resource) in expected):
                mismatches.append(f"{name}: {resource.ref} (line {resource.source.line}): python "
                                  f"{'fails' if id(resource) in expected else 'passes'}, CEL "
                                  f"{'fails' if denied else 'passes'}")
    assert not mismatches, "\n".join(mismatches)
    assert judged[True] and judged[False], f"{rule.id}: the corpus must hold objects the twin denies and admits"
