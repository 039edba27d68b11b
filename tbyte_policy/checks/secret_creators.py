"""Secrets that a workload of the run creates when it runs: certificate generators run as Jobs
(kube-webhook-certgen), initial-password writers run as init containers. Shared by the secrets family.

Not a family module: it registers no checks.

A pod is seen to create Secret X when both hold:
- its ServiceAccount may create Secrets in the pod's namespace: a RoleBinding there (or a ClusterRoleBinding)
  of the run binds it to a Role or ClusterRole of the run with a rule on `secrets` (API group "") and the
  verb `create` (or `*`);
- X is named by the pod's creating containers (a word of their command or args, such as
  `--secret-name=X`, or an env value), or in the resourceNames of a rule on `secrets` of a role bound to the
  account (RBAC cannot restrict `create` by name, so an account that creates its Secret usually reads it by name).

The creating containers are every container of a Job or CronJob and the init containers (not native
sidecars) of any workload: those run to completion, which is what a one-off generator does.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from tbyte_policy.checks.memo import per_inventory
from tbyte_policy.inventory import Inventory
from tbyte_policy.lazyre import lazy_compile
from tbyte_policy.model import Resource, mapping, sequence

_ONE_OFF_KINDS = ("Job", "CronJob")
_WORD_SEPARATORS = lazy_compile(r"[\s=,;:'\"]+")


class _Grant(NamedTuple):
    can_create: bool
    names: frozenset[str]  # resourceNames of its rules on secrets


def _grant(role: Resource | None) -> _Grant:
    if role is None:
        return _Grant(False, frozenset())
    can_create, names = False, set[str]()
    for rule in sequence(role.raw.get("rules")):
        rule = mapping(rule)
        groups, resources = sequence(rule.get("apiGroups")), sequence(rule.get("resources"))
        if not ({"", "*"} & set(map(str, groups)) and {"secrets", "*"} & set(map(str, resources))):
            continue
        if {"create", "*"} & set(map(str, sequence(rule.get("verbs")))):
            can_create = True
        names.update(name for name in sequence(rule.get("resourceNames")) if isinstance(name, str))
    return _Grant(can_create, frozenset(names))


def _accounts(binding: Resource) -> list[tuple[str | None, str]]:
    accounts = []
    for subject in sequence(binding.raw.get("subjects")):
        subject = mapping(subject)
        name = subject.get("name")
        if subject.get("kind") == "ServiceAccount" and isinstance(name, str):
            namespace = subject.get("namespace")
            accounts.append((namespace if isinstance(namespace, str) else binding.namespace, name))
    return accounts


@per_inventory
def _account_grants(inventory: Inventory) -> dict[tuple[str | None, str], list[tuple[str | None, _Grant]]]:
    """ServiceAccount -> [(namespace the grant holds in, None = every namespace; the grant)]."""
    grants: dict[tuple[str | None, str], list[tuple[str | None, _Grant]]] = defaultdict(list)
    for binding in (*inventory.kind("RoleBinding"), *inventory.kind("ClusterRoleBinding")):
        reference = mapping(binding.raw.get("roleRef"))
        kind, name = reference.get("kind"), reference.get("name")
        role = inventory.get("Role", binding.namespace, name) if kind == "Role" \
            else inventory.get("ClusterRole", None, name) if kind == "ClusterRole" else None
        grant = _grant(role)
        if not grant.can_create and not grant.names:
            continue
        scope = binding.namespace if binding.kind == "RoleBinding" else None
        for account in _accounts(binding):
            grants[account].append((scope, grant))
    return grants


def _words(container: dict) -> set[str]:
    texts = [str(part) for key in ("command", "args") for part in sequence(container.get(key))]
    texts += [str(mapping(env).get("value")) for env in sequence(container.get("env")) if mapping(env).get("value")]
    return {word for text in texts for word in _WORD_SEPARATORS.split(text) if word}


@per_inventory
def secret_creators(inventory: Inventory) -> dict[tuple[str | None, str], Resource]:
    """(namespace, Secret name) -> the workload of the run seen to create that Secret."""
    creators: dict[tuple[str | None, str], Resource] = {}
    grants = _account_grants(inventory)
    for pods in inventory.workloads():
        workload, namespace = pods.resource, pods.resource.namespace
        account = pods.service_account
        if account is None:
            continue
        held = [grant for scope, grant in grants.get((namespace, account), ()) if scope in (None, namespace)]
        if not any(grant.can_create for grant in held):
            continue
        roles = frozenset({"container", "init"}) if workload.kind in _ONE_OFF_KINDS else frozenset({"init"})
        containers = list(pods.containers(roles))
        if not containers:
            continue
        names = {name for grant in held for name in grant.names}
        for container in containers:
            names |= _words(container.raw)
        for name in names:
            creators.setdefault((namespace, name), workload)
    return creators
