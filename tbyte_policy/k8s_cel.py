"""Kubernetes CEL on ``common-expression-language`` (import name ``cel``: the Rust cel-rust interpreter).

What this module adds to the library, which only parses and evaluates:

- the library is loaded lazily and without its command-line tool (``cel/__init__.py`` imports typer, rich,
  prompt_toolkit and pygments: 150-190 ms, against 6-15 ms for the extension module alone);
- the Kubernetes CEL libraries that cel-rust lacks, as Python functions: ``quantity()``, ``isQuantity()``
  and the Quantity methods, ``url()``/``isURL()`` and the URL getters, regex ``find``/``findAll``, the
  list library (``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``, ``lastIndexOf``) and the strings
  extension (cel-rust's ``cel.stdlib`` implementations, dispatched by receiver type where Kubernetes
  overloads a name). cel-rust cannot carry an opaque Python value, so a Quantity or a URL is a tagged map
  holding its canonical form: ``quantity('1Gi') == quantity('1024Mi')`` holds, as in Kubernetes;
- checks at compile time that the library does not make (it has no type checker): unknown identifiers,
  unknown functions and functions Kubernetes does not provide, ``variables.X`` of undeclared variables,
  comprehension variables that shadow ``object``/``params``/..., syntax cel-rust does not support
  (``cel.bind``, ``.?``/``[?]``), and type errors in the parts of an expression whose types are known
  without the object (``1 + 'a'``, ``size(1)``, a validation that is a string literal);
- errors turned into short, Kubernetes-like messages (``no such key: spec``).

No function registered here reads files, the network, the clock or the environment, and cel-rust's own
standard library has none that does: an expression can only compute on the values it is given.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import json
import logging
import math
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from decimal import Decimal
from types import ModuleType
from typing import Any, NamedTuple

from tbyte_policy.quantity import EXACT, QuantityError, add_quantities, exact_text, parse_quantity_text

INSTALL_HINT = "CEL rules need the cel extra: pip install 'tbyte-policy[cel]'"
ROOTS = frozenset({"object", "oldObject", "namespaceObject", "params", "variables", "request", "authorizer"})
# Roots a scan can give a value: the others (request, oldObject, authorizer) exist only at admission.
SCAN_ROOTS = frozenset({"object", "oldObject", "namespaceObject", "params", "variables"})


class CelUnavailable(Exception):
    """The cel extra is not installed."""


class CelCompileError(ValueError):
    """An expression that cannot run: ``line``/``column`` are within the expression (1-based), when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.message, self.line, self.column = message, line, column
        super().__init__(message if line is None else f"{message} (expression line {line}, column {column})")


# --- loading the library -------------------------------------------------------------------------------------

@functools.cache
def library() -> ModuleType:
    """The ``cel`` extension module, loaded without the package's ``__init__`` (which imports its CLI).

    The extension (``cel.cel``) and ``cel.stdlib`` are registered under their own names, so a later
    ``import cel`` finds them and imports only what is left.
    """
    if "cel" in sys.modules and hasattr(sys.modules["cel"], "compile"):
        return sys.modules["cel"].cel if hasattr(sys.modules["cel"], "cel") else sys.modules["cel"]
    try:
        spec = importlib.util.find_spec("cel")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    extension = next((os.path.join(folder, name) for folder in locations for name in sorted(os.listdir(folder))
                      if name.startswith("cel.") and name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))),
                     None)
    if extension is None or not os.path.isfile(os.path.join(locations[0], "stdlib.py")):
        raise CelUnavailable(INSTALL_HINT)
    module = _load("cel.cel", extension, importlib.machinery.ExtensionFileLoader)
    _load("cel.stdlib", os.path.join(locations[0], "stdlib.py"), importlib.machinery.SourceFileLoader)
    # A Python function that raises is logged by the extension as a WARNING; we report the error ourselves.
    logging.getLogger("cel").setLevel(logging.CRITICAL)
    return module


