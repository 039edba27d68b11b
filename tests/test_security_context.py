"""security-context behaviour the scan fixtures cannot show: the live mode, and the reference manifests."""

from __future__ import annotations

import textwrap

import pytest

from tbyte_policy import reference
from tbyte_policy.audit import AuditOptions, audit_resources, build_resources, scan_paths
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.sources.yaml_documents import load_text

CATALOGUE = {rule.id: rule for rule in load_catalogue()}


def run(text: str, rule_id: str, mode: str) -> list[tuple[str, int | None]]:
    errors: list = []
    resources = build_resources(load_text(textwrap.dedent(text), "live.yaml").documents, "shop", errors)
    report = audit_resources(resources, AuditOptions(rules=[CATALOGUE[rule_id]]), mode, errors)
    assert not report.internal_errors and not report.errors
    return [(finding.resource.name, finding.location.line) for finding in report.findings]


TOKEN_PODS = """\
    apiVersion: v1
    kind: Pod
    metadata: {name: opted-in, namespace: shop}
    spec:
      serviceAccountName: auditor
      automountServiceAccountToken: true
      containers: [{name: app, image: ghcr.io/acme/app:1.0.0}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: by-default, namespace: shop}
    spec:
      serviceAccountName: auditor
      containers: [{name: app, image: ghcr.io/acme/app:1.0.0}]
    """


def test_live_mode_takes_an_explicit_token_opt_in_as_api_use():
    # The live mode reads no RoleBindings, so only the pod that mounts its token by default is reported;
    # a scan of the same manifests (no binding in them) reports both.
    assert run(TOKEN_PODS, "SEC014", "live") == [("by-default", 13)]
    assert sorted(run(TOKEN_PODS, "SEC014", "scan")) == [("by-default", 13), ("opted-in", 6)]


def test_live_mode_checks_the_collected_namespace_label():
    namespace = """\
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
          labels: {pod-security.kubernetes.io/audit: restricted}
        """
    assert run(namespace, "SEC015", "live") == [("shop", 5)]


@pytest.mark.parametrize("variant", ["production", "canary", "in-cluster-db"])
def test_reference_manifests_pass_every_default_rule_of_the_family(variant):
    rules = [rule for rule in CATALOGUE.values()
             if rule.family in ("security-context", "images", "secrets") and rule.enabled]
    files = [str(path) for path in reference.variant_files(variant)]
    report = scan_paths(files, AuditOptions(namespace="tbyte", rules=rules))
    assert not report.errors and not report.internal_errors
    assert [(finding.rule_id, finding.resource.name) for finding in report.findings] == []
