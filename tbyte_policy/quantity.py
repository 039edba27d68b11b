"""Kubernetes resource quantities (``resource.Quantity``: 500m, 1.5Gi, 2e3, 128974848), read as the API server
reads them.

A port of k8s.io/apimachinery/pkg/api/resource: ``parseQuantityString`` and ``ParseQuantity``
(quantity.go), the suffixer (suffix.go) and ``UnmarshalJSON``, which is how a manifest's field becomes a
Quantity. What it keeps, quirks included, because the API server keeps them:

- the grammar is scanned, not matched: a sign, leading zeros, digits, ``.`` and digits, then suffix
  characters (``eEinumkKMGTP``), an optional sign and digits. So ``.``, ``+``, ``Mi`` and ``e5`` are zero
  (no digits read as 0), ``1.`` and ``1.G`` are accepted, and ``1 Ki``, ``+-1``, ``1e``, ``0x10``, ``NaN``,
  ``Inf`` and any non-ASCII digit are rejected;
- an exponent (``e``/``E`` and a signed integer) is parsed as an int64 (beyond it: rejected) and then
  truncated to int32, and the scale arithmetic wraps in int32 as Go's does (``1e4294967296`` is 1);
- a value with more than 9 decimal places is rounded up, away from zero, to nano units (``0.1n`` is 1n);
- a binary-suffixed value above 2^63-1 is capped at 2^63-1 (``9Ei``); a decimal one is not capped at all:
  ``1e999999999`` is stored as that number, which the scheduler and kubelet (int64 arithmetic) overflow;
- a field's JSON number is parsed from its text and a JSON string from its text with Go's
  ``strings.TrimSpace`` applied (``" 1"`` is 1, although ``ParseQuantity(" 1")`` is an error).

Values are exact ``Decimal``\\ s built from their digits and exponent, never through a context's arithmetic
but ``EXACT``'s (callers' arithmetic on quantities uses it too), whose precision and exponent range no parsed
quantity reaches: nothing here can raise ``Overflow`` or ``InvalidOperation``, and comparisons are exact.
"""

from __future__ import annotations

import math
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_UP, Context, Decimal
from typing import Any

INT64_MAX = 2**63 - 1
# The largest value the scheduler and kubelet can count (their int64s); binary quantities are capped here.
QUANTITY_MAX = Decimal(INT64_MAX)
_NANO = Decimal("1E-9")
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_UP)

_DIGITS = frozenset("0123456789")
_SUFFIX_CHARACTERS = frozenset("eEinumkKMGTP")
# suffix.go: suffix -> (base, exponent, binary)
_SUFFIXES = {
    "": (10, 0), "n": (10, -9), "u": (10, -6), "m": (10, -3), "k": (10, 3), "M": (10, 6), "G": (10, 9),
    "T": (10, 12), "P": (10, 15), "E": (10, 18),
    "Ki": (2, 10), "Mi": (2, 20), "Gi": (2, 30), "Ti": (2, 40), "Pi": (2, 50), "Ei": (2, 60),
}
# Go's unicode.IsSpace, which strings.TrimSpace trims (Python's str.strip also trims \x1c-\x1f).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"

_FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_NUMERIC = "unable to parse numeric part of quantity"
_SUFFIX = "unable to parse quantity's suffix"


class QuantityError(ValueError):
    pass


def parse_quantity(value: Any) -> Decimal:
    """A field's value (the JSON string or number a manifest holds) as the API server's Quantity: its value
    in base units (cores, bytes), exactly."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise QuantityError(f"{_show(value)} is not a quantity: a quantity is a string or a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a quantity: JSON has no NaN or infinity")
        return parse_quantity_text(repr(value))  # the shortest digits that read back, as Go's JSON writes
    if isinstance(value, int):
        return parse_quantity_text(str(Decimal(value)))  # str(int) refuses over 4300 digits
    return parse_quantity_text(value.strip(_GO_SPACE))


def try_quantity(value: Any) -> Decimal | None:
    try:
        return parse_quantity(value)
    except QuantityError:
        return None


def parse_quantity_text(text: str) -> Decimal:
    """``resource.ParseQuantity(text)``'s value, exactly; what it rejects raises QuantityError with its error."""
    if not text:
        raise QuantityError(f"'' is not a quantity: {_FORMAT_WRONG}")
    if text == "0":
        return Decimal(0)
    try:
        return _parse(text)
    except QuantityError as error:
        raise QuantityError(f"{_show(text)} is not a quantity: {error}") from None


