"""The schema family beyond its fixtures: messages, nulls, the per-object cap, versions, the removed-API
table against the shipped schemas, the vendored CRDs, lazy loading, and library parity."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import jsonschema_rs
import pytest
import yaml

from tbyte_policy import schemas
from tbyte_policy.audit import AuditOptions, audit_documents, scan_paths
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.checks.schema import MAX_SCHEMA_PROBLEMS, REMOVED_APIS, removed_api
from tbyte_policy.commands import configure_schema_rules
from tbyte_policy.config import Config, configure_rules
from tbyte_policy.sources.yaml_documents import load_text

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout, or beside a folder above it (a worktree under the main checkout's parent).
SHARED = next((parent / "shared" for parent in REPO.parents if (parent / "shared").is_dir()), REPO.parent / "shared")
SHARED_CRDS = SHARED / "schemas" / "crds"
CATALOGUE = {rule.id: rule for rule in load_catalogue()}


def scan(text: str, rule_id: str = "SCH001", **params) -> list:
    rule = CATALOGUE[rule_id].with_overrides(enabled=True, params={**CATALOGUE[rule_id].params, **params})
    report = audit_documents(load_text(textwrap.dedent(text), "manifest.yaml"), AuditOptions(rules=[rule]))
    assert not report.internal_errors, report.internal_errors
    return report.findings


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/web:1.0
{container}
"""


def deployment(container: str) -> str:
    return DEPLOYMENT.format(container=textwrap.indent(textwrap.dedent(container), " " * 10))


def test_an_unknown_field_is_reported_at_its_own_line_with_a_suggestion():
    findings = scan(deployment("""\
        ports:
          - containerPort: 8080
        livenesProbe:
          httpGet: {path: /health, port: 8080}
        """))
    assert [(finding.location.line, finding.location.pointer) for finding in findings] == \
        [(16, "/spec/template/spec/containers/0/livenesProbe")]
    assert "unknown field spec.template.spec.containers[0].livenesProbe; did you mean livenessProbe?" \
        in findings[0].message


def test_messages_name_the_field_and_the_expected_type_never_the_value():
    findings = scan(deployment("""\
        env:
          - name: DB_PASSWORD
            value: 8675309123
          - name: TOKEN
            value: {nested: hunter2-secret}
          - name: FLAG
            value: yes
        """))
    assert {finding.location.line for finding in findings} == {16, 18, 20}
    for finding in findings:
        assert "has the wrong type: expected a string" in finding.message
        for value in ("8675309123", "hunter2", "True", "yes"):
            assert value not in finding.message


def test_nulls_are_accepted_where_the_field_is_optional_and_missing_where_it_is_required():
    assert scan(deployment("""\
        args:
        command:
        ports:
          - containerPort: 8080
            hostPort:
        resources:
          limits:
        readinessProbe:
          httpGet: {path: /ready, port: 8080, scheme: }
        """)) == []
    findings = scan(deployment("""\
        readinessProbe:
          httpGet:
            path: /ready
            port:
        """))
    assert [(finding.location.line, finding.message.split(" (")[0]) for finding in findings] == \
        [(17, "missing required field spec.template.spec.containers[0].readinessProbe.httpGet.port")]


def test_nulls_in_custom_resources_are_pruned_like_the_api_server_does():
    assert scan("""\
        apiVersion: argoproj.io/v1alpha1
        kind: Rollout
        metadata: {name: api}
        spec:
          replicas:
          selector: {matchLabels: {app: api}}
          strategy:
            canary:
              steps:
          template:
            metadata: {labels: {app: api}}
            spec:
              containers:
                - {name: api, image: ghcr.io/acme/api:1.0}
        """) == []


def test_int_or_string_and_quantity_fields_take_both_forms_and_nothing_else():
    assert scan(deployment("""\
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: http}}
        livenessProbe: {tcpSocket: {port: 8080}}
        resources:
          requests: {cpu: 0.25, memory: 134217728}
          limits: {cpu: "1", memory: 256Mi}
        """)) == []
    findings = scan(deployment("""\
        readinessProbe: {httpGet: {path: /, port: true}}
        resources: {requests: {cpu: [1]}}
        """))
    messages = sorted(finding.message.split(" (")[0] for finding in findings)
    assert messages == [
        "spec.template.spec.containers[0].readinessProbe.httpGet.port has the wrong type: "
        "expected a string or an integer",
        "spec.template.spec.containers[0].resources.requests.cpu has the wrong type: expected a string or a number",
    ]