def _load(name: str, path: str, loader_class: Any) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    loader = loader_class(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _stdlib() -> ModuleType:
    library()
    return sys.modules["cel.stdlib"]


# --- the Kubernetes libraries --------------------------------------------------------------------------------

_QUANTITY_TAG = "__k8s_quantity__"
_URL_TAG = "__k8s_url__"


def _quantity_value(text: Any) -> Decimal:
    if not isinstance(text, str):
        raise ValueError("quantity() takes a string")
    try:
        return parse_quantity_text(text)  # resource.ParseQuantity, as Kubernetes' quantity() calls it
    except QuantityError:
        raise ValueError("not a valid quantity") from None


def _as_quantity(value: Decimal) -> dict:
    return {_QUANTITY_TAG: exact_text(value)}


def _of_quantity(value: Any) -> Decimal:
    if isinstance(value, dict) and _QUANTITY_TAG in value:
        return Decimal(value[_QUANTITY_TAG])
    raise ValueError("no such overload: expected a Quantity")


def _quantity_or_int(value: Any) -> Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return _of_quantity(value)


def quantity(text: Any) -> dict:
    return _as_quantity(_quantity_value(text))


def is_quantity(text: Any) -> bool:
    try:
        _quantity_value(text)
    except ValueError:
        return False
    return True


def _sum(a: Decimal, b: Decimal) -> dict:
    try:
        return _as_quantity(add_quantities(a, b))
    except QuantityError as error:
        raise ValueError(str(error)) from None


def _compare(a: Decimal, b: Decimal) -> int:
    return (a > b) - (a < b)


def _is_integer(value: Any) -> bool:
    number = _of_quantity(value)
    return -(2**63) <= number < 2**63 and number == number.to_integral_value(context=EXACT)


def _as_integer(value: Any) -> int:
    if not _is_integer(value):
        raise ValueError("cannot convert value to integer")
    return int(_of_quantity(value))


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


@functools.lru_cache(maxsize=1024)
def _split_url(raw: str) -> urllib.parse.SplitResult:
    # Go's url.ParseRequestURI, which Kubernetes' url() uses: an absolute URI or an absolute path.
    if not (raw.startswith("/") or _SCHEME.match(raw)) or any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise ValueError("URL is not an absolute URI or an absolute path")
    parts = urllib.parse.urlsplit(raw, allow_fragments=False)
    _ = parts.port  # a bad port raises ValueError
    return parts


def url(text: Any) -> dict:
    if not isinstance(text, str):
        raise ValueError("url() takes a string")
    _split_url(text)
    return {_URL_TAG: text}


def is_url(text: Any) -> bool:
    try:
        url(text)
    except ValueError:
        return False
    return True


def _of_url(value: Any) -> urllib.parse.SplitResult:
    if isinstance(value, dict) and _URL_TAG in value:
        return _split_url(value[_URL_TAG])
    raise ValueError("no such overload: expected a URL")


def _host(value: Any) -> str:
    return _of_url(value).netloc.rpartition("@")[2]


def _hostname(value: Any) -> str:
    host = _host(value)
    if host.startswith("["):
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if ":" in host else host


def _port(value: Any) -> str:
    host = _host(value)
    if host.startswith("["):
        rest = host[host.index("]") + 1:]
        return rest[1:] if rest.startswith(":") else ""
    return host.rsplit(":", 1)[1] if ":" in host else ""


def _query(value: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, item in urllib.parse.parse_qsl(_of_url(value).query, keep_blank_values=True):
        found.setdefault(key, []).append(item)
    return found


@functools.lru_cache(maxsize=512)
def _pattern(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None


def find(text: Any, pattern: Any) -> str:
    match = _pattern(pattern).search(text)
    return match.group(0) if match else ""


def find_all(text: Any, pattern: Any, limit: int = -1) -> list[str]:
    found = [match.group(0) for match in _pattern(pattern).finditer(text)]
    return found if limit < 0 else found[:limit]


def _comparable(items: list) -> list:
    kinds = {"number" if isinstance(item, int | float) and not isinstance(item, bool) else type(item).__name__
             for item in items}
    if len(kinds) > 1 or kinds & {"dict", "list", "NoneType"}:
        raise ValueError("no such overload: list elements are not comparable")
    return items


def _cel_equal(a: Any, b: Any) -> bool:
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def is_sorted(items: list) -> bool:
    _comparable(items)
    return all(items[index] <= items[index + 1] for index in range(len(items) - 1))


def list_min(items: Any, *more: Any) -> Any:
    values = [items, *more] if more else items
    if not values:
        raise ValueError("min called on an empty list")
    return min(_comparable(values))


def list_max(items: Any, *more: Any) -> Any:
    values = [items, *more] if more else items
    if not values:
        raise ValueError("max called on an empty list")
    return max(_comparable(values))


def index_of(target: Any, item: Any, *offset: int) -> int:
    if isinstance(target, str):
        return _stdlib().index_of(target, item, *offset)
    if isinstance(target, list):
        return next((index for index, value in enumerate(target) if _cel_equal(value, item)), -1)
    raise ValueError("no such overload")


def last_index_of(target: Any, item: Any, *offset: int) -> int:
    if isinstance(target, str):
        return _stdlib().last_index_of(target, item, *offset)
    if isinstance(target, list):
        return next((index for index in range(len(target) - 1, -1, -1) if _cel_equal(target[index], item)), -1)
    raise ValueError("no such overload")


_VERB = re.compile(r"%(?:(%)|(?:\.(\d+))?([sdfeExXob]))")


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_format_value(key)}: {_format_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(value)


def string_format(template: Any, arguments: Any) -> str:
    """cel-go's ``strings.format`` for the verbs %s %d %f %e %E %x %X %o %b (with ``.N`` precision) and %%."""
    values = iter(arguments)

    def substitute(match: re.Match) -> str:
        if match.group(1):
            return "%"
        precision, verb = match.group(2), match.group(3)
        try:
            value = next(values)
        except StopIteration:
            raise ValueError("format: not enough arguments") from None
        if verb == "s":
            return _format_value(value)
        if verb == "d":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("format: %d takes an integer")
            return str(value)
        if verb in "feE":
            return f"{float(value):.{6 if precision is None else int(precision)}{verb}}"
        if verb in "xX":
            text = value.hex() if isinstance(value, bytes) else format(value, verb) if isinstance(value, int) \
                else str(value).encode().hex()
            return text.upper() if verb == "X" else text
        return format(value, verb)  # o, b

    return _VERB.sub(substitute, template)


def _reverse(value: Any) -> Any:
    return _stdlib().reverse(value)


def _from_stdlib(name: str) -> Callable[..., Any]:
    def call(*arguments: Any) -> Any:
        return getattr(_stdlib(), name)(*arguments)
    call.__name__ = name
    return call


# CEL name -> implementation. Only functions that Kubernetes' CEL environment provides.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "quantity": quantity, "isQuantity": is_quantity,
    "sign": lambda q: _compare(_of_quantity(q), Decimal(0)),
    "isGreaterThan": lambda a, b: _of_quantity(a) > _of_quantity(b),
    "isLessThan": lambda a, b: _of_quantity(a) < _of_quantity(b),
    "compareTo": lambda a, b: _compare(_of_quantity(a), _of_quantity(b)),
    "add": lambda a, b: _sum(_of_quantity(a), _quantity_or_int(b)),
    "sub": lambda a, b: _sum(_of_quantity(a), _quantity_or_int(b).copy_negate()),
    "isInteger": _is_integer, "asInteger": _as_integer,
    "asApproximateFloat": lambda q: float(_of_quantity(q)),
    "url": url, "isURL": is_url,
    "getScheme": lambda u: _of_url(u).scheme, "getHost": _host, "getHostname": _hostname, "getPort": _port,
    "getEscapedPath": lambda u: urllib.parse.quote(_of_url(u).path, safe="/%:@!$&'()*+,;=~"),
    "getQuery": _query,
    "find": find, "findAll": find_all,
    "isSorted": is_sorted, "sum": _from_stdlib("sum_"), "min": list_min, "max": list_max,
    "indexOf": index_of, "lastIndexOf": last_index_of,
    "charAt": _from_stdlib("char_at"), "lowerAscii": _from_stdlib("lower_ascii"),
    "upperAscii": _from_stdlib("upper_ascii"), "replace": _from_stdlib("replace"), "split": _from_stdlib("split"),
    "substring": _from_stdlib("substring"), "trim": _from_stdlib("trim"), "join": _from_stdlib("join"),
    "format": string_format, "strings.quote": _from_stdlib("quote"), "reverse": _reverse,
}
# What cel-rust resolves itself (measured), all of them in Kubernetes' environment too.
NATIVE_FUNCTIONS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string", "bytes",
    "timestamp", "duration", "dyn", "type", "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate",
    "getDayOfWeek", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
})
_MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})
# Type names, for `type(x) == map`.
_TYPE_NAMES = frozenset({"bool", "int", "uint", "double", "string", "bytes", "list", "map", "null_type", "type"})
_NAMESPACES = frozenset(name.split(".", 1)[0] for name in FUNCTIONS if "." in name)
KNOWN_FUNCTIONS = frozenset({name.rsplit(".", 1)[-1] for name in FUNCTIONS} | NATIVE_FUNCTIONS)
# Names of Kubernetes libraries that cel-rust cannot run: said so, rather than "unknown function".
_UNSUPPORTED = {
    "bind": "cel.bind is not supported by the CEL library tbyte-policy uses (cel-rust); use a variable",
    "ip": "the IP library (ip(), cidr()) is not supported", "isIP": "the IP library (ip(), cidr()) is not supported",
    "cidr": "the IP library (ip(), cidr()) is not supported",
    "isCIDR": "the IP library (ip(), cidr()) is not supported",
    "semver": "the semver library is not supported", "isSemver": "the semver library is not supported",
    "authorizer": "authorizer checks need the API server; they are not supported",
    "optional": "optional values are not supported",
}


