"""``tbyte-policy rules new FAMILY NAME``: the files a new built-in rule starts from, in a source checkout.

It appends the rule's entry to ``rules/<family>.yaml`` (the next free id of the family), a check stub to
``tbyte_policy/checks/<family>.py`` and writes a failing and a passing fixture. Everything it writes says
TODO where the author has to decide, and the catalogue's tests fail until each TODO is gone: the stub raises,
the fixtures' header is a placeholder, and the docs must not contain TODO.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import NamedTuple

from tbyte_policy.findings import FAMILIES, SEVERITIES

TARGETS = {"container": ("ContainerView", "container"), "pod": ("PodView", "pods"),
           "object": ("Resource", "resource"), "namespace": ("str", "namespace")}
_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_ID = re.compile(r"^  - id: ([A-Z]{3})(\d{3})$", re.MULTILINE)


class ScaffoldError(Exception):
    pass


class NewRule(NamedTuple):
    rule_id: str
    written: list[Path]


def source_root() -> Path:
    """The checkout this tbyte-policy runs from."""
    return Path(__file__).resolve().parents[1]


def new_rule(family: str, name: str, *, target: str = "container", severity: str = "medium",
             root: Path | None = None) -> NewRule:
    root = root or source_root()
    module = family.replace("-", "_")
    rules_file = root / "rules" / f"{module}.yaml"
    checks_file = root / "tbyte_policy" / "checks" / f"{module}.py"
    fixtures = root / "tests" / "fixtures" / "rules"
    if family not in FAMILIES:
        raise ScaffoldError(f"unknown family {family!r} (one of {', '.join(FAMILIES)})")
    if not rules_file.is_file() or not checks_file.is_file() or not fixtures.is_dir():
        raise ScaffoldError(f"`rules new` writes into a source checkout of tbyte-policy; {root} has no "
                            f"rules/{module}.yaml, tbyte_policy/checks/{module}.py and tests/fixtures/rules/")
    if not _KEBAB.match(name):
        raise ScaffoldError(f"the rule name must be kebab-case, not {name!r}")
    if target not in TARGETS:
        raise ScaffoldError(f"the target must be one of {', '.join(TARGETS)}")
    if severity not in SEVERITIES:
        raise ScaffoldError(f"the severity must be one of {', '.join(SEVERITIES)}")
    rules_text = rules_file.read_text(encoding="utf-8")
    ids = _ID.findall(rules_text)
    if not ids:
        raise ScaffoldError(f"{rules_file} holds no rule to take the id prefix from")
    if re.search(rf"^    name: {re.escape(name)}$", rules_text, re.MULTILINE) \
            or re.search(rf"@check\(\"{re.escape(name)}\"", checks_file.read_text(encoding="utf-8")):
        raise ScaffoldError(f"{family} already has a rule or check named {name}")
    rule_id = f"{ids[0][0]}{max(int(number) for _, number in ids) + 1:03d}"
    if (fixtures / rule_id).exists():
        raise ScaffoldError(f"{fixtures / rule_id} exists already")

    rules_file.write_text(rules_text.rstrip("\n") + "\n" + _rule_entry(rule_id, name, severity, target),
                          encoding="utf-8")
    checks_text = _with_imports(checks_file.read_text(encoding="utf-8"), target)
    checks_file.write_text(checks_text.rstrip("\n") + "\n\n\n" + _check_stub(rule_id, name, target), encoding="utf-8")
    (fixtures / rule_id).mkdir()
    fail, passing = fixtures / rule_id / "fail.yaml", fixtures / rule_id / "pass.yaml"
    fail.write_text(f"# expect: {rule_id} {_fixture_object(target, 'fails')} -\n"
                    + _fixture(target, "fails"), encoding="utf-8")
    passing.write_text(_fixture(target, "passes"), encoding="utf-8")
    return NewRule(rule_id, [rules_file, checks_file, fail, passing])


def _rule_entry(rule_id: str, name: str, severity: str, target: str) -> str:
    kinds = {"container": "    kinds: [pod-bearing]\n", "pod": "    kinds: [pod-bearing]\n",
             "object": "    kinds: [Deployment]              # TODO: the kinds it checks\n", "namespace": ""}[target]
    return (f"  - id: {rule_id}\n    name: {name}\n    severity: {severity}\n"
            f"    title: \"TODO: what a finding means, in one line\"\n    check: {name}\n{kinds}"
            "    docs:\n"
            "      what: \"TODO: what the rule checks.\"\n"
            "      why: \"TODO: what goes wrong in production without it.\"\n"
            "      example: |\n        # TODO: a manifest snippet that breaks the rule\n"
            "      fix: \"TODO: how to fix it.\"\n")


def _with_imports(module: str, target: str) -> str:
    """The module with an import added for each name the stub uses that it does not import yet."""
    needed = {"Iterator": "collections.abc", "CheckContext": "tbyte_policy.checks", "check": "tbyte_policy.checks",
              "Problem": "tbyte_policy.model"}
    if target != "namespace":
        needed[TARGETS[target][0]] = "tbyte_policy.model"
    tree = ast.parse(module)
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    imported = {alias.asname or alias.name for node in imports for alias in node.names}
    missing = [f"from {source} import {name}\n" for name, source in needed.items() if name not in imported]
    lines = module.splitlines(keepends=True)
    at = max((node.end_lineno or node.lineno for node in imports), default=0)
    return "".join([*lines[:at], *missing, *lines[at:]])


def _check_stub(rule_id: str, name: str, target: str) -> str:
    subject_type, subject = TARGETS[target]
    function = name.replace("-", "_")
    return (f"@check(\"{name}\", \"{target}\")\n"
            f"def {function}({subject}: {subject_type}, ctx: CheckContext) -> Iterator[Problem]:\n"
            f"    \"\"\"TODO: what this check reports, and why.\"\"\"\n"
            f"    raise NotImplementedError(\"{rule_id} {name}: write the check (DEVELOPING.md, Adding a rule)\")\n")


def _fixture_object(target: str, name: str) -> str:
    return f"Namespace/{name}" if target == "namespace" else f"Deployment/{name}"


def _fixture(target: str, name: str) -> str:
    if target == "namespace":
        return (f"# TODO: a namespace that {name} the rule\n"
                f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n")
    return (f"# TODO: a workload that {name} the rule\n"
            "apiVersion: apps/v1\nkind: Deployment\n"
            f"metadata: {{name: {name}, namespace: shop}}\n"
            "spec:\n"
            f"  selector: {{matchLabels: {{app: {name}}}}}\n"
            "  template:\n"
            f"    metadata: {{labels: {{app: {name}}}}}\n"
            "    spec:\n"
            "      containers:\n"
            "        - name: app\n"
            "          image: ghcr.io/acme/app:1.0.0\n")
