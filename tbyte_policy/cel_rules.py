"""Rules in CEL, with ValidatingAdmissionPolicy semantics: users' rule files, and the CEL twins of built-in rules.

A CEL rule is a ``CelSpec``: variables and validations as a ValidatingAdmissionPolicy has them. For a rule
that matches only pod-bearing kinds, two variables are predefined (and exported with the policy):
``variables.podSpec``, the pod spec wherever the kind keeps it (Pod ``spec``, CronJob
``spec.jobTemplate.spec.template.spec``, the others ``spec.template.spec``), and ``variables.containers``,
the containers of the rule's ``container_roles``.

Evaluation follows the policy's semantics: ``object`` is the manifest, ``oldObject`` null,
``namespaceObject`` the object's Namespace when the run holds it (else null), ``params`` the rule's params;
a validation that evaluates to false is a finding, its text from ``messageExpression`` (when that yields a
non-empty one-line string), else ``message``, else ``failed expression: EXPR``. Variables are lazy: they are
substituted into the expressions that use them (``k8s_cel.substitute``), so one that is never reached is never
evaluated; the predefined ones are computed once per object in Python (``predefined_value``, which the tests
hold to their CEL definitions). Each object is converted to CEL values once per run and that conversion is
shared by every CEL rule (``_converted``).

This module imports the CEL library only when a rule is compiled: a run without CEL rules never loads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

import yaml

from tbyte_policy.catalogue import CONTAINER_ROLES, Rule, find_rule
from tbyte_policy.checks import Check, CheckContext, RuleEvaluationError
from tbyte_policy.findings import SEVERITIES
from tbyte_policy.marked import MarkedDict, MarkedList, MarkingLoader
from tbyte_policy.model import POD_BEARING_KINDS, POD_TEMPLATE_POINTERS, Problem, Resource, escape_pointer_part

DEFAULT_FAMILY = "custom"
RULE_FILE_SUFFIXES = (".yaml", ".yml")
_RULE_ID = re.compile(r"^[A-Z]{3}\d{3}$")
_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FILE_KEYS = {"family", "rules"}
_RULE_KEYS = {"id", "name", "severity", "title", "match", "container_roles", "variables", "validations", "params",
              "docs", "modes", "enabled"}
_SPEC_KEYS = {"variables", "validations"}
_MATCH_KEYS = {"kinds"}
_VARIABLE_KEYS = {"name", "expression"}
_VALIDATION_KEYS = {"expression", "message", "messageExpression", "fieldPath", "reason"}
_DOC_KEYS = {"what", "why", "example", "fix"}
_REQUIRED_DOCS = ("what", "fix")
# ValidatingAdmissionPolicy's validation reasons (metav1.StatusReason values it accepts).
REASONS = ("Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge")
PREDEFINED = ("podSpec", "containers")
MODES = frozenset({"scan", "live"})  # (the drift mode compares two objects: no CEL rule runs there)


class RuleFileError(Exception):
    """A rule file that cannot be used: the message names the file and line."""


class Variable(NamedTuple):
    name: str
    expression: str
    line: int | None = None
    predefined: bool = False


class Validation(NamedTuple):
    expression: str
    message: str | None = None
    message_expression: str | None = None
    field_path: str | None = None
    pointer: str = ""  # fieldPath as a JSON pointer: where findings point
    reason: str | None = None
    line: int | None = None


class CelSpec(NamedTuple):
    variables: tuple[Variable, ...]
    validations: tuple[Validation, ...]
    source: str = ""  # the rule file (a built-in twin: its rules file)
    line: int | None = None  # the rule's entry
    roles: frozenset[str] = frozenset()  # the container roles of the predefined `containers`

    def where(self, line: int | None = None) -> str:
        line = line or self.line
        return f"{self.source}:{line}" if line else self.source


# --- reading rule files -------------------------------------------------------------------------------------

def rule_files(paths: Iterable[Path]) -> list[Path]:
    """The rule files of ``paths``: files as given, folders' *.yaml and *.yml (recursively, sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(child for child in path.rglob("*") if child.suffix in RULE_FILE_SUFFIXES
                                and child.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise RuleFileError(f"{path}: no such rule file or folder")
    seen: set[Path] = set()
    unique = []
    for file in files:  # the config's custom_rules and --rules may name the same file
        if file.resolve() not in seen:
            seen.add(file.resolve())
            unique.append(file)
    return unique