# --- lexing: where strings, identifiers and member accesses are ----------------------------------------------

class Token(NamedTuple):
    kind: str  # ident, number, string, punct
    text: str
    start: int
    end: int


_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"
                                          |'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>==|!=|<=|>=|&&|\|\||\.\?|\[\?|[-+*/%!<>?:.,()\[\]{}]|.)
""", re.VERBOSE | re.DOTALL)


@functools.lru_cache(maxsize=4096)
def tokens(source: str) -> tuple[Token, ...]:
    """CEL's tokens, without spaces and comments; a character CEL does not know is a ``punct`` of its own
    (the parser reports it)."""
    return tuple(Token(match.lastgroup or "punct", match.group(), match.start(), match.end())
                 for match in _TOKEN.finditer(source) if match.lastgroup != "space")


def _line_column(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


def _free_identifiers(found: tuple[Token, ...]) -> Iterator[int]:
    """Indexes of identifier tokens that are not a member name (``a.b``: ``b``) nor a map key (``{b: 1}``
    keys are expressions in CEL, so they are free too)."""
    for index, token in enumerate(found):
        if token.kind == "ident" and not (index and found[index - 1].text in (".", ".?")):
            yield index


def variable_references(source: str) -> list[tuple[str, int]]:
    """``variables.NAME`` references: (NAME, offset of ``variables``)."""
    found = tokens(source)
    return [(found[index + 2].text, found[index].start) for index in _free_identifiers(found)
            if found[index].text == "variables" and index + 2 < len(found) and found[index + 1].text == "."
            and found[index + 2].kind == "ident"]


def object_keys(source: str) -> frozenset[str] | None:
    """The top-level keys of ``object`` an expression reads (``object.spec``, ``has(object.metadata)``), or None
    when it uses the object whole (``object == x``, ``size(object)``, ``object['spec']``, ``object.all(...)``)."""
    found = tokens(source)
    keys = set()
    for index in _free_identifiers(found):
        if found[index].text != "object":
            continue
        follows = [token.text for token in found[index + 1:index + 4]]
        if len(follows) < 2 or follows[0] != "." or found[index + 2].kind != "ident" or follows[2:3] == ["("]:
            return None
        keys.add(follows[1])
    return frozenset(keys)


def comprehension_variables(found: tuple[Token, ...]) -> set[str]:
    return {found[index + 3].text for index in range(len(found) - 4)
            if found[index].text == "." and found[index + 1].text in ("all", "exists", "exists_one", "map", "filter")
            and found[index + 2].text == "(" and found[index + 3].kind == "ident"
            and found[index + 4].text in (",",)}


def substitute(source: str, replacements: dict[str, str]) -> str:
    """``source`` with free identifiers (``params``) or ``variables.NAME`` references replaced by the text
    given for them (``params`` / ``variables.NAME`` as keys), parenthesised. Only hygienic because
    comprehension variables may not shadow a root (``check_expression`` refuses it)."""
    found = tokens(source)
    edits: list[tuple[int, int, str]] = []
    for index in _free_identifiers(found):
        token = found[index]
        if token.text == "variables" and index + 2 < len(found) and found[index + 1].text == "." \
                and found[index + 2].kind == "ident":
            key = f"variables.{found[index + 2].text}"
            if key in replacements:
                # has(variables.x) asks whether the variable exists, which a declared one always does.
                inside_has = index >= 2 and found[index - 1].text == "(" and found[index - 2].text == "has" \
                    and index + 3 < len(found) and found[index + 3].text == ")"
                if inside_has:
                    edits.append((found[index - 2].start, found[index + 3].end, "true"))
                else:
                    edits.append((token.start, found[index + 2].end, f"({replacements[key]})"))
        elif token.text in replacements:
            edits.append((token.start, token.end, f"({replacements[token.text]})"))
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    return source


def literal(value: Any) -> str:
    """A CEL literal of a YAML/JSON value (a rule's params)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"integer {value} does not fit CEL's int")
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"{value} has no CEL literal")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(str(key))}: {literal(item)}" for key, item in value.items()) + "}"
    raise ValueError(f"a {type(value).__name__} has no CEL literal")


