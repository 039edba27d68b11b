"""Kubernetes and custom-resource schemas, compiled once into one validator per (version, apiVersion, kind).

The Kubernetes OpenAPI schemas come from the `kubernetes-validate` package (its strict JSON files, one
folder per release); the CRD schemas of the add-ons we know are vendored in ``_crd_schemas/``.
Calling ``kubernetes_validate.validate`` per document reloads and re-resolves a release's definitions
every time (36 s for 5,000 objects); here a release's ``_definitions.json`` is read once, the
definitions a kind reaches are gathered once, and one jsonschema-rs validator per kind is compiled on
first use and kept for the process (``benchmarks/schema_validators.py`` compares it with `jsonschema`).
The index of a release and each kind's resolved schema are also kept in the on-disk cache
(``tbyte_policy.cache``), so that a short run such as a pre-commit hook reads no schema file at all.

Importing this module reads no schema and imports neither package: that happens when a schema rule
first asks for a validator, so a run with the schema rules disabled never pays for it.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from tbyte_policy.cache import cached
from tbyte_policy.model import escape_pointer_part

LATEST = "latest"
CRD_SCHEMA_DIR = Path(__file__).parent / "_crd_schemas"
# Checks that read schema files; `--no-schema` (commands.configure_schema_rules) turns their rules off.
SCHEMA_CHECKS = frozenset({"schema-valid"})
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?$")
_RELEASE_DIR = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-local-strict$")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# Keywords whose value is a subschema, a list of subschemas, or a name -> subschema mapping.
_SUBSCHEMA = ("items", "additionalProperties", "not", "additionalItems")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_TYPE_NAMES = {"object": "an object", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "a boolean"}


class SchemaVersionError(ValueError):
    """A Kubernetes version that is not one, or one the installed kubernetes-validate has no schemas for."""


# --- versions ---

def parse_kubernetes_version(text: str | None) -> tuple[int, int] | None:
    """(major, minor) of "1.30", "v1.30" or "1.30.2"; None for "latest" (the newest we know)."""
    if text is None or text == LATEST:
        return None
    match = _VERSION.match(str(text).strip())
    if not match:
        raise SchemaVersionError(f"{text!r} is not a Kubernetes version (expected e.g. 1.30 or {LATEST})")
    return int(match.group(1)), int(match.group(2))


def release_of(version: str) -> tuple[int, int]:
    """(major, minor) of a release number such as "1.30"; "latest" is not one."""
    release = parse_kubernetes_version(version)
    if release is None:
        raise SchemaVersionError(f"{version!r} names no release")
    return release


@lru_cache(maxsize=1)
def _kubernetes_schema_root() -> Path:
    # find_spec locates the package without importing it (its import pulls in jsonschema).
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise SchemaVersionError("the kubernetes-validate package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


@lru_cache(maxsize=1)
def shipped_versions() -> tuple[str, ...]:
    """The Kubernetes minor versions the installed kubernetes-validate has strict schemas for, oldest first."""
    found = []
    for entry in _kubernetes_schema_root().iterdir():
        match = _RELEASE_DIR.match(entry.name)
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def resolve_version(requested: str | None) -> str:
    """The shipped schema release to validate ``requested`` with: the newest one not newer than it."""
    versions = shipped_versions()
    if not versions:
        raise SchemaVersionError("the installed kubernetes-validate ships no strict schemas")
    wanted = parse_kubernetes_version(requested)
    if wanted is None:
        return versions[-1]
    usable = [version for version in versions if release_of(version) <= wanted]
    if not usable or wanted > release_of(versions[-1]):
        raise SchemaVersionError(f"no Kubernetes {wanted[0]}.{wanted[1]} schemas: the installed kubernetes-validate "
                                 f"ships {versions[0]} to {versions[-1]}")
    return usable[-1]


# --- schema documents ---

def map_subschemas(schema: Any, transform: Callable[[dict, bool], dict], structural: bool = True) -> Any:
    """``schema`` rebuilt bottom-up with ``transform(node, structural)`` applied to every subschema.

    ``structural`` is False inside allOf/anyOf/oneOf/not, where a branch constrains an object whose fields
    the enclosing schema declares. Values of data keywords (enum, default, example) are left alone, so a
    field that happens to be called "description" or "properties" is never mistaken for a keyword.
    """
    if not isinstance(schema, dict):
        return schema
    node = dict(schema)
    for key in _SUBSCHEMA:
        if isinstance(node.get(key), dict):
            node[key] = map_subschemas(node[key], transform, structural and key != "not")
        elif key == "items" and isinstance(node.get(key), list):
            node[key] = [map_subschemas(item, transform, structural) for item in node[key]]
    for key in _SUBSCHEMA_LISTS:
        if isinstance(node.get(key), list):
            node[key] = [map_subschemas(branch, transform, False) for branch in node[key]]
    for key in _SUBSCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            node[key] = {name: map_subschemas(sub, transform, structural) for name, sub in node[key].items()}
    return transform(node, structural)


def _merge_type_alternatives(node: dict, structural: bool) -> dict:
    # IntOrString and Quantity are `oneOf: [{type: [string, null]}, {type: [integer, null]}]`: a null
    # matches both branches and fails the oneOf, and a wrong type yields a vague "matches no branch".
    # A plain type union says the same thing without either problem. CRDs spell int-or-string as
    # `anyOf: [{type: integer}, {type: string}]`, which this turns into the same union.
    for key in ("oneOf", "anyOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches and \
                all(isinstance(branch, dict) and set(branch) == {"type"} for branch in branches):
            types = [name for branch in branches for name in _as_list(branch["type"])]
            node.pop(key)
            node["type"] = list(dict.fromkeys([*_as_list(node.get("type", [])), *types]))
    return node


def _required_not_null(node: dict, structural: bool) -> dict:
    """Every optional field of the Kubernetes schemas accepts null, and so, through the nullable types
    they reference, do most required ones; but the API server reads `port:` with nothing after it as
    a missing port. So a required field's own schema refuses null (the report then calls it missing)."""
    properties = node.get("properties")
    if not isinstance(properties, dict):
        return node
    for name in node.get("required") or ():
        field = properties.get(name)
        if isinstance(field, dict) and "not" not in field:
            properties[name] = {**field, "not": {"type": "null"}}
    return node