def load_rule_files(paths: Iterable[Path], builtin: list[Rule]) -> list[Rule]:
    """The rules of the rule files, compiled; RuleFileError (naming file and line) on anything wrong, or
    ``k8s_cel.CelUnavailable`` without the cel extra."""
    rules: list[Rule] = []
    lines: dict[str, str] = {}  # id and name -> where, for duplicates
    for path in rule_files(paths):
        for rule, where in _file_rules(path):
            for key in (rule.id, rule.name):
                clash = find_rule(builtin, key)
                if clash is not None:
                    raise RuleFileError(f"{where}: {'id' if key == rule.id else 'name'} {key} is taken by the "
                                        f"built-in rule {clash.id} ({clash.name})")
                if key in lines:
                    raise RuleFileError(f"{where}: duplicate rule {'id' if key == rule.id else 'name'} {key} "
                                        f"(also at {lines[key]})")
                lines[key] = where
            rules.append(rule)
    for rule in rules:
        compile_rule(rule)
    return rules


def _file_rules(path: Path) -> Iterator[tuple[Rule, str]]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=MarkingLoader)  # type: ignore[arg-type]
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"{path}: cannot read rule file: {exc.__class__.__name__}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise RuleFileError(f"{path}:{mark.line + 1 if mark else '?'}: invalid YAML in rule file: {problem}") from None
    where = _Where(str(path))
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleFileError(f"{path}: a rule file is a mapping with `rules` (a list) and optionally `family`")
    where.unknown(data, _FILE_KEYS, "rule file")
    family = data.get("family", DEFAULT_FAMILY)
    if not isinstance(family, str) or not _KEBAB.match(family):
        raise RuleFileError(where.at(data, "family", "family must be a kebab-case name (e.g. org-policy)"))
    for index, entry in enumerate(data["rules"]):
        line = where.item_line(data["rules"], index)
        yield _rule(entry, family, where, line), f"{path}:{line}"


class _Where:
    """Positions in one rule file, for error messages."""

    def __init__(self, path: str):
        self.path = path

    def line(self, node: Any, key: Any = None) -> int | None:
        if isinstance(node, MarkedDict) and key is not None:
            position = node.key_position(key)
            return position[0] if position else None
        return None

    def item_line(self, node: Any, index: int) -> int | None:
        position = node.item_position(index) if isinstance(node, MarkedList) else None
        return position[0] if position else None

    def at(self, node: Any, key: Any, message: str, line: int | None = None) -> str:
        line = self.line(node, key) or line
        return f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}"

    def unknown(self, node: dict, known: set[str], what: str, line: int | None = None) -> None:
        unknown = sorted((key for key in node if key not in known), key=str)
        if unknown:
            raise RuleFileError(self.at(node, unknown[0], f"unknown field {unknown[0]!r} in {what} "
                                                          f"(known: {', '.join(sorted(known))})", line))


