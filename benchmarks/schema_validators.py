"""Schema validation cost: jsonschema-rs against jsonschema, and both against parsing.

    python benchmarks/schema_validators.py [--objects 1000 5000] [--naive-sample 100]

Generates a realistic manifest set (Deployments, Services, ConfigMaps, HPAs, PDBs, Argo Rollouts,
ExternalSecrets; one object in twenty broken), then times, in the same run:

- parse: `yaml.load_all` with CSafeLoader, the baseline every ratio is against;
- load: the scanner's own loader (CSafeLoader's parser plus line positions);
- jsonschema-rs / jsonschema: validating every object with one compiled validator per kind, the
  same resolved schemas (tbyte_policy.schemas builds them), validators compiled on first use;
- naive: ``kubernetes_validate.validate`` per document, which reloads the schemas every time
  (timed on a sample and scaled up);
- scan: ``scan_paths`` with the whole configured catalogue, with and without the schema rules.

It also checks that both libraries report the same (field, keyword) problems for every object.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import jsonschema
import jsonschema_rs
import yaml

from tbyte_policy.audit import AuditOptions, scan_paths
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.commands import configure_schema_rules
from tbyte_policy.config import Config, configure_rules
from tbyte_policy.schemas import _api_ready, schema_set
from tbyte_policy.sources.files import load_paths

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-{i}
  namespace: team-{ns}
  labels: {{app: web-{i}, tier: frontend}}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: web-{i}}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: 25%, maxUnavailable: 0}}
  template:
    metadata:
      labels: {{app: web-{i}, tier: frontend}}
      annotations: {{prometheus.io/scrape: "true"}}
    spec:
      serviceAccountName: web-{i}
      securityContext: {{runAsNonRoot: true, seccompProfile: {{type: RuntimeDefault}}}}
      containers:
        - name: web
          image: ghcr.io/acme/web:1.{i}.0
          ports:
            - {{name: http, containerPort: 8080}}
          env:
            - {{name: LOG_LEVEL, value: info}}
            - name: DB_PASSWORD
              valueFrom: {{secretKeyRef: {{name: db, key: password}}}}
          envFrom:
            - configMapRef: {{name: web-{i}}}
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{memory: 256Mi}}
          readinessProbe:
            httpGet: {{path: /ready, port: http}}
            periodSeconds: 5
          {probe}:
            httpGet: {{path: /health, port: 8080}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
          volumeMounts:
            - {{name: tmp, mountPath: /tmp}}
        - name: proxy
          image: envoyproxy/envoy:v1.30.1
          ports:
            - containerPort: {port}
          resources:
            requests: {{cpu: 50m, memory: 64Mi}}
      volumes:
        - name: tmp
          emptyDir: {{}}
"""
SERVICE = """apiVersion: v1
kind: Service
metadata: {{name: web-{i}, namespace: team-{ns}}}
spec:
  selector: {{app: web-{i}}}
  ports:
    - {{name: http, port: 80, targetPort: http}}
"""
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata: {{name: web-{i}, namespace: team-{ns}}}
data:
  FEATURE_FLAGS: "a,b,c"
  TIMEOUT: "30s"
"""
HPA = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web-{i}, namespace: team-{ns}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web-{i}}}
  minReplicas: 3
  maxReplicas: 10
  metrics:
    - type: Resource
      resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 70}}}}
"""
PDB = """apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web-{i}, namespace: team-{ns}}}
spec:
  maxUnavailable: 1
  selector: {{matchLabels: {{app: web-{i}}}}}
"""
ROLLOUT = """apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: api-{i}, namespace: team-{ns}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: api-{i}}}}}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: {{duration: 1m}}
  template:
    metadata: {{labels: {{app: api-{i}}}}}
    spec:
      containers:
        - name: api
          image: ghcr.io/acme/api:2.{i}.0
          ports: [{{containerPort: 8080}}]
          resources: {{requests: {{cpu: 100m, memory: 128Mi}}}}
"""
EXTERNAL_SECRET = """apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: db-{i}, namespace: team-{ns}}}
spec:
  refreshInterval: 1h
  secretStoreRef: {{name: vault, kind: ClusterSecretStore}}
  target: {{name: db-{i}}}
  data:
    - secretKey: password
      remoteRef: {{key: team-{ns}/db, property: password}}
"""
# Deployment, Service, ConfigMap and HPA in every group of objects; the others now and then.
TEMPLATES = (DEPLOYMENT, SERVICE, CONFIGMAP, HPA, PDB, DEPLOYMENT, SERVICE, ROLLOUT, EXTERNAL_SECRET, CONFIGMAP)


