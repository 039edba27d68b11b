"""`tbyte-policy export vap`: CEL rules as ValidatingAdmissionPolicies and bindings (admissionregistration.k8s.io/v1).

Per rule, one policy and one binding, both named ``tbyte-policy-<id>-<name>``. The policy matches CREATE and
UPDATE of the rule's kinds (their API group, version and plural resource from ``RESOURCES``), declares the
rule's variables (the predefined ``podSpec`` and ``containers`` of pod-bearing rules first) and validations,
with the rule's params written into the expressions as literals (a policy without ``paramKind`` has no
``params``). Its ``matchConditions`` skip what a scan suppresses: an object whose
``tbyte-policy.io/ignore.<rule name>`` annotation gives a reason, and the objects of the config's exemptions
that are in force. The binding applies the policy everywhere with the ``--action`` validation actions. Every
object written is validated against the Kubernetes API schema of the newest release tbyte-policy knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml

from tbyte_policy import __version__
from tbyte_policy.catalogue import Rule
from tbyte_policy.model import POD_BEARING_KINDS

if TYPE_CHECKING:
    from tbyte_policy.config import Exemption

ACTIONS = ("Deny", "Warn", "Audit")
API_VERSION = "admissionregistration.k8s.io/v1"


class ExportError(Exception):
    pass


class APIResource(NamedTuple):
    group: str
    version: str
    plural: str


def _resources() -> dict[str, APIResource]:
    from tbyte_policy.sources.cluster import ALL_KINDS

    table = {kind.kind: APIResource(kind.group, kind.version, kind.plural) for kind in ALL_KINDS}
    # Kinds the live mode does not read, that rules may still match.
    table.update({
        "Node": APIResource("", "v1", "nodes"),
        "PersistentVolumeClaim": APIResource("", "v1", "persistentvolumeclaims"),
        "PersistentVolume": APIResource("", "v1", "persistentvolumes"),
        "ResourceQuota": APIResource("", "v1", "resourcequotas"),
        "LimitRange": APIResource("", "v1", "limitranges"),
        "Role": APIResource("rbac.authorization.k8s.io", "v1", "roles"),
        "RoleBinding": APIResource("rbac.authorization.k8s.io", "v1", "rolebindings"),
        "ClusterRole": APIResource("rbac.authorization.k8s.io", "v1", "clusterroles"),
        "ClusterRoleBinding": APIResource("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
        "IngressClass": APIResource("networking.k8s.io", "v1", "ingressclasses"),
        "StorageClass": APIResource("storage.k8s.io", "v1", "storageclasses"),
        "PriorityClass": APIResource("scheduling.k8s.io", "v1", "priorityclasses"),
        "CustomResourceDefinition": APIResource("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
        "ClusterExternalSecret": APIResource("external-secrets.io", "v1", "clusterexternalsecrets"),
        "TriggerAuthentication": APIResource("keda.sh", "v1alpha1", "triggerauthentications"),
        "ClusterTriggerAuthentication": APIResource("keda.sh", "v1alpha1", "clustertriggerauthentications"),
        "ScaledJob": APIResource("keda.sh", "v1alpha1", "scaledjobs"),
        "ClusterAnalysisTemplate": APIResource("argoproj.io", "v1alpha1", "clusteranalysistemplates"),
        "Certificate": APIResource("cert-manager.io", "v1", "certificates"),
        "Issuer": APIResource("cert-manager.io", "v1", "issuers"),
        "ClusterIssuer": APIResource("cert-manager.io", "v1", "clusterissuers"),
    })
    return table


RESOURCES = _resources()


def check_actions(actions: Sequence[str]) -> None:
    """ValueError unless ``actions`` is a valid validationActions set: Deny or Warn (not both), and/or Audit."""
    unknown = [action for action in actions if action not in ACTIONS]
    if unknown:
        raise ValueError(f"--action must be one of {', '.join(ACTIONS)}, not {unknown[0]!r}")
    if len(set(actions)) != len(actions):
        raise ValueError("--action lists an action twice")
    if {"Deny", "Warn"} <= set(actions):
        raise ValueError("--action Deny and Warn cannot be combined (Kubernetes refuses it: a denied request "
                         "already tells the client why); add Audit to either")
    if not actions:
        raise ValueError("--action needs at least one of Deny, Warn, Audit")


def policy_name(rule: Rule) -> str:
    return f"tbyte-policy-{rule.id.lower()}-{rule.name}"[:253]


def resource_rules(rule: Rule) -> list[dict[str, Any]]:
    unknown = sorted(kind for kind in rule.kinds if kind not in RESOURCES)
    if unknown:
        raise ExportError(f"rule {rule.id}: no API resource is known for kind {unknown[0]} (known kinds: "
                          f"{', '.join(sorted(RESOURCES))})")
    by_group_version: dict[tuple[str, str], set[str]] = {}
    for kind in rule.kinds:
        resource = RESOURCES[kind]
        by_group_version.setdefault((resource.group, resource.version), set()).add(resource.plural)
    return [{"apiGroups": [group], "apiVersions": [version], "operations": ["CREATE", "UPDATE"],
             "resources": sorted(plurals)}
            for (group, version), plurals in sorted(by_group_version.items())]


_REGEX_SPECIAL = set("\\.+*?()|[]{}^$")
MAX_MATCH_CONDITIONS = 64  # Kubernetes' limit per policy
OWNED_KINDS = frozenset({"Pod", "ReplicaSet", "Job"})  # pod-bearing kinds that a workload controller creates


def glob_regex(pattern: str) -> str:
    """An fnmatch glob (``*``, ``?``, ``[seq]``, ``[!seq]``) as an anchored RE2 regular expression."""
    parts, index = ["^"], 0
    while index < len(pattern):
        char = pattern[index]
        closing = pattern.find("]", index + 2) if char == "[" else -1
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif closing != -1:
            body = pattern[index + 1:closing]
            negated = body.startswith("!")
            body = body[1:] if negated else body
            parts.append("[" + ("^" if negated else "") + body.replace("\\", "\\\\").replace("^", "\\^") + "]")
            index = closing
        else:
            parts.append("\\" + char if char in _REGEX_SPECIAL else char)
        index += 1
    return "".join(parts) + "$"


def match_conditions(rule: Rule, exemptions: Sequence[Exemption]) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The policy's matchConditions (what a scan would suppress is not validated) and, for each exemption, an
    annotation with its reason."""
    from tbyte_policy.config import IGNORE_ANNOTATION_PREFIX
    from tbyte_policy.k8s_cel import literal

    key = literal(IGNORE_ANNOTATION_PREFIX + rule.name)
    conditions = [{"name": "not-ignored-by-annotation",
                   "expression": f"!has(object.metadata.annotations) || !({key} in object.metadata.annotations) "
                                 f"|| object.metadata.annotations[{key}].trim() == ''"}]
    # A scan judges the pods (ReplicaSets, Jobs) a workload owns through that workload: those of an owner the
    # rule leaves out (a Job's pods, for a rule of long-running workloads) are left out here too.
    owners = sorted(POD_BEARING_KINDS - rule.kinds)
    if owners and rule.kinds & OWNED_KINDS:
        conditions.append({"name": "not-owned-by-an-unmatched-workload", "expression": (
            "!has(object.metadata.ownerReferences) || !object.metadata.ownerReferences.exists(o, "
            f"has(o.controller) && o.controller == true && has(o.kind) && o.kind in {literal(owners)})")})
    notes: dict[str, str] = {}
    for exemption in exemptions:
        if not (fnmatchcase(rule.id, exemption.rule) or fnmatchcase(rule.name, exemption.rule)):
            continue
        tests = [f"{subject}.matches({literal(glob_regex(glob))})" for subject, glob in (
            ("object.kind", exemption.kind), ("request.namespace", exemption.namespace),
            ("(has(object.metadata.name) ? object.metadata.name : '')", exemption.name)) if glob != "*"]
        name = f"exemption-{len(notes) + 1}"
        conditions.append({"name": name, "expression": f"!({' && '.join(tests) or 'true'})"})
        until = f" (expires {exemption.expires}; re-export then)" if exemption.expires else ""
        notes[f"tbyte-policy.io/{name}"] = f"{exemption.kind}/{exemption.namespace}/{exemption.name}: " \
                                           f"{exemption.reason}{until}"
    if len(conditions) > MAX_MATCH_CONDITIONS:
        raise ExportError(f"rule {rule.id}: {len(conditions) - 1} exemptions need more than the "
                          f"{MAX_MATCH_CONDITIONS} matchConditions a policy may have")
    return conditions, notes


