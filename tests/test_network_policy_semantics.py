"""The NetworkPolicy semantics the network-policy rules rest on: policyTypes defaulting, what denies, what allows
DNS; and the TLS host coverage of the ingress rules."""

from __future__ import annotations

import pytest

from tbyte_policy.checks.ingress import tls_hosts_cover
from tbyte_policy.checks.network_policy import (
    EGRESS,
    INGRESS,
    allows_everything,
    dns_protocols,
    is_default_deny,
    policy_types,
    restricts,
)
from tbyte_policy.model import Resource, Source


def policy(spec) -> Resource:
    return Resource("networking.k8s.io/v1", "NetworkPolicy", "p", "shop", {"spec": spec}, Source("p.yaml", 1))


@pytest.mark.parametrize(("spec", "expected"), [
    # Absent policyTypes: Ingress, plus Egress only when there is at least one egress rule.
    ({"podSelector": {}}, {INGRESS}),
    ({"podSelector": {}, "ingress": [{}]}, {INGRESS}),
    ({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}, {INGRESS, EGRESS}),
    ({"podSelector": {}, "egress": []}, {INGRESS}),
    ({"podSelector": {}, "egress": None}, {INGRESS}),
    # An empty list is defaulted like an absent one.
    ({"podSelector": {}, "policyTypes": [], "egress": [{}]}, {INGRESS, EGRESS}),
    # Declared policyTypes are taken as they are, whatever rules there are.
    ({"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]}, {EGRESS}),
    ({"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]}, {INGRESS}),
    ({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, {INGRESS, EGRESS}),
    # Wrong types read as absent; values the API rejects are dropped.
    ({"podSelector": {}, "policyTypes": "Egress"}, {INGRESS}),
    ({"podSelector": {}, "policyTypes": ["Egress", "Sideways", 3]}, {EGRESS}),
])
def test_policy_types_are_defaulted_as_the_api_server_does(spec, expected):
    assert policy_types(policy(spec)) == expected


@pytest.mark.parametrize(("spec", "ingress", "egress"), [
    ({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, True, True),
    ({"podSelector": {}, "ingress": []}, True, False),
    ({"podSelector": {}}, True, False),
    ({"podSelector": {}, "policyTypes": ["Ingress"]}, True, False),
    ({"podSelector": {}, "policyTypes": ["Egress"]}, False, True),
    ({"podSelector": {"matchLabels": {}, "matchExpressions": []}, "policyTypes": ["Ingress"]}, True, False),
    # Rules allow something: no default deny.
    ({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}, False, False),
    ({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}, False, False),
    # Selects only some pods.
    ({"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress", "Egress"]}, False, False),
    # No podSelector at all is not read as the namespace-wide {}.
    ({"policyTypes": ["Ingress"]}, False, False),
])
def test_default_deny(spec, ingress, egress):
    assert is_default_deny(policy(spec), INGRESS) is ingress
    assert is_default_deny(policy(spec), EGRESS) is egress


def test_a_rule_without_peers_and_ports_allows_everything_and_restricts_nothing():
    assert allows_everything({}, EGRESS) and allows_everything({"to": [], "ports": []}, EGRESS)
    assert not allows_everything({"ports": [{"port": 53}]}, EGRESS)
    assert not allows_everything({"to": [{"podSelector": {}}]}, EGRESS)
    assert not allows_everything({"from": [{"podSelector": {}}]}, INGRESS)
    assert not restricts(policy({"podSelector": {}, "egress": [{}]}), EGRESS)
    assert restricts(policy({"podSelector": {}, "policyTypes": ["Egress"]}), EGRESS)
    assert not restricts(policy({"podSelector": {}, "egress": []}), EGRESS)


@pytest.mark.parametrize(("rule", "expected"), [
    ({"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}, {"UDP", "TCP"}),
    ({"ports": [{"port": 53}]}, {"TCP"}),  # protocol defaults to TCP
    ({"ports": [{"protocol": "UDP", "port": "53"}]}, {"UDP"}),
    ({"ports": [{"protocol": "UDP", "port": 1, "endPort": 1024}]}, {"UDP"}),
    ({"ports": [{"protocol": "UDP", "port": 54, "endPort": 1024}]}, set()),
    ({"ports": [{"protocol": "UDP"}]}, {"UDP"}),  # no port: every port of the protocol
    ({"ports": [{"protocol": "UDP", "port": "dns"}, {"port": "dns-tcp"}]}, {"UDP", "TCP"}),
    ({"ports": [{"protocol": "UDP", "port": "http"}]}, set()),
    ({"ports": [{"port": 5432}]}, set()),
    # No ports: every port, if the peers can be the cluster DNS.
    ({}, {"UDP", "TCP"}),
    ({"to": [{"namespaceSelector": {}}]}, {"UDP", "TCP"}),
    ({"to": [{"ipBlock": {"cidr": "169.254.20.10/32"}}]}, {"UDP", "TCP"}),
    ({"to": [{"podSelector": {}}]}, set()),
    ({"to": ["not a peer"]}, set()),
])
def test_dns_protocols_an_egress_rule_allows(rule, expected):
    assert dns_protocols(rule) == expected


@pytest.mark.parametrize(("host", "covered"), [
    ("shop.example.com", True),
    ("a.example.com", True),
    ("a.b.example.com", False),
    ("example.com", False),
    ("api.example.org", False),
])
def test_tls_hosts_cover(host, covered):
    assert tls_hosts_cover(host, ["shop.example.com", "*.example.com"]) is covered
