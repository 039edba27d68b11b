"""YAML scalars and mapping keys read the way Kubernetes reads them.

Kubernetes decodes YAML with sigs.k8s.io/yaml: go-yaml v2 builds Go values (``resolve.go``, ``decode.go``),
``yaml.go`` turns map keys into strings and the result into JSON, and the API server decodes that JSON with
sigs.k8s.io/json's PreserveInts (an int64 where the number has no ``.`` and fits, a float64 otherwise).
This module follows that pipeline for one scalar, so that the scanner sees the values the API server sees:

- ``resolve_plain``: what go-yaml v2 makes of an untagged plain scalar: YAML 1.1 booleans with ``y``/``n``,
  Go's integer syntax (``0o``, ``0x``, ``0b``, leading-zero octal, ``_`` anywhere), no base 60, a float
  syntax with optional dot and exponent sign, timestamps kept as text; everything else is a string.
- ``resolve_tagged``: the same under an explicit tag (``!!int "12"``); a value that does not fit its tag
  is an error, and a tag go-yaml does not know leaves the text as a string.
- ``json_value``: the Python value of the JSON number, boolean, null or string that scalar becomes.
- ``key_text``: the string a non-string mapping key becomes.

tests/test_yaml_dialect.py has the table of every form, each with the source it was taken from.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import math
import struct
from typing import Any

from tbyte_policy.lazyre import lazy_compile

TAG_PREFIX = "tag:yaml.org,2002:"
STR_TAG = TAG_PREFIX + "str"
INT_TAG = TAG_PREFIX + "int"
FLOAT_TAG = TAG_PREFIX + "float"
BOOL_TAG = TAG_PREFIX + "bool"
NULL_TAG = TAG_PREFIX + "null"
TIMESTAMP_TAG = TAG_PREFIX + "timestamp"
BINARY_TAG = TAG_PREFIX + "binary"
MERGE_TAG = TAG_PREFIX + "merge"

# The kinds of Go value go-yaml v2 resolves a scalar to; "uint" is a uint64 (2^63 <= n < 2^64), "timestamp"
# a time.Time that decode.go hands back as its source text when the target is interface{}.
STR, BOOL, NULL, INT, UINT, FLOAT, TIMESTAMP = "str", "bool", "null", "int", "uint", "float", "timestamp"
TAG_OF_KIND = {STR: STR_TAG, BOOL: BOOL_TAG, NULL: NULL_TAG, INT: INT_TAG, UINT: INT_TAG, FLOAT: FLOAT_TAG,
               TIMESTAMP: STR_TAG}
# The tags go-yaml resolves (resolve.go resolvableTag); any other tag leaves the text as a string.
_RESOLVABLE_TAGS = {BOOL_TAG: BOOL, INT_TAG: INT, FLOAT_TAG: FLOAT, NULL_TAG: NULL, TIMESTAMP_TAG: TIMESTAMP}

_INT64_MIN, _INT64_LIMIT, _UINT64_LIMIT = -(1 << 63), 1 << 63, 1 << 64

# resolve.go resolveMap: exact spellings, looked up for every scalar whose first character has a hint.
_EXACT: dict[str, tuple[str, Any]] = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), (BOOL, True)),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), (BOOL, False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), (NULL, None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), (FLOAT, math.nan)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), (FLOAT, math.inf)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), (FLOAT, -math.inf)),
}
# resolve.go resolveTable: the first character's hint. Any other first character makes a string at once.
_NUMBER_START = frozenset("+-0123456789")
_EXACT_ONLY_START = frozenset("yYnNtTfFoO~")

# Every character an integer or a float in Go's syntax may have (signs, 0x/0o/0b, hex digits, "_", ".", "e").
_NUMBER_CHARACTERS = frozenset("0123456789abcdefABCDEFxXoO+-._")
# strconv.ParseInt(s, 0, 64) after go-yaml removed every "_": a sign, then 0b/0o/0x with at least one digit,
# a leading 0 for octal, or decimal.
_GO_INT = lazy_compile(r"(?P<sign>[-+]?)(?:0[bB](?P<binary>[01]+)|0[oO](?P<octal>[0-7]+)|0[xX](?P<hex>[0-9a-fA-F]+)"
                     r"|0(?P<zero_octal>[0-7]*)|(?P<decimal>[1-9][0-9]*))")
_GO_INT_BASES = {"binary": 2, "octal": 8, "hex": 16, "zero_octal": 8, "decimal": 10}
# resolve.go yamlStyleFloat, matched after the "_" are removed.
_YAML_STYLE_FLOAT = lazy_compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
# strconv.ParseFloat on a scalar that starts with ".", "_" kept: Go allows it only between digits.
_LEADING_DOT_FLOAT = lazy_compile(r"\.[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+(?:_[0-9]+)*)?")

# resolve.go allowedTimestampFormats, as time.Parse reads them: "2006-1-2T15:4:5.999999999Z07:00" (also with a
# lower-case t), "2006-1-2 15:4:5.999999999" and "2006-1-2". Month, day, hour, minute and second take one or
# two digits; the fraction any number of digits after "." or ",".
_TIMESTAMP = lazy_compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
                        r"(?:([Tt ])([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,][0-9]+)?"
                        r"(Z|[-+]([0-9]{2}):([0-9]{2}))?)?")
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class ScalarError(ValueError):
    """A scalar Kubernetes cannot decode; the message never quotes the value (it may be a secret)."""


def resolve_plain(text: str) -> tuple[str, Any]:
    """go-yaml v2's ``resolve("", text)``: the kind of Go value an untagged plain scalar becomes, and that value."""
    first = text[:1]
    if first in _NUMBER_START:
        return _EXACT.get(text) or _number(text)
    if first == ".":
        return _EXACT.get(text) or _leading_dot_float(text)
    if first in _EXACT_ONLY_START or not text:
        return _EXACT.get(text, (STR, text))
    return STR, text


