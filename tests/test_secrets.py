"""secrets behaviour the scan fixtures cannot show: the live mode, and the credential heuristics one by one."""

from __future__ import annotations

import textwrap

import pytest

from tbyte_policy.audit import AuditOptions, audit_resources, build_resources
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.checks.secrets import credential_shape, literal_value, sensitive_name
from tbyte_policy.sources.yaml_documents import load_text

CATALOGUE = {rule.id: rule for rule in load_catalogue()}

# Live Secrets arrive as metadata only (no data, no type: PartialObjectMetadata), which is what these are.
LIVE_SECRETS = """\
    apiVersion: v1
    kind: Secret
    metadata:
      name: synced
      ownerReferences:
        - {apiVersion: external-secrets.io/v1, kind: ExternalSecret, name: synced, uid: "1", controller: true}
    ---
    apiVersion: v1
    kind: Secret
    metadata: {name: merged}
    ---
    apiVersion: external-secrets.io/v1
    kind: ExternalSecret
    metadata: {name: merge-into}
    spec:
      secretStoreRef: {name: aws}
      target: {name: merged, creationPolicy: Merge}
    ---
    apiVersion: v1
    kind: Secret
    metadata:
      name: sh.helm.release.v1.shop.v3
      labels: {owner: helm, name: shop, status: deployed}
    ---
    apiVersion: v1
    kind: Secret
    metadata:
      name: shop-tls
      annotations: {cert-manager.io/certificate-name: shop}
    ---
    apiVersion: v1
    kind: Secret
    metadata:
      name: ci-token
      annotations: {kubernetes.io/service-account.name: ci}
    ---
    apiVersion: v1
    kind: Secret
    metadata: {name: made-by-hand}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: app}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/app:1.0.0
          envFrom:
            - secretRef: {name: synced}
            - secretRef: {name: shop-tls}
            - secretRef: {name: made-by-hand}
            - secretRef: {name: never-collected}
    """


def live(rule_id: str, unreadable: dict[str, str] | None = None) -> list[tuple[str, int | None]]:
    errors: list = []
    resources = build_resources(load_text(textwrap.dedent(LIVE_SECRETS), "live.yaml").documents, "shop", errors)
    report = audit_resources(resources, AuditOptions(rules=[CATALOGUE[rule_id]]), "live", errors, unreadable)
    assert not report.internal_errors and not report.errors
    return sorted((finding.resource.name, finding.location.line) for finding in report.findings)


def test_live_secrets_need_an_external_secret_or_a_controller_that_owns_them():
    assert live("SCR001") == [("made-by-hand", 39)]


def test_live_pods_reading_secrets_the_cluster_holds_are_left_to_scr001():
    # made-by-hand exists (SCR001 reports it, see above); only the Secret nothing holds is SCR002's.
    assert live("SCR002") == [("app", 52)]


def test_live_mode_judges_nothing_when_external_secrets_could_not_be_read():
    forbidden = {"ExternalSecret": "403 Forbidden"}
    assert live("SCR001", forbidden) == []
    assert live("SCR002", forbidden) == []


@pytest.mark.parametrize("name", [
    "DB_PASSWORD", "password", "my_password", "dbPassword", "MYSQLPASSWORD", "DB_PASS", "DB_PWD", "SECRET_BLAH",
    "client_secret", "API_TOKEN", "githubToken", "AWS_SECRET_ACCESS_KEY", "AZURE_BATCH_KEY", "OCI_CLI_KEY_CONTENT",
    "apiKey", "APIKey", "STRIPE_API_KEY", "private-key", "GOOGLE_APPLICATION_CREDENTIALS", "REGISTRY_CREDS",
    "SSH_KEY", "LICENSE_KEY", "spring.datasource.password",
])
def test_names_that_hold_a_credential(name):
    assert sensitive_name(name)


@pytest.mark.parametrize("name", [
    "TOKEN_TTL", "PASSWORD_MIN_LENGTH", "password_encryption", "SECRET_NAME", "DB_PASSWORD_FILE",
    "TOKEN_PATH", "OAUTH_TOKEN_URL", "AWS_ACCESS_KEY_ID", "CACHE_KEY", "PUBLIC_KEY", "PARTITION_KEY",
    "TOKEN_EXPIRY_SECONDS", "AUTH_TOKEN_ENABLED", "PASSWORD_HASH_ALGORITHM", "user_name", "greeting", "KEY",
    "BYPASS_CACHE", "SSL_PASSTHROUGH", "PASSWORD_RESET", "COMPASS_HEADING",
])
def test_names_that_describe_or_do_not_mention_a_credential(name):
    assert not sensitive_name(name)


@pytest.mark.parametrize(("value", "literal"), [
    ("hunter2", True), (123456, True), ("xxx", True),
    ("", False), ("  ", False), ("true", False), ("No", False), (True, False), (None, False),
    ("$(DB_PASSWORD)", False), ("${DB_PASSWORD}", False), ("<your password>", False),
    ("/run/secrets/db/password", False), ("vault:secret/data/shop#password", False),
    ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-db", False),
])
def test_literal_values(value, literal):
    assert literal_value(value) is literal


@pytest.mark.parametrize(("value", "shape"), [
    ("postgres://shop:s3cr3t@db:5432/shop", "a URL with a password (scheme://user:password@host)"),
    ("redis://:s3cr3t@redis:6379/0", "a URL with a password (scheme://user:password@host)"),
    ("AKIAIOSFODNN7EXAMPLE", "an AWS access key ID"),
    ("ghp_" + "a1B2" * 9, "a GitHub token"),
    ("glpat-" + "x1Y2z3" * 4, "a GitLab token"),
    ("xoxb-1234567890-abcdefghij", "a Slack token"),
    ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "a Stripe secret key"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "a JSON Web Token"),
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n", "a PEM private key"),
    ("---BEGIN OPENSSH PRIVATE KEY---\nxxxxx\n---END  OPENSSH PRIVATE KEY---\n", "a PEM private key"),
    ("LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV2UUlCQURBTg==", "a base64-encoded PEM private key"),
    ("q8Vz3LmP0xK7wR2tY9bN4cJ6", "a generated secret (a long, high-entropy token)"),
    ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "a generated secret (a long, high-entropy token)"),
])
def test_values_shaped_like_credentials(value, shape):
    assert credential_shape(value) == shape


@pytest.mark.parametrize("value", [
    "postgres://shop:$(DB_PASSWORD)@db:5432/shop", "https://user:****@host/", "https://api.example.com:8443/v1",
    "ghcr.io/acme/app:1.0.0@sha256:" + "ab" * 32, "0f8fad5b-d9cb-469f-a165-70867728950e",
    "4e1243bd22c66e76c2ba9eddc1f91394e57f9f83", "MyApplicationName2024Production", "checkout-service-7d9f8c6b5",
    "/usr/share/nginx/html", "-Xms256m -Xmx512m", "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJzekND",
    "en_US.UTF-8", "Kubernetes1Deployment2Strategy3", "short1A",
])
def test_values_that_are_not_credentials(value):
    assert credential_shape(value) is None