def _kubernetes_node(node: dict, structural: bool) -> dict:
    return _required_not_null(_merge_type_alternatives(node, structural), structural)


def _strict_structural(node: dict, structural: bool) -> dict:
    """An OpenAPI v3 structural-schema node of a CRD as strict JSON Schema.

    The API server prunes fields a CRD does not declare, and `kubectl apply` (server-side field
    validation, strict by default) rejects them: so every declared object closes its properties,
    unless it keeps unknown fields on purpose. `nullable: true` allows null.
    """
    node = _merge_type_alternatives(node, structural)
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [*_as_list(node["type"]), "null"]
    if structural and "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        node["additionalProperties"] = False
    return node


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _subschemas(node: dict) -> Iterator[Any]:
    for key in _SUBSCHEMA:
        value = node.get(key)
        if isinstance(value, dict):
            yield value
        elif key == "items" and isinstance(value, list):
            yield from value
    for key in _SUBSCHEMA_LISTS:
        if isinstance(node.get(key), list):
            yield from node[key]
    for key in _SUBSCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            yield from node[key].values()


def _references(schema: dict, definitions: dict) -> set[str]:
    """The names of the definitions ``schema`` reaches through ``#/$defs/...`` refs, transitively."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref")
        if isinstance(ref, str) and "#/$defs/" in ref:
            name = ref.rsplit("/", 1)[1]
            if name not in found and name in definitions:
                found.add(name)
                stack.append(definitions[name])
        stack.extend(_subschemas(node))
    return found


# --- problems ---

class SchemaProblem(NamedTuple):
    pointer: str  # JSON pointer of the offending field (or of the object missing a field)
    message: str  # names the field and what the schema expects; never the field's value


def dotted_path(parts: Iterable[Any]) -> str:
    """`spec.template.spec.containers[0].livenessProbe`, the way kubectl names a field."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_$][\w$-]*", str(part)):
            text += f".{part}" if text else str(part)
        else:
            text += f"[{json.dumps(str(part))}]"
    return text or "the object"


def _pointer(parts: Iterable[Any]) -> str:
    return "".join(f"/{escape_pointer_part(part)}" for part in parts)


def _expected(types: Iterable[str]) -> str:
    wanted = set(types) - {"null"}
    names = [text for name, text in _TYPE_NAMES.items() if name in wanted]
    return " or ".join(names) if names else "null"


def _api_ready(value: Any) -> Any:
    """The document as the API server reads it: a null mapping value is an absent optional field (the
    server and CRD pruning drop it; a null required field then reads as missing), keys are strings,
    and YAML-only types (binary, sets, ordered pairs) become their JSON counterparts."""
    if isinstance(value, dict):
        return {str(key): _api_ready(item) for key, item in value.items() if item is not None}
    if isinstance(value, (list, tuple)):
        return [_api_ready(item) for item in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (set, frozenset)):
        return {str(key): {} for key in value}
    return str(value)


