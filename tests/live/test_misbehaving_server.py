"""A flaky or broken API server: live reads that can neither hang nor mislead.

Continue tokens that go round in a circle or never end, answers that trickle in, and 200 answers that
are not the list asked for: each ends in a one-line reason and exit 2, within the time and the number
of requests it is given, and never makes the rules take a kind for empty."""

from __future__ import annotations

import importlib
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tbyte_policy.cli import app
from tbyte_policy.sources.cluster import KINDS

from .cluster_fixtures import NS, cluster
from .k8s_api_server import FakeK8sServer, Knobs, kubeconfig_yaml

HEALTHY = cluster("production").objects
MALFORMED = "malformed answer from the API server: "


def live(server, *args: str, timeout: str = "5"):
    result = CliRunner().invoke(app, ["live", "--kubeconfig", server.kubeconfig_path, "--context", "test",
                                      "--namespace", NS, "--timeout", timeout, *args])
    assert "Traceback" not in result.output
    return result


def unreadable(result) -> dict[str, str]:
    return json.loads(result.stdout)["unreadable_kinds"]


# --- continue tokens ---

def test_continue_tokens_that_cycle_make_the_kind_unreadable(k8s_server):
    server = k8s_server(HEALTHY, continue_tokens={"configmaps": "cycle"})
    result = live(server, "--chunk-size", "1", "--format", "json")
    assert result.exit_code == 2, result.output
    assert unreadable(result) == {"ConfigMap": "the API server's continue tokens go round in a circle (page 4 "
                                                "would repeat an earlier page): the list never ends"}
    # none, cycle-a, cycle-b: the third answer names cycle-a again
    assert [request.query.get("continue") for request in server.requests_for("configmaps")] == \
           [None, "cycle-a", "cycle-b"]
    assert json.loads(result.stdout)["findings"] == []


def test_continue_tokens_that_never_end_stop_at_the_page_limit(k8s_server, monkeypatch):
    monkeypatch.setattr(importlib.import_module("tbyte_policy.sources.cluster"), "MAX_PAGES", 25)
    server = k8s_server(HEALTHY, continue_tokens={"pods": "endless"})
    result = live(server, "--chunk-size", "2", "--format", "json")
    assert result.exit_code == 2, result.output
    assert unreadable(result) == {"Pod": "the list did not end after 25 pages of 2 objects (the API server keeps "
                                          "sending continue tokens)"}
    assert len(server.requests_for("pods")) == 25


# --- time ---

@pytest.mark.parametrize("phase", ["trickle_body", "trickle_headers"])
def test_an_answer_that_trickles_in_is_cut_at_the_timeout(k8s_server, phase):
    """Every byte comes within the socket's read timeout, the whole answer in 25 s: --timeout 1 ends it."""
    server = k8s_server(HEALTHY, **{phase: {"pods": 25.0}})
    started = time.monotonic()
    result = live(server, timeout="1")
    elapsed = time.monotonic() - started
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"tbyte-policy: the API server did not answer within 1 s ({server.url}, listing Pod; "
                             "--timeout bounds each request, its answer included)\n")
    assert elapsed < 4, elapsed
    assert len(server.requests_for("pods")) == 1


def test_the_deadline_bounds_the_whole_audit(k8s_server):
    server = k8s_server(HEALTHY, trickle_body={"deployments": 25.0})
    started = time.monotonic()
    result = live(server, "--deadline", "1.5", timeout="20")
    elapsed = time.monotonic() - started
    assert result.exit_code == 2, result.output
    assert result.stderr == ("tbyte-policy: the audit did not finish within its deadline of 1.5 s (--deadline), "
                             "listing Deployment\n")
    assert elapsed < 4, elapsed


def test_a_slow_but_steady_answer_within_the_timeout_is_read(k8s_server):
    server = k8s_server(HEALTHY, trickle_body={"pods": 1.0})
    result = live(server, "--format", "json", timeout="5")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["resources"] == len(HEALTHY)


def test_no_deadline(k8s_server):
    server = k8s_server(HEALTHY)
    result = live(server, "--deadline", "0", "--format", "json")
    assert result.exit_code == 0, result.output
    assert live(server, "--deadline", "-1").exit_code == 2  # a usage error


# --- answers that are not the list asked for ---

