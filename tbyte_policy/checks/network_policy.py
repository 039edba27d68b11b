"""network-policy: a default deny per namespace, which pods policies isolate, and policies that cannot work as written.

Every check reads a policy's directions through ``policy_types``, which applies the API server's defaulting.
"""

from __future__ import annotations

from typing import Iterator

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.workload_ports import (declares_ports, describe_ports, exposes_range, generated_pod_labels,
                                                port_name, port_number, protocol_of, workload_name,
                                                workload_names, workload_pods)
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import POD_BEARING_KINDS, ObjectRef, PodView, Problem, Resource, mapping, sequence
from tbyte_policy.selectors import describe_label_selector, label_selector_matches, selector_is_empty

INGRESS, EGRESS = "Ingress", "Egress"
DIRECTIONS = (INGRESS, EGRESS)
# The peer list of a rule in each direction.
PEERS = {INGRESS: "from", EGRESS: "to"}
DNS_PORT = 53
# CoreDNS (and kube-dns) name their container ports so; a policy may allow DNS by these names.
DNS_PORT_NAMES = frozenset({"dns", "dns-tcp"})


def policy_types(policy: Resource) -> frozenset[str]:
    """The directions a NetworkPolicy isolates, defaulted as the API server does: when ``policyTypes`` is
    absent or empty, Ingress, plus Egress if the policy has at least one egress rule."""
    declared = sequence(policy.spec.get("policyTypes"))
    if declared:
        return frozenset(value for value in declared if value in DIRECTIONS)
    return frozenset(DIRECTIONS) if sequence(policy.spec.get("egress")) else frozenset({INGRESS})


def rules_of(policy: Resource, direction: str) -> list:
    return sequence(policy.spec.get(direction.lower()))


def is_default_deny(policy: Resource, direction: str) -> bool:
    """Selects every pod of its namespace and allows nothing in ``direction``: an absent ``ingress`` under
    ``policyTypes: [Ingress]`` denies exactly like ``ingress: []``."""
    selector = policy.spec.get("podSelector")
    return selector_is_empty(selector) and direction in policy_types(policy) and not rules_of(policy, direction)


def allows_everything(rule: object, direction: str) -> bool:
    """A rule with neither peers nor ports (``- {}``) admits all traffic in its direction."""
    rule = mapping(rule)
    return not sequence(rule.get(PEERS[direction])) and not sequence(rule.get("ports"))


def restricts(policy: Resource, direction: str) -> bool:
    return direction in policy_types(policy) and not any(allows_everything(rule, direction)
                                                         for rule in rules_of(policy, direction))


def isolating_policies(pods: PodView, inventory: Inventory, direction: str) -> list[Resource]:
    return [policy for policy in inventory.network_policies.matching(pods.resource.namespace, pods.labels)
            if direction in policy_types(policy)]


def policed_pods(resource: Resource, inventory: Inventory) -> PodView | None:
    """The workload's pods, if NetworkPolicies govern them: they do not apply to pods on the host's network
    (the Kubernetes documentation leaves that undefined, and common network plugins ignore such pods)."""
    pods = workload_pods(resource, inventory)
    return None if pods is None or pods.spec.get("hostNetwork") is True else pods


def labels_pointer(resource: Resource, pods: PodView) -> str:
    if resource.kind == "Rollout" and isinstance(resource.spec.get("workloadRef"), dict):
        return "/spec/workloadRef"
    return pods.pointer.removesuffix("/spec") + "/metadata/labels"


def policies_named(policies: list[Resource]) -> str:
    listed = ", ".join(sorted(policy.name for policy in policies))
    return f"NetworkPolicy {listed}" if len(policies) == 1 else f"NetworkPolicies {listed}"


@check("namespace-default-deny-missing", "namespace")
def namespace_default_deny_missing(namespace: str, ctx: CheckContext) -> Iterator[Problem]:
    inventory = ctx.inventory
    if not inventory.workloads(namespace) or not inventory.sees("NetworkPolicy"):
        return
    policies = inventory.kind("NetworkPolicy", namespace)
    restricting_egress = [policy for policy in policies if restricts(policy, EGRESS)]
    # Egress isolation is asked for only where the namespace already restricts egress somewhere:
    # from then on, a pod that no egress policy selects is the exception that a default deny closes.
    wanted = DIRECTIONS if restricting_egress else (INGRESS,)
    missing = [direction for direction in wanted
               if not any(is_default_deny(policy, direction) for policy in policies)]
    if not missing:
        return
    consequences = {INGRESS: "accepts connections from anywhere",
                    EGRESS: f"may connect anywhere (egress is restricted by {policies_named(restricting_egress)})"}
    message = (f"namespace {namespace} has no default-deny NetworkPolicy for "
               f"{' and '.join(direction.lower() for direction in missing)} (podSelector: {{}}, "
               f"{' and '.join(missing)} in policyTypes, no rules): a pod that no other policy selects "
               + " and ".join(consequences[direction] for direction in missing))
    subject = inventory.get("Namespace", None, namespace) or ObjectRef("Namespace", namespace)
    yield Problem(message, resource=subject, related=[ObjectRef.of(policy) for policy in restricting_egress])


