"""An Argo Rollout's workloadRef is resolved once, by the inventory: the Deployment it names lends its pod
template and runs no pods of its own, so no rule counts or names it as a workload that runs pods."""

from __future__ import annotations

import textwrap

from tbyte_policy.audit import AuditOptions, audit_documents, build_resources
from tbyte_policy.catalogue import find_rule, load_catalogue
from tbyte_policy.inventory import Inventory
from tbyte_policy.sources.yaml_documents import load_text

CANARY = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: frontend-template, namespace: shop}
    spec:
      replicas: 0
      selector: {matchLabels: {app: frontend}}
      template:
        metadata: {labels: {app: frontend}}
        spec: {containers: [{name: web, image: "web:1.0"}]}
    ---
    apiVersion: argoproj.io/v1alpha1
    kind: Rollout
    metadata: {name: frontend, namespace: shop}
    spec:
      replicas: 3
      selector: {matchLabels: {app: frontend}}
      workloadRef: {apiVersion: apps/v1, kind: Deployment, name: frontend-template}
      strategy: {canary: {canaryService: frontend-canary, stableService: frontend}}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: frontend-canary, namespace: shop}
    spec:
      selector: {app: frontend}
      ports: [{port: 80, targetPort: 8080}]
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: frontend-canary-x1
      namespace: shop
      labels: {kubernetes.io/service-name: frontend-canary}
    addressType: IPv4
    endpoints: []
    """)


def test_the_inventory_files_the_borrowed_template_as_the_rollouts_pods_only():
    resources = build_resources(load_text(CANARY, "canary.yaml").documents, "shop", [])
    inventory = Inventory(resources)
    deployment, rollout = resources[0], resources[1]
    assert inventory.workload_ref_targets == {deployment}
    assert inventory.pods_of(rollout).template_holder is deployment
    assert [pods.resource for pods in inventory.workloads("shop")] == [rollout]
    assert [pods.resource for pods in inventory.pods_matching_map("shop", {"app": "frontend"})] == [rollout]


def test_a_canary_service_without_endpoints_is_explained_by_the_rollout_alone():
    rule = find_rule(load_catalogue(), "RUN015")
    report = audit_documents(load_text(CANARY, "canary.yaml"), AuditOptions(namespace="shop", rules=[rule]),
                             mode="live")
    assert [(finding.rule_id, finding.resource.ref, finding.message) for finding in report.findings] == [
        ("RUN015", "Service/shop/frontend-canary",
         "Service frontend-canary has no ready endpoints: no pod of Rollout frontend is ready; connections to it "
         "fail")]
    assert [ref.ref for ref in report.findings[0].related] == ["EndpointSlice/shop/frontend-canary-x1",
                                                               "Rollout/shop/frontend"]
