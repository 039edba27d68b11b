"""`tbyte-policy export vap`: CEL rules (and with --builtin the built-in rules' CEL twins) as
ValidatingAdmissionPolicies and bindings that validate against the Kubernetes API schema."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("cel", reason="the cel extra is not installed")

from tbyte_policy import k8s_cel, schemas, vap
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.cli import app
from tbyte_policy.model import POD_BEARING_KINDS
from tbyte_policy.sources.cluster import ALL_KINDS

POLICIES = Path(__file__).parent / "fixtures" / "cel" / "policies"
runner = CliRunner()
CATALOGUE = load_catalogue()


def export(*args: str) -> list[dict]:
    result = runner.invoke(app, ["export", "vap", *args])
    assert result.exit_code == 0, result.output
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def by_name(documents: list[dict]) -> dict[tuple[str, str], dict]:
    return {(document["kind"], document["metadata"]["name"]): document for document in documents}


def test_a_custom_rule_becomes_a_policy_and_a_binding():
    documents = by_name(export("--rules", str(POLICIES)))
    assert sorted(documents) == sorted(
        (kind, f"tbyte-policy-{name}") for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
        for name in ("org001-team-label-required", "org002-image-from-company-registry",
                     "org003-memory-limit-at-most-4gi", "org004-service-port-named"))
    policy = documents[("ValidatingAdmissionPolicy", "tbyte-policy-org001-team-label-required")]
    assert policy["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert policy["metadata"]["annotations"]["tbyte-policy.io/rule"] == "ORG001 team-label-required"
    assert policy["spec"] == {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [
            {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
             "resources": ["deployments", "statefulsets"]},
            {"apiGroups": ["argoproj.io"], "apiVersions": ["v1alpha1"], "operations": ["CREATE", "UPDATE"],
             "resources": ["rollouts"]}]},
        # what a scan suppresses is not validated: an ignore annotation with a reason (and exemptions, below)
        "matchConditions": [{"name": "not-ignored-by-annotation", "expression": (
            '!has(object.metadata.annotations) || !("tbyte-policy.io/ignore.team-label-required" in '
            'object.metadata.annotations) || object.metadata.annotations["tbyte-policy.io/ignore.team-label-required"]'
            ".trim() == ''")}],
        # the predefined pod-bearing variables are left out: nothing uses them
        "variables": [{"name": "labels", "expression": "has(object.metadata.labels) ? object.metadata.labels : {}"}],
        # fieldPath locates scan findings; a ValidatingAdmissionPolicy validation has no such field
        "validations": [{"expression": "'team' in variables.labels",
                         "messageExpression": "'workload ' + object.metadata.name + ' has no team label'"}],
    }
    binding = documents[("ValidatingAdmissionPolicyBinding", "tbyte-policy-org001-team-label-required")]
    assert binding["spec"] == {"policyName": "tbyte-policy-org001-team-label-required", "validationActions": ["Deny"]}


def test_params_are_written_into_the_expressions_and_pod_rules_get_their_pod_spec():
    documents = by_name(export("--rules", str(POLICIES)))
    spec = documents[("ValidatingAdmissionPolicy", "tbyte-policy-org002-image-from-company-registry")]["spec"]
    assert [variable["name"] for variable in spec["variables"]] == ["podSpec", "containers", "foreign"]
    assert spec["variables"][2]["expression"] == \
        'variables.containers.filter(c, !c.image.startsWith(({"registry": "registry.example.com/"}).registry))'
    pod_spec = spec["variables"][0]["expression"]
    assert "object.spec.jobTemplate.spec.template.spec" in pod_spec and "(object.kind == 'Pod')" in pod_spec
    # container_roles [container, sidecar, init]: no ephemeral containers
    assert spec["variables"][1]["expression"] == ("[variables.podSpec].map(p, (has(p.containers) ? p.containers : "
                                                  "[]) + (has(p.initContainers) ? p.initContainers : []))[0]")
    resource_rules = spec["matchConstraints"]["resourceRules"]
    assert {(tuple(rule["apiGroups"]), tuple(rule["resources"])) for rule in resource_rules} == {
        (("",), ("pods",)), (("apps",), ("daemonsets", "deployments", "replicasets", "statefulsets")),
            (("argoproj.io",), ("rollouts",)), (("batch",), ("cronjobs", "jobs"))}


@pytest.mark.parametrize(("actions", "expected"), [
    ([], ["Deny"]), (["--action", "Warn", "--action", "Audit"], ["Warn", "Audit"]), (["--action", "Audit"], ["Audit"]),
    (["--action", "Deny", "--action", "Audit"], ["Deny", "Audit"]),
])
def test_validation_actions(actions, expected):
    documents = export("--rules", str(POLICIES), *actions)
    assert {tuple(document["spec"]["validationActions"]) for document in documents
            if document["kind"] == "ValidatingAdmissionPolicyBinding"} == {tuple(expected)}


@pytest.mark.parametrize(("actions", "message"), [
    (["Deny", "Warn"], "--action Deny and Warn cannot be combined"),
    (["Audit", "Audit"], "--action lists an action twice"),
    (["Block"], "--action must be one of Deny, Warn, Audit, not 'Block'"),
])
def test_invalid_validation_actions_are_exit_2(actions, message):
    arguments = [part for action in actions for part in ("--action", action)]
    result = runner.invoke(app, ["export", "vap", "--rules", str(POLICIES), *arguments])
    assert result.exit_code == 2 and message in result.stderr and result.stdout == ""


def test_builtin_exports_every_enabled_twin_and_nothing_else(tmp_path):
    output = tmp_path / "policies.yaml"
    result = runner.invoke(app, ["export", "vap", "--builtin", "-o", str(output)])
    assert result.exit_code == 0 and result.stdout == ""
    documents = [document for document in yaml.safe_load_all(output.read_text()) if document]
    exported = {document["metadata"]["annotations"]["tbyte-policy.io/rule"].split()[0] for document in documents
                if document["kind"] == "ValidatingAdmissionPolicy"}
    assert exported == {rule.id for rule in CATALOGUE if rule.cel is not None and rule.enabled}
    assert {"SEC001", "PRB003", "RES001", "IMG001", "HPA003", "ROL004", "PDB007", "ING001", "NET008"} <= exported
    assert not exported & {"PDB001", "NET001", "RUN001", "SCH001", "SCR004"}
    capabilities = next(document for document in documents
                        if document["metadata"]["name"] == "tbyte-policy-sec006-capabilities-added")
    assert '({"allowed": ["NET_BIND_SERVICE"]}).allowed' in capabilities["spec"]["variables"][-1]["expression"]


def test_the_config_chooses_what_is_exported_and_with_which_params(tmp_path, monkeypatch):
    (tmp_path / ".tbyte-policy.yaml").write_text(textwrap.dedent("""\
        preset: strict
        rules:
          capabilities-added: {params: {allowed: [NET_BIND_SERVICE, NET_RAW]}}
          SEC001: {enabled: false}
        """))
    monkeypatch.chdir(tmp_path)
    documents = by_name(export("--builtin"))
    names = {name for kind, name in documents if kind == "ValidatingAdmissionPolicy"}
    assert "tbyte-policy-img004-image-not-pinned" in names  # strict preset
    assert "tbyte-policy-sec001-run-as-non-root-not-required" not in names
    capabilities = documents[("ValidatingAdmissionPolicy", "tbyte-policy-sec006-capabilities-added")]
    assert '({"allowed": ["NET_BIND_SERVICE", "NET_RAW"]}).allowed' in \
        capabilities["spec"]["variables"][-1]["expression"]


def test_every_exported_object_validates_against_the_api_schema_and_every_expression_is_kubernetes_cel():
    rules = [rule.with_overrides(enabled=True) for rule in CATALOGUE if rule.cel is not None]
    documents = vap.export_documents(rules, ["Deny"])
    catalog = schemas.schema_set()
    assert len(documents) == 2 * len(rules)
    for document in documents:
        assert catalog.validator(document["apiVersion"], document["kind"]).problems(document) == []
        if document["kind"] != "ValidatingAdmissionPolicy":
            continue
        for condition in document["spec"]["matchConditions"]:
            k8s_cel.check_expression(condition["expression"])  # request is there at admission
        declared: set[str] = set()
        for variable in document["spec"].get("variables", []):
            k8s_cel.check_expression(variable["expression"], frozenset(declared))
            declared.add(variable["name"])
        for validation in document["spec"]["validations"]:
            for key in ("expression", "messageExpression"):
                if key in validation:
                    k8s_cel.check_expression(validation[key], frozenset(declared))
            assert "\n" not in validation.get("message", "")


def test_the_resource_table_knows_every_kind_rules_match():
    assert {kind.kind for kind in ALL_KINDS} | POD_BEARING_KINDS <= set(vap.RESOURCES)
    assert {kind for rule in CATALOGUE if rule.cel is not None for kind in rule.kinds} <= set(vap.RESOURCES)
    assert vap.RESOURCES["ScaledObject"] == vap.APIResource("keda.sh", "v1alpha1", "scaledobjects")
    assert vap.RESOURCES["ExternalSecret"] == vap.APIResource("external-secrets.io", "v1", "externalsecrets")
    assert vap.RESOURCES["HorizontalPodAutoscaler"] == vap.APIResource("autoscaling", "v2", "horizontalpodautoscalers")


def test_a_kind_without_a_known_api_resource_and_an_empty_export_are_exit_2(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent("""\
        rules:
          - id: ORG500
            name: widgets
            severity: low
            title: Widgets
            match: {kinds: [Widget]}
            validations: [{expression: "true"}]
            docs: {what: w, fix: f}
        """))
    result = runner.invoke(app, ["export", "vap", "--rules", str(rules)])
    assert result.exit_code == 2
    assert result.stderr.startswith("tbyte-policy: rule ORG500: no API resource is known for kind Widget")
    empty = runner.invoke(app, ["export", "vap"])
    assert empty.exit_code == 2 and "no CEL rule to export" in empty.stderr


def test_every_builtin_rule_has_a_cel_twin_or_says_why_it_cannot_have_one():
    for rule in CATALOGUE:
        assert (rule.cel is None) != (rule.admission == ""), rule.id
        if rule.family == "runtime":
            assert "running state" in rule.admission
        if rule.family == "drift":
            assert "rendered manifests (live --against)" in rule.admission
    # Besides cross-resource and runtime rules: what the API server does itself, and heuristics CEL cannot keep.
    assert {rule.id for rule in CATALOGUE if rule.admission and rule.family not in ("runtime", "drift")
            and not rule.admission.startswith("cross-resource:")} == {"SCH001", "SCH002", "SCH003", "SCR001",
                                                                      "SCR004", "SCR005"}


def test_exemptions_and_ignore_annotations_become_match_conditions(tmp_path, monkeypatch):
    (tmp_path / ".tbyte-policy.yaml").write_text(textwrap.dedent("""\
        exemptions:
          - {rule: team-label-*, kind: Deployment, namespace: legacy, name: "batch-*", reason: vendor app (OPS-1)}
          - {rule: ORG001, name: "tool[!s]", reason: tools (OPS-2), expires: 2099-12-31}
          - {rule: ORG001, reason: long gone (OPS-3), expires: 2001-01-01}
          - {rule: ORG002, reason: another rule (OPS-4)}
        """))
    monkeypatch.chdir(tmp_path)
    policy = by_name(export("--rules", str(POLICIES)))[("ValidatingAdmissionPolicy",
                                                        "tbyte-policy-org001-team-label-required")]
    conditions = policy["spec"]["matchConditions"]
    assert [condition["name"] for condition in conditions] == ["not-ignored-by-annotation", "exemption-1",
                                                               "exemption-2"]  # the expired one is left out
    assert policy["metadata"]["annotations"]["tbyte-policy.io/exemption-2"] == \
        "*/*/tool[!s]: tools (OPS-2) (expires 2099-12-31; re-export then)"
    programs = [k8s_cel.check_expression(condition["expression"]) for condition in conditions]

    def validated(kind: str, namespace: str, name: str, annotations: dict | None = None) -> bool:
        metadata = {"name": name, **({"annotations": annotations} if annotations is not None else {})}
        context = k8s_cel.context({"object": {"kind": kind, "metadata": metadata},
                                   "request": {"namespace": namespace}})
        return all(program.execute(context) for program in programs)

    assert validated("Deployment", "shop", "web")
    assert not validated("Deployment", "legacy", "batch-7")
    assert validated("Deployment", "legacy2", "batch-7") and validated("StatefulSet", "legacy", "batch-7")
    assert not validated("StatefulSet", "shop", "toolx") and validated("StatefulSet", "shop", "tools")
    assert not validated("Deployment", "shop", "web", {"tbyte-policy.io/ignore.team-label-required": "owned by SRE"})
    assert validated("Deployment", "shop", "web", {"tbyte-policy.io/ignore.team-label-required": "  "})


@pytest.mark.parametrize("pattern", ["batch-*", "a?c", "[!x]y*", "a.b+c", "web-[0-9]", "*", "x(y)|z", "^$"])
def test_globs_become_regular_expressions_that_match_what_fnmatch_matches(pattern):
    import re
    from fnmatch import fnmatchcase

    regex = vap.glob_regex(pattern)
    for text in ["batch-1", "batch-", "abc", "a.c", "zy", "xy", "ay1", "a.b+c", "aXb+c", "web-3", "web-x", "",
                 "x(y)|z", "xyz", "^$"]:
        assert bool(re.fullmatch(regex, text)) == fnmatchcase(text, pattern), (pattern, regex, text)
        program = k8s_cel.check_expression(f"{k8s_cel.literal(text)}.matches({k8s_cel.literal(regex)})")
        assert program.execute(k8s_cel.context({})) == fnmatchcase(text, pattern), (pattern, regex, text)


def test_pods_of_workloads_a_rule_leaves_out_are_left_out_at_admission_too():
    documents = by_name(export("--builtin"))
    probes = documents[("ValidatingAdmissionPolicy", "tbyte-policy-prb004-probes-identical")]
    conditions = {condition["name"]: condition["expression"] for condition in probes["spec"]["matchConditions"]}
    owned = k8s_cel.check_expression(conditions["not-owned-by-an-unmatched-workload"])

    def validated(owner_kind: str | None) -> bool:
        owners = [{"kind": owner_kind, "name": "x", "controller": True}] if owner_kind else []
        return owned.execute(k8s_cel.context({"object": {"kind": "Pod", "metadata": {"ownerReferences": owners}}}))

    # PRB004 leaves out Jobs (they run to completion, with no readiness to speak of): their pods are not judged
    assert not validated("Job") and validated("ReplicaSet") and validated(None)
    security = documents[("ValidatingAdmissionPolicy", "tbyte-policy-sec004-privileged-container")]
    assert [condition["name"] for condition in security["spec"]["matchConditions"]] == ["not-ignored-by-annotation"]