@check("pods-not-isolated", "object", direction=INGRESS)
def pods_not_isolated(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    pods = policed_pods(resource, ctx.inventory)
    if pods is None or not ctx.inventory.sees("NetworkPolicy"):
        return
    direction = ctx.params["direction"]
    selecting = ctx.inventory.network_policies.matching(resource.namespace, pods.labels)
    if any(direction in policy_types(policy) for policy in selecting):
        return
    exposure = {INGRESS: "accept connections from anywhere", EGRESS: "may connect anywhere"}[direction]
    message = (f"no NetworkPolicy in namespace {resource.namespace} selects the pods of {workload_name(pods)} for "
               f"{direction.lower()}; they {exposure}")
    if selecting:
        message += f" (selected by {policies_named(selecting)}, but not for {direction.lower()})"
    yield Problem(message, labels_pointer(resource, pods), related=[ObjectRef.of(policy) for policy in selecting])


@check("network-policy-selects-no-pods", "object")
def network_policy_selects_no_pods(policy: Resource, ctx: CheckContext) -> Iterator[Problem]:
    selector = policy.spec.get("podSelector")
    # An empty podSelector is a namespace-wide baseline that also holds for pods yet to come.
    if not isinstance(selector, dict) or selector_is_empty(selector) or not ctx.inventory.sees(*POD_BEARING_KINDS):
        return
    if ctx.inventory.pods_matching(policy.namespace, selector):
        return
    if not any(label_selector_matches(selector, labels)
               for labels in generated_pod_labels(policy.namespace, ctx.inventory)):
        yield Problem(f"podSelector ({describe_label_selector(selector)}) of NetworkPolicy {policy.name} matches "
                      f"no pods in namespace {policy.namespace}", "/spec/podSelector")


@check("network-policy-port-not-exposed", "object")
def network_policy_port_not_exposed(policy: Resource, ctx: CheckContext) -> Iterator[Problem]:
    inventory = ctx.inventory
    if not inventory.sees(*POD_BEARING_KINDS):
        return
    types = policy_types(policy)
    for direction in DIRECTIONS:
        if direction not in types:
            continue
        key = direction.lower()
        for index, rule in enumerate(rules_of(policy, direction)):
            rule = mapping(rule)
            ports = [(number, entry) for number, entry in enumerate(sequence(rule.get("ports")))
                     if isinstance(entry, dict) and entry.get("port") is not None]
            if not ports:
                continue
            targets = _rule_targets(policy, direction, rule, inventory)
            if not targets:
                continue
            for number, entry in ports:
                if _exposed(targets, entry) is False:
                    where = "to" if direction == EGRESS else "on"
                    yield Problem(
                        f"{key} rule {index} of NetworkPolicy {policy.name} allows {_describe_port(entry)} {where} "
                        f"the pods of {workload_names(targets)}, which declare {describe_ports(targets)}; this entry "
                        f"admits no traffic to them",
                        f"/spec/{key}/{index}/ports/{number}/port",
                        related=[ObjectRef.of(pods.resource) for pods in targets])


def _rule_targets(policy: Resource, direction: str, rule: dict, inventory: Inventory) -> list[PodView]:
    """The pods whose ports a rule's ports must name: the policy's own pods for an ingress rule; for an
    egress rule the pods its peers select, when every peer is a pod selector of the policy's namespace
    (an ipBlock or another namespace may be what the ports are for)."""
    if direction == INGRESS:
        return inventory.pods_matching(policy.namespace, policy.spec.get("podSelector"))
    peers = sequence(rule.get("to"))
    if not peers or not all(isinstance(peer, dict) and set(peer) == {"podSelector"} for peer in peers):
        return []
    found: dict[int, PodView] = {}
    for peer in peers:
        for pods in inventory.pods_matching(policy.namespace, peer["podSelector"]):
            found[id(pods)] = pods
    return list(found.values())


def _describe_port(entry: dict) -> str:
    name = port_name(entry.get("port"))
    if name is not None:
        return f"the port named {name!r} ({protocol_of(entry)})"
    end = port_number(entry.get("endPort"))
    return f"port {entry.get('port')}{f'-{end}' if end else ''}/{protocol_of(entry)}"


def _exposed(targets: list[PodView], entry: dict) -> bool | None:
    """Whether any target pod declares the port; None when that cannot be told: a number is judged only
    when every target declares its ports (containerPort is informational, a pod may listen on others)."""
    protocol = protocol_of(entry)
    name = port_name(entry.get("port"))
    if name is not None:
        return any(pods.exposes(name, protocol) for pods in targets)
    low = port_number(entry.get("port"))
    if low is None or not all(declares_ports(pods) for pods in targets):
        return None
    high = port_number(entry.get("endPort")) or low
    return any(exposes_range(pods, low, high, protocol) for pods in targets)


@check("egress-dns-blocked", "object")
def egress_dns_blocked(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    pods = policed_pods(resource, ctx.inventory)
    if pods is None:
        return
    restricting = isolating_policies(pods, ctx.inventory, EGRESS)
    if not restricting:
        return
    allowed: set[str] = set()
    for policy in restricting:
        for rule in rules_of(policy, EGRESS):
            allowed |= dns_protocols(mapping(rule))
    missing = [protocol for protocol in ("UDP", "TCP") if protocol not in allowed]
    if missing:
        effect = ("name lookups from these pods fail" if "UDP" in missing
                  else "DNS answers too large for UDP fail")
        yield Problem(f"the egress of the pods of {workload_name(pods)} is restricted (by "
                      f"{policies_named(restricting)}) and no egress rule allows DNS on port "
                      f"53/{' or '.join(missing)}: {effect}",
                      labels_pointer(resource, pods), related=[ObjectRef.of(policy) for policy in restricting])


def dns_protocols(rule: dict) -> set[str]:
    """The protocols on which an egress rule lets pods reach a DNS server on port 53."""
    peers = sequence(rule.get("to"))
    ports = [entry for entry in sequence(rule.get("ports")) if isinstance(entry, dict)]
    if not ports:
        # Every port, but only to the listed peers: pods of the policy's own namespace are not the cluster DNS.
        reaches_dns = not peers or any(isinstance(peer, dict) and ("ipBlock" in peer or "namespaceSelector" in peer)
                                       for peer in peers)
        return {"UDP", "TCP"} if reaches_dns else set()
    return {protocol_of(entry) for entry in ports if _covers_dns(entry)}


def _covers_dns(entry: dict) -> bool:
    port = entry.get("port")
    if port is None:
        return True
    if port_name(port) is not None:
        return port in DNS_PORT_NAMES
    low = port_number(port)
    high = port_number(entry.get("endPort")) or low
    return low is not None and low <= DNS_PORT <= high


@check("namespace-selector-name-label", "object")
def namespace_selector_name_label(policy: Resource, ctx: CheckContext) -> Iterator[Problem]:
    found = []
    for direction in DIRECTIONS:
        key, peers = direction.lower(), PEERS[direction]
        for index, rule in enumerate(rules_of(policy, direction)):
            for number, peer in enumerate(sequence(mapping(rule).get(peers))):
                selector = mapping(mapping(peer).get("namespaceSelector"))
                base = f"/spec/{key}/{index}/{peers}/{number}/namespaceSelector"
                if "name" in mapping(selector.get("matchLabels")):
                    found.append((key, index, f"{base}/matchLabels/name"))
                found += [(key, index, f"{base}/matchExpressions/{position}")
                          for position, expression in enumerate(sequence(selector.get("matchExpressions")))
                          if mapping(expression).get("key") == "name"]
    if not found or _namespaces_carry_name_label(ctx.inventory):
        return
    for key, index, pointer in found:
        yield Problem(f"{key} rule {index} of NetworkPolicy {policy.name} selects namespaces by the `name` label, "
                      f"which Kubernetes does not set; the label it sets is kubernetes.io/metadata.name", pointer)


def _namespaces_carry_name_label(inventory: Inventory) -> bool:
    # Namespaces of the scan labelled `name` show the label is set on purpose here.
    return any("name" in namespace.labels for namespace in inventory.kind("Namespace"))


@check("network-policy-rules-ignored", "object")
def network_policy_rules_ignored(policy: Resource, ctx: CheckContext) -> Iterator[Problem]:
    types = policy_types(policy)
    for direction in DIRECTIONS:
        if direction not in types and rules_of(policy, direction):
            yield Problem(f"NetworkPolicy {policy.name} has {direction.lower()} rules, but its policyTypes "
                          f"[{', '.join(sorted(types))}] leave out {direction}; the API ignores those rules",
                          "/spec/policyTypes")
