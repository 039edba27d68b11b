"""network-policy: a default deny per namespace, which pods policies isolate, policies that cannot work as written,
and traffic the workloads need (through their Services, to the API server, to the Services they name) that no rule
admits.

Every check reads a policy's directions through ``policy_types``, which applies the API server's defaulting.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tbyte_policy.checks import CheckContext, check
from tbyte_policy.checks.security_context import bound_service_accounts
from tbyte_policy.checks.selector_targets import resolve
from tbyte_policy.checks.services import selected_pods
from tbyte_policy.checks.workload_ports import (
    declares_ports,
    describe_ports,
    exposes_range,
    port_name,
    port_number,
    protocol_of,
    workload_names,
    workload_pods,
)
from tbyte_policy.inventory import Inventory
from tbyte_policy.lazyre import lazy_compile
from tbyte_policy.model import POD_BEARING_KINDS, ObjectRef, PodView, Problem, Resource, mapping, sequence, text
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
    if pods.template_holder is not None:
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
    message = (f"no NetworkPolicy in namespace {resource.namespace} selects the pods of {pods.resource.local_ref} for "
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
    outcome = resolve(policy.namespace, selector, ctx.inventory)
    if outcome.matches or outcome.unverifiable:  # the latter is SVC004's
        return
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
        yield Problem(f"the egress of the pods of {pods.resource.local_ref} is restricted (by "
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
    if low is None:
        return False
    high = port_number(entry.get("endPort")) or low
    return low <= DNS_PORT <= high


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


# --- traffic the workloads need that the policies leave no way for ---

def _port_entries(rule: dict) -> list[dict] | None:
    """The port entries of a rule; None when it names none (every port)."""
    entries = [entry for entry in sequence(rule.get("ports")) if isinstance(entry, dict)]
    return entries or None


def _covers_port(entry: dict, number: int | None, name: str | None, protocol: str) -> bool | None:
    """Whether a policy port entry covers a destination port known by number and/or name; None when that
    cannot be told (a name against a port known only by number, or the other way round)."""
    if protocol_of(entry) != protocol:
        return False
    port = entry.get("port")
    if port is None:
        return True
    if port_name(port) is not None:
        return port == name if name is not None else None
    low = port_number(port)
    if low is None or number is None:
        return None
    return low <= number <= (port_number(entry.get("endPort")) or low)


def _admits_port(entries: list[dict] | None, number: int | None, name: str | None, protocol: str) -> bool:
    """Whether a rule's port entries may admit the port (no entries: every port)."""
    return entries is None or any(_covers_port(entry, number, name, protocol) is not False for entry in entries)


def _pod_port(pods_list: list[PodView], target: object, protocol: str) -> tuple[int | None, str | None]:
    """(number, name) of the container port a Service's targetPort reaches."""
    for pods in pods_list:
        for entry in pods.container_ports():
            if protocol_of(entry) == protocol and target in (entry.get("name"), entry.get("containerPort")):
                name = entry.get("name")
                return port_number(entry.get("containerPort")), name if isinstance(name, str) else None
    return port_number(target), port_name(target)


def _service_ports(service: Resource) -> Iterator[tuple[int, dict, object, str]]:
    """(index, entry, target port, protocol) of each port of a Service; the targetPort defaults to the port."""
    for index, entry in enumerate(sequence(service.spec.get("ports"))):
        if isinstance(entry, dict):
            target = entry.get("targetPort") if entry.get("targetPort") is not None else entry.get("port")
            yield index, entry, target, protocol_of(entry)


@check("service-ingress-blocked", "object")
def service_ingress_blocked(service: Resource, ctx: CheckContext) -> Iterator[Problem]:
    inventory = ctx.inventory
    if not inventory.sees("NetworkPolicy"):
        return
    for pods in selected_pods(service, inventory):
        if pods.spec.get("hostNetwork") is True:
            continue
        isolating = isolating_policies(pods, inventory, INGRESS)
        if not isolating:
            continue
        rules = [mapping(rule) for policy in isolating for rule in rules_of(policy, INGRESS)]
        for index, entry, target, protocol in _service_ports(service):
            number, name = _pod_port([pods], target, protocol)
            if number is None and name is None:
                continue
            if any(_admits_port(_port_entries(rule), number, name, protocol) for rule in rules):
                continue
            label = entry.get("name") or entry.get("port")
            yield Problem(f"port {label} of Service {service.name} reaches no pod of {pods.resource.local_ref}: "
                          f"{policies_named(isolating)} isolate{'s' if len(isolating) == 1 else ''} them for "
                          f"ingress and no ingress rule admits {name or number}/{protocol} from anywhere, so every "
                          f"connection through the Service times out",
                          f"/spec/ports/{index}",
                          related=[ObjectRef.of(pods.resource), *(ObjectRef.of(policy) for policy in isolating)])