class KindValidator:
    """One compiled validator for one (apiVersion, kind), reused for every object of that kind."""

    def __init__(self, schema: dict, source: str):
        import jsonschema_rs  # only when a schema rule actually runs

        self.schema = schema
        self.source = source
        # Formats (date-time, int-or-string, int32) are annotations to the API server's own decoding;
        # timestamps reach us as strings already.
        self._validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=False)

    def problems(self, instance: Any) -> list[SchemaProblem]:
        try:
            if self._validator.is_valid(instance):
                return []
        except ValueError:  # a YAML type JSON does not have (non-string key, binary, set)
            pass
        # Only documents that fail take this slower path, which also forgives nulls where the API does.
        ready = _api_ready(instance)
        found: dict[tuple[str, str], SchemaProblem] = {}
        try:
            for error in self._validator.iter_errors(ready):
                for problem in self._describe(error, instance):
                    found.setdefault((problem.pointer, problem.message), problem)
        except ValueError as exc:
            # jsonschema-rs stops at its own depth limit (a few hundred levels) with a ValueError; the engine
            # reports a RecursionError as a document nested too deeply for the rule, an input error.
            if "Recursion limit" in str(exc):
                raise RecursionError(str(exc)) from None
            raise
        return list(found.values())

    def _describe(self, error: Any, original: Any) -> list[SchemaProblem]:
        path = list(error.instance_path)
        kind = error.kind
        name = kind.name
        where = f"{self.source} schema"
        if name == "additionalProperties":
            declared = self._declared_properties(error.schema_path)
            problems = []
            for field in kind.unexpected:
                hint = difflib.get_close_matches(field, declared, n=1, cutoff=0.75)
                suggestion = f"; did you mean {hint[0]}?" if hint else ""
                problems.append(SchemaProblem(_pointer([*path, field]),
                                              f"unknown field {dotted_path([*path, field])}{suggestion} "
                                              f"(not in the {where})"))
            return problems
        if name == "required":
            field = kind.property
            present = _resolve_parts(original, path)
            # `containers:` with nothing after it is present (null) in the file: point at that key.
            at = [*path, field] if isinstance(present, dict) and field in present else path
            return [SchemaProblem(_pointer(at), f"missing required field {dotted_path([*path, field])} "
                                                f"({where})")]
        field = dotted_path(path)
        if name == "type":
            message = f"{field} has the wrong type: expected {_expected(kind.types)} ({where})"
        elif name == "enum":
            options = ", ".join(str(option) for option in kind.options[:12])
            message = f"{field} must be one of: {options} ({where})"
        elif name == "pattern":
            message = f"{field} does not have the form the {where} requires (pattern {kind.pattern})"
        elif name in ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"):
            bound = "at least" if name.startswith("min") else "at most"
            unit = {"Length": "character", "Items": "item", "Properties": "field"}[name[3:]]
            message = f"{field} must have {bound} {kind.limit} {unit}{'' if kind.limit == 1 else 's'} ({where})"
        elif name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            relation = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
                        "exclusiveMaximum": "less than"}[name]
            message = f"{field} must be {relation} {kind.limit} ({where})"
        elif name in ("oneOf", "anyOf"):
            message = f"{field} matches none of the forms the {where} allows"
        elif name == "oneOfMultipleValid":
            message = f"{field} matches more than one of the mutually exclusive forms the {where} allows"
        elif name == "uniqueItems":
            message = f"{field} has duplicate items ({where})"
        elif name == "falseSchema":
            message = f"{field} is not allowed here ({where})"
        else:
            message = f"{field} does not satisfy the {where} ({name})"
        return [SchemaProblem(_pointer(path), message)]

    def _declared_properties(self, schema_path: Iterable[Any]) -> list[str]:
        node = _resolve_parts(self.schema, list(schema_path)[:-1])
        return list(node.get("properties", {})) if isinstance(node, dict) else []


def _resolve_parts(root: Any, parts: Iterable[Any]) -> Any:
    node = root
    for part in parts:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


# --- one release's schemas ---