def policy_documents(rule: Rule, actions: Sequence[str], exemptions: Sequence[Exemption] = ()) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding of one CEL rule."""
    from tbyte_policy.cel_rules import expression_with_params, spec_of
    from tbyte_policy.k8s_cel import literal

    if rule.cel is None:
        raise ExportError(f"rule {rule.id} has no CEL form")
    spec = spec_of(rule)
    params = literal(rule.params)
    name = policy_name(rule)
    labels = {"app.kubernetes.io/managed-by": "tbyte-policy"}
    metadata: dict[str, Any] = {"name": name, "labels": labels,
                "annotations": {"tbyte-policy.io/rule": f"{rule.id} {rule.name}", "tbyte-policy.io/title": rule.title,
                                "tbyte-policy.io/version": __version__}}
    validations = []
    for validation in spec.validations:
        item: dict[str, Any] = {"expression": expression_with_params(validation.expression, params)}
        if validation.message is not None:
            item["message"] = validation.message
        if validation.message_expression is not None:
            item["messageExpression"] = expression_with_params(validation.message_expression, params)
        if validation.message is None and validation.message_expression is None:
            item["message"] = f"{rule.id} {rule.name}: {rule.title}"
        if validation.reason is not None:
            item["reason"] = validation.reason
        validations.append(item)
    conditions, notes = match_conditions(rule, exemptions)
    metadata["annotations"].update(notes)
    policy_spec: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": resource_rules(rule)},
        "matchConditions": conditions,
    }
    if spec.variables:
        policy_spec["variables"] = [{"name": variable.name,
                                     "expression": expression_with_params(variable.expression, params)}
                                    for variable in spec.variables]
    policy_spec["validations"] = validations
    policy = {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicy", "metadata": metadata,
              "spec": policy_spec}
    binding = {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": name, "labels": dict(labels)},
               "spec": {"policyName": name, "validationActions": list(actions)}}
    return [policy, binding]


def export_documents(rules: Sequence[Rule], actions: Sequence[str],
                     exemptions: Sequence[Exemption] = ()) -> list[dict[str, Any]]:
    """Every rule's policy and binding, each checked against the API schema (ExportError on a problem).
    ``exemptions``: the config's, in force today."""
    from tbyte_policy.schemas import schema_set

    check_actions(actions)
    documents = [document for rule in sorted(rules, key=lambda rule: rule.id)
                 for document in policy_documents(rule, actions, exemptions)]
    schemas = schema_set()
    for document in documents:
        validator = schemas.validator(document["apiVersion"], document["kind"])
        if validator is None:
            raise ExportError(f"no schema for {document['kind']} in Kubernetes {schemas.version}")
        problems = validator.problems(document)
        if problems:
            raise ExportError(f"{document['kind']} {document['metadata']['name']} does not validate against the "
                              f"Kubernetes {schemas.version} schema: {problems[0].message}")
    return documents


def export_text(rules: Sequence[Rule], actions: Sequence[str], exemptions: Sequence[Exemption] = ()) -> str:
    documents = export_documents(rules, actions, exemptions)
    header = (f"# ValidatingAdmissionPolicies written by tbyte-policy {__version__} (`tbyte-policy export vap`):\n"
              f"# {len(documents) // 2} rule(s), validationActions {', '.join(actions)}; apply with kubectl apply -f\n")
    return header + yaml.safe_dump_all(documents, sort_keys=False, width=120, allow_unicode=True)