def resolve_tagged(tag: str, text: str) -> tuple[str, Any]:
    """go-yaml v2's decoding of a scalar with an explicit tag (``!!int "12"``, ``!foo bar``)."""
    if tag == STR_TAG:
        return STR, text
    if tag == BINARY_TAG:
        return STR, _binary_text(text)
    wanted = _RESOLVABLE_TAGS.get(tag)
    if wanted is None:
        return STR, text
    kind, value = resolve_plain(text)
    if kind == wanted or (wanted == INT and kind == UINT):
        return kind, value
    if wanted == FLOAT and kind == INT:
        return FLOAT, float(value)
    raise ScalarError(f"a value does not fit its explicit YAML tag !!{tag[len(TAG_PREFIX):]}")


def json_value(kind: str, value: Any, json_numbers: bool = False) -> Any:
    """The Python value of what the scalar is after sigs.k8s.io/yaml's JSON and sigs.k8s.io/json's decode.

    Go's encoding/json writes an integral float64 without a fraction below 1e21 (``1e3`` and ``1.0`` become
    ``1000`` and ``1``), which PreserveInts reads as an int64 when it fits; uint64 and larger numbers are
    float64. ``json_numbers`` is for JSON text, which Kubernetes decodes as written: ``1.0`` stays a float.
    """
    if kind == FLOAT:
        if math.isinf(value) or math.isnan(value):
            raise ScalarError("an infinite or NaN number (.inf, .nan): Kubernetes cannot convert it to JSON and "
                              "refuses the document; quote it for a string")
        if json_numbers or not value.is_integer() or abs(value) >= 1e21:
            return value
        number = int(value) if abs(value) < 2 ** 53 else _shortest_digits(value)
        return number if _INT64_MIN <= number < _INT64_LIMIT else value
    if kind == UINT:
        return float(value)
    return value


def key_text(kind: str, value: Any) -> str:
    """The string sigs.k8s.io/yaml (yaml.go convertToJSONableObject) makes of a mapping key."""
    if kind in (STR, TIMESTAMP):
        return value
    if kind == BOOL:
        return "true" if value else "false"
    if kind == INT:
        return str(value)
    if kind == FLOAT:
        return _float32_text(value)
    if kind == NULL:
        raise ScalarError("a null mapping key: Kubernetes cannot convert it to JSON and refuses the document "
                          "(unsupported map key)")
    raise ScalarError("a mapping key that is an integer of 2^63 or more: Kubernetes cannot convert it to JSON and "
                      "refuses the document (unsupported map key)")


