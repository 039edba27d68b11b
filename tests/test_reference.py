"""The bundled reference manifests are what tbyte-policy calls production-ready, and every protective field in
them is load-bearing: the variants scan clean (in-cluster-db keeps exactly its single-instance findings), every
object validates against its schema, deleting any one protective item makes the scan report it, every tier and
protective kind is there, and `reference export` hands out the same manifests."""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tbyte_policy import reference, schemas
from tbyte_policy.audit import AuditOptions, audit_resources, build_resources, scan_paths
from tbyte_policy.bundle import bundled_dir
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.checks.network_policy import EGRESS, INGRESS, dns_protocols, is_default_deny, rules_of
from tbyte_policy.cli import app
from tbyte_policy.config import IGNORE_ANNOTATION_PREFIX, Config, configure_rules
from tbyte_policy.findings import Finding, Report
from tbyte_policy.inventory import Inventory, scale_target
from tbyte_policy.model import CONTAINER_LISTS, POD_TEMPLATE_POINTERS, PodView, Resource, resolve
from tbyte_policy.sources import Document
from tbyte_policy.sources.files import load_paths

NAMESPACE = reference.REFERENCE_NAMESPACE
VARIANTS = list(reference.variants())
RULES = configure_rules(load_catalogue(), Config())
# The in-cluster database is one instance by design (reference_manifests/README.md): these two findings are
# accurate and stay.
SINGLE_INSTANCE_FINDINGS = {("PDB002", "StatefulSet/postgres"), ("REP001", "StatefulSet/postgres")}
EXPECTED = {"production": set(), "canary": set(), "in-cluster-db": SINGLE_INSTANCE_FINDINGS}
CRD_KINDS = {"ExternalSecret", "SecretStore", "Rollout", "AnalysisTemplate"}
runner = CliRunner()


def documents(variant: str) -> list[Document]:
    loaded = load_paths([str(path) for path in reference.variant_files(variant)])
    assert not loaded.errors, loaded.errors
    return loaded.documents


def audit(docs: list[Document]) -> Report:
    errors: list = []
    resources = build_resources(docs, NAMESPACE, errors)
    report = audit_resources(resources, AuditOptions(namespace=NAMESPACE, rules=RULES), "scan", errors)
    assert not report.errors and not report.internal_errors, (report.errors, report.internal_errors)
    return report


def found(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(finding.rule_id, f"{finding.resource.kind}/{finding.resource.name}") for finding in findings}


_RESOURCES: dict[str, list[Resource]] = {}


def resources(variant: str) -> list[Resource]:
    if variant not in _RESOURCES:
        errors: list = []
        _RESOURCES[variant] = build_resources(documents(variant), NAMESPACE, errors)
        assert not errors, errors
    return _RESOURCES[variant]


def of_kind(variant: str, kind: str) -> dict[str, Resource]:
    return {resource.name: resource for resource in resources(variant) if resource.kind == kind}


# --- the variants scan clean ---

