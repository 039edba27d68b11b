"""The rule catalogue: policy as data, loaded from ``rules/*.yaml`` and bound to check functions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from tbyte_policy.bundle import bundled_dir
from tbyte_policy.cache import cached
from tbyte_policy.checks import CHECKS, Check, load_check_modules
from tbyte_policy.findings import FAMILIES, SEVERITIES
from tbyte_policy.model import POD_BEARING_KINDS

DOC_SECTIONS = ("what", "why", "example", "fix")
CONTAINER_ROLES = frozenset({"container", "sidecar", "init", "ephemeral"})
# scan: manifests; live: a running namespace; drift: a live run given the rendered manifests (`live --against`).
MODES = frozenset({"scan", "live", "drift"})
DEFAULT_MODES = frozenset({"scan", "live"})
_RULE_ID = re.compile(r"^[A-Z]{3}\d{3}$")
_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_RULE_FIELDS = {"id", "name", "severity", "title", "check", "kinds", "container_roles", "params", "modes",
                "enabled", "presets", "docs", "cel", "admission"}


class CatalogueError(Exception):
    pass


class Rule(NamedTuple):
    id: str
    name: str
    family: str
    severity: str
    title: str
    check: Check
    kinds: frozenset[str]
    docs: dict[str, str]
    params: dict[str, Any]
    container_roles: frozenset[str] = CONTAINER_ROLES
    modes: frozenset[str] = DEFAULT_MODES
    enabled: bool = True
    presets: frozenset[str] = frozenset()
    source: str = ""
    # A CEL rule's cel_rules.CelSpec, or a built-in rule's CEL twin as its rules file writes it (cel_rules.spec_of
    # parses it when `export vap` or the twins' tests need it: a scan never does).
    cel: Any = None
    admission: str = ""  # why a built-in rule without a CEL twin cannot be enforced at admission

    @property
    def target(self) -> str:
        return self.check.target

    @property
    def remediation(self) -> str:
        return self.docs["fix"].strip()

    def with_overrides(self, **changes: Any) -> Rule:
        return self._replace(**changes)


def load_catalogue(directory: Path | None = None) -> list[Rule]:
    load_check_modules()
    directory = directory or bundled_dir("rules")
    paths = sorted(directory.glob("*.yaml"))
    rules: list[Rule] = []
    parsed = cached("rules", paths, lambda: [_parse(source) for source in paths])
    for path, data in zip(paths, parsed, strict=True):
        rules.extend(_family_rules(data, path))
    _check_unique(rules)
    return sorted(rules, key=lambda rule: rule.id)


def _parse(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=yaml.CSafeLoader)


def _family_rules(data: Any, path: Path) -> list[Rule]:
    if not isinstance(data, dict) or data.get("family") not in FAMILIES or not isinstance(data.get("rules"), list):
        raise CatalogueError(f"{path}: a rules file needs `family` (one of {', '.join(FAMILIES)}) and `rules`")
    return [_rule(entry, data["family"], path) for entry in data["rules"]]


def _rule(entry: Any, family: str, path: Path) -> Rule:
    where = f"{path}: rule {entry.get('id', '?') if isinstance(entry, dict) else '?'}"
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: not a mapping")
    unknown = set(entry) - _RULE_FIELDS
    if unknown:
        raise CatalogueError(f"{where}: unknown fields {sorted(unknown)}")
    if not _RULE_ID.match(str(entry.get("id"))):
        raise CatalogueError(f"{where}: id must look like ABC123")
    if not _KEBAB.match(str(entry.get("name"))):
        raise CatalogueError(f"{where}: name must be kebab-case")
    if entry.get("severity") not in SEVERITIES:
        raise CatalogueError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    check = CHECKS.get(str(entry.get("check")))
    if check is None:
        raise CatalogueError(f"{where}: unknown check {entry.get('check')!r}")
    docs = entry.get("docs") or {}
    missing = [section for section in DOC_SECTIONS if not str(docs.get(section, "")).strip()]
    if missing or not str(entry.get("title", "")).strip():
        raise CatalogueError(f"{where}: title and docs sections {', '.join(DOC_SECTIONS)} are required "
                             f"(missing {missing})")
    kinds = _kinds(entry.get("kinds"), check.target, where)
    roles = frozenset(entry.get("container_roles") or CONTAINER_ROLES)
    if not roles <= CONTAINER_ROLES:
        raise CatalogueError(f"{where}: container_roles must be among {sorted(CONTAINER_ROLES)}")
    modes = frozenset(entry.get("modes") or DEFAULT_MODES)
    if not modes <= MODES:
        raise CatalogueError(f"{where}: modes must be among {sorted(MODES)}")
    if check.target == "rendered" and modes != {"drift"}:
        raise CatalogueError(f"{where}: rules on rendered objects run in the drift mode only (modes: [drift])")
    params = dict(check.defaults)
    extra = set(entry.get("params") or {}) - set(check.defaults)
    if extra:
        raise CatalogueError(f"{where}: check {check.name} takes no params {sorted(extra)}")
    params.update(entry.get("params") or {})
    return Rule(id=entry["id"], name=entry["name"], family=family, severity=entry["severity"],
                title=str(entry["title"]).strip(), check=check, kinds=kinds,
                docs={section: str(docs[section]).rstrip() for section in DOC_SECTIONS}, params=params,
                container_roles=roles, modes=modes, enabled=bool(entry.get("enabled", True)),
                presets=frozenset(entry.get("presets") or ()), source=path.name, cel=entry.get("cel"),
                admission=str(entry.get("admission") or "").strip())


def _kinds(value: Any, target: str, where: str) -> frozenset[str]:
    if target == "namespace":
        return frozenset({"Namespace"})
    if not value:
        if target in ("pod", "container"):
            return POD_BEARING_KINDS
        raise CatalogueError(f"{where}: `kinds` is required for {target} checks")
    kinds: set[str] = set()
    for kind in value:
        kinds.update(POD_BEARING_KINDS if kind == "pod-bearing" else {kind})
    if target in ("pod", "container") and not kinds <= POD_BEARING_KINDS:
        raise CatalogueError(f"{where}: pod and container checks target pod-bearing kinds only")
    return frozenset(kinds)


def _check_unique(rules: list[Rule]) -> None:
    for attribute in ("id", "name"):
        seen: dict[str, Rule] = {}
        for rule in rules:
            value = getattr(rule, attribute)
            if value in seen:
                raise CatalogueError(f"duplicate rule {attribute} {value!r} in {rule.source} and {seen[value].source}")
            seen[value] = rule


def active_rules(rules: list[Rule], mode: str, *, drift: bool = False) -> list[Rule]:
    """The rules a run of ``mode`` runs; ``drift``: a live run that has the rendered manifests to compare with."""
    modes = {mode, "drift"} if drift else {mode}
    return [rule for rule in rules if rule.modes & modes]


def find_rule(rules: list[Rule], key: str) -> Rule | None:
    return next((rule for rule in rules if key in (rule.id, rule.name)), None)
