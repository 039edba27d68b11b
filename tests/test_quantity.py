"""Quantities parse to the values the API server's resource.Quantity gives them.

The expected values are k8s.io/apimachinery's own, from pkg/api/resource/quantity_test.go (kubernetes/apimachinery
at eed236ce): the tables of TestQuantityParse (every entry also negated and with an explicit ``+``, as that test
does; ``decQuantity(i, e)`` is i * 10^e, ``maxAllowed`` 2^63-1), its ``invalid`` list, TestParseQuantityString,
TestJSONWhitespace and TestParseQuantity's ``wantAsDec``. The quirks below them are traced by hand through
quantity.go (parseQuantityString, ParseQuantity), suffix.go (interpret) and gopkg.in/inf.v0's Dec.SetString.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from tbyte_policy.cli import app
from tbyte_policy.quantity import (
    QUANTITY_MAX,
    QuantityError,
    add_quantities,
    exact_text,
    is_beyond_int64,
    parse_quantity,
    parse_quantity_text,
    try_quantity,
)

MAX_ALLOWED = Decimal(2**63 - 1)


def dec(i: int, exponent: int) -> Decimal:
    return Decimal(i).scaleb(exponent)


# TestQuantityParse's table.
QUANTITY_PARSE = [
    ("0", dec(0, 0)), ("0n", dec(0, 0)), ("0u", dec(0, 0)), ("0m", dec(0, 0)), ("0Ki", dec(0, 0)),
    ("0k", dec(0, 0)), ("0Mi", dec(0, 0)), ("0M", dec(0, 0)), ("0Gi", dec(0, 0)), ("0G", dec(0, 0)),
    ("0Ti", dec(0, 0)), ("0T", dec(0, 0)),
    ("1", dec(1, 0)),
    ("1Ki", dec(1024, 0)), ("8Ki", dec(8 * 1024, 0)), ("7Mi", dec(7 * 1024**2, 0)), ("6Gi", dec(6 * 1024**3, 0)),
    ("5Ti", dec(5 * 1024**4, 0)), ("4Pi", dec(4 * 1024**5, 0)), ("3Ei", dec(3 * 1024**6, 0)),
    ("10Ti", dec(10 * 1024**4, 0)), ("100Ti", dec(100 * 1024**4, 0)),
    ("5n", dec(5, -9)), ("4u", dec(4, -6)), ("3m", dec(3, -3)), ("9", dec(9, 0)), ("8k", dec(8, 3)),
    ("50k", dec(5, 4)), ("7M", dec(7, 6)), ("6G", dec(6, 9)), ("5T", dec(5, 12)), ("40T", dec(4, 13)),
    ("300T", dec(3, 14)), ("2P", dec(2, 15)), ("1E", dec(1, 18)),
    ("1E-3", dec(1, -3)), ("1e3", dec(1, 3)), ("1E6", dec(1, 6)), ("1e9", dec(1, 9)), ("1E12", dec(1, 12)),
    ("1e15", dec(1, 15)), ("1E18", dec(1, 18)),
    ("1e14", dec(1, 14)), ("1e13", dec(1, 13)), ("100.035k", dec(100035, 0)),
    ("0.001", dec(1, -3)), ("0.0005k", dec(5, -1)), ("0.005", dec(5, -3)), ("0.05", dec(5, -2)),
    ("0.5", dec(5, -1)), ("0.00050k", dec(5, -1)), ("0.00500", dec(5, -3)), ("0.05000", dec(5, -2)),
    ("0.50000", dec(5, -1)), ("0.5e0", dec(5, -1)), ("0.5e-1", dec(5, -2)), ("0.5e-2", dec(5, -3)),
    ("10.035M", dec(10035, 3)),
    ("1.2e3", dec(12, 2)), ("1.3E+6", dec(13, 5)), ("1.40e9", dec(14, 8)), ("1.53E12", dec(153, 10)),
    ("1.6e15", dec(16, 14)), ("1.7E18", dec(17, 17)),
    ("9.01", dec(901, -2)), ("8.1k", dec(81, 2)), ("7.123456M", dec(7123456, 0)),
    ("6.987654321G", dec(6987654321, 0)), ("5.444T", dec(5444, 9)), ("40.1T", dec(401, 11)),
    ("300.2T", dec(3002, 11)), ("2.5P", dec(25, 14)), ("1.01E", dec(101, 16)),
    # "Things that saturate/round"
    ("3.001n", dec(4, -9)), ("1.1E-9", dec(2, -9)), ("0.0000000001", dec(1, -9)), ("0.0000000005", dec(1, -9)),
    ("0.00000000050", dec(1, -9)), ("0.5e-9", dec(1, -9)), ("0.9n", dec(1, -9)),
    ("0.00000012345", dec(124, -9)), ("0.00000012354", dec(124, -9)),
    ("9Ei", MAX_ALLOWED), ("9223372036854775807Ki", MAX_ALLOWED), ("12E", dec(12, 18)),
    ("100.035Ki", dec(10243584, -2)), ("0.5Mi", dec(524288, 0)), ("0.05Gi", dec(536870912, -1)),
    ("0.025Ti", dec(274877906944, -1)),
    # "Things written by trolls"
    ("0.000000000001Ki", dec(2, -9)), (".001", dec(1, -3)), (".0001k", dec(100, -3)), ("1.", dec(1, 0)),
    ("1.G", dec(1, 9)),
]

# TestParseQuantity: inputs around 18, 19 and 20 digits and int64's bounds, with their AsDec().
PARSE_QUANTITY = [
    ("-999999999999999999", "-999999999999999999"), ("999999999999999999.1", "999999999999999999.1"),
    ("-9999999999999999999", "-9999999999999999999"), ("1E", "1000000000000000000"),
    ("-1.0E", "-1000000000000000000"), ("9999999999999999999000m", "9999999999999999999"),
    ("-1.0000000000000000001E", "-1000000000000000000.1"), ("1.000000000000000001E", "1000000000000000001"),
    ("10E", "10000000000000000000"), ("-10000000000000000000000m", "-10000000000000000000"),
    ("10.0000000000000000001E", "10000000000000000000.1"), ("-9223372036854775809", "-9223372036854775809"),
    ("9223372036854775807.1", "9223372036854775807.1"), ("9223372036854775808000m", "9223372036854775808"),
    ("-9223372036854775807.1", "-9223372036854775807.1"),
]


@pytest.mark.parametrize(("text", "value"), QUANTITY_PARSE + [(text, Decimal(value)) for text, value in PARSE_QUANTITY])
def test_apimachinery_values(text, value):
    assert parse_quantity_text(text) == value


@pytest.mark.parametrize(("text", "value"), QUANTITY_PARSE)
def test_apimachinery_values_signed(text, value):
    assert parse_quantity_text("-" + text) == value.copy_negate()
    assert parse_quantity_text("+" + text) == value


@pytest.mark.parametrize("text", ["1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-",
                                  " 1", "1 ", ""])
def test_apimachinery_rejects(text):
    with pytest.raises(QuantityError):
        parse_quantity_text(text)


@pytest.mark.parametrize(("value", "quantity"), [
    # TestParseQuantityString: "." and "-." have no digits and read as 0; TestJSONWhitespace: a JSON string or
    # number is trimmed before ParseQuantity.
    (".", 0), ("-.", 0), (" 1", 1), ("1 ", 1), (1, 1), (10, 10), (-1, -1), ("\u00a01\u3000", 1),
])
def test_apimachinery_zero_digits_and_json_whitespace(value, quantity):
    assert parse_quantity(value) == quantity


@pytest.mark.parametrize(("text", "value"), [
    # no digits at all is 0, whatever the suffix (the numerator defaults to "0")
    ("+", Decimal(0)), ("-", Decimal(0)), ("Mi", Decimal(0)), ("m", Decimal(0)), ("e5", Decimal(0)),
    ("-.e-9", Decimal(0)),
    # a decimal quantity is never capped: the int64Amount path keeps 1 * 10^999999999 exactly
    ("1e999999999", Decimal("1E+999999999")), ("12E", Decimal("1.2E+19")), ("-9Ei", -MAX_ALLOWED),
    ("8Ei", MAX_ALLOWED), ("7Ei", Decimal(7 * 2**60)),
    # the exponent is an int64 truncated to int32, and the scale arithmetic wraps in int32
    ("1e4294967296", Decimal(1)), ("1e4294967297", Decimal(10)), ("1e-2147483648", Decimal("1E+2147483648")),
    ("1.5e-2147483648", Decimal("1.5E+2147483648")),
    # rounding up to nano units is away from zero
    ("1e-999999999", Decimal("1E-9")), ("-0.1n", Decimal("-1E-9")), ("1E5", Decimal(100000)),
    ("1e+5", Decimal(100000)), ("1e-05", Decimal("0.00001")), ("007", Decimal(7)), ("1.Ki", Decimal(1024)),
])
def test_quirks_kept(text, value):
    assert parse_quantity_text(text) == value


@pytest.mark.parametrize("text", [
    "1e", "1e+", "+-1", "--1", ".", "1 Ki", "0x10", "NaN", "nan", "Inf", "inf", "Infinity", "1_000", "1,5",
    "1e308Ei", "1ee5", "1e--5", "1e99999999999999999999", "1e0x1", "1Kie5", "1K", "1ki", "1mi", "\u0661",
    "1\u0661", "\uff11", "1e\u0665", "-.e-10", "-e-10", "1\x1c",
])
def test_rejected(text):
    if text == ".":
        assert parse_quantity_text(text) == 0  # the one odd form here that is accepted
        return
    with pytest.raises(QuantityError):
        parse_quantity_text(text)


@pytest.mark.parametrize(("value", "quantity"), [
    (0.5, Decimal("0.5")), (1e308, Decimal("1E+308")), (1e-10, Decimal("1E-9")), (128974848, Decimal(128974848)),
    pytest.param(10**5000, Decimal(10**5000), id="10**5000"), (-0.0, Decimal(0)),
])
def test_json_numbers(value, quantity):
    assert parse_quantity(value) == quantity


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, False, None, {}, [1], b"1", Decimal(1)])
def test_not_a_quantity_value(value):
    with pytest.raises(QuantityError):
        parse_quantity(value)
    assert try_quantity(value) is None


def test_beyond_int64_and_exact_text():
    assert is_beyond_int64(parse_quantity_text("1e999999999"))
    assert is_beyond_int64(parse_quantity_text("-9Ei"))
    assert is_beyond_int64(QUANTITY_MAX)
    assert not is_beyond_int64(parse_quantity_text("7Ei"))
    assert exact_text(parse_quantity_text("1e999999999")) == "1E+999999999"
    assert exact_text(parse_quantity_text("1024Mi")) == exact_text(parse_quantity_text("1Gi")) == "1073741824"
    assert exact_text(parse_quantity_text("Mi")) == "0"


_QUANTITY_TEXT = st.text(alphabet="0123456789.+-eEinumkKMGTP \t\u00a0x_", max_size=24) | st.from_regex(
    r"\A[+-]?[0-9]{0,30}(\.[0-9]{0,30})?([eE][+-]?[0-9]{1,12}|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?\Z")
_ANY_VALUE = _QUANTITY_TEXT | st.text() | st.integers() | st.floats() | st.booleans() | st.none() \
    | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)


@given(_ANY_VALUE)
def test_any_value_is_a_finite_decimal_or_a_quantity_error(value):
    try:
        quantity = parse_quantity(value)
    except QuantityError:
        return
    assert isinstance(quantity, Decimal) and quantity.is_finite()
    assert quantity.as_tuple().exponent >= -9  # rounded to nano units
    if isinstance(value, str) and value.strip(" \t\u00a0").endswith(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")):
        assert quantity.copy_abs() <= QUANTITY_MAX


@given(_ANY_VALUE, _ANY_VALUE)
def test_comparisons_never_raise(a, b):
    left, right = try_quantity(a), try_quantity(b)
    if left is None or right is None:
        return
    assert (left < right) + (left == right) + (left > right) == 1
    assert (left <= right) == (not left > right)
    assert Decimal(exact_text(left)) == left


REPRODUCTION = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: q, namespace: tbyte}
spec:
  selector: {matchLabels: {app: q}}
  template:
    metadata: {labels: {app: q}}
    spec:
      containers:
        - name: c
          image: nginx:1.25
          resources:
            requests: {cpu: "1e999999999"}
            limits: {memory: "1e308Ei"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: compared, namespace: tbyte}
spec:
  selector: {matchLabels: {app: compared}}
  template:
    metadata: {labels: {app: compared}}
    spec:
      containers:
        - name: c
          image: nginx:1.25
          resources:
            requests: {cpu: "1e999999999", memory: 1Gi}
            limits: {cpu: "1", memory: "1e99999999999999999999"}
"""