def _rule(entry: Any, family: str, where: _Where, line: int | None) -> Rule:
    if not isinstance(entry, dict):
        raise RuleFileError(f"{where.path}:{line}: a rule is a mapping")
    rule_id = entry.get("id")
    label = f"rule {rule_id}" if isinstance(rule_id, str) else "rule"
    where.unknown(entry, _RULE_KEYS, label, line)

    def fail(key: str, message: str) -> RuleFileError:
        return RuleFileError(where.at(entry, key, f"{label}: {message}", line))

    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        raise fail("id", "id must be three capital letters and three digits (ABC123)")
    name = entry.get("name")
    if not isinstance(name, str) or not _KEBAB.match(name):
        raise fail("name", "name must be kebab-case (team-label-required)")
    if entry.get("severity") not in SEVERITIES:
        raise fail("severity", f"severity must be one of {', '.join(SEVERITIES)}")
    title = entry.get("title")
    if not isinstance(title, str) or not title.strip():
        raise fail("title", "title is required")
    docs = entry.get("docs")
    if not isinstance(docs, dict):
        raise fail("docs", f"docs is required, with {' and '.join(_REQUIRED_DOCS)} (and optionally why, example)")
    where.unknown(docs, _DOC_KEYS, f"{label} docs", line)
    for section in _REQUIRED_DOCS:
        if not isinstance(docs.get(section), str) or not docs[section].strip():
            raise fail("docs", f"docs.{section} is required")
    for section in _DOC_KEYS - set(_REQUIRED_DOCS):
        if section in docs and not isinstance(docs[section], str):
            raise fail("docs", f"docs.{section} must be text")
    kinds = _match(entry, where, label, line)
    roles = entry.get("container_roles", sorted(CONTAINER_ROLES))
    if not isinstance(roles, list) or not roles or not set(roles) <= CONTAINER_ROLES:
        raise fail("container_roles", f"container_roles must be a list among {', '.join(sorted(CONTAINER_ROLES))}")
    modes = entry.get("modes", sorted(MODES))
    if not isinstance(modes, list) or not modes or not set(modes) <= MODES:
        raise fail("modes", f"modes must be a list among {', '.join(sorted(MODES))}")
    if not isinstance(entry.get("enabled", True), bool):
        raise fail("enabled", "enabled must be true or false")
    params = entry.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(key, str) for key in params):
        raise fail("params", "params must be a mapping of names to values")
    spec = parse_spec(entry, kinds, frozenset(roles), where, line)
    if not spec.validations:
        raise fail("validations", "validations must list at least one validation")
    return Rule(id=rule_id, name=name, family=family, severity=entry["severity"], title=title.strip(),
                check=_cel_check(spec, rule_id), kinds=kinds,
                docs={section: str(docs.get(section) or "").rstrip() for section in sorted(_DOC_KEYS)},
                params=_plain(params), container_roles=frozenset(roles), modes=frozenset(modes),
                enabled=entry.get("enabled", True), source=where.path, cel=spec)


def _match(entry: dict, where: _Where, label: str, line: int | None) -> frozenset[str]:
    match = entry.get("match")
    if not isinstance(match, dict) or not isinstance(match.get("kinds"), list) or not match["kinds"] \
            or not all(isinstance(kind, str) and kind for kind in match["kinds"]):
        raise RuleFileError(where.at(entry, "match", f"{label}: match must be {{kinds: [Kind, ...]}} "
                                                     "(pod-bearing: every pod-bearing kind)", line))
    where.unknown(match, _MATCH_KEYS, f"{label} match", line)
    kinds: set[str] = set()
    for kind in match["kinds"]:
        kinds.update(POD_BEARING_KINDS if kind == "pod-bearing" else {kind})
    return frozenset(kinds)