# --- compiling -----------------------------------------------------------------------------------------------

_PARSE_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")


def check_expression(source: str, declared: frozenset[str] = frozenset(), roots: frozenset[str] = ROOTS) -> Any:
    """Compile ``source`` and make the checks cel-rust does not: the Program, or CelCompileError.

    ``declared``: the names ``variables.NAME`` may use.
    """
    if not isinstance(source, str) or not source.strip():
        raise CelCompileError("the expression is empty")
    found = tokens(source)
    for token in found:
        if token.text in (".?", "[?"):
            raise CelCompileError("optional field selection (.? and [?]) is not supported by the CEL library "
                                  "tbyte-policy uses (cel-rust)", *_line_column(source, token.start))
    binders = comprehension_variables(found)
    for token in found:
        if token.kind == "ident" and token.text in binders & ROOTS:
            raise CelCompileError(f"comprehension variable {token.text!r} shadows the variable of that name",
                                  *_line_column(source, token.start))
    for index in _free_identifiers(found):
        token = found[index]
        follows_dot = index + 2 < len(found) and found[index + 1].text == "."
        if token.text == "cel" and follows_dot and found[index + 2].text == "bind":
            raise CelCompileError(_UNSUPPORTED["bind"], *_line_column(source, token.start))
    for name, offset in variable_references(source):
        if name not in declared:
            raise CelCompileError(f"undeclared variable {name!r} (variables.{name}"
                                  f"{'; declared: ' + ', '.join(sorted(declared)) if declared else ''})",
                                  *_line_column(source, offset))
    try:
        program = library().compile(source)
    except ValueError as exc:
        text = str(exc)
        match = _PARSE_POSITION.search(text)
        if match:
            line, column = int(match.group(1)), int(match.group(2))
            raise CelCompileError(f"syntax error: {match.group(3).strip()}", line, column) from None
        raise CelCompileError(f"syntax error: {text.splitlines()[0]}") from None
    references = program.references()
    for name in references["variables"]:
        if name in roots or name in binders or name in _NAMESPACES or name in _TYPE_NAMES:
            continue
        where = _first_identifier(source, found, name)
        if name in ROOTS:
            raise CelCompileError(f"{name!r} exists only at admission; a scan has no value for it", *where)
        if name in _UNSUPPORTED:
            raise CelCompileError(_UNSUPPORTED[name], *where)
        raise CelCompileError(f"undeclared reference to {name!r} (known: {', '.join(sorted(roots))})", *where)
    for name in references["functions"]:
        if name[0] in "_@!" or name in KNOWN_FUNCTIONS or name in _MACROS:
            continue
        where = _first_identifier(source, found, name)
        raise CelCompileError(_UNSUPPORTED.get(name, f"undeclared reference to function {name!r}"), *where)
    problem = _literal_type_error(found)
    if problem is not None:
        message, offset = problem
        raise CelCompileError(message, *_line_column(source, offset))
    return program