def test_quantities_the_api_server_caps_or_rejects_are_findings_not_internal_errors(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(REPRODUCTION)
    result = CliRunner().invoke(app, ["scan", str(path), "--format", "json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["errors"] == []
    resources = {(finding["rule_id"], finding["resource"]["name"], finding["location"]["line"], finding["message"])
                 for finding in report["findings"] if finding["family"] == "resources"}
    beyond = ("is 2^63-1 or more: the API server caps a binary quantity there and keeps a larger decimal one, "
              "which the scheduler's and kubelet's 64-bit arithmetic overflows")
    assert resources == {
        ("RES006", "q", 13, f"container c: requests.cpu '1e999999999' {beyond}"),
        ("RES006", "q", 14, "container c: limits.memory '1e308Ei' is not a Kubernetes quantity"),
        ("RES004", "q", 14, "container c sets no cpu limit"),
        ("RES006", "compared", 28, f"container c: requests.cpu '1e999999999' {beyond}"),
        ("RES006", "compared", 29, "container c: limits.memory '1e99999999999999999999' is not a Kubernetes quantity"),
        ("RES005", "compared", 28, "container c requests more cpu (1e999999999) than its limit (1); the API server "
                                   "rejects this"),
    }


def test_sums_are_exact_and_bounded():
    assert add_quantities(parse_quantity_text("1Gi"), parse_quantity_text("-1024Mi")) == 0
    assert add_quantities(parse_quantity_text("1E"), parse_quantity_text("1n")) == \
        Decimal("1000000000000000000.000000001")
    assert add_quantities(parse_quantity_text("1e999999999"), Decimal(0)) == Decimal("1E+999999999")
    with pytest.raises(QuantityError):
        add_quantities(parse_quantity_text("1e999999999"), Decimal(1))
