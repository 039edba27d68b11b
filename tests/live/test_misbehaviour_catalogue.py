"""The broken answers of the misbehaviour catalogue one at a time, each with exactly what the audit makes of it:
answers cut short on the wire are a one-line error (exit 2); answers that are not a list of the kind make the
kind unreadable (exit 2, the rest audited); full Secrets to a metadata-only request change nothing.
(Answers that are JSON but not the list asked for are in test_misbehaving_server; Retry-After in
test_retry_after.)"""

from __future__ import annotations

import json
import re

import pytest

from tbyte_policy.reporters import FORMATS

from .cluster_fixtures import PLANTED_SECRET, PLANTED_USER, cluster
from .misbehaviour import (
    PLANTED_FORMS,
    ChunkedCut,
    FullSecrets,
    HtmlPage,
    ItemMetadata,
    JunkItems,
    MalformedJson,
    Refused,
    ResetMidBody,
    ServerError,
    StatusIn200,
    TruncatedBody,
    WrongKindItem,
    WrongListKind,
)
from .test_misbehaving_server import MALFORMED, live, unreadable

HEALTHY = cluster("production").objects
PODS = sum(obj["kind"] == "Pod" for obj in HEALTHY)

CUT = {
    "content-length larger than the body": (TruncatedBody(missing=100),
                                            r"Connection broken: IncompleteRead\(\d+ bytes read, 100 more expected\)"),
    "chunked body without its last chunk": (ChunkedCut(), "Response ended prematurely"),
    "reset in the middle of the body": (ResetMidBody(), re.escape("Connection broken: ConnectionResetError(104, "
                                                                  "'Connection reset by peer')")),
}


@pytest.mark.parametrize("name", sorted(CUT))
def test_an_answer_cut_short_is_a_one_line_error(k8s_server, name):
    misbehaviour, detail = CUT[name]
    server = k8s_server(HEALTHY, misbehave={"pods": misbehaviour})
    result = live(server, "--format", "json")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert re.fullmatch(f"tbyte-policy: the connection to the API server at {re.escape(server.url)} broke while "
                        f"listing Pod: {detail}\n", result.stderr), result.stderr


@pytest.mark.parametrize(("misbehaviour", "message"), [
    (HtmlPage(status=500), "the API server failed (500 error) listing Pod"),
    (HtmlPage(status=502), "the API server failed (502 error) listing Pod"),
    (ServerError(status=502, with_status=False), "the API server failed (502 error) listing Pod"),
    (ServerError(status=504), "the API server failed (504 Timeout) listing Pod: etcdserver: request timed out"),
])
def test_a_5xx_html_page_or_text_is_a_one_line_error(k8s_server, misbehaviour, message):
    server = k8s_server(HEALTHY, misbehave={"pods": misbehaviour})
    result = live(server, "--format", "json")
    assert result.exit_code == 2, result.output
    assert result.stderr == f"tbyte-policy: {message}\n"


@pytest.mark.parametrize(("misbehaviour", "problem"), [
    (JunkItems(), "item 1 is null, not an object"),
    (ItemMetadata(broken="null"), f"the metadata of item {PODS + 1} is null, not an object"),
    *[(ItemMetadata(broken=broken), f"item {PODS + 1} has no metadata.name")
      for broken in ("name an integer", "name null", "name a list", "name empty")],
])
def test_items_that_are_not_objects_with_a_name_make_the_kind_unreadable(k8s_server, misbehaviour, problem):
    server = k8s_server(HEALTHY, misbehave={"pods": misbehaviour})
    result = live(server, "--format", "json")
    assert result.exit_code == 2, result.output
    assert unreadable(result) == {"Pod": MALFORMED + problem}
    assert json.loads(result.stdout)["findings"] == []


def test_unreadable_workloads_and_pods_leave_every_budget_unjudged(k8s_server):
    """Found by the live fuzzing: with neither Deployments nor Pods read, PDB003 reported the budgets as
    selecting no workload's pods."""
    server = k8s_server(HEALTHY, misbehave={"pods": MalformedJson(), "deployments": MalformedJson()})
    result = live(server, "--format", "json")
    assert result.exit_code == 2, result.output
    assert unreadable(result) == {"Deployment": MALFORMED + "not JSON (at character 101)",
                                  "Pod": MALFORMED + "not JSON (at character 94)"}
    assert json.loads(result.stdout)["findings"] == []