def _plain(value: Any) -> Any:
    """Marked YAML as plain dicts and lists (params go to CEL and to the config's type checks)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def parse_spec(entry: dict, kinds: frozenset[str], roles: frozenset[str], where: _Where | None = None,
               line: int | None = None) -> CelSpec:
    """The variables and validations of a rule entry (a user's rule, or a built-in rule's ``cel:``)."""
    where = where or _Where("")

    def fail(node: Any, key: Any, message: str) -> RuleFileError:
        return RuleFileError(where.at(node, key, message, line))

    variables = list(predefined_variables(kinds, roles))
    raw_variables = entry.get("variables", [])
    if not isinstance(raw_variables, list):
        raise fail(entry, "variables", "variables must be a list of {name, expression}")
    for index, raw in enumerate(raw_variables):
        item_line = where.item_line(raw_variables, index) or line
        if not isinstance(raw, dict):
            raise fail(raw_variables, None, "a variable is a mapping with name and expression")
        where.unknown(raw, _VARIABLE_KEYS, "variable", item_line)
        name, expression = raw.get("name"), raw.get("expression")
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            raise RuleFileError(where.at(raw, "name", "a variable's name must be a CEL identifier", item_line))
        if any(variable.name == name for variable in variables):
            taken = "is predefined for pod-bearing kinds" if name in PREDEFINED else "is declared twice"
            raise RuleFileError(where.at(raw, "name", f"variable {name} {taken}", item_line))
        if not isinstance(expression, str) or not expression.strip():
            quote = "" if expression is None else " (a CEL expression is text: quote it in YAML)"
            raise RuleFileError(where.at(raw, "expression", f"variable {name} needs an expression{quote}", item_line))
        variables.append(Variable(name, expression.strip(), where.line(raw, "expression") or item_line))
    raw_validations = entry.get("validations", [])
    if not isinstance(raw_validations, list):
        raise fail(entry, "validations", "validations must be a list")
    validations = []
    for index, raw in enumerate(raw_validations):
        item_line = where.item_line(raw_validations, index) or line
        if not isinstance(raw, dict):
            raise RuleFileError(f"{where.path}:{item_line}: a validation is a mapping with expression and "
                                "message or messageExpression")
        where.unknown(raw, _VALIDATION_KEYS, "validation", item_line)
        expression = raw.get("expression")
        if not isinstance(expression, str) or not expression.strip():
            quote = "" if expression is None else " (a CEL expression is text: quote it in YAML)"
            raise RuleFileError(where.at(raw, "expression", f"a validation needs an expression{quote}", item_line))
        message, message_expression = raw.get("message"), raw.get("messageExpression")
        for key, value in (("message", message), ("messageExpression", message_expression)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise RuleFileError(where.at(raw, key, f"{key} must be non-empty text", item_line))
        if message is not None and "\n" in message.strip():
            raise RuleFileError(where.at(raw, "message", "message must be one line (as Kubernetes requires)",
                                         item_line))
        if message is None and "\n" in expression.strip():
            raise RuleFileError(where.at(raw, "expression", "an expression over several lines needs a message "
                                                            "(as Kubernetes requires)", item_line))
        reason = raw.get("reason")
        if reason is not None and reason not in REASONS:
            raise RuleFileError(where.at(raw, "reason", f"reason must be one of {', '.join(REASONS)}", item_line))
        field_path = raw.get("fieldPath")
        pointer = ""
        if field_path is not None:
            try:
                pointer = field_path_pointer(field_path)
            except ValueError as exc:
                raise RuleFileError(where.at(raw, "fieldPath", str(exc), item_line)) from None
        validations.append(Validation(expression.strip(), message.strip() if message else None,
                                      message_expression.strip() if message_expression else None, field_path,
                                      pointer, reason, where.line(raw, "expression") or item_line))
    return CelSpec(_used_predefined(variables, validations), tuple(validations), where.path, line, roles)


def _used_predefined(variables: list[Variable], validations: list[Validation]) -> tuple[Variable, ...]:
    """The variables, without the predefined ones that nothing uses (they would only clutter the policy)."""
    from tbyte_policy.k8s_cel import variable_references

    sources = [variable.expression for variable in variables if not variable.predefined]
    sources += [text for validation in validations
                for text in (validation.expression, validation.message_expression) if text]
    used = {name for source in sources for name, _ in variable_references(source)}
    if "containers" in used:
        used.add("podSpec")
    return tuple(variable for variable in variables if not variable.predefined or variable.name in used)


def spec_of(rule: Rule) -> CelSpec:
    """The rule's CEL: a CEL rule's own, or a built-in rule's twin (kept as the rules file's ``cel:`` mapping
    until it is needed, so that a scan never parses it)."""
    if isinstance(rule.cel, CelSpec):
        return rule.cel
    raw = rule.cel
    if not isinstance(raw, dict):
        raise RuleFileError(f"rules/{rule.source}: rule {rule.id}: cel must be a mapping with variables and "
                            "validations")
    where = _Where(f"rules/{rule.source}")
    where.unknown(raw, _SPEC_KEYS, f"rule {rule.id} cel")
    return parse_spec(raw, rule.kinds, rule.container_roles, where)


_FIELD_PATH_PART = re.compile(r"""\.([A-Za-z_$][A-Za-z0-9_$-]*)|\[(\d+)\]|\[\s*'((?:\\.|[^'\\])*)'\s*\]"""
                              r"""|\[\s*"((?:\\.|[^"\\])*)"\s*\]""")


def field_path_pointer(field_path: Any) -> str:
    """A fieldPath (``.spec.containers[0].image``, ``.metadata.labels['app.kubernetes.io/name']``) as a JSON
    pointer."""
    if not isinstance(field_path, str) or not field_path.startswith((".", "[")):
        raise ValueError("fieldPath must be a path such as .spec.containers[0].image or "
                         ".metadata.labels['app.kubernetes.io/name']")
    parts = []
    position = 0
    while position < len(field_path):
        match = _FIELD_PATH_PART.match(field_path, position)
        if match is None:
            raise ValueError(f"fieldPath {field_path!r}: cannot read it from column {position + 1} on")
        name, index, single, double = match.groups()
        quoted = single if single is not None else double
        parts.append(name if name is not None else index if index is not None
                     else re.sub(r"\\(.)", r"\1", quoted))
        position = match.end()
    return "".join("/" + escape_pointer_part(part) for part in parts)