def test_scan_without_arguments_audits_production_and_finds_nothing_at_any_severity(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .tbyte-policy.yaml of this repository, no suppressions
    result = runner.invoke(app, ["scan", "--format", "json", "--fail-on", "info"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["summary"]["resources"] == len(resources("production"))
    assert document["summary"]["findings"] == document["summary"]["suppressed"] == 0
    assert document["findings"] == [] and document["errors"] == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_reports_exactly_its_accepted_findings(variant, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = [str(path) for path in reference.variant_files(variant)]
    result = runner.invoke(app, ["scan", *files, "-n", NAMESPACE, "--format", "json", "--fail-on", "info"])
    document = json.loads(result.stdout)
    assert {(f["rule_id"], f"{f['resource']['kind']}/{f['resource']['name']}") for f in document["findings"]} \
        == EXPECTED[variant]
    assert not any(finding["suppressed"] for finding in document["findings"])
    assert document["errors"] == []
    # Accepted findings are low and medium: the default threshold (high) passes every variant.
    assert result.exit_code == (1 if EXPECTED[variant] else 0)
    assert runner.invoke(app, ["scan", *files, "-n", NAMESPACE, "--quiet"]).exit_code == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_finding_is_hidden_by_an_ignore_annotation(variant):
    for resource in resources(variant):
        assert not [key for key in resource.annotations if key.startswith(IGNORE_ANNOTATION_PREFIX)], resource.ref


# --- schemas ---

@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_validates_against_its_kubernetes_or_crd_schema(variant):
    catalog = schemas.schema_set()
    sch001 = next(rule for rule in RULES if rule.id == "SCH001")
    crd_objects = 0
    for resource in resources(variant):
        assert resource.kind in sch001.kinds, f"SCH001 does not validate {resource.kind}"
        validator = catalog.validator(resource.api_version, resource.kind)
        assert validator is not None, f"no schema for {resource.api_version} {resource.kind}"
        assert validator.problems(resource.raw) == [], resource.ref
        if resource.kind in CRD_KINDS:
            assert catalog.source(resource.api_version, resource.kind).endswith(" CRD")
            crd_objects += 1
    assert crd_objects >= 2  # ExternalSecret(s) and the SecretStore at least, in every variant
    report = scan_paths([str(path) for path in reference.variant_files(variant)],
                        AuditOptions(namespace=NAMESPACE, rules=[sch001]))
    assert report.findings == [] and report.resources == len(resources(variant))


# --- every protective item is load-bearing ---

@dataclass(frozen=True)
class Deletion:
    family: str      # the family whose rules must notice the deletion
    label: str       # what is deleted, for the test id
    document: int    # index of the document in the variant
    path: tuple      # keys down to the deleted field; () deletes the whole object


def _pod_spec_path(body: dict) -> tuple | None:
    pointer = "/spec" if body["kind"] == "Pod" else POD_TEMPLATE_POINTERS.get(body["kind"])
    if pointer is None:
        return None
    return tuple(pointer.strip("/").split("/")) + (("spec",) if body["kind"] != "Pod" else ())


def _context_fields(context: dict, path: tuple) -> list[tuple]:
    """Every field of a securityContext at any depth (seccompProfile and seccompProfile.type both)."""
    fields = []
    for key, value in context.items():
        fields.append((*path, key))
        if isinstance(value, dict):
            fields.extend(_context_fields(value, (*path, key)))
    return fields


# A deleted startupProbe is not enumerated: it only gives a slow starter time before liveness takes over,
# and whether a container needs that depends on its start-up time, which no manifest shows. No rule can
# tell a missing startup probe from one that is not needed, so none is asked of the probes family.
PROBES = ("readinessProbe", "livenessProbe")
WHOLE_OBJECTS = {"PodDisruptionBudget": "pdb", "HorizontalPodAutoscaler": "hpa", "NetworkPolicy": "network-policy",
                 "ExternalSecret": "secrets"}


def deletions(variant: str) -> list[Deletion]:
    found_items = []
    for index, document in enumerate(documents(variant)):
        body = document.body
        name = f"{body['kind']}/{body['metadata']['name']}"
        if body["kind"] in WHOLE_OBJECTS:
            found_items.append(Deletion(WHOLE_OBJECTS[body["kind"]], name, index, ()))
        spec_path = _pod_spec_path(body)
        spec = resolve(body, "/" + "/".join(spec_path)) if spec_path else None
        if not isinstance(spec, dict):
            continue
        found_items += [Deletion("security-context", f"{name}:pod.{'.'.join(path[len(spec_path) + 1:])}", index, path)
                        for path in _context_fields(spec.get("securityContext", {}), (*spec_path, "securityContext"))]
        for key, _ in CONTAINER_LISTS:
            for number, container in enumerate(spec.get(key, [])):
                base, prefix = (*spec_path, key, number), f"{name}:{container['name']}"
                found_items += [Deletion("probes", f"{prefix}.{probe}", index, (*base, probe))
                                for probe in PROBES if probe in container]
                found_items += [Deletion("resources", f"{prefix}.limits.{resource}", index,
                                         (*base, "resources", "limits", resource))
                                for resource in container.get("resources", {}).get("limits", {})]
                found_items += [Deletion("security-context", f"{prefix}.{'.'.join(path[len(base) + 1:])}", index, path)
                                for path in _context_fields(container.get("securityContext", {}),
                                                            (*base, "securityContext"))]
    return found_items


def without(docs: list[Document], deletion: Deletion) -> list[Document]:
    mutated = copy.deepcopy(docs)
    if not deletion.path:
        del mutated[deletion.document]
        return mutated
    node = mutated[deletion.document].body
    for key in deletion.path[:-1]:
        node = node[key]
    del node[deletion.path[-1]]
    return mutated


CASES = [(variant, deletion) for variant in VARIANTS for deletion in deletions(variant)]
_BASELINES: dict[str, set] = {}


@pytest.mark.parametrize(("variant", "deletion"), CASES,
                         ids=[f"{variant}-{deletion.family}-{deletion.label}" for variant, deletion in CASES])
def test_deleting_a_protective_item_is_reported_by_its_family(variant, deletion):
    if variant not in _BASELINES:
        _BASELINES[variant] = {finding.identity for finding in audit(documents(variant)).findings}
    new = [finding for finding in audit(without(documents(variant), deletion)).findings
           if finding.identity not in _BASELINES[variant]]
    assert any(finding.family == deletion.family for finding in new), \
        f"deleting {deletion.label} went unnoticed by {deletion.family}: {sorted(found(new))}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_enumeration_covers_every_family_and_every_pod(variant):
    items = deletions(variant)
    assert set(Counter(item.family for item in items)) == \
        {"probes", "resources", "pdb", "hpa", "network-policy", "secrets", "security-context"}
    workloads = [document.body["metadata"]["name"] for document in documents(variant)
                 if _pod_spec_path(document.body)]
    for name in workloads:
        labels = [item.label for item in items if item.family == "security-context"]
        assert any(label.split(":")[0].endswith(f"/{name}") and ":pod." in label for label in labels), name
        assert sum(item.label.split(":")[0].endswith(f"/{name}") for item in items if item.family == "resources") >= 2
    # Every container limit and both probe kinds of the serving containers are in.
    assert {item.label.rsplit(".", 1)[-1] for item in items if item.family == "probes"} == set(PROBES)
    assert {item.label.rsplit(".", 1)[-1] for item in items if item.family == "resources"} == {"cpu", "memory"}


# --- the tiers, the protective kinds and both database choices are there ---

def inventory(variant: str) -> Inventory:
    return Inventory(resources(variant), NAMESPACE)


def workload(variant: str, name: str) -> Resource:
    matches = [resource for resource in resources(variant)
               if resource.name == name and resource.kind in ("Deployment", "Rollout", "StatefulSet")]
    assert len(matches) == 1, (variant, name, matches)
    return matches[0]


def pods(variant: str, name: str) -> PodView:
    view = inventory(variant).pods_of(workload(variant, name))
    assert view is not None
    return view


FRONTEND_KIND = {"production": "Deployment", "canary": "Rollout", "in-cluster-db": "Deployment"}
SERVING = ("frontend", "backend")


@pytest.mark.parametrize("variant", VARIANTS)
def test_frontend_tier_is_served_through_the_ingress(variant):
    assert workload(variant, "frontend").kind == FRONTEND_KIND[variant]
    ingress = of_kind(variant, "Ingress")["tbyte"]
    backend = ingress.raw["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = of_kind(variant, "Service")[backend["name"]]
    assert inventory(variant).pods_matching_map(NAMESPACE, service.spec["selector"]) == [pods(variant, "frontend")]


@pytest.mark.parametrize("variant", VARIANTS)
def test_backend_tier_is_the_same_deployment_in_every_variant(variant):
    assert workload(variant, "backend").raw == workload("production", "backend").raw
    service = of_kind(variant, "Service")["backend"]
    assert inventory(variant).pods_matching_map(NAMESPACE, service.spec["selector"]) == [pods(variant, "backend")]


@pytest.mark.parametrize("variant", ["production", "canary"])
def test_database_tier_managed_is_an_external_name_service(variant):
    service = of_kind(variant, "Service")["postgres"]
    assert service.spec["type"] == "ExternalName" and service.spec["externalName"].endswith(".rds.amazonaws.com")
    assert "StatefulSet" not in {resource.kind for resource in resources(variant)}


def test_database_tier_in_cluster_is_a_statefulset_with_a_persistent_volume():
    statefulset = workload("in-cluster-db", "postgres")
    assert statefulset.kind == "StatefulSet" and statefulset.spec["replicas"] == 1
    assert [claim["metadata"]["name"] for claim in statefulset.spec["volumeClaimTemplates"]] == ["data"]
    service = of_kind("in-cluster-db", "Service")["postgres"]
    assert service.spec["clusterIP"] == "None" and statefulset.spec["serviceName"] == "postgres"


@pytest.mark.parametrize("variant", VARIANTS)
def test_pod_disruption_budgets_cover_frontend_and_backend(variant):
    index = inventory(variant).pdbs
    for name in SERVING:
        budgets = index.matching(NAMESPACE, pods(variant, name).labels)
        assert [budget.spec["maxUnavailable"] for budget in budgets] == [1], name


@pytest.mark.parametrize("variant", VARIANTS)
def test_horizontal_pod_autoscalers_scale_frontend_and_backend(variant):
    for name in SERVING:
        target = workload(variant, name)
        scalers = inventory(variant).autoscalers_of(target)
        assert [scale_target(scaler) for scaler in scalers] == [(target.kind, name)]
        assert scalers[0].spec["minReplicas"] >= 3 and "replicas" not in target.spec


@pytest.mark.parametrize("variant", VARIANTS)
def test_network_policies_deny_by_default_and_allow_dns(variant):
    policies = of_kind(variant, "NetworkPolicy")
    deny = policies["default-deny-all"]
    assert is_default_deny(deny, INGRESS) and is_default_deny(deny, EGRESS)
    dns = policies["allow-dns-egress"]
    assert dns.spec["podSelector"] == {}
    assert set().union(*(dns_protocols(rule) for rule in rules_of(dns, EGRESS))) == {"UDP", "TCP"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_external_secrets_come_from_the_secret_store(variant):
    stores = of_kind(variant, "SecretStore")
    externals = of_kind(variant, "ExternalSecret")
    assert "backend-db-credentials" in externals and "Secret" not in {resource.kind for resource in resources(variant)}
    for external in externals.values():
        assert external.spec["secretStoreRef"]["name"] in stores and external.spec["refreshInterval"] == "1h"


@pytest.mark.parametrize("variant", VARIANTS)
def test_ingress_terminates_tls_for_its_host(variant):
    spec = of_kind(variant, "Ingress")["tbyte"].spec
    assert {host for tls in spec["tls"] for host in tls["hosts"]} == {rule["host"] for rule in spec["rules"]}
    assert all(tls["secretName"] for tls in spec["tls"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_namespace_enforces_the_restricted_pod_security_standard(variant):
    labels = of_kind(variant, "Namespace")[NAMESPACE].labels
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pod_runs_as_its_own_service_account(variant):
    accounts = of_kind(variant, "ServiceAccount")
    names = [view.spec["serviceAccountName"] for view in inventory(variant).workloads()]
    assert len(set(names)) == len(names) and set(names) <= set(accounts)


@pytest.mark.parametrize("variant", VARIANTS)
def test_serving_containers_have_readiness_and_liveness_probes(variant):
    serving = [container for view in inventory(variant).workloads() if view.resource.kind != "CronJob"
               for container in view.containers()]
    assert serving and all("readinessProbe" in c.raw and "livenessProbe" in c.raw for c in serving)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_container_has_requests_and_limits(variant):
    containers = [container for view in inventory(variant).workloads() for container in view.containers()]
    assert containers
    for container in containers:
        for section in ("requests", "limits"):
            assert set(container.resources[section]) == {"cpu", "memory"}, container.name


# --- reference export ---

def exported_findings(directory: Path, namespace: str) -> set[tuple]:
    report = scan_paths([str(directory)], AuditOptions(namespace=namespace, rules=RULES))
    assert not report.errors and not report.internal_errors
    return {(finding.rule_id, finding.resource.kind, finding.resource.name, finding.resource.namespace == namespace,
             Path(finding.location.path).relative_to(directory).as_posix(), finding.location.line)
            for finding in report.findings}


def bundled_findings(variant: str) -> set[tuple]:
    report = scan_paths([str(path) for path in reference.variant_files(variant)],
                        AuditOptions(namespace=NAMESPACE, rules=RULES))
    return {(finding.rule_id, finding.resource.kind, finding.resource.name, finding.resource.namespace == NAMESPACE,
             reference.relative_name(Path(finding.location.path)), finding.location.line)
            for finding in report.findings}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("namespace", [None, "shop"])
def test_export_round_trips_through_the_scan(variant, namespace, tmp_path):
    arguments = ["reference", "export", str(tmp_path), "--variant", variant]
    if namespace:
        arguments += ["--namespace", namespace]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    written = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.yaml"))
    assert written == sorted(reference.relative_name(path) for path in reference.variant_files(variant))
    target = namespace or NAMESPACE
    assert exported_findings(tmp_path, target) == bundled_findings(variant)
    assert {(finding[0], f"{finding[1]}/{finding[2]}") for finding in bundled_findings(variant)} == EXPECTED[variant]
    namespaces = {resource.namespace for resource in build_resources(
        load_paths([str(tmp_path)]).documents, "default", [])} - {None}
    assert namespaces == {target}


def test_export_refuses_to_overwrite_without_force(tmp_path):
    assert runner.invoke(app, ["reference", "export", str(tmp_path)]).exit_code == 0
    edited = tmp_path / "backend" / "deployment.yaml"
    edited.write_text("# mine\n")
    refused = runner.invoke(app, ["reference", "export", str(tmp_path)])
    assert refused.exit_code == 2 and "--force" in refused.stderr
    assert edited.read_text() == "# mine\n"
    assert runner.invoke(app, ["reference", "export", str(tmp_path), "--force"]).exit_code == 0
    assert edited.read_text() == (bundled_dir("reference_manifests") / "backend" / "deployment.yaml").read_text()