class SchemaSet:
    """The schemas of one Kubernetes release plus the vendored CRDs; validators compiled on demand.

    Which kinds are served where, and each kind's self-contained schema, come from the on-disk cache
    (``tbyte_policy.cache``) when it has them: a warm run reads neither ``_definitions.json`` nor a CRD file.
    """

    def __init__(self, version: str):
        self.version = version
        self._directory = _kubernetes_schema_root() / f"v{version}.0-local-strict"
        self._definitions: dict | None = None
        self._builtin: dict[tuple[str, str], str] = {}
        self._crds: dict[tuple[str, str], Path] = {}
        self._served: dict[str, list[str]] | None = None
        self.builtin_groups: frozenset[str] = frozenset()
        self._validators: dict[tuple[str, str], KindValidator | None] = {}
        self._normalized_definitions: dict[str, dict] = {}
        self._sources: list[Path] | None = None

    def _cached(self, name: str, build: Callable[[], Any]) -> Any:
        if self._sources is None:
            # This module's own code is a source too: it shapes the schemas it derives from the files.
            self._sources = [self._directory / "_definitions.json", *sorted(CRD_SCHEMA_DIR.glob("*.json")),
                             Path(__file__)]
        return cached(f"schema-{self.version}-{name}", self._sources, build)

    def _load(self) -> None:
        """Which (apiVersion, kind) pairs this set serves, and from where."""
        if self._served is None:
            builtin, crds, served, groups = self._cached("index", self._index)
            self._builtin, self.builtin_groups = builtin, groups
            self._crds = {key: CRD_SCHEMA_DIR / name for key, name in crds.items()}
            self._served = served

    def _index(self) -> tuple[dict, dict, dict, frozenset]:
        builtin: dict[tuple[str, str], str] = {}
        crds: dict[tuple[str, str], str] = {}
        served: dict[str, list[str]] = {}
        groups = set()
        for name, definition in self._kubernetes_definitions().items():
            if "metadata" not in definition.get("properties", {}):
                continue
            for gvk in definition.get("x-kubernetes-group-version-kind") or ():
                api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
                if not gvk["kind"].endswith("List"):
                    builtin[(api_version, gvk["kind"])] = name
                    served.setdefault(gvk["kind"], []).append(api_version)
                    groups.add(gvk["group"])
        for path in sorted(CRD_SCHEMA_DIR.glob("*.json")):
            group, kind, version = path.stem.split("_")
            crds[(f"{group}/{version}", kind)] = path.name
            served.setdefault(kind, []).append(f"{group}/{version}")
        return builtin, crds, served, frozenset(groups)

    def _kubernetes_definitions(self) -> dict:
        if self._definitions is None:
            with (self._directory / "_definitions.json").open(encoding="utf-8") as handle:
                self._definitions = json.load(handle)["$defs"]
        return self._definitions

    def kinds(self) -> dict[tuple[str, str], str]:
        """(apiVersion, kind) -> where its schema comes from, for every schema of this set."""
        self._load()
        return {key: self.source(*key) for key in [*self._builtin, *self._crds]}

    def served(self, kind: str) -> list[str]:
        """The apiVersions that serve ``kind`` in this release (built in, or by a vendored CRD)."""
        self._load()
        return sorted((self._served or {}).get(kind, []))

    def knows_group(self, group: str) -> bool:
        """Whether every kind of ``group`` is known here: a Kubernetes group (a CRD group can hold
        kinds whose CRD we do not vendor)."""
        self._load()
        return group in self.builtin_groups

    def source(self, api_version: str, kind: str) -> str:
        self._load()
        return f"Kubernetes {self.version}" if (api_version, kind) in self._builtin else f"{api_version} {kind} CRD"

    def validator(self, api_version: str, kind: str) -> KindValidator | None:
        """The validator for ``kind`` at ``api_version``, or None when no schema serves it."""
        key = (api_version, kind)
        if key not in self._validators:
            self._validators[key] = self._compile(api_version, kind)
        return self._validators[key]

    def schema(self, api_version: str, kind: str) -> dict | None:
        """The self-contained JSON Schema (refs resolved into its own $defs) a validator is built from."""
        self._load()
        if (api_version, kind) not in self._builtin and (api_version, kind) not in self._crds:
            return None
        return self._cached(f"{api_version}-{kind}", lambda: self._build_schema(api_version, kind))

    def _build_schema(self, api_version: str, kind: str) -> dict:
        definitions = self._kubernetes_definitions()
        if (api_version, kind) in self._builtin:
            root = map_subschemas(definitions[self._builtin[(api_version, kind)]], _kubernetes_node)
            root["type"] = "object"  # a document is an object; null is only for nested optional fields
        else:
            with self._crds[(api_version, kind)].open(encoding="utf-8") as handle:
                root = map_subschemas(json.load(handle), _strict_structural)
            # A CRD declares `metadata: {type: object}`; the API server checks it as ObjectMeta.
            root["properties"] = {**root.get("properties", {}), "metadata": {"$ref": f"#/$defs/{_OBJECT_META}"}}
        root["$defs"] = {name: self._normalized(name) for name in sorted(_references(root, definitions))}
        root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        return root

    def _normalized(self, name: str) -> dict:
        if name not in self._normalized_definitions:
            self._normalized_definitions[name] = map_subschemas(self._kubernetes_definitions()[name],
                                                                _kubernetes_node)
        return self._normalized_definitions[name]

    def _compile(self, api_version: str, kind: str) -> KindValidator | None:
        schema = self.schema(api_version, kind)
        return KindValidator(schema, self.source(api_version, kind)) if schema is not None else None


@cache
def _schema_set(version: str) -> SchemaSet:
    return SchemaSet(version)


@cache
def schema_set(requested: str | None = LATEST) -> SchemaSet:
    """The process-wide schema set for a requested Kubernetes version (see ``resolve_version``); "1.30"
    and "1.30.2" share one."""
    return _schema_set(resolve_version(requested))


# --- for the CLI ---