def _first_identifier(source: str, found: tuple[Token, ...], name: str) -> tuple[int | None, int | None]:
    token = next((token for token in found if token.kind == "ident" and token.text == name), None)
    return _line_column(source, token.start) if token else (None, None)


def _literal_kind(token: Token) -> str | None:
    if token.kind == "string":
        return "bytes" if token.text.lstrip("rR")[:1] in "bB" else "string"
    if token.kind == "number":
        if token.text[-1] in "uU":
            return "uint"
        return "double" if any(c in token.text for c in ".eE") and not token.text.lower().startswith("0x") else "int"
    if token.kind == "ident" and token.text in ("true", "false"):
        return "bool"
    if token.kind == "ident" and token.text == "null":
        return "null"
    return None


_ARITHMETIC = {"+": {"int", "uint", "double", "string", "bytes"}, "-": {"int", "uint", "double"},
               "*": {"int", "uint", "double"}, "/": {"int", "uint", "double"}, "%": {"int", "uint"}}
_NUMERIC = {"int", "uint", "double"}
_PRECEDENCE = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "in": 3,
               "+": 4, "-": 4, "*": 5, "/": 5, "%": 5}


def _literal_type_error(found: tuple[Token, ...]) -> tuple[str, int] | None:
    """A type error between literals, the one kind of type error knowable without a checker and the object:
    ``1 + 'a'``, ``'a' < 1``, ``!'a'``, ``'a' && true``."""
    for index in range(1, len(found) - 1):
        operator = found[index].text
        precedence = _PRECEDENCE.get(operator) if found[index].kind == "punct" else None
        if precedence is None:
            continue
        before = found[index - 2].text if index >= 2 else "("
        after = found[index + 2].text if index + 2 < len(found) else ")"
        # Only when each operand is the literal itself, not part of a larger operand (a.b + 1, a * 2 + 'x').
        if before in (".", "!", "-") or _PRECEDENCE.get(before, 0) >= precedence \
                or after in (".", "(", "[") or _PRECEDENCE.get(after, 0) > precedence:
            continue
        a, b = _literal_kind(found[index - 1]), _literal_kind(found[index + 1])
        if a is None or b is None:
            continue
        if operator in _ARITHMETIC and (a != b or a not in _ARITHMETIC[operator]):
            return f"no such overload: {a} {operator} {b}", found[index].start
        if operator in ("<", "<=", ">", ">=") and not ((a == b and a not in ("null", "bool")) or {a, b} <= _NUMERIC):
            return f"no such overload: {a} {operator} {b}", found[index].start
        if operator in ("&&", "||") and not a == b == "bool":
            return f"no such overload: {a} {operator} {b} (&& and || take bool)", found[index].start
    for index, token in enumerate(found[:-1]):
        operand = _literal_kind(found[index + 1])
        after = found[index + 2].text if index + 2 < len(found) else ")"
        if token.text == "!" and operand not in (None, "bool") and after not in (".", "(", "["):
            return f"no such overload: !{operand}", token.start
    return None