# --- the predefined variables of pod-bearing rules ----------------------------------------------------------

def _guarded(path: str) -> str:
    """``object.a.b.c`` when every step exists, else ``{}`` (as the checks read an absent pod spec)."""
    steps = path.split(".")
    checks = " && ".join(f"has({'.'.join(steps[:index + 1])})" for index in range(1, len(steps)))
    return f"{checks} ? {path} : {{}}"


def pod_spec_expression(kinds: frozenset[str]) -> str:
    paths: dict[str, list[str]] = {}
    for kind in sorted(kinds):
        pointer = "/spec" if kind == "Pod" else POD_TEMPLATE_POINTERS[kind] + "/spec"
        paths.setdefault("object" + pointer.replace("/", "."), []).append(kind)
    branches = sorted(paths.items(), key=lambda item: (-len(item[1]), item[0]))
    expression = _guarded(branches[0][0])
    for path, path_kinds in branches[1:]:
        test = " || ".join(f"object.kind == '{kind}'" for kind in path_kinds)
        expression = f"({test}) ? ({_guarded(path)}) : ({expression})"
    return expression


def containers_expression(roles: frozenset[str]) -> str:
    # The pod spec is bound once ([x].map(p, ...)[0]): a scan substitutes variables into the expressions
    # that use them, and each selection in cel-rust copies the selected map.
    def field(name: str) -> str:
        return f"(has(p.{name}) ? p.{name} : [])"

    parts = []
    if "container" in roles:
        parts.append(field("containers"))
    if {"init", "sidecar"} <= roles:
        parts.append(field("initContainers"))
    elif "init" in roles:
        parts.append(field("initContainers") + ".filter(c, !has(c.restartPolicy) || c.restartPolicy != 'Always')")
    elif "sidecar" in roles:
        parts.append(field("initContainers") + ".filter(c, has(c.restartPolicy) && c.restartPolicy == 'Always')")
    if "ephemeral" in roles:
        parts.append(field("ephemeralContainers"))
    return f"[variables.podSpec].map(p, {' + '.join(parts) if parts else '[]'})[0]"


def predefined_variables(kinds: frozenset[str], roles: frozenset[str]) -> tuple[Variable, ...]:
    if not kinds or not kinds <= POD_BEARING_KINDS:
        return ()
    return (Variable("podSpec", pod_spec_expression(kinds), predefined=True),
            Variable("containers", containers_expression(roles), predefined=True))


# --- compiling and evaluating -------------------------------------------------------------------------------

class CompiledValidation(NamedTuple):
    validation: Validation
    program: Any
    message_program: Any | None
    variables: tuple[str, ...]  # variables it uses (transitively), to name one that fails


class CompiledRule(NamedTuple):
    validations: tuple[CompiledValidation, ...]
    variables: dict[str, Any]  # name -> program (of the substituted expression), for error messages
    # The predefined variables the rule uses, as the context variables a scan computes them into (see
    # ``_prepare``): name in ``variables.NAME`` -> context variable.
    precomputed: dict[str, str]
    uses_namespace: bool = False  # whether an expression reads namespaceObject (converted only then)
    object_keys: frozenset[str] | None = None  # the top-level keys of object it reads; None: the whole object


def compile_rule(rule: Rule, *, as_exported: bool = False) -> CompiledRule:
    """Compile a CEL rule's expressions with its params; RuleFileError naming the rule file and line.

    A scan computes the predefined variables (``podSpec``, ``containers``) once per object in Python
    (``_pod_spec_value``, ``_containers_value``, which tests/test_cel_twins.py holds to the CEL definitions);
    ``as_exported`` substitutes their CEL definitions instead, so the rule is evaluated exactly as the policy
    `export vap` writes.
    """
    from tbyte_policy import k8s_cel

    spec = spec_of(rule)
    try:
        params = k8s_cel.literal(rule.params)
    except ValueError as exc:
        raise RuleFileError(f"{spec.where()}: rule {rule.id}: params: {exc}") from None
    return _compiled(spec, params, rule.id, not as_exported)