def _parse(text: str) -> Decimal:
    negative, number, whole, fraction, suffix = _split(text)
    base, exponent = _interpret(suffix)
    if base == 10:
        scale, mantissa, precision = exponent, 1, 18 - (len(whole) + len(fraction))
    elif exponent >= 0 and not fraction:
        # 1Mi (2^20) has ~6 digits of decimal precision, so exponent*3/10 - 1 is roughly the precision
        scale, mantissa, precision = 0, 1 << exponent, 15 - len(whole) - exponent * 3 // 10 - 1
    else:
        scale, mantissa, precision = 0, 1, -1
    if precision >= 0:
        # The int64Amount path: exact, and neither rounded nor capped.
        scale = _int32(scale - len(fraction))
        if scale >= -9:
            amount = int(whole + fraction) * mantissa
            if amount <= INT64_MAX:
                return Decimal(f"{'-' if negative and amount else ''}{amount}E{scale}")
    return _parse_big(number, len(fraction), base, exponent)


def _parse_big(number: str, fraction_digits: int, base: int, exponent: int) -> Decimal:
    # The inf.Dec path: SetString(number) needs a digit; then the suffix, rounding up to nano units, the cap.
    if not _DIGITS.intersection(number):
        raise QuantityError(_NUMERIC)
    negative = number.startswith("-")
    digits = number.lstrip("+-").replace(".", "")
    if base == 10:
        amount = Decimal(f"{digits}E{-_int32(fraction_digits + _int32(-exponent))}")
    else:
        amount = EXACT.multiply(Decimal(f"{digits}E{-fraction_digits}"), 1 << exponent)
    if _exponent(amount) < -9:
        amount = amount.quantize(_NANO, context=EXACT)
    if base == 2 and amount > QUANTITY_MAX:
        amount = QUANTITY_MAX
    return amount.copy_negate() if negative and amount else amount


def _split(text: str) -> tuple[bool, str, str, str, str]:
    """parseQuantityString: (negative, the number's text, its whole digits, its fraction digits, the suffix)."""
    end = len(text)
    negative = text[0] == "-"
    position = 1 if text[0] in "+-" else 0
    while position < end and text[position] == "0":
        position += 1
    if position == end:
        return negative, "0", "0", "", ""
    start = position
    position = _skip(text, position, _DIGITS)
    whole = text[start:position] or "0"
    fraction = ""
    if position < end and text[position] == ".":
        start = position + 1
        position = _skip(text, start, _DIGITS)
        fraction = text[start:position]
    number = text[:position]
    position = _skip(text, position, _SUFFIX_CHARACTERS)
    if position < end and text[position] in "+-":
        position += 1
    if _skip(text, position, _DIGITS) < end:
        raise QuantityError(_FORMAT_WRONG)
    return negative, number, whole, fraction, text[len(number):]


def _skip(text: str, position: int, characters: frozenset[str]) -> int:
    while position < len(text) and text[position] in characters:
        position += 1
    return position


def _interpret(suffix: str) -> tuple[int, int]:
    """The suffixer: (base, exponent). An ``e``/``E`` exponent is a Go int64, then truncated to int32."""
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    exponent = _go_int64(suffix[1:]) if len(suffix) > 1 and suffix[0] in "eE" else None
    if exponent is None:
        raise QuantityError(_SUFFIX)
    return 10, _int32(exponent)


def _go_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64): an optional sign and ASCII digits, in range; None where it fails."""
    sign = text[:1] if text[:1] in ("+", "-") else ""
    digits = text[len(sign):]
    if not digits or not _DIGITS.issuperset(digits):
        return None
    significant = digits.lstrip("0")
    if len(significant) > 19:  # out of range, and checked before int(), which refuses over 4300 digits
        return None
    number = int(sign + (significant or "0"))
    return number if -(2**63) <= number <= INT64_MAX else None


def _int32(number: int) -> int:
    return (number + 2**31) % 2**32 - 2**31


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def is_beyond_int64(quantity: Decimal) -> bool:
    """At or beyond 2^63-1 in magnitude: what Kubernetes caps (binary) or its consumers overflow on (decimal)."""
    return quantity.copy_abs() >= QUANTITY_MAX


# Quantity.Add is exact; so is add_quantities, up to a sum of this many digits (1e999999999 + 1 has a billion).
_MAX_SUM_DIGITS = 1000


def add_quantities(a: Decimal, b: Decimal) -> Decimal:
    """a + b exactly (Quantity.Add); QuantityError where the exact sum would have more than 1000 digits."""
    exponents = [_exponent(number) for number in (a, b) if number]
    if exponents and max(a.adjusted(), b.adjusted()) - min(exponents) >= _MAX_SUM_DIGITS:
        raise QuantityError("the exact sum of these quantities has too many digits")
    return EXACT.add(a, b)


def _exponent(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0  # "n", "N", "F": never a parsed quantity


def exact_text(quantity: Decimal) -> str:
    """The quantity's shortest exact text (``1E+999999999``, ``0.512``), which ``Decimal()`` reads back."""
    return "0" if not quantity else str(quantity.normalize(EXACT))