def result_kind(source: str) -> str | None:
    """The type of an expression that is a single literal (``'true'``), else None (unknown without a checker)."""
    found = tokens(source)
    return _literal_kind(found[0]) if len(found) == 1 else None


# --- evaluating ----------------------------------------------------------------------------------------------

_PYTHON_FUNCTION = re.compile(r"Function '([^']+)' error: (?:Python function call failed: \w+: )?(.*?)"
                              r"(?:\. Check function arguments and their types\.)?$", re.S)
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']+)'")
# What a library error may quote of the value it failed on (cel-rust's duration() quotes its input): left out,
# since an object's values may be secret.
_QUOTED = re.compile(r"""'[^']*'|"[^"]*"|`[^`]*`""")


def _scrubbed(text: str) -> str:
    return _QUOTED.sub("…", text.splitlines()[0] if text else "")[:200]


def error_text(exc: Exception) -> str:
    """The extension's exception as a short, Kubernetes-like message that quotes no value of the object (only
    names from the expression: a missing key, an undeclared identifier)."""
    text = str(exc)
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0]}" if exc.args and isinstance(exc.args[0], str) else "no such key"
    match = _UNDEFINED.search(text)
    if match:
        # cel-rust says so of a known function called with argument types it has no overload for, too.
        if match.group(1) in KNOWN_FUNCTIONS:
            return f"no matching overload for {match.group(1)!r}"
        return f"undeclared reference to {match.group(1)!r}"
    match = _PYTHON_FUNCTION.match(text)
    if match:
        return f"{match.group(1)}: {_scrubbed(match.group(2))}"
    if isinstance(exc, TypeError):
        return "no such overload: " + text.split(". CEL does not coerce")[0].split(": ", 1)[-1] \
            if "Unsupported operation" in text else "no such overload (operand types)"
    if isinstance(exc, IndexError):
        return "index out of bounds"
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, OverflowError):
        return "integer overflow"
    return _scrubbed(text) or type(exc).__name__


def context(variables: dict[str, Any]) -> Any:
    """A cel Context holding ``variables`` (converted now, once) and the Kubernetes functions."""
    return library().Context(variables=variables, functions=FUNCTIONS)
