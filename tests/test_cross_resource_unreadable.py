"""The network-policy, services, ingress and PDB rules judge a missing object only when the run could read its kind:
a live run denied NetworkPolicies, Services or a pod-bearing kind proves nothing by their absence."""

from __future__ import annotations

import pytest

from tbyte_policy.audit import AuditOptions, audit_resources, build_resources
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.sources.files import load_paths

MANIFESTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: ghcr.io/acme/web:1.0.0, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: worker, namespace: shop, labels: {app: worker}}
spec:
  containers: [{name: worker, image: ghcr.io/acme/worker:1.0.0}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  tls: [{hosts: [shop.example.com], secretName: shop-tls}]
  rules:
    - host: shop.example.com
      http:
        paths: [{path: /, pathType: Prefix, backend: {service: {name: frontend, port: {name: http}}}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: api, namespace: shop}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: api}}
"""
RULES = {rule.id: rule.with_overrides(enabled=True) for rule in load_catalogue()}


def live_findings(tmp_path, rule_ids, unreadable, manifests=MANIFESTS):
    path = tmp_path / "cluster.yaml"
    path.write_text(manifests)
    errors = []
    resources = build_resources(load_paths([str(path)]).documents, "default", errors)
    # A kind the run could not read holds no objects in it.
    resources = [resource for resource in resources if resource.kind not in unreadable]
    report = audit_resources(resources, AuditOptions(rules=[RULES[rule_id] for rule_id in rule_ids]), "live",
                             errors, unreadable=dict.fromkeys(unreadable, "403 Forbidden"))
    assert not errors and not report.internal_errors
    return sorted((finding.rule_id, finding.resource.name) for finding in report.findings)


@pytest.mark.parametrize(("rule_ids", "unreadable", "readable_findings"), [
    (["NET001", "NET002"], {"NetworkPolicy"}, [("NET001", "shop"), ("NET002", "web"), ("NET002", "worker")]),
    (["NET004", "SVC001"], {"Deployment"}, [("NET004", "api"), ("SVC001", "api")]),
    (["ING002"], {"Service"}, [("ING002", "shop")]),
    # found by the live fuzzing: the budget "selected no workload's pods" when Deployments could not be read
    (["PDB003"], {"Deployment"}, [("PDB003", "api")]),
])
def test_an_unreadable_kind_proves_nothing(tmp_path, rule_ids, unreadable, readable_findings):
    assert live_findings(tmp_path, rule_ids, set()) == readable_findings
    assert live_findings(tmp_path, rule_ids, unreadable) == []
