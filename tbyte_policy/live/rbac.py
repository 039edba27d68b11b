"""Least-privilege RBAC for the live mode, derived from the collector's kinds table."""

from __future__ import annotations

from .collect import ALL_KINDS, Kind

VERBS = ("get", "list")


def _rules(kinds: list[Kind]) -> list[tuple[str, list[str]]]:
    by_group: dict[str, list[str]] = {}
    for kind in kinds:
        plurals = by_group.setdefault(kind.group, [])
        if kind.plural not in plurals:
            plurals.append(kind.plural)
    return list(by_group.items())


def _q(value: str) -> str:
    return f'"{value}"'


def _role_yaml(kind: str, name: str, rules: list[tuple[str, list[str]]], comment: str) -> str:
    lines = [f"# {comment}", "apiVersion: rbac.authorization.k8s.io/v1", f"kind: {kind}",
             "metadata:", f"  name: {name}", "rules:"]
    for group, plurals in rules:
        lines += [
            f"- apiGroups: [{_q(group)}]",
            f"  resources: [{', '.join(_q(p) for p in plurals)}]",
            f"  verbs: [{', '.join(_q(v) for v in VERBS)}]",
        ]
    return "\n".join(lines) + "\n"


def _binding_yaml(kind: str, name: str, role: str, sa: str, sa_ns: str, namespace: str | None) -> str:
    meta = [f"  name: {name}"] + ([f"  namespace: {namespace}"] if namespace else [])
    return "\n".join([
        "apiVersion: rbac.authorization.k8s.io/v1", f"kind: {kind}", "metadata:", *meta,
        "roleRef:", "  apiGroup: rbac.authorization.k8s.io", "  kind: ClusterRole", f"  name: {role}",
        "subjects:", "- kind: ServiceAccount", f"  name: {sa}", f"  namespace: {sa_ns}",
    ]) + "\n"


def rbac_manifest(
    *,
    namespace: str | None = None,
    service_account: str = "tbyte-policy-audit",
    service_account_namespace: str = "default",
    name: str = "tbyte-policy-audit",
) -> str:
    """The read-only (get, list) RBAC the live audit needs, as multi-document YAML.

    Two ClusterRoles: one for the namespaced kinds, one for the cluster-scoped ones
    (the Namespace object, ClusterSecretStores).  With ``namespace`` the namespaced
    role is bound by a RoleBinding in that namespace only; without it (for
    ``--all-namespaces``) both are bound cluster-wide.  Note that ``list`` on
    Secrets is required for the metadata-only listing; the collector never keeps
    Secret values, but RBAC cannot express "metadata only".
    """
    namespaced = [k for k in ALL_KINDS if k.namespaced]
    cluster = [k for k in ALL_KINDS if not k.namespaced]
    docs = [
        _role_yaml("ClusterRole", f"{name}-namespaced", _rules(namespaced),
                   "tbyte-policy live audit: read-only access to the audited namespaced kinds"),
        _role_yaml("ClusterRole", f"{name}-cluster", _rules(cluster),
                   "tbyte-policy live audit: read-only access to the audited cluster-scoped kinds"),
    ]
    if namespace:
        docs.append(_binding_yaml("RoleBinding", name, f"{name}-namespaced",
                                  service_account, service_account_namespace, namespace))
    else:
        docs.append(_binding_yaml("ClusterRoleBinding", f"{name}-namespaced", f"{name}-namespaced",
                                  service_account, service_account_namespace, None))
    docs.append(_binding_yaml("ClusterRoleBinding", f"{name}-cluster", f"{name}-cluster",
                              service_account, service_account_namespace, None))
    return "---\n".join(docs)