def test_only_the_nth_request_misbehaves(k8s_server):
    """Read in chunks of 2, the pods' second page is the broken one: items 1 and 2 of that page were fine."""
    server = k8s_server(HEALTHY, misbehave={"pods": JunkItems(nth=2)})
    result = live(server, "--format", "json", "--chunk-size", "2")
    assert result.exit_code == 2, result.output
    assert unreadable(result) == {"Pod": MALFORMED + "item 1 is null, not an object"}
    assert [type(request.misbehaviour) for request in server.requests_for("pods")] == [type(None), JunkItems]


@pytest.mark.parametrize("envelope", ["SecretList", "PartialObjectMetadataList"])
def test_full_secrets_to_a_metadata_only_request_change_nothing(k8s_server, tmp_path, envelope):
    """The server ignores the Accept header and sends Secrets whole, a planted value in data, stringData and
    the kubectl apply annotation: the report is the healthy one in every format, and holds no value."""
    reports = {}
    for name, misbehave in (("healthy", {}), ("full", {"secrets": FullSecrets(envelope=envelope)})):
        server = k8s_server(HEALTHY, misbehave=misbehave)
        files = {fmt: tmp_path / f"{name}.{fmt}" for fmt in FORMATS}
        result = live(server, "--format", "json", *(arg for fmt, file in files.items()
                                                    for arg in ("--report", f"{fmt}={file}")))
        assert result.exit_code == 0, result.output
        assert [type(request.misbehaviour) for request in server.requests_for("secrets")] == \
               [FullSecrets if misbehave else type(None)]
        reports[name] = {fmt: file.read_text() for fmt, file in files.items()}
        reports[name]["stdout"] = result.stdout
        for text in (*reports[name].values(), result.stderr):
            assert not any(value in text for value in (*PLANTED_FORMS, PLANTED_SECRET, PLANTED_USER))
    assert json.loads(reports["full"]["json"]) == json.loads(reports["healthy"]["json"])
    assert reports["full"]["table"] == reports["healthy"]["table"]


ODD = "line one\nline two\x1b[31m" + "K" * 400  # what a kind, name or message of a malformed answer may be


def quoted(limit: int) -> str:
    """ODD as a message quotes it: one line, the escape character replaced, cut at ``limit``."""
    return ("line one line two\ufffd[31m" + "K" * limit)[: limit - 1] + "…"


@pytest.mark.parametrize(("misbehaviour", "problem"), [
    (WrongKindItem(other=ODD), f"item {PODS + 1} (intruder) is a {quoted(60)}, not a Pod"),
    (WrongKindItem(name=ODD), f"item {PODS + 1} ({quoted(60)}) is a ConfigMap, not a Pod"),
    (WrongListKind(kind=ODD), f"a {quoted(60)}, not a PodList"),
    (StatusIn200(message=ODD), f"a Status (Failure, InternalError, {quoted(200)}), not a PodList"),
])
def test_text_of_a_malformed_answer_is_quoted_on_one_line_and_cut(k8s_server, misbehaviour, problem):
    """Found by the live fuzzing: a kind, a name or a Status message of a malformed answer was quoted whole in
    its reason, line breaks and escape sequences (which drive a terminal) included."""
    server = k8s_server(HEALTHY, misbehave={"pods": misbehaviour})
    result = live(server, "--format", "json")
    assert result.exit_code == 2, result.output
    assert unreadable(result) == {"Pod": MALFORMED + problem}


def test_text_of_an_error_status_is_quoted_on_one_line_and_cut(k8s_server):
    server = k8s_server(HEALTHY, misbehave={"pods": Refused(status=403, message=ODD),
                                            "services": Refused(status=422, message="x\ny")})
    result = live(server, "--format", "json")
    assert result.exit_code == 2, result.output
    assert unreadable(result) == {"Pod": f"forbidden: {quoted(200)}", "Service": "HTTP 422 Unknown: x y"}


def test_text_of_a_5xx_status_is_quoted_on_one_line_and_cut(k8s_server):
    """Found by the live fuzzing in CI: with a retry note too (asked to wait past --timeout), a 300-character
    message made the sentence longer than two terminal rows; the message is cut at 200."""
    server = k8s_server(HEALTHY, misbehave={"pods": ServerError(status=503, message=ODD, reason=ODD,
                                                                retry_after="999999")})
    result = live(server, "--format", "json", "--timeout", "3")
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"tbyte-policy: the API server failed (503 {quoted(60)}) listing Pod (asked to retry in "
                             f"999999 s, past the request's --timeout of 3 s): {quoted(200)}\n")
    assert len(result.stderr) < 500