def _number(text: str) -> tuple[str, Any]:
    # resolve.go, hints 'D' and 'S': a timestamp, then ParseInt, ParseUint, then the float syntax. The common
    # cases (a port, a quantity such as 128Mi) are decided without a pattern.
    start = text[:4]
    if text[4:5] == "-" and start.isdigit() and start.isascii():  # parseTimestamp's quick check: YYYY-
        return (TIMESTAMP if _is_timestamp(text) else STR), text
    if text.isdigit() and text.isascii() and len(text) < 19 and (text[0] != "0" or len(text) == 1):
        return INT, int(text)
    if not _NUMBER_CHARACTERS.issuperset(text):
        return STR, text
    plain = text.replace("_", "")
    match = _GO_INT.fullmatch(plain)
    if match:
        sign = match["sign"]
        base_name = next(name for name in _GO_INT_BASES if match[name] is not None)
        digits = match[base_name].lstrip("0") or "0"
        # More than 64 digits overflow 64 bits in any base (and would pass Python's limit on int() of text).
        number = int(digits, _GO_INT_BASES[base_name]) if len(digits) <= 64 else _UINT64_LIMIT
        signed = -number if sign == "-" else number
        if _INT64_MIN <= signed < _INT64_LIMIT:
            return INT, signed
        if not sign and number < _UINT64_LIMIT:  # ParseUint takes no sign
            return UINT, number
    if _YAML_STYLE_FLOAT.fullmatch(plain):
        floating = float(plain)
        if not math.isinf(floating):  # ParseFloat's range error: the text stays a string
            return FLOAT, floating
    return STR, text


def _shortest_digits(value: float) -> int:
    # The integer Go writes for a large integral float64: the shortest digits that read back as it, then zeros
    # (9223372036854775809 is written 9223372036854776000, which no longer fits an int64).
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    fraction = fraction.rstrip("0")
    return int(whole + fraction) * 10 ** (int(exponent or 0) - len(fraction))


def _leading_dot_float(text: str) -> tuple[str, Any]:
    if _LEADING_DOT_FLOAT.fullmatch(text):
        floating = float(text.replace("_", ""))
        if not math.isinf(floating):
            return FLOAT, floating
    return STR, text


def _is_timestamp(text: str) -> bool:
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return False
    year, month, day, separator, hour, minute, second, zone, zone_hour, zone_minute = match.groups()
    year, month, day = int(year), int(month), int(day)
    if not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _DAYS_IN_MONTH[month - 1] + (month == 2 and leap):
        return False
    if separator is None:
        return True
    if (separator == " ") == (zone is not None):  # the space form has no zone; the T/t forms need one
        return False
    if int(hour) >= 24 or int(minute) >= 60 or int(second) >= 60:
        return False
    return zone_hour is None or (int(zone_hour) <= 24 and int(zone_minute) <= 60)


def _binary_text(text: str) -> str:
    # decode.go: base64 (StdEncoding, which skips line breaks) into a Go string; encoding/json then writes
    # each byte that is not valid UTF-8 as U+FFFD.
    try:
        data = base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise ScalarError("a !!binary value is not valid base64") from None
    return data.decode("utf-8", _EACH_BAD_BYTE)


def _replace_one_byte(error: UnicodeError) -> tuple[str, int]:
    # utf8.DecodeRune, which encoding/json uses, takes an invalid sequence one byte at a time.
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "\ufffd", error.start + 1


_EACH_BAD_BYTE = "tbyte_policy.replace_each_bad_byte"
codecs.register_error(_EACH_BAD_BYTE, _replace_one_byte)


def _float32(value: float) -> float:
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def _float32_text(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32), with yaml.go's names for infinities and NaN."""
    if math.isnan(value):
        return ".nan"
    single = _float32(value)
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    if single == 0:
        return "-0" if math.copysign(1, single) < 0 else "0"
    for precision in range(1, 10):  # the shortest decimal that reads back as the same float32
        mantissa, exponent = f"{single:.{precision - 1}e}".split("e")
        if _float32(float(f"{mantissa}e{exponent}")) == single:
            break
    sign = "-" if single < 0 else ""
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    exponent_value = int(exponent)
    if exponent_value < -4 or exponent_value >= 6:  # %e when shortest: Go decides with precision 6
        fraction = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{fraction}e{'-' if exponent_value < 0 else '+'}{abs(exponent_value):02d}"
    point = exponent_value + 1
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"