def expression_with_params(source: str, params_literal: str) -> str:
    from tbyte_policy.k8s_cel import substitute

    return substitute(source, {"params": params_literal})


def _context_name(name: str, roles: frozenset[str]) -> str:
    """The context variable a scan computes a predefined variable into (no rule can name it: it is no root)."""
    return "tbyte_podSpec" if name == "podSpec" else "tbyte_containers_" + "_".join(sorted(roles))


@lru_cache(maxsize=1024)
def _compiled(spec: CelSpec, params_literal: str, rule_id: str, precompute: bool = True) -> CompiledRule:
    from tbyte_policy import k8s_cel

    def check_source(source: str, declared: frozenset[str], line: int | None, what: str) -> None:
        """The expression as the user wrote it (variables.NAME, params): errors name the rule file and line."""
        try:
            k8s_cel.check_expression(source, declared, k8s_cel.SCAN_ROOTS)
        except k8s_cel.CelCompileError as exc:
            raise RuleFileError(f"{spec.where(line)}: rule {rule_id}: {what}: {exc}") from None

    inlined: dict[str, str] = {}  # variables.NAME -> its expression, with earlier variables substituted
    uses: dict[str, set[str]] = {}
    programs: dict[str, Any] = {}
    declared: set[str] = set()
    precomputed = {variable.name: _context_name(variable.name, spec.roles) for variable in spec.variables
                   if variable.predefined and precompute}
    roots = k8s_cel.SCAN_ROOTS | frozenset(precomputed.values())
    for variable in spec.variables:
        check_source(variable.expression, frozenset(declared), variable.line, f"variable {variable.name}")
        direct = {name for name, _ in k8s_cel.variable_references(variable.expression)}
        uses[variable.name] = direct.union(*(uses[name] for name in direct))
        if variable.name in precomputed:
            text = precomputed[variable.name]
        else:
            text = k8s_cel.substitute(expression_with_params(variable.expression, params_literal), inlined)
        inlined[f"variables.{variable.name}"] = text
        programs[variable.name] = k8s_cel.check_expression(text, frozenset(), roots)
        declared.add(variable.name)
    validations = []
    for index, validation in enumerate(spec.validations):
        what = f"validations[{index}]"
        check_source(validation.expression, frozenset(declared), validation.line, what + ".expression")
        kind = k8s_cel.result_kind(validation.expression)
        if kind not in (None, "bool"):
            raise RuleFileError(f"{spec.where(validation.line)}: rule {rule_id}: {what}.expression is a {kind}; "
                                "a validation must evaluate to bool")
        used = {name for name, _ in k8s_cel.variable_references(validation.expression)}
        message_program = None
        if validation.message_expression is not None:
            check_source(validation.message_expression, frozenset(declared), validation.line,
                         what + ".messageExpression")
            kind = k8s_cel.result_kind(validation.message_expression)
            if kind not in (None, "string"):
                raise RuleFileError(f"{spec.where(validation.line)}: rule {rule_id}: {what}.messageExpression is a "
                                    f"{kind}; it must evaluate to a string")
            message_program = k8s_cel.check_expression(
                k8s_cel.substitute(expression_with_params(validation.message_expression, params_literal), inlined),
                frozenset(), roots)
        program = k8s_cel.check_expression(
            k8s_cel.substitute(expression_with_params(validation.expression, params_literal), inlined),
            frozenset(), roots)
        transitive = used.union(*(uses[name] for name in used))
        ordered = tuple(variable.name for variable in spec.variables if variable.name in transitive)
        validations.append(CompiledValidation(validation, program, message_program, ordered))
    sources = [program.source for item in validations for program in (item.program, item.message_program)
               if program is not None]
    uses_namespace = any(token.text == "namespaceObject" for source in sources for token in k8s_cel.tokens(source))
    keys: set[str] | None = set()
    for source in sources:
        found = k8s_cel.object_keys(source)
        keys = None if keys is None or found is None else keys | found
    return CompiledRule(tuple(validations), programs, precomputed, uses_namespace,
                        frozenset(keys) if keys is not None else None)


# --- the predefined variables, computed once per object (what their CEL definitions compute) ----------------

class _NotAPodSpec(Exception):
    """Where the predefined variables' CEL definitions fail on the object (a pod spec of the wrong shape)."""