def _egress_rules(pods: PodView, inventory: Inventory) -> tuple[list[Resource], list[dict]]:
    isolating = isolating_policies(pods, inventory, EGRESS)
    return isolating, [mapping(rule) for policy in isolating for rule in rules_of(policy, EGRESS)]


def _allows_off_cluster(rule: dict, number: int | None, protocol: str) -> bool:
    """Whether an egress rule may admit a connection to an address that is no pod (the API server, a
    managed database): only an ipBlock peer, or no peer list at all, can."""
    peers = sequence(rule.get("to"))
    if peers and not any(isinstance(peer, dict) and "ipBlock" in peer for peer in peers):
        return False
    ports = _port_entries(rule)
    return ports is None or any(port_name(port.get("port")) is None
                                and _covers_port(port, number, None, protocol) is not False for port in ports)


@check("api-server-egress-blocked", "object")
def api_server_egress_blocked(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    inventory = ctx.inventory
    pods = policed_pods(resource, inventory)
    if pods is None or not inventory.sees("NetworkPolicy") or pods.spec.get("automountServiceAccountToken") is False:
        return
    account_name = pods.service_account
    if account_name is None:
        return
    account = inventory.get("ServiceAccount", resource.namespace, account_name)
    if pods.spec.get("automountServiceAccountToken") is None and account is not None \
            and account.raw.get("automountServiceAccountToken") is False:
        return
    # Uses the API: its account is bound to a role (in the scan), or, in a live run that reads no RBAC
    # objects, the pod asks for its token explicitly.
    if (resource.namespace, account_name) not in bound_service_accounts(inventory) and not (
            ctx.mode == "live" and pods.spec.get("automountServiceAccountToken") is True):
        return
    isolating, rules = _egress_rules(pods, inventory)
    if not isolating or any(_allows_off_cluster(rule, None, "TCP") for rule in rules):
        return
    yield Problem(f"the pods of {pods.resource.local_ref} call the Kubernetes API as ServiceAccount {account_name}, "
                  f"but {policies_named(isolating)} restrict{'s' if len(isolating) == 1 else ''} their egress and "
                  f"no egress rule allows TCP to an ipBlock: the API server is not a pod that a pod or namespace "
                  f"selector could admit, so every API call times out",
                  labels_pointer(resource, pods), related=[ObjectRef.of(policy) for policy in isolating])


# An environment variable whose value is a bare Service name names a host only under a key like these.
_HOST_KEY = lazy_compile(r"(^|_)(HOST|HOSTNAME|SERVER|ADDR|ADDRESS|ENDPOINT|URL|URI)$", re.IGNORECASE)
_URL = lazy_compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?([^/:?#]+)(?::(\d+))?", re.IGNORECASE)
_HOST_PORT = lazy_compile(r"^([a-z0-9.-]+)(?::(\d+))?$", re.IGNORECASE)


def _named_hosts(key: str, value: str) -> Iterator[tuple[str, int | None]]:
    """(host, port) of each host an environment value names: URLs, host:port, and bare names under a host key."""
    for item in value.split(","):
        item = item.strip()
        url = _URL.match(item)
        match = url or _HOST_PORT.match(item)
        if match is None:
            continue
        host, port = match.group(1).lower().rstrip("."), match.group(2)
        if url or port or "." in host or _HOST_KEY.search(key):
            yield host, int(port) if port else None


def _service_of(host: str, namespace: str | None, inventory: Inventory) -> Resource | None:
    """The Service a cluster DNS name resolves to: name, name.namespace, name.namespace.svc[.cluster domain]."""
    parts = host.split(".")
    if len(parts) == 1:
        return inventory.get("Service", namespace, parts[0])
    if len(parts) == 2 or parts[2] == "svc":
        return inventory.get("Service", parts[1], parts[0])
    return None


def _environment(pods: PodView, inventory: Inventory) -> Iterator[tuple[str, str, str, str]]:
    """(key, value, where it is set, pointer) of the plain and ConfigMap-sourced environment of the pods."""
    namespace = pods.resource.namespace
    for container in pods.containers(frozenset({"container", "sidecar", "init"})):
        for index, env in enumerate(sequence(container.raw.get("env"))):
            env = mapping(env)
            key, pointer = env.get("name"), f"{container.pointer}/env/{index}"
            reference = mapping(mapping(env.get("valueFrom")).get("configMapKeyRef"))
            if not isinstance(key, str):
                continue
            if isinstance(env.get("value"), str):
                yield key, env["value"], f"env {key} of container {container.name}", pointer
            elif reference and isinstance(reference.get("key"), str):
                config = inventory.get("ConfigMap", namespace, reference.get("name"))
                value = mapping(config.raw.get("data")).get(reference["key"]) if config is not None else None
                if config is not None and isinstance(value, str):
                    yield key, value, f"env {key} of container {container.name} (ConfigMap {config.name})", pointer
        for index, source in enumerate(sequence(container.raw.get("envFrom"))):
            source = mapping(source)
            config = inventory.get("ConfigMap", namespace, mapping(source.get("configMapRef")).get("name"))
            if config is None:
                continue
            prefix = text(source.get("prefix"))
            for key, value in mapping(config.raw.get("data")).items():
                if isinstance(key, str) and isinstance(value, str):
                    yield (prefix + key, value, f"{prefix + key} from ConfigMap {config.name} (envFrom of container "
                           f"{container.name})", f"{container.pointer}/envFrom/{index}")


def _egress_reaches(rules: list[dict], service: Resource, port: int | None, inventory: Inventory,
                    namespace: str | None) -> bool:
    """Whether some egress rule may admit a connection to the Service on ``port`` (any of its ports when None);
    peers and ports that cannot be judged count as admitting."""
    if service.spec.get("type") == "ExternalName":
        numbers = [port] if port else [port_number(entry.get("port")) for _, entry, _, _ in _service_ports(service)]
        return any(_allows_off_cluster(rule, number, "TCP") for rule in rules for number in numbers or [None])
    destinations = selected_pods(service, inventory)
    if not destinations:
        return True
    targets = [(target, protocol) for _, entry, target, protocol in _service_ports(service)
               if port is None or port_number(entry.get("port")) == port]
    for rule in rules:
        peers = [peer for peer in sequence(rule.get("to")) if isinstance(peer, dict)]
        # Only a bare podSelector can be judged: it selects pods of the policy's own namespace.
        if peers and not any(set(peer) != {"podSelector"}
                             or (service.namespace == namespace
                                 and any(label_selector_matches(peer["podSelector"], pods.labels)
                                         for pods in destinations)) for peer in peers):
            continue
        ports = _port_entries(rule)
        if ports is None or not targets:
            return True
        for target, protocol in targets:
            if _admits_port(ports, *_pod_port(destinations, target, protocol), protocol):
                return True
    return False


@check("service-egress-blocked", "object")
def service_egress_blocked(resource: Resource, ctx: CheckContext) -> Iterator[Problem]:
    inventory = ctx.inventory
    pods = policed_pods(resource, inventory)
    if pods is None or not inventory.sees("NetworkPolicy"):
        return
    isolating, rules = _egress_rules(pods, inventory)
    if not isolating:
        return
    reported = set()
    for key, value, where, pointer in _environment(pods, inventory):
        for host, port in _named_hosts(key, value):
            service = _service_of(host, resource.namespace, inventory)
            if service is None or service in reported \
                    or _egress_reaches(rules, service, port, inventory, resource.namespace):
                continue
            reported.add(service)
            external = service.spec.get("externalName")
            destination = (f"outside the cluster (ExternalName {external})" if isinstance(external, str)
                           else "its pods")
            yield Problem(f"{where} points the pods of {pods.resource.local_ref} at Service {service.name}, but "
                          f"{policies_named(isolating)} restrict{'s' if len(isolating) == 1 else ''} their egress "
                          f"and no egress rule admits {f'port {port}' if port else 'its ports'} to {destination}: "
                          f"the connections time out", pointer,
                          related=[ObjectRef.of(service), *(ObjectRef.of(policy) for policy in isolating)])
