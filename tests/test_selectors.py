import pytest

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