def manifests(count: int) -> str:
    rng = random.Random(7)
    documents = []
    for index in range(count):
        template = TEMPLATES[index % len(TEMPLATES)]
        broken = rng.random() < 0.05
        documents.append(template.format(i=index, ns=index % 20, probe="livenesProbe" if broken else "livenessProbe",
                                         port='"9901"' if broken else 9901))
    return "---\n".join(documents)


def timed(function, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def compiled(validators: dict, compile_schema, catalog, document: dict):
    """One validator per (apiVersion, kind), compiled on first use from the resolved schema."""
    key = (document["apiVersion"], document["kind"])
    if key not in validators:
        schema = catalog.schema(*key)
        validators[key] = compile_schema(schema) if schema is not None else None
    return validators[key]


def validate_all(validators: dict, compile_schema, catalog, documents: list, path_of, keyword_of) -> list[set]:
    """What the scanner does per object: a fast is_valid, and the errors of the ones that fail."""
    results = []
    for document in documents:
        validator = compiled(validators, compile_schema, catalog, document)
        if validator is None or validator.is_valid(document):
            results.append(set())
        else:
            errors = validator.iter_errors(_api_ready(document))
            results.append({(path_of(error), keyword_of(error)) for error in errors})
    return results


def run(count: int, naive_sample: int, rules) -> None:
    text = manifests(count)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "manifests.yaml"
        path.write_text(text)
        parse, documents = timed(lambda: [doc for doc in yaml.load_all(text, Loader=yaml.CSafeLoader) if doc])
        load, _ = timed(lambda: load_paths([str(path)]))

        catalog = schema_set()
        rust_validators: dict = {}
        python_validators: dict = {}

        def rust_pass() -> list[set]:
            return validate_all(rust_validators, lambda schema: jsonschema_rs.Draft202012Validator(
                schema, validate_formats=False), catalog, documents,
                lambda error: "/".join(map(str, error.instance_path)), lambda error: error.kind.name)

        def python_pass() -> list[set]:
            return validate_all(python_validators, jsonschema.Draft202012Validator, catalog, documents,
                                lambda error: "/".join(map(str, error.absolute_path)), lambda error: error.validator)

        rust_cold, rust = timed(rust_pass, 1)
        rust_warm, _ = timed(rust_pass)
        python_cold, python = timed(python_pass, 1)
        python_warm, _ = timed(python_pass, 1)
        scanner, _ = timed(lambda: [catalog.validator(d["apiVersion"], d["kind"]).problems(d) for d in documents])

        import kubernetes_validate

        sample = documents[:naive_sample]
        start = time.perf_counter()
        for document in sample:
            try:
                kubernetes_validate.validate(document, catalog.version, strict=True)
            except Exception:  # invalid documents, and CRDs it has no schema for, are expected here
                pass
        naive = (time.perf_counter() - start) * count / len(sample)

        with_schema, report = timed(lambda: scan_paths([str(path)], AuditOptions(rules=rules)))
        without_rules = configure_schema_rules(rules, enabled=False)
        without_schema, _ = timed(lambda: scan_paths([str(path)], AuditOptions(rules=without_rules)))

    agree = sum(1 for mine, theirs in zip(rust, python, strict=False)
                if {path for path, _ in mine} == {path for path, _ in theirs})
    invalid = sum(1 for problems in rust if problems)
    print(f"\n{count} objects ({invalid} invalid), Kubernetes {catalog.version} schemas; "
          f"ratios are against CSafeLoader parsing in this run")

    def line(label: str, seconds: float) -> None:
        print(f"  {label:<52} {seconds:8.3f} s  {seconds / parse:7.2f}x")

    line("parse (yaml CSafeLoader)  [baseline]", parse)
    line("load (scanner loader, with positions)", load)
    line("jsonschema-rs, first pass (compiles)", rust_cold)
    line("jsonschema-rs, validators warm", rust_warm)
    line("jsonschema, first pass (compiles)", python_cold)
    line("jsonschema, validators warm", python_warm)
    line("scanner's KindValidator.problems (jsonschema-rs)", scanner)
    line(f"kubernetes_validate.validate per doc (x{count}/{len(sample)})", naive)
    line("scan, all rules incl. schema", with_schema)
    line("scan, schema rules off", without_schema)
    line("  the schema rules' share of the scan", with_schema - without_schema)
    verdict = "met" if with_schema <= 3 * parse else "NOT met"
    print(f"  target (whole scan with schema rules <= 3x parse): {verdict}; "
          f"same problems from both libraries: {agree}/{count} objects; scan findings: {len(report.findings)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--naive-sample", type=int, default=100)
    options = parser.parse_args()
    rules = configure_rules(load_catalogue(), Config())
    for count in options.objects:
        run(count, options.naive_sample, rules)


if __name__ == "__main__":
    main()