def _pod_spec_value(raw: dict) -> Any:
    """``pod_spec_expression``: the pod spec at the kind's path, ``{}`` when a step is absent."""
    kind = str(raw.get("kind"))
    pointer = "/spec" if kind == "Pod" else POD_TEMPLATE_POINTERS.get(kind, "/spec/template") + "/spec"
    node: Any = raw
    for key in pointer.strip("/").split("/"):
        if not isinstance(node, dict):
            raise _NotAPodSpec(f"{pointer} crosses a value that is not a mapping")
        if key not in node:
            return {}
        node = node[key]
    return node


def _cel_add(left: Any, right: Any) -> Any:
    """CEL's ``+``: the same type on both sides (lists, strings, bytes, ints, doubles)."""
    if any(isinstance(left, kind) and isinstance(right, kind) for kind in (list, str, bytes, float)) \
            or (type(left) is int and type(right) is int):
        return left + right
    raise _NotAPodSpec("the container lists cannot be joined (not lists)")


def _containers_value(pod_spec: Any, roles: frozenset[str]) -> Any:
    """``containers_expression``: the containers of the roles."""
    if not isinstance(pod_spec, dict):
        raise _NotAPodSpec("the pod spec is not a mapping")

    def field(name: str) -> Any:
        return pod_spec.get(name, [])  # a present null stays null, as in has(p.x) ? p.x : []

    def sidecars(value: Any, wanted: bool) -> list:
        items = list(value) if isinstance(value, dict | list) else None
        if items is None or not all(isinstance(item, dict) for item in items):
            raise _NotAPodSpec("initContainers holds an entry that is not a mapping")
        return [item for item in items if (item.get("restartPolicy") == "Always"
                                           if "restartPolicy" in item else False) == wanted]

    parts = []
    if "container" in roles:
        parts.append(field("containers"))
    if {"init", "sidecar"} <= roles:
        parts.append(field("initContainers"))
    elif "init" in roles:
        parts.append(sidecars(field("initContainers"), False))
    elif "sidecar" in roles:
        parts.append(sidecars(field("initContainers"), True))
    if "ephemeral" in roles:
        parts.append(field("ephemeralContainers"))
    if not parts:
        return []
    value = parts[0]
    for part in parts[1:]:
        value = _cel_add(value, part)
    return value


def predefined_value(name: str, raw: dict, roles: frozenset[str]) -> Any:
    """A predefined variable's value for an object (tests compare it with the CEL definition's)."""
    pod_spec = _pod_spec_value(raw)
    return pod_spec if name == "podSpec" else _containers_value(pod_spec, roles)


class _Converted:
    """The last object converted to CEL values, shared by every CEL rule that checks it: the engine runs every
    rule of an object before the next object, so one slot per run is enough.

    Only the top-level keys of the object that the rules read are converted (conversion is most of what a CEL
    rule costs): the keys the rules of the object's kind have read so far in the run, so that after the first
    object of a kind each object is converted once.
    """

    __slots__ = ("context", "error", "keys", "namespace", "prepared", "resource", "wanted")

    def __init__(self) -> None:
        self.resource: Resource | None = None
        self.context: Any = None
        self.error: str | None = None
        self.prepared: dict[str, str | None] = {}  # context variable -> None (added) or why it could not be
        self.namespace: Resource | None = None  # the object's Namespace, until a rule needs it converted
        self.keys: frozenset[str] | None = frozenset()  # the object's keys converted; None: all of them
        self.wanted: dict[str, frozenset[str] | None] = {}  # kind -> the keys its rules read


_CONVERTED: WeakKeyDictionary = WeakKeyDictionary()  # inventory -> _Converted


def _converted(resource: Resource, ctx: CheckContext, keys: frozenset[str] | None) -> _Converted:
    from tbyte_policy import k8s_cel

    slot = _CONVERTED.get(ctx.inventory)
    if slot is None:
        slot = _CONVERTED[ctx.inventory] = _Converted()
    previous = slot.wanted.get(resource.kind, frozenset())
    wanted = None if previous is None or keys is None else previous | keys
    slot.wanted[resource.kind] = wanted
    fresh = slot.resource is not resource
    if fresh:
        slot.resource, slot.error, slot.context, slot.prepared = resource, None, None, {}
        slot.namespace = ctx.inventory.get("Namespace", None, resource.namespace) if resource.namespace else None
    elif slot.error is not None or slot.keys is None or (wanted is not None and wanted <= slot.keys):
        return slot
    raw = resource.raw
    value = raw if wanted is None else {key: raw[key] for key in wanted if key in raw}
    try:
        if fresh:
            slot.context = k8s_cel.context({"object": value, "oldObject": None, "namespaceObject": None})
        else:
            slot.context.add_variable("object", value)
        slot.keys = wanted
    except (ValueError, TypeError, OverflowError):
        slot.error = "the object holds a value CEL has no type for (a key that is not a string, or a number " \
                     "too large)"
    return slot


