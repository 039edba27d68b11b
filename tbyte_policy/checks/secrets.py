"""secrets: the External Secrets Operator is the only way a secret gets into the cluster.

Secret manifests with data, pods reading Secrets that no ExternalSecret writes, and credentials written
as literals into env values or ConfigMaps. No message ever quotes a value: only key, field and object
names, and what kind of credential a value looks like.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import NamedTuple

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.memo import per_inventory
from tbyte_policy.checks.secret_creators import secret_creators
from tbyte_policy.inventory import Inventory
from tbyte_policy.lazyre import lazy_compile
from tbyte_policy.model import (
    ContainerView,
    ObjectRef,
    PodView,
    Problem,
    Resource,
    escape_pointer_part,
    integer,
    mapping,
    sequence,
)
from tbyte_policy.selectors import label_selector_matches

SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
HELM_RELEASE = "helm.sh/release.v1"
SERVICE_ACCOUNT_NAME = "kubernetes.io/service-account.name"
CERT_MANAGER_CERTIFICATE = "cert-manager.io/certificate-name"
CERT_MANAGER_INGRESS_ANNOTATIONS = ("cert-manager.io/cluster-issuer", "cert-manager.io/issuer")

# --------------------------------------------------------------------------- who writes a Secret


class Producers(NamedTuple):
    external: dict[tuple[str | None, str], Resource]
    cluster_external: dict[str, list[Resource]]
    certificates: dict[tuple[str | None, str], Resource]


def _target_name(spec: dict, default: str) -> str | None:
    """The Secret an ExternalSecret spec writes, or None when it writes another kind (target.manifest)."""
    target = mapping(spec.get("target"))
    kind = mapping(target.get("manifest")).get("kind")
    if kind not in (None, "Secret"):
        return None
    name = target.get("name")
    return name if isinstance(name, str) and name else default


@per_inventory
def producers(inventory: Inventory) -> Producers:
    found = Producers({}, defaultdict(list), {})
    for external in inventory.kind("ExternalSecret"):
        name = _target_name(external.spec, external.name)
        if name:
            found.external.setdefault((external.namespace, name), external)
    for cluster in inventory.kind("ClusterExternalSecret"):
        own_name = cluster.spec.get("externalSecretName")
        name = _target_name(mapping(cluster.spec.get("externalSecretSpec")),
                            own_name if isinstance(own_name, str) and own_name else cluster.name)
        if name:
            found.cluster_external[name].append(cluster)
    for certificate in inventory.kind("Certificate"):
        secret = certificate.spec.get("secretName")
        if certificate.group == "cert-manager.io" and isinstance(secret, str):
            found.certificates.setdefault((certificate.namespace, secret), certificate)
    return found


def _covers(cluster: Resource, namespace: str | None, inventory: Inventory) -> bool:
    """Whether a ClusterExternalSecret creates its ExternalSecret in ``namespace``."""
    if namespace in sequence(cluster.spec.get("namespaces")):
        return True
    namespace_object = inventory.get("Namespace", None, namespace)
    labels = {**(namespace_object.labels if namespace_object else {}), "kubernetes.io/metadata.name": namespace or ""}
    selectors = [cluster.spec.get("namespaceSelector"), *sequence(cluster.spec.get("namespaceSelectors"))]
    return any(label_selector_matches(selector, labels) for selector in selectors if isinstance(selector, dict))


def owned_by_design(secret: Resource) -> bool:
    """Whether a live Secret's metadata says an ExternalSecret or a controller that owns such Secrets wrote it:
    the service-account token controller, Helm (release records) or cert-manager."""
    owners = sequence(secret.metadata.get("ownerReferences"))
    if any(mapping(owner).get("kind") == "ExternalSecret" for owner in owners):
        return True
    # Live Secrets are listed metadata-only (no `type`), so the metadata those controllers write is what tells.
    labels, annotations = secret.labels, secret.annotations
    return secret.raw.get("type") in (SERVICE_ACCOUNT_TOKEN, HELM_RELEASE) \
        or CERT_MANAGER_CERTIFICATE in annotations \
        or SERVICE_ACCOUNT_NAME in annotations \
        or (labels.get("owner") == "helm" and secret.name.startswith("sh.helm.release.v1."))


def producer(ctx: CheckContext, namespace: str | None, name: str) -> Resource | None:
    """The ExternalSecret, ClusterExternalSecret or cert-manager Certificate of the run that writes Secret ``name``."""
    index = producers(ctx.inventory)
    found = index.external.get((namespace, name)) or index.certificates.get((namespace, name))
    if found is not None:
        return found
    return next((cluster for cluster in index.cluster_external.get(name, ())
                 if _covers(cluster, namespace, ctx.inventory)), None)


def written_by_controller(ctx: CheckContext, namespace: str | None, name: str) -> bool:
    """Whether Secret ``name``, held by the run, is one that Kubernetes or its owning controller writes."""
    secret = ctx.inventory.get("Secret", namespace, name)
    if secret is None:
        return False
    if ctx.mode == "live":
        return owned_by_design(secret)
    # A token Secret in a manifest is filled in by the API server, not by whoever wrote the manifest.
    return secret.raw.get("type") == SERVICE_ACCOUNT_TOKEN


def _external_secrets_unknown(ctx: CheckContext) -> bool:
    # A live run that could not list ExternalSecrets cannot tell which Secrets they write.
    return not ctx.inventory.sees("ExternalSecret")


def _missing_producer(name: str, namespace: str | None, ctx: CheckContext) -> tuple[str, list[ObjectRef]]:
    """Why Secret ``name`` counts as unmanaged, and the objects worth looking at."""
    where = f" in namespace {namespace}" if namespace else ""
    text = f"no ExternalSecret{where} produces it (expected one with spec.target.name: {name}, or named {name})"
    related = []
    secret = ctx.inventory.get("Secret", namespace, name)
    if secret is not None:
        text += "; the run holds it as a plain Secret instead"
        related.append(ObjectRef.of(secret))
    return text, related


def _writes_nothing(found: Resource) -> bool:
    return found.kind == "ExternalSecret" and mapping(found.spec.get("target")).get("creationPolicy") == "None"


# --------------------------------------------------------------------------- Secret objects


@check("secret-unmanaged", "object")
def secret_unmanaged(secret: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if ctx.mode == "live":
        if _external_secrets_unknown(ctx) or producer(ctx, secret.namespace, secret.name) is not None \
                or owned_by_design(secret):
            return
        yield Problem(f"Secret {secret.name} was not created by an ExternalSecret: it has no ownerReference to one, "
                      f"no ExternalSecret targets it, and it is no service-account token, Helm release record or "
                      f"cert-manager certificate", "/metadata")
        return
    if secret.raw.get("type") == SERVICE_ACCOUNT_TOKEN:
        return
    for section in ("data", "stringData"):
        values = secret.raw.get(section)
        if isinstance(values, dict) and values:
            keys = sorted(str(key) for key in values)
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            yield Problem(f"Secret {secret.name} carries its values in the manifest ({section}: {shown}), so they "
                          f"live in Git and every copy of it; have an ExternalSecret create the Secret instead",
                          f"/{section}")


# --------------------------------------------------------------------------- references to Secrets


class SecretReference(NamedTuple):
    name: object  # the Secret's name as written (checked by the caller)
    pointer: str
    referrer: str  # what refers to it, for messages
    container: str | None
    optional: bool  # `optional: true`: the pod starts without the Secret


def secret_references(pods: PodView) -> Iterator[SecretReference]:
    """Every Secret a pod reads."""
    def optional(reference: dict) -> bool:
        return reference.get("optional") is True

    for container in pods.containers():
        for index, env in enumerate(sequence(container.raw.get("env"))):
            env = mapping(env)
            reference = mapping(mapping(env.get("valueFrom")).get("secretKeyRef"))
            yield SecretReference(reference.get("name"), f"{container.pointer}/env/{index}/valueFrom/secretKeyRef/name",
                                  f"env {env.get('name')} of container {container.name}", container.name,
                                  optional(reference))
        for index, source in enumerate(sequence(container.raw.get("envFrom"))):
            reference = mapping(mapping(source).get("secretRef"))
            yield SecretReference(reference.get("name"), f"{container.pointer}/envFrom/{index}/secretRef/name",
                                  f"envFrom of container {container.name}", container.name, optional(reference))
    for index, volume in enumerate(sequence(pods.spec.get("volumes"))):
        volume = mapping(volume)
        pointer = f"{pods.pointer}/volumes/{index}"
        reference = mapping(volume.get("secret"))
        yield SecretReference(reference.get("secretName"), f"{pointer}/secret/secretName",
                              f"volume {volume.get('name')}", None, optional(reference))
        for source_index, source in enumerate(sequence(mapping(volume.get("projected")).get("sources"))):
            reference = mapping(mapping(source).get("secret"))
            yield SecretReference(reference.get("name"), f"{pointer}/projected/sources/{source_index}/secret/name",
                                  f"projected volume {volume.get('name')}", None, optional(reference))
    for index, reference in enumerate(sequence(pods.spec.get("imagePullSecrets"))):
        # No `optional` here: the kubelet pulls without the credential, and a private image then fails to pull.
        yield SecretReference(mapping(reference).get("name"), f"{pods.pointer}/imagePullSecrets/{index}/name",
                              "imagePullSecrets", None, False)


@check("secret-without-external-secret", "pod")
def secret_without_external_secret(pods: PodView, ctx: CheckContext) -> Iterator[Problem]:
    if _external_secrets_unknown(ctx):
        return
    namespace = pods.resource.namespace
    seen: set[str] = set()
    for reference in secret_references(pods):
        name = reference.name
        if not isinstance(name, str) or not name or name in seen or reference.optional:
            continue
        seen.add(name)
        found = producer(ctx, namespace, name)
        if found is not None:
            if _writes_nothing(found):
                yield Problem(f"{reference.referrer} reads Secret {name}, but ExternalSecret {found.name} has "
                              f"creationPolicy: None and never writes it", reference.pointer, reference.container,
                              [ObjectRef.of(found)])
            continue
        # A Secret the run holds is SCR001's to judge (a manifest with data, or a live Secret nothing owns).
        if ctx.inventory.get("Secret", namespace, name) is not None:
            continue
        if (namespace, name) in secret_creators(ctx.inventory):
            continue
        where = f" in namespace {namespace}" if namespace else ""
        yield Problem(f"{reference.referrer} reads Secret {name}, which the run neither holds nor creates, and no "
                      f"ExternalSecret{where} produces it (expected one with spec.target.name: {name}, or named "
                      f"{name}); this rule encodes an ESO-only policy, in which the External Secrets Operator "
                      f"writes every Secret a pod reads", reference.pointer, reference.container)


@check("ingress-tls-secret-unmanaged", "object")
def ingress_tls_secret_unmanaged(ingress: Resource, ctx: CheckContext) -> Iterator[Problem]:
    annotations = ingress.annotations
    if any(key in annotations for key in CERT_MANAGER_INGRESS_ANNOTATIONS) \
            or annotations.get("kubernetes.io/tls-acme") == "true" or _external_secrets_unknown(ctx):
        return  # cert-manager's ingress-shim issues every TLS secret of an annotated Ingress
    for index, entry in enumerate(sequence(ingress.spec.get("tls"))):
        name = mapping(entry).get("secretName")
        if isinstance(name, str) and name and producer(ctx, ingress.namespace, name) is None \
                and not written_by_controller(ctx, ingress.namespace, name):
            why, related = _missing_producer(name, ingress.namespace, ctx)
            yield Problem(f"TLS Secret {name} of the Ingress is issued by neither cert-manager (no issuer annotation "
                          f"on the Ingress, no Certificate with secretName {name}) nor an ExternalSecret: {why}",
                          f"/spec/tls/{index}/secretName", related=related)


# --------------------------------------------------------------------------- ExternalSecrets


def _names_store(reference: object) -> bool:
    name = mapping(reference).get("name")
    return isinstance(name, str) and bool(name)


@check("external-secret-store-missing", "object")
def external_secret_store_missing(external: Resource, ctx: CheckContext) -> Iterator[Problem]:
    if _names_store(external.spec.get("secretStoreRef")):
        return
    entries = [mapping(entry) for key in ("data", "dataFrom") for entry in sequence(external.spec.get(key))]
    sources = [mapping(entry.get("sourceRef")) for entry in entries]
    if entries and all(_names_store(source.get("storeRef")) or _names_store(source.get("generatorRef"))
                       for source in sources):
        return
    yield Problem(f"ExternalSecret {external.name} names no secretStoreRef, and not every data/dataFrom entry "
                  f"names a sourceRef: the operator has nowhere to read from and never creates the Secret", "/spec")


_ZERO_DURATION = lazy_compile(r"^(0+(\.0*)?(ns|us|µs|ms|s|m|h)?)+$")
_NO_PERIODIC_REFRESH = {"CreatedOnce": "never reaches the cluster",
                        "OnChange": "only reaches the cluster when the ExternalSecret itself is edited"}


@check("external-secret-refresh-disabled", "object")
def external_secret_refresh_disabled(external: Resource, ctx: CheckContext) -> Iterator[Problem]:
    policy = external.spec.get("refreshPolicy")
    if isinstance(policy, str) and policy in _NO_PERIODIC_REFRESH:
        yield Problem(f"ExternalSecret {external.name} has refreshPolicy: {policy}: a secret rotated in the store "
                      f"{_NO_PERIODIC_REFRESH[policy]}", "/spec/refreshPolicy")
        return
    interval = external.spec.get("refreshInterval")
    if integer(interval) == 0 or (isinstance(interval, str) and _ZERO_DURATION.match(interval.strip())):
        yield Problem(f"ExternalSecret {external.name} has refreshInterval 0: the Secret is fetched once and a "
                      f"secret rotated in the store never reaches the cluster", "/spec/refreshInterval")


# --------------------------------------------------------------------------- literal credentials

# Words that make a variable or key name a credential's; matched against the name's words.
_SENSITIVE_WORDS = frozenset({"PASSWORD", "PASSWD", "PASSPHRASE", "PASS", "PWD", "SECRET", "SECRETS", "TOKEN",
                              "CREDENTIAL", "CREDENTIALS", "CREDS", "APIKEY", "PRIVATEKEY", "SECRETKEY",
                              "ACCESSKEY", "AUTHTOKEN"})
# Credential words that may also end a longer run-together word (DBPASSWORD, XSRFTOKEN).
_SENSITIVE_SUFFIXES = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "PRIVATEKEY", "SECRETKEY", "ACCESSKEY")
# A trailing word that makes the name describe the credential rather than hold it (TOKEN_TTL, PASSWORD_FILE).
_DESCRIPTIVE_SUFFIXES = frozenset({
    "TTL", "LENGTH", "LEN", "MIN", "MAX", "SIZE", "PATH", "FILE", "FILES", "DIR", "FILENAME", "LOCATION", "NAME",
    "NAMES", "ID", "ARN", "REF", "EXPIRY", "EXPIRES", "EXPIRATION", "TIMEOUT", "ENABLED", "DISABLED", "REQUIRED",
    "ENABLE", "DISABLE", "COUNT", "HEADER", "TYPE", "ALGORITHM", "ALG", "ENCRYPTION", "POLICY", "LIFETIME",
    "DURATION", "PREFIX", "SUFFIX", "ROTATION", "FORMAT", "VERSION", "SECONDS", "MINUTES", "HOURS", "DAYS",
    "INTERVAL", "URL", "URI", "ENDPOINT", "HOST", "PORT", "ISSUER", "AUDIENCE", "SCOPE", "SCOPES", "MODE", "LEVEL",
    "STRATEGY", "PROVIDER", "STORE", "REGION", "KIND", "LIMIT", "RETRIES", "FIELD", "PARAM", "USER",
    "USERNAME", "LOGIN", "HASH", "SALT", "ROUNDS", "COST", "COMPLEXITY", "STRENGTH", "RESET", "METHOD", "MOUNT",
    "SOURCE", "ENV", "VAR", "REGEX", "PATTERN", "SECRETREF", "BACKEND", "PLUGIN", "CACHE", "TEMPLATE", "RETENTION"})
# KEY ends many names that hold no credential (CACHE_KEY); it counts unless one of these qualifies it.
_PLAIN_KEY_QUALIFIERS = frozenset({
    "PUBLIC", "CACHE", "SORT", "PARTITION", "PRIMARY", "FOREIGN", "ROUTING", "IDEMPOTENCY", "OBJECT", "LOOKUP",
    "SHARD", "HASH", "RANGE", "GROUP", "QUEUE", "TOPIC", "MESSAGE", "REDIS", "S3", "BUCKET", "CONFIG", "MAP",
    "LABEL", "ANNOTATION", "FEATURE", "FLAG", "TRANSLATION", "LOCALE", "TENANT", "DEDUP", "CORRELATION", "TRACE",
    "REQUEST", "SEARCH", "INDEX", "METRIC", "METRICS", "COLUMN", "FIELD", "JSON", "MAPPING", "HOT", "LOCK", "STATE",
    "NODE", "SELECTOR", "TAINT", "TOPOLOGY", "TIME", "LEVEL", "NAME", "CALLER", "STACKTRACE", "FUNCTION"})
_KEY_CONTENT = frozenset({"CONTENT", "DATA", "VALUE", "MATERIAL", "PEM", "B64", "BASE64"})
_WORDS = lazy_compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_EMPTY_COLLECTIONS = frozenset({"[]", "{}"})  # a configuration file's empty list of secrets, say
_BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "enabled", "disabled", "none", "null"})
_REFERENCE = lazy_compile(r"^(\$\(.*\)|\$\{.*\}|\{\{.*\}\}|<[^<>]*>|%\(?\w*\)?s|"
                          r"(vault|ref\+\w+|file|env|awssm|sm|gcpsm|azurekv|secretmanager|op):(//)?\S+|"
                          r"arn:aws:(secretsmanager|ssm):\S+|/[\w./@-]+)$")


def _name_words(name: str) -> list[str]:
    return [word.upper() for part in re.split(r"[^A-Za-z0-9]+", name) for word in _WORDS.findall(part)]


def sensitive_name(name: str) -> bool:
    """Whether a variable or key name says it holds a credential (DB_PASSWORD, apiKey) rather than describes
    one (TOKEN_TTL, PASSWORD_MIN_LENGTH, password_encryption)."""
    words = _name_words(name)
    if not words or words[-1] in _DESCRIPTIVE_SUFFIXES:
        return False
    if any(word in _SENSITIVE_WORDS or (len(word) > 6 and word.endswith(_SENSITIVE_SUFFIXES)) for word in words):
        return True
    if words[-1] in _KEY_CONTENT and len(words) > 1 and words[-2] == "KEY":
        words = words[:-1]
    return words[-1] == "KEY" and len(words) > 1 and words[-2] not in _PLAIN_KEY_QUALIFIERS


def literal_value(value: object) -> bool:
    """A value that is the credential itself, not empty, a boolean switch or a reference to where it lives."""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return False
    text = str(value).strip().strip("'\"").strip()
    return bool(text) and text not in _EMPTY_COLLECTIONS and text.lower() not in _BOOLEAN_WORDS \
        and not _REFERENCE.match(text)


_URL_PASSWORD = lazy_compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/?#@]*:([^\s/?#@]+)@")
_PEM_PRIVATE_KEY = lazy_compile(r"-{3,}\s*BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-{3,}")
_TOKEN_SHAPES = (
    ("an AWS access key ID", lazy_compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b")),
    ("a GitHub token", lazy_compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b")),
    ("a GitLab token", lazy_compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", lazy_compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Stripe secret key", lazy_compile(r"\b[rs]k_live_[A-Za-z0-9]{16,}")),
    ("a Google API key", lazy_compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("a SendGrid API key", lazy_compile(r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b")),
    ("an npm token", lazy_compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("an OpenAI API key", lazy_compile(r"\bsk-(proj-)?[A-Za-z0-9_-]{32,}")),
    ("a JSON Web Token", lazy_compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
)
_PEM_BASE64_PREFIX = "LS0tLS1CRUdJTi"  # base64 of "-----BEGIN"
_RANDOM_CHARSET = lazy_compile(r"^[A-Za-z0-9+/=_-]{20,}$")
_UUID = lazy_compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(count / len(text) * math.log2(count / len(text)) for count in counts.values())


def _looks_random(text: str) -> bool:
    """A long token of mixed-case letters and digits in no word-like order: a generated key or password.

    Shannon entropy alone cannot tell ``MyApplicationName2024Production`` from a random string of the same
    length; words also switch between lower case, upper case and digits far less often than random text.
    """
    if not _RANDOM_CHARSET.match(text) or text.startswith("/") or _UUID.match(text):
        return False
    if not (any(c.islower() for c in text) and any(c.isupper() for c in text) and any(c.isdigit() for c in text)):
        return False
    classes = ["l" if c.islower() else "u" if c.isupper() else "d" if c.isdigit() else "o" for c in text]
    switches = sum(1 for left, right in itertools.pairwise(classes) if left != right) / (len(text) - 1)
    return switches >= 0.4 and _entropy(text) >= min(0.82 * math.log2(len(text)), 4.5)


def _decoded_pem(text: str) -> str | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=False).decode("ascii", "replace")
    except (binascii.Error, ValueError):
        return None


def credential_shape(value: object, whole: bool = True) -> str | None:
    """What kind of credential a value looks like, whatever its name says; None when it looks like none.
    ``whole``: the value is one setting (not a file), so a lone random-looking token counts too."""
    if not isinstance(value, str) or not value.strip():
        return None
    if _PEM_PRIVATE_KEY.search(value):
        return "a PEM private key"
    for match in _URL_PASSWORD.finditer(value):
        if literal_value(match.group(1)) and not set(match.group(1)) <= {"*", "x", "X"}:
            return "a URL with a password (scheme://user:password@host)"
    for label, shape in _TOKEN_SHAPES:
        if shape.search(value):
            return label
    text = value.strip()
    if text.startswith(_PEM_BASE64_PREFIX):
        decoded = _decoded_pem(text)
        return "a base64-encoded PEM private key" if decoded and _PEM_PRIVATE_KEY.search(decoded) else None
    if whole and _looks_random(text):
        return "a generated secret (a long, high-entropy token)"
    return None


_ASSIGNMENT = lazy_compile(r"^\s*(?:export\s+)?[\"']?([A-Za-z_][\w.-]*)[\"']?\s*[:=]\s*(.*?)\s*[,;]?\s*$")


def file_credentials(text: str) -> Iterator[str]:
    """What each ``name = value`` / ``name: value`` line of a file that assigns a credential assigns."""
    for number, line in enumerate(text.splitlines(), 1):
        match = _ASSIGNMENT.match(line)
        if not match:
            continue
        name, value = match.groups()
        if sensitive_name(name) and literal_value(value):
            yield f"{name} (line {number} of the file)"
        elif (shape := credential_shape(value.strip("'\""))) is not None:
            # Only the line number: what precedes the value is not always a name (token files map token -> user).
            yield f"{shape} (line {number} of the file)"


def _literal_credential(name: object, value: object) -> str | None:
    """Why a (name, value) setting holds a credential in clear, or None."""
    if isinstance(name, str) and sensitive_name(name) and literal_value(value):
        return "has a literal value, and its name says it is a credential"
    shape = credential_shape(value)
    return f"holds what looks like {shape}" if shape else None


@check("credential-in-env", "container")
def credential_in_env(container: ContainerView, ctx: CheckContext) -> Iterator[Problem]:
    for index, env in enumerate(sequence(container.raw.get("env"))):
        env = mapping(env)
        if "value" not in env:
            continue
        why = _literal_credential(env.get("name"), env["value"])
        if why:
            yield Problem(f"env {env.get('name')} of container {container.name} {why}; read it from a Secret "
                          f"that an ExternalSecret creates (valueFrom.secretKeyRef)",
                          f"{container.pointer}/env/{index}/value", container.name)


@check("credential-in-configmap", "object")
def credential_in_configmap(configmap: Resource, ctx: CheckContext) -> Iterator[Problem]:
    for key, value in mapping(configmap.raw.get("data")).items():
        pointer = f"/data/{escape_pointer_part(key)}"
        if isinstance(value, str) and "\n" in value.strip():
            shape = credential_shape(value, whole=False)
            found = [f"{shape} in the file"] if shape else list(file_credentials(value))
            if found:
                yield Problem(f"ConfigMap key {key} holds credentials in clear: {'; '.join(found[:3])}"
                              f"{' and more' if len(found) > 3 else ''}; ConfigMaps are not secret, move them to a "
                              f"Secret that an ExternalSecret creates", pointer)
            continue
        why = _literal_credential(key, value)
        if why:
            yield Problem(f"ConfigMap key {key} {why}; ConfigMaps are not secret, move it to a Secret that an "
                          f"ExternalSecret creates", pointer)