def test_at_most_ten_problems_per_object_and_the_last_says_how_many_more():
    fields = "".join(f"unknown{index}: 1\n" for index in range(15))
    findings = scan(deployment(fields))
    assert len(findings) == MAX_SCHEMA_PROBLEMS
    assert [finding.location.line for finding in findings] == list(range(14, 14 + MAX_SCHEMA_PROBLEMS))
    assert findings[-1].message.endswith("5 more schema problems in this object are not reported "
                                         "(at most 10 per object)")
    assert "more schema problems" not in findings[0].message


def test_a_known_kind_at_an_unserved_api_version_is_reported_but_other_groups_kinds_are_not():
    findings = scan("""\
        apiVersion: v1
        kind: PodDisruptionBudget
        metadata: {name: web}
        spec: {maxUnavailable: 1}
        ---
        apiVersion: apps/v1
        kind: CronJob
        metadata: {name: report}
        ---
        apiVersion: argoproj.io/v1
        kind: Rollout
        metadata: {name: api}
        ---
        apiVersion: serving.knative.dev/v1
        kind: Service
        metadata: {name: hello}
        spec: {template: {spec: {containers: [{image: hello}]}}}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: Workflow
        metadata: {name: build}
        ---
        apiVersion: external-secrets.io/v1beta1
        kind: ExternalSecret
        metadata: {name: db}
        """)
    assert [(finding.resource.kind, finding.location.line) for finding in findings] == \
        [("PodDisruptionBudget", 1), ("CronJob", 6), ("Rollout", 10)]
    newest = schemas.shipped_versions()[-1]
    assert [finding.message for finding in findings] == [
        f"PodDisruptionBudget is not served at apiVersion v1, only at policy/v1 (Kubernetes {newest}): "
        "applying it fails",
        f"CronJob is not served at apiVersion apps/v1, only at batch/v1 (Kubernetes {newest}): applying it fails",
        "Rollout is not served at apiVersion argoproj.io/v1, only at argoproj.io/v1alpha1 "
        "(argoproj.io/v1alpha1 Rollout CRD): applying it fails"]


def test_the_kubernetes_version_param_picks_the_schema_release():
    hpa = """\
        apiVersion: autoscaling/v2beta2
        kind: HorizontalPodAutoscaler
        metadata: {name: web}
        spec:
          scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
          maxReplicas: 5
        """
    assert scan(hpa, "SCH001", kubernetes_version="1.25") == []
    assert scan(hpa, "SCH002", kubernetes_version="1.25") == []
    assert scan(hpa, "SCH001") == []  # no longer served: SCH002's to say
    assert [finding.message for finding in scan(hpa, "SCH002")] == \
        ["HorizontalPodAutoscaler autoscaling/v2beta2 is no longer served since Kubernetes 1.26: "
         "applying it fails; use autoscaling/v2"]


def test_versions_resolve_to_the_newest_shipped_release_not_newer_than_asked():
    shipped = schemas.shipped_versions()
    assert schemas.resolve_version(schemas.LATEST) == shipped[-1]
    assert schemas.resolve_version(f"v{shipped[0]}.7") == shipped[0]
    for bad in ("1.2x", "one", f"{shipped[-1]}0", "1.0"):
        with pytest.raises(schemas.SchemaVersionError):
            schemas.resolve_version(bad)


def test_removed_api_table_agrees_with_the_shipped_schemas():
    """Each Kubernetes entry is served the release before its removal and not from it on, as far as the
    releases kubernetes-validate ships show."""
    shipped = [schemas.parse_kubernetes_version(version) for version in schemas.shipped_versions()]
    checked = 0
    for entry in REMOVED_APIS:
        if entry.product != "Kubernetes":
            continue
        removed = schemas.parse_kubernetes_version(entry.removed_in)
        for kind in entry.kinds:
            for version in shipped:
                served = schemas.schema_set(f"{version[0]}.{version[1]}").validator(entry.api_version, kind) is not None
                if version >= removed or version == (removed[0], removed[1] - 1):
                    assert served == (version < removed), (entry.api_version, kind, version)
                assert (removed_api(entry.api_version, kind, f"{version[0]}.{version[1]}") is not None) == \
                    (version >= removed)
                checked += 1
    assert checked > 100


def test_esos_unserved_v1beta1_is_in_the_table_and_not_vendored():
    assert removed_api("external-secrets.io/v1beta1", "ExternalSecret", "1.25").replacement == "external-secrets.io/v1"
    assert schemas.schema_set().validator("external-secrets.io/v1beta1", "ExternalSecret") is None