def _cel_check(spec: CelSpec, rule_id: str) -> Check:
    def check(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
        from tbyte_policy import k8s_cel

        compiled = _compiled(spec, k8s_cel.literal(ctx.params), rule_id)
        converted = _converted(resource, ctx, compiled.object_keys)
        if converted.error is not None:
            raise RuleEvaluationError([f"{spec.where()}: {converted.error}"])
        yield from evaluate(compiled, converted.context, spec, _prepare(converted, compiled, spec))

    return Check(name="cel", target="object", function=check, defaults={})


def _prepare(slot: _Converted, compiled: CompiledRule, spec: CelSpec) -> dict[str, str]:
    """Compute the predefined variables the rule uses into the object's context (once per object); the ones
    whose CEL definition fails on the object are left out, with why (only a validation that reaches one fails)."""
    failed = {}
    assert slot.resource is not None
    if compiled.uses_namespace and slot.namespace is not None:
        try:
            slot.context.add_variable("namespaceObject", slot.namespace.raw)
        except (ValueError, TypeError, OverflowError):  # its own scan reports the Namespace's odd values
            pass
        slot.namespace = None
    for name, context_name in compiled.precomputed.items():
        if context_name not in slot.prepared:
            try:
                slot.context.add_variable(context_name, predefined_value(name, slot.resource.raw, spec.roles))
                slot.prepared[context_name] = None
            except _NotAPodSpec as exc:
                slot.prepared[context_name] = str(exc)
            except (ValueError, TypeError, OverflowError):
                slot.prepared[context_name] = "it holds a value CEL has no type for"
        reason = slot.prepared[context_name]
        if reason is not None:
            failed[name] = reason
    return failed


def evaluate(compiled: CompiledRule, context: Any, spec: CelSpec,
             unavailable: dict[str, str] | None = None) -> Iterator[Problem]:
    """The problems of one object (a validation that is false), then RuleEvaluationError for those that failed.

    ``unavailable``: predefined variables that could not be computed for the object, and why."""
    from tbyte_policy import k8s_cel

    errors = []
    for index, item in enumerate(compiled.validations):
        validation = item.validation
        try:
            result = item.program.execute(context)
        except Exception as exc:  # the library raises KeyError, TypeError, RuntimeError, ... for one object
            errors.append(f"validations[{index}] ({spec.where(validation.line)}) failed: "
                          f"{_failing_variable(compiled, item, context, unavailable or {}) or k8s_cel.error_text(exc)}")
            continue
        if result is True:
            continue
        if result is not False:
            errors.append(f"validations[{index}] ({spec.where(validation.line)}) evaluated to a "
                          f"{type(result).__name__}, not a bool")
            continue
        yield Problem(_message(item, context), validation.pointer)
    if errors:
        raise RuleEvaluationError(errors)


def _message(item: CompiledValidation, context: Any) -> str:
    validation = item.validation
    if item.message_program is not None:
        try:
            text = item.message_program.execute(context)
        except Exception:  # as Kubernetes does: a failing messageExpression falls back to message
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text.strip():
            return text.strip()
    return validation.message or f"failed expression: {validation.expression}"


def _failing_variable(compiled: CompiledRule, item: CompiledValidation, context: Any,
                      unavailable: dict[str, str]) -> str | None:
    """``variables.NAME: <its error>`` when a variable the validation uses is what fails."""
    from tbyte_policy import k8s_cel

    for name in item.variables:
        if name in unavailable:
            return f"variables.{name}: {unavailable[name]}"
        try:
            compiled.variables[name].execute(context)
        except Exception as exc:
            return f"variables.{name}: {k8s_cel.error_text(exc)}"
    return None