POD_LIST = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}}
SHAPES = {
    "empty object": ({}, "an object without kind or items, not a NetworkPolicyList"),
    "status": ({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "etcd is down",
                "reason": "InternalError", "code": 500},
               "a Status (Failure, InternalError, etcd is down), not a NetworkPolicyList"),
    "items a mapping": ({**POD_LIST, "kind": "NetworkPolicyList", "items": {"a": {}}},
                        "its items are an object, not a list"),
    "items a string": ({**POD_LIST, "kind": "NetworkPolicyList", "items": "none"},
                       "its items are a string, not a list"),
    "items an integer": ({**POD_LIST, "kind": "NetworkPolicyList", "items": 0},
                         "its items are an integer, not a list"),
    "no items": ({**POD_LIST, "kind": "NetworkPolicyList"}, "a NetworkPolicyList without items"),
    "item metadata a string": ({**POD_LIST, "kind": "NetworkPolicyList", "items": [{"metadata": "x", "spec": {}}]},
                               "the metadata of item 1 is a string, not an object"),
    "item metadata missing": ({**POD_LIST, "kind": "NetworkPolicyList", "items": [{"spec": {}}]},
                              "the metadata of item 1 is null, not an object"),
    "item a list": ({**POD_LIST, "kind": "NetworkPolicyList", "items": [[]]}, "item 1 is a list, not an object"),
    "item without a name": ({**POD_LIST, "kind": "NetworkPolicyList", "items": [{"metadata": {"namespace": NS}}]},
                            "item 1 has no metadata.name"),
    "item of another kind": ({**POD_LIST, "kind": "NetworkPolicyList",
                              "items": [{"kind": "Service", "metadata": {"name": "web"}}]},
                             "item 1 (web) is a Service, not a NetworkPolicy"),
    "another list": ({**POD_LIST, "items": []}, "a PodList, not a NetworkPolicyList"),
    "a list": ([], "a list, not a NetworkPolicyList"),
    "a string": ("ok", "a string, not a NetworkPolicyList"),
    "continue a number": ({"kind": "NetworkPolicyList", "metadata": {"continue": 7}, "items": []},
                          "its metadata.continue is an integer, not a string"),
    "not JSON": (b"<html>502 Bad Gateway</html>", "not JSON (at character 0)"),
    "truncated": (b'{"kind": "NetworkPolicyList", "items": [{"metadata": {"name": "a"}}, {"meta',
                  "not JSON (at character 69)"),  # where the second item starts
    "empty": (b"", "an empty answer, not a NetworkPolicyList"),
    "trailing text": (b'{"kind": "NetworkPolicyList", "items": []} {}', "not JSON: text after the list object"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_malformed_list_makes_its_kind_unreadable_never_empty(k8s_server, shape):
    """No NetworkPolicy is not "no NetworkPolicy": the network-policy rules, which would report every
    workload as unprotected, stay silent, and the run exits 2."""
    answer, problem = SHAPES[shape]
    server = k8s_server(HEALTHY, answers={"networkpolicies": answer})
    result = live(server, "--format", "json")
    assert result.exit_code == 2, result.output
    assert unreadable(result) == {"NetworkPolicy": MALFORMED + problem}
    assert json.loads(result.stdout)["findings"] == []
    assert len(server.requests_for("networkpolicies")) == 1


@pytest.mark.parametrize("kind", ["pods", "poddisruptionbudgets", "horizontalpodautoscalers", "secrets",
                                  "endpointslices", "scaledobjects"])
def test_any_kind_answered_with_an_empty_object_is_unreadable(k8s_server, kind):
    server = k8s_server(HEALTHY, answers={kind: {}})
    result = live(server, "--format", "json")
    assert result.exit_code == 2, result.output
    (name,) = [k.kind for k in KINDS if k.plural == kind]
    assert unreadable(result) == {name: f"{MALFORMED}an object without kind or items, not a {name}List"}
    assert json.loads(result.stdout)["findings"] == []


@pytest.mark.parametrize(("answer", "problem"), [
    ({"kind": "APIResourceList", "groupVersion": "argoproj.io/v1alpha1", "resources": {"rollouts": {}}},
     "its resources are an object, not a list"),
    ({"kind": "APIResourceList", "resources": ["rollouts"]}, "resource 1 is a string without a name"),
    ({"kind": "Status", "status": "Failure"}, "a Status, not an APIResourceList"),
    (b"not json", "not JSON"),
])
def test_malformed_discovery_makes_its_kinds_unreadable(k8s_server, answer, problem):
    server = k8s_server(HEALTHY, answers={"/apis/argoproj.io/v1alpha1": answer})
    result = live(server, "--format", "json")
    assert result.exit_code == 2, result.output
    reason = f"malformed discovery answer from the API server: {problem}"
    assert unreadable(result) == {"Rollout": reason, "AnalysisTemplate": reason}
    assert not server.requests_for("rollouts") and not server.requests_for("analysistemplates")


@pytest.mark.parametrize(("answer", "problem"), [
    ({}, "not the Namespace tbyte (its metadata is null)"),
    ({"kind": "Namespace", "metadata": {"name": "other"}}, "not the Namespace tbyte (its metadata names another)"),
    ({"kind": "PodList", "items": []}, "a PodList, not a Namespace"),
    ([], "a list, not a Namespace"),
])
def test_a_malformed_namespace_is_unreadable(k8s_server, answer, problem):
    server = k8s_server(HEALTHY, answers={"namespaces": answer})
    result = live(server, "--format", "json")
    assert result.exit_code == 2, result.output
    assert unreadable(result) == {"Namespace": MALFORMED + problem}
    assert json.loads(result.stdout)["findings"] == []


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=10)
list_like = st.fixed_dictionaries(
    {}, optional={"kind": st.sampled_from(["PodList", "Status", "List", 3]), "metadata": json_values,
                  "items": st.one_of(json_values, st.lists(st.one_of(json_values, st.fixed_dictionaries(
                      {"metadata": st.one_of(json_values, st.fixed_dictionaries(
                          {}, optional={"name": json_values, "ownerReferences": json_values})),
                       "status": json_values})), max_size=3))})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=st.one_of(json_values, list_like), plural=st.sampled_from(["pods", "services", "namespaces"]))
def test_no_answer_ends_in_an_internal_error(tmp_path_factory, answer, plural):
    server = FakeK8sServer(HEALTHY, knobs=Knobs(answers={plural: answer})).start()
    try:
        kubeconfig = tmp_path_factory.mktemp("kubeconfig") / "config"
        kubeconfig.write_text(kubeconfig_yaml(server.url))
        result = CliRunner().invoke(app, ["live", "--kubeconfig", str(kubeconfig), "--namespace", NS,
                                          "--format", "json", "--timeout", "5"])
    finally:
        server.stop()
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
