"""Least-privilege RBAC for the live mode, derived from the collector's kinds table."""

from __future__ import annotations

import yaml

from tbyte_policy.reporters.policyreport import API_VERSION, REPORT_NAME
from tbyte_policy.sources.cluster import ALL_KINDS, NAMESPACE, Kind

VERBS = ["get", "list"]
RBAC_API = "rbac.authorization.k8s.io/v1"


def _rules(kinds: list[Kind], verbs: list[str] = VERBS) -> list[dict]:
    by_group: dict[str, list[str]] = {}
    for kind in kinds:
        plurals = by_group.setdefault(kind.group, [])
        if kind.plural not in plurals:
            plurals.append(kind.plural)
    return [{"apiGroups": [group], "resources": plurals, "verbs": list(verbs)} for group, plurals in by_group.items()]


def _role(kind: str, name: str, namespace: str | None, rules: list[dict]) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC_API, "kind": kind, "metadata": metadata, "rules": rules}


def _binding(kind: str, name: str, namespace: str | None, role_kind: str, service_account: str,
             service_account_namespace: str) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC_API, "kind": kind, "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": service_account_namespace}]}


def publish_rules() -> list[dict]:
    """What ``live --publish`` needs: get and (server-side apply) patch on its one PolicyReport, and create,
    which the API server also asks of an apply that creates the report (a create names no object that
    resourceNames could match)."""
    group, resource = API_VERSION.split("/")[0], "policyreports"
    return [{"apiGroups": [group], "resources": [resource], "resourceNames": [REPORT_NAME], "verbs": ["get", "patch"]},
            {"apiGroups": [group], "resources": [resource], "verbs": ["create"]}]


def rbac_objects(*, namespace: str | None = None, service_account: str = "tbyte-policy-audit",
                 service_account_namespace: str | None = None, name: str = "tbyte-policy-audit",
                 publish: bool = False) -> list[dict]:
    """The read-only (get, list) RBAC objects the live audit needs; with ``publish``, also a Role and
    RoleBinding for writing its PolicyReport in ``namespace`` (get, create, patch: :func:`publish_rules`).

    With ``namespace``: a Role (and RoleBinding) on the namespaced kinds in that namespace; a ClusterRole
    granting ``get`` on namespaces, bound by a RoleBinding in that namespace, which lets it read exactly that
    Namespace object (the API server authorises GET of a namespace as a request in that namespace; the
    audit never lists namespaces); and a ClusterRole (and ClusterRoleBinding) for the cluster-scoped kinds
    it lists. Without (``--all-namespaces``): one ClusterRole. Discovery needs no grant
    (``system:discovery`` allows it to every authenticated user). ``list`` on Secrets is needed for the
    metadata-only listing: the collector never keeps a Secret's values, but RBAC cannot say "metadata only".
    """
    account_namespace = service_account_namespace or namespace or "default"
    if namespace is None:
        if publish:
            raise ValueError("--publish writes the PolicyReport of one namespace: give it with --namespace")
        return [_role("ClusterRole", name, None, _rules(list(ALL_KINDS))),
                _binding("ClusterRoleBinding", name, None, "ClusterRole", service_account, account_namespace)]
    cluster_kinds = [kind for kind in ALL_KINDS if not kind.namespaced and kind is not NAMESPACE]
    publishing = [_role("Role", f"{name}-publish", namespace, publish_rules()),
                  _binding("RoleBinding", f"{name}-publish", namespace, "Role", service_account, account_namespace)
                  ] if publish else []
    return [_role("Role", name, namespace, _rules([kind for kind in ALL_KINDS if kind.namespaced])),
            _binding("RoleBinding", name, namespace, "Role", service_account, account_namespace),
            _role("ClusterRole", f"{name}-namespace", None, _rules([NAMESPACE], ["get"])),
            _binding("RoleBinding", f"{name}-namespace", namespace, "ClusterRole", service_account,
                     account_namespace),
            _role("ClusterRole", f"{name}-cluster", None, _rules(cluster_kinds)),
            _binding("ClusterRoleBinding", f"{name}-cluster", None, "ClusterRole", service_account,
                     account_namespace),
            *publishing]


def rbac_manifest(**options) -> str:
    """:func:`rbac_objects` as multi-document YAML, ready for ``kubectl apply -f -``."""
    header = "# tbyte-policy live audit: read-only access (get, list) to exactly the kinds it reads\n"
    if options.get("publish"):
        header += "# and, for --publish, get, create and patch of its PolicyReport\n"
    return header + "---\n".join(yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120)
                                 for document in rbac_objects(**options))