def test_schema_invalid_covers_every_kind_of_the_newest_release_and_the_vendored_crds():
    sources = schemas.schema_set().kinds()
    crds = {kind for (_, kind), source in sources.items() if source.endswith(" CRD")}
    assert CATALOGUE["SCH001"].kinds == {kind for _, kind in sources}
    assert crds == {"Rollout", "AnalysisTemplate", "ExternalSecret", "SecretStore", "ClusterSecretStore",
                    "ScaledObject", "Certificate"}


@pytest.mark.skipif(not SHARED_CRDS.is_dir(), reason="../shared/schemas/crds is not beside this checkout")
def test_vendored_crd_schemas_are_what_the_vendoring_script_makes_of_the_upstream_crds():
    spec = importlib.util.spec_from_file_location("vendor_crd_schemas", REPO / "scripts" / "vendor_crd_schemas.py")
    vendor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vendor)
    expected = vendor.vendored_schemas(SHARED_CRDS)
    actual = {path.name: path.read_text(encoding="utf-8") for path in schemas.CRD_SCHEMA_DIR.glob("*.json")}
    assert actual == expected
    readme = (schemas.CRD_SCHEMA_DIR / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in actual)
    assert {path.name for path in (schemas.CRD_SCHEMA_DIR / "licenses").iterdir()} == \
        {path.name for path in (SHARED_CRDS / "licenses").iterdir()}


def test_the_realworld_custom_resources_validate_except_the_documented_negative_examples():
    corpus = SHARED / "realworld"
    if not corpus.is_dir():
        pytest.skip("../shared/realworld is not beside this checkout")
    report = scan_paths([str(corpus)], AuditOptions(rules=[CATALOGUE["SCH001"].with_overrides(enabled=True)]))
    assert not report.internal_errors
    assert {Path(finding.location.path).name for finding in report.findings} == \
        {"full-secret-store.yaml", "full-cluster-secret-store.yaml"}


def test_configure_schema_rules_drops_schema_rules_and_sets_the_version():
    rules = configure_rules(load_catalogue(), Config())
    without = configure_schema_rules(rules, enabled=False)
    assert {rule.id for rule in rules} - {rule.id for rule in without} == {"SCH001"}
    pinned = {rule.id: rule for rule in configure_schema_rules(rules, kubernetes_version="1.29")}
    assert pinned["SCH001"].params["kubernetes_version"] == pinned["SCH002"].params["kubernetes_version"] == "1.29"
    assert pinned["SCH003"].params == CATALOGUE["SCH003"].params
    with pytest.raises(schemas.SchemaVersionError):
        configure_schema_rules(rules, kubernetes_version="1.9")  # no schemas that old
    old = {rule.id: rule for rule in configure_schema_rules(rules, enabled=False, kubernetes_version="1.9")}
    assert old["SCH002"].params["kubernetes_version"] == "1.9"
    with pytest.raises(schemas.SchemaVersionError):
        configure_schema_rules(rules, enabled=False, kubernetes_version="latest-ish")


# `tbyte-policy scan FILE --format json [--no-schema]`, reporting at exit which of the heavy packages it imported
# (the JSON report needs no rich; a scan needs no kubernetes client, no Helm SDK and no renderer, and
# without CEL rules no CEL library nor the modules that use it) and how many schema sets it built.
_LAZY_PROBE = """
import atexit, sys
from tbyte_policy import schemas
from tbyte_policy.cli import main

@atexit.register
def report():
    loaded = [name for name in ("kubernetes_validate", "jsonschema_rs", "jsonschema", "kubernetes", "rich",
                                # rendering: only when a chart or a kustomization is scanned
                                "helm_python", "tbyte_policy.sources.helm", "tbyte_policy.sources.kustomize",
                                "tbyte_policy.sources.tools", "tbyte_policy.sources.inputs",
                                # CEL: only when CEL rules are configured
                                "cel", "cel.cel", "celpy", "tbyte_policy.k8s_cel", "tbyte_policy.cel_rules",
                                "tbyte_policy.vap")
              if name in sys.modules]
    print(",".join(loaded), schemas._schema_set.cache_info().currsize, sep="|", file=sys.stderr)

sys.argv = ["tbyte-policy", "scan", *sys.argv[1:], "--format", "json"]
main()
"""


@pytest.mark.parametrize(("options", "expected_modules", "schema_sets"),
                         [(["--no-schema"], "", "0"), ([], "jsonschema_rs", "1")])
