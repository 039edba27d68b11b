from decimal import Decimal

import pytest

from tbyte_policy.quantity import QuantityError, parse_quantity
from tbyte_policy.selectors import label_selector_matches, map_selector_matches

LABELS = {"app": "web", "tier": "frontend", "env": "prod"}


@pytest.mark.parametrize(("selector", "matches"), [
    ({}, True),                                                       # empty selects everything
    (None, False),                                                    # missing selects nothing
    ({"matchLabels": {"app": "web"}}, True),
    ({"matchLabels": {"app": "web", "tier": "backend"}}, False),      # AND: one shared label is not a match
    ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}, True),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}, False),
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}, True),
    ({"matchExpressions": [{"key": "missing", "operator": "NotIn", "values": ["x"]}]}, True),  # absent key passes NotIn
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
    ({"matchExpressions": [{"key": "missing", "operator": "Exists"}]}, False),
    ({"matchExpressions": [{"key": "missing", "operator": "DoesNotExist"}]}, True),
    ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
    ({"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]}, False),  # not a valid operator
    ({"matchLabels": "app=web"}, False),                                                  # wrong type
])
def test_label_selector(selector, matches):
    assert label_selector_matches(selector, LABELS) is matches


def test_map_selector():
    assert map_selector_matches({"app": "web", "env": "prod"}, LABELS)
    assert not map_selector_matches({"app": "web", "env": "dev"}, LABELS)
    assert not map_selector_matches(None, LABELS)


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("1", Decimal(1)), ("1.5", Decimal("1.5")), ("0.1", Decimal("0.1")),
    ("128Mi", Decimal(128 * 2**20)), ("1Gi", Decimal(2**30)), ("64Ki", Decimal(65536)),
    ("1k", Decimal(1000)), ("2M", Decimal(2_000_000)), ("1G", Decimal(10**9)), ("1T", Decimal(10**12)),
    ("1e3", Decimal(1000)), ("1E6", Decimal(10**6)), ("5e-1", Decimal("0.5")), ("512m", Decimal("0.512")),
    (128974848, Decimal(128974848)), (2, Decimal(2)), (0.5, Decimal("0.5")), ("100n", Decimal("1E-7")),
])
def test_quantities(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Mi", "1MB", "one", "1.2.3", "1 Gi", True, None, [1]])
def test_invalid_quantities(text):
    with pytest.raises(QuantityError):
        parse_quantity(text)
