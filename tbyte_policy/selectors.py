"""Label selector semantics, as the API server applies them."""

from __future__ import annotations

from typing import Any

EVERYTHING = "everything"
NOTHING = "nothing"


def label_selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """A ``metav1.LabelSelector``: every matchLabels pair AND every matchExpression must hold.

    An empty selector ({}) matches everything; a missing (None) one matches nothing, which is what
    PodDisruptionBudget (policy/v1) and the workload controllers do.
    """
    if selector is None or not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, dict) or not isinstance(expressions, list):
        return False
    for key, value in match_labels.items():
        if labels.get(key) != _as_label_value(value):
            return False
    return all(_expression_holds(expression, labels) for expression in expressions)


def _expression_holds(expression: Any, labels: dict[str, str]) -> bool:
    if not isinstance(expression, dict):
        return False
    key, operator = expression.get("key"), expression.get("operator")
    values = [_as_label_value(value) for value in (expression.get("values") or [])] \
        if isinstance(expression.get("values") or [], list) else []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False  # the API rejects any other operator


def map_selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """A Service/ReplicationController-style plain ``map[string]string`` selector.

    Callers decide what an absent or empty selector means (a Service without one selects no pods).
    """
    if not isinstance(selector, dict):
        return False
    return all(labels.get(key) == _as_label_value(value) for key, value in selector.items())


def selector_is_empty(selector: Any) -> bool:
    return isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions")


def _as_label_value(value: Any) -> str:
    # `version: 1` in YAML is an int; the API would refuse it, but a selector of 1 and a label of "1" mean the same.
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def describe_label_selector(selector: Any) -> str:
    if not isinstance(selector, dict):
        return "<none>"
    # A part of the wrong type (which the shape pass reports) is named, not read: it selects nothing.
    labels, expressions = selector.get("matchLabels"), selector.get("matchExpressions")
    parts = [f"{key}={value}" for key, value in labels.items()] if isinstance(labels, dict) else []
    parts += [f"{name} of the wrong type" for name, part, kind in (("matchLabels", labels, dict),
                                                                   ("matchExpressions", expressions, list))
              if part and not isinstance(part, kind)]
    for expression in expressions if isinstance(expressions, list) else ():
        if isinstance(expression, dict):
            listed = expression.get("values")
            values = ",".join(str(value) for value in listed) if isinstance(listed, list) else ""
            parts.append(f"{expression.get('key')} {expression.get('operator')} ({values})" if values
                         else f"{expression.get('key')} {expression.get('operator')}")
    return ", ".join(parts) if parts else "<everything>"