def test_schema_libraries_and_files_load_only_when_a_schema_rule_runs(options, expected_modules, schema_sets):
    fixture = Path(__file__).parent / "fixtures" / "rules" / "SCH001" / "fail.yaml"
    result = subprocess.run([sys.executable, "-c", _LAZY_PROBE, str(fixture), *options],
                            capture_output=True, text=True, cwd=REPO)
    modules, sets = result.stderr.strip().splitlines()[-1].split("|")
    assert (modules, sets) == (expected_modules, schema_sets)
    assert result.returncode in (0, 1) and json.loads(result.stdout)["summary"]["findings"] > 0


def _fixture_documents() -> list[dict]:
    documents = []
    for path in sorted((Path(__file__).parent / "fixtures" / "rules").glob("SCH00*/*.yaml")):
        documents.extend(doc for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader) if doc)
    return documents


def test_jsonschema_rs_and_jsonschema_find_the_same_problems_on_the_same_schemas():
    """jsonschema-rs is used for speed (benchmarks/schema_validators.py); it must not judge differently."""
    catalog = schemas.schema_set()
    compared = 0
    for document in _fixture_documents():
        schema = catalog.schema(document["apiVersion"], document["kind"])
        if schema is None:
            continue
        ready = schemas._api_ready(document)
        rust = {tuple(error.instance_path) for error in
                jsonschema_rs.Draft202012Validator(schema, validate_formats=False).iter_errors(ready)}
        python = {tuple(error.absolute_path) for error in jsonschema.Draft202012Validator(schema).iter_errors(ready)}
        assert rust == python, (document["kind"], document["metadata"])
        compared += bool(rust)
    assert compared >= 5


def test_schema_problems_never_raise_on_yaml_only_types():
    # The loader reads YAML-only forms as Kubernetes does (tests/test_yaml_dialect.py): the key 1 is "1", the
    # !!binary value its decoded text, and the !!set a mapping of nulls, which the API server takes as absent.
    findings = scan("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: odd
          labels: {1: one, enabled: yes}
        binaryData:
          blob: !!binary aGVsbG8=
        data: !!set {a, b}
        """)
    assert sorted((finding.location.line, finding.message.split(" (")[0]) for finding in findings) == [
        (5, "metadata.labels.enabled has the wrong type: expected a string"),
    ]


def test_every_schema_of_the_newest_release_and_every_vendored_crd_compiles():
    catalog = schemas.schema_set()
    keys = catalog.kinds()
    assert all(catalog.validator(api_version, kind) is not None for api_version, kind in keys)
    assert len(keys) > 100


def test_a_pod_missing_many_configmaps_gets_ten_findings_the_last_counting_the_rest():
    volumes = "".join(f"          - {{name: v{index}, configMap: {{name: dashboard-{index}}}}}\n"
                      for index in range(13))
    findings = scan("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: grafana}
        spec:
          containers: [{name: grafana, image: grafana/grafana:11.0.0}]
          volumes:\n""" + volumes, "SCH004")
    assert [finding.location.line for finding in findings] == list(range(11, 21))
    assert findings[-1].message.endswith("3 more missing ConfigMaps in this object are not reported "
                                         "(at most 10 per object)")


def test_removed_api_version_walks_to_every_kind_of_its_table():
    assert CATALOGUE["SCH002"].kinds == {kind for entry in REMOVED_APIS for kind in entry.kinds}


def test_crd_constraints_name_the_rule_the_value_breaks_without_the_value():
    findings = scan("""\
        apiVersion: external-secrets.io/v1
        kind: ExternalSecret
        metadata: {name: db}
        spec:
          secretStoreRef: {name: vault, kind: VaultStore}
          target: {name: db, creationPolicy: Sometimes}
          data:
            - secretKey: "pa$$word key"
              remoteRef: {key: shop/db}
        """)
    assert sorted((finding.location.line, finding.message) for finding in findings) == [
        (5, "spec.secretStoreRef.kind must be one of: SecretStore, ClusterSecretStore "
            "(external-secrets.io/v1 ExternalSecret CRD schema)"),
        (6, "spec.target.creationPolicy must be one of: Owner, Orphan, Merge, None, CreateOrMerge "
            "(external-secrets.io/v1 ExternalSecret CRD schema)"),
        (8, "spec.data[0].secretKey does not have the form the external-secrets.io/v1 ExternalSecret CRD schema "
            "requires (pattern ^[-._a-zA-Z0-9]+$)"),
    ]
    assert not any(value in finding.message for finding in findings for value in ("VaultStore", "Sometimes", "pa$$"))
