"""`tbyte-policy live --publish`: the audit's PolicyReport, created then updated by server-side apply, and
never any other write; every way it can fail is a one-line error and exit 2, the audit's own report written."""

from __future__ import annotations

import base64
import json
import time

import jsonschema
import pytest
import yaml
from test_reporters import policyreport_schema
from typer.testing import CliRunner

from tbyte_policy.cli import app
from tbyte_policy.findings import Report
from tbyte_policy.live.publish import MAX_REPORT_BYTES, published_document
from tbyte_policy.live.rbac import rbac_objects

from .cluster_fixtures import BROKEN, NS, broken, cluster
from .k8s_api_server import APPLY_PATCH, CRD_GROUPS
from .misbehaviour import EmptyBody, HtmlPage, ItemMetadata, JunkItems

REPORT_PATH = f"/apis/wgpolicyk8s.io/v1alpha2/namespaces/{NS}/policyreports/tbyte-policy"
WHERE = f"PolicyReport {NS}/tbyte-policy"
CRASH_LOOP = broken("crash-loop").objects
SCHEMA = policyreport_schema()


def live(server, *args: str, timeout: str = "5"):
    result = CliRunner().invoke(app, ["live", "--kubeconfig", server.kubeconfig_path, "--context", "test",
                                      "--namespace", NS, "--timeout", timeout, "--publish", *args])
    assert "Traceback" not in result.output
    return result


def writes(server) -> list:
    return [request for request in server.requests if request.method != "GET"]


def assert_only_the_report_was_written(server, applies: int) -> None:
    """Whatever happened: no write but server-side applies of the one report (and no read of it but GETs)."""
    assert [(request.method, request.path, request.content_type) for request in writes(server)] == \
           [("PATCH", REPORT_PATH, APPLY_PATCH)] * applies
    assert {request.method for request in server.requests} <= {"GET", "PATCH"}


def findings_of(document: dict) -> set[tuple[str, str]]:
    return {(finding["rule_id"], "/".join(finding["resource"][key] for key in ("kind", "namespace", "name")))
            for finding in document["findings"]}


def test_publish_creates_then_updates_one_schema_valid_report(k8s_server):
    server = k8s_server(CRASH_LOOP)
    first = live(server, "--format", "json")
    assert first.exit_code == 1, first.output  # the findings' exit code: publishing succeeded
    assert first.stderr == f"tbyte-policy: {WHERE} created: 3 results (3 fail)\n"
    (apply,) = writes(server)
    assert apply.query == {"fieldManager": "tbyte-policy", "force": "true"}
    sent = json.loads(apply.body)
    jsonschema.Draft7Validator(SCHEMA).validate(sent)
    assert sent["metadata"] == {"name": "tbyte-policy", "namespace": NS,
                                "labels": {"app.kubernetes.io/managed-by": "tbyte-policy"},
                                "annotations": {"tbyte-policy.io/version": "0.1.0"}}
    namespace_uid = next(o["metadata"]["uid"] for o in CRASH_LOOP if o["kind"] == "Namespace")
    assert sent["scope"] == {"apiVersion": "v1", "kind": "Namespace", "name": NS, "uid": namespace_uid}
    assert sent["summary"] == {"pass": 0, "fail": 3, "warn": 0, "error": 0, "skip": 0}
    published = {(result["rule"], "/".join(result["resources"][0][key] for key in ("kind", "namespace", "name")))
                 for result in sent["results"]}
    assert published == findings_of(json.loads(first.stdout)) == BROKEN["crash-loop"].expected
    uids = {(o["kind"], o["metadata"]["name"]): o["metadata"]["uid"] for o in CRASH_LOOP}
    for result in sent["results"]:
        (resource,) = result["resources"]
        assert resource["uid"] == uids[(resource["kind"], resource["name"])]
        assert abs(result["timestamp"]["seconds"] - time.time()) < 60 and result["timestamp"]["nanos"] == 0
    stored = server.stored("policyreports", NS, "tbyte-policy")
    assert {key: stored[key] for key in ("scope", "summary", "results")} == \
           {key: sent[key] for key in ("scope", "summary", "results")}

    second = live(server, "--format", "json")
    assert second.exit_code == 1 and second.stderr == f"tbyte-policy: {WHERE} updated: 3 results (3 fail)\n"
    assert_only_the_report_was_written(server, applies=2)
    assert len(server.store.objects[server.store.by_path[("wgpolicyk8s.io", "v1alpha2", "policyreports")]]) == 1
    updated = server.stored("policyreports", NS, "tbyte-policy")
    assert updated["metadata"]["uid"] == stored["metadata"]["uid"]
    assert updated["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"]
    # GET, apply; GET, apply
    assert [request.method for request in server.requests_for("policyreports")] == ["GET", "PATCH"] * 2


def test_the_published_results_are_those_of_format_policyreport(k8s_server):
    server = k8s_server(broken("container-config-error").objects, errors={"secrets": 403})
    result = live(server, "--format", "policyreport")
    assert result.exit_code == 2, result.output  # Secret unreadable
    printed = yaml.safe_load(result.stdout)
    sent = json.loads(writes(server)[0].body)
    for published in sent["results"]:
        for resource in published.get("resources", ()):
            del resource["uid"]
        del published["timestamp"]
    assert sent["results"] == printed["results"] and sent["summary"] == printed["summary"]
    assert any(entry["result"] == "error" and "could not read Secret" in entry["message"] for entry in sent["results"])
    jsonschema.Draft7Validator(SCHEMA).validate(sent)


def test_a_healthy_namespace_publishes_an_empty_report(k8s_server):
    server = k8s_server(cluster().objects)
    result = live(server, "--quiet")
    assert result.exit_code == 0 and result.output == ""
    stored = server.stored("policyreports", NS, "tbyte-policy")
    assert stored["results"] == [] and stored["summary"] == dict.fromkeys(("pass", "fail", "warn", "error", "skip"), 0)


# --- failures: one line, exit 2, the audit's own report still written ---

def failed(server, tmp_path, message: str, applies: int) -> None:
    report_file = tmp_path / "report.json"
    result = live(server, "--format", "json", "--report", f"sarif={tmp_path / 'report.sarif'}",
                  "--output", str(report_file))
    assert result.exit_code == 2, result.output
    assert result.stderr == f"tbyte-policy: {message}\n"
    assert findings_of(json.loads(report_file.read_text())) == BROKEN["crash-loop"].expected
    assert json.loads((tmp_path / "report.sarif").read_text())["runs"][0]["results"]
    assert_only_the_report_was_written(server, applies)


def test_missing_crd(k8s_server, tmp_path):
    server = k8s_server(CRASH_LOOP, installed_crds=[group for group in CRD_GROUPS if group != "wgpolicyk8s.io"])
    failed(server, tmp_path, f"cannot publish {WHERE}: the API server does not serve wgpolicyk8s.io/v1alpha2 "
                             "PolicyReports (its CRD is not installed; Kyverno and the Policy Reporter install it)", 0)


FORBIDDEN = (f'forbidden: policyreports is forbidden: User "system:serviceaccount:audit:tbyte" cannot {{verb}} '
             f'resource "policyreports" in API group "" in the namespace "{NS}" (the audit\'s account needs get, '
             f"create and patch on policyreports: tbyte-policy live rbac --namespace {NS} --publish)")


def test_forbidden_to_read_the_report(k8s_server, tmp_path):
    server = k8s_server(CRASH_LOOP, errors={"policyreports": 403})
    failed(server, tmp_path, f"cannot publish {WHERE}: {FORBIDDEN.format(verb='get')}", 0)


def test_forbidden_to_write_the_report(k8s_server, tmp_path):
    server = k8s_server(CRASH_LOOP, write_errors={"policyreports": 403})
    failed(server, tmp_path, f"cannot publish {WHERE}: {FORBIDDEN.format(verb='patch')}", 1)
    assert server.stored("policyreports", NS, "tbyte-policy") is None


def foreign_report(labels: dict) -> dict:
    return {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
            "metadata": {"name": "tbyte-policy", "namespace": NS, "labels": labels,
                         "managedFields": [{"manager": "kyverno", "operation": "Update", "fieldsType": "FieldsV1",
                                            "fieldsV1": {}}]},
            "summary": {"pass": 7}, "results": []}


def test_a_report_of_that_name_made_by_another_tool_is_never_overwritten(k8s_server, tmp_path):
    server = k8s_server([*CRASH_LOOP, foreign_report({"app.kubernetes.io/managed-by": "kyverno"})])
    failed(server, tmp_path, f"cannot publish {WHERE}: a PolicyReport of that name exists and is not tbyte-policy's "
                             "(no label app.kubernetes.io/managed-by=tbyte-policy), and the API server refused to "
                             "take its fields over (409 Conflict: Apply failed with 1 conflict(s): fields managed "
                             "by kyverno); delete or rename it", 1)
    (apply,) = writes(server)
    assert apply.query == {"fieldManager": "tbyte-policy"}  # not forced
    assert server.stored("policyreports", NS, "tbyte-policy")["summary"] == {"pass": 7}


def test_our_report_edited_by_someone_is_taken_back(k8s_server):
    server = k8s_server([*CRASH_LOOP, foreign_report({"app.kubernetes.io/managed-by": "tbyte-policy"})])
    result = live(server, "--quiet")
    assert result.exit_code == 1, result.output
    (apply,) = writes(server)
    assert apply.query == {"fieldManager": "tbyte-policy", "force": "true"}
    stored = server.stored("policyreports", NS, "tbyte-policy")
    assert stored["summary"]["fail"] == 3 and [m["manager"] for m in stored["metadata"]["managedFields"]] == \
           ["tbyte-policy"]


def test_a_conflict_reported_by_the_server(k8s_server, tmp_path):
    server = k8s_server(CRASH_LOOP, write_errors={"policyreports": 409})
    failed(server, tmp_path, f"cannot publish {WHERE}: conflict (409): injected failure (409) for policyreports", 1)


@pytest.mark.parametrize(("misbehaviour", "problem"), [
    (HtmlPage(status=200), "not JSON"),
    (EmptyBody(), "not JSON"),
    (JunkItems(), "a PolicyReportList, not a PolicyReport"),
    (ItemMetadata(broken="null"), "a PolicyReportList, not a PolicyReport"),
])
def test_a_malformed_answer_to_reading_the_report_writes_nothing(k8s_server, tmp_path, misbehaviour, problem):
    """Found by the live fuzzing: a 200 that is not the report was taken for another tool's report, and the
    unforced apply went ahead."""
    server = k8s_server(CRASH_LOOP, misbehave={"policyreports": misbehaviour})
    failed(server, tmp_path, f"cannot publish {WHERE}: malformed answer from the API server: {problem}", 0)


def test_a_report_of_another_name_is_a_malformed_answer(k8s_server, tmp_path):
    server = k8s_server(CRASH_LOOP, answers={"policyreports": {**foreign_report({}), "metadata": {"name": "other"}}})
    failed(server, tmp_path, f"cannot publish {WHERE}: malformed answer from the API server: not the PolicyReport "
                             f"{NS}/tbyte-policy (its metadata names another)", 0)


def test_a_report_that_trickles_in_is_bounded_by_the_timeout(k8s_server, tmp_path):
    server = k8s_server(CRASH_LOOP, trickle_body={"policyreports": 25.0})
    started = time.monotonic()
    report_file = tmp_path / "report.json"
    result = live(server, "--format", "json", "--output", str(report_file), timeout="1")
    assert time.monotonic() - started < 5
    assert result.exit_code == 2
    assert result.stderr == (f"tbyte-policy: the API server did not answer within 1 s ({server.url}, reading {WHERE}; "
                             "--timeout bounds each request, its answer included)\n")
    assert findings_of(json.loads(report_file.read_text())) == BROKEN["crash-loop"].expected
    assert writes(server) == []


def test_publish_needs_one_namespace(k8s_server):
    server = k8s_server(CRASH_LOOP)
    result = CliRunner().invoke(app, ["live", "--kubeconfig", server.kubeconfig_path, "--all-namespaces",
                                      "--publish"])
    assert result.exit_code == 2
    assert result.stderr == ("tbyte-policy: --publish writes the PolicyReport of one namespace: it cannot be used "
                             "with --all-namespaces\n")
    assert server.requests == []


def test_without_publish_nothing_is_written(k8s_server):
    server = k8s_server(CRASH_LOOP)
    result = CliRunner().invoke(app, ["live", "--kubeconfig", server.kubeconfig_path, "--namespace", NS])
    assert result.exit_code == 1
    assert writes(server) == [] and server.requests_for("policyreports") == []


# --- the document ---

def test_a_report_too_large_for_the_api_server_keeps_the_most_important_results():
    from tbyte_policy.findings import Finding, Location, ReportError, ResourceId

    findings = [Finding(rule_id=f"RUL{index:03}", rule_name=f"rule-{index}", family="runtime",
                        severity=("low", "critical", "medium")[index % 3], message="m" * 200,
                        resource=ResourceId("apps/v1", "Deployment", f"app-{index}", NS), container=None,
                        location=Location(None, None, None, "/spec"), related=[], remediation="")
                for index in range(300)]
    report = Report(tool_version="0.1.0", rules=[], findings=findings, errors=[ReportError(None, None, "broken")],
                    unreadable_kinds={"Secret": "forbidden"}, mode="live")
    whole = published_document(report, NS, [], 0)
    assert len(whole["results"]) == 302 and len(json.dumps(whole)) < MAX_REPORT_BYTES
    small = published_document(report, NS, [], 0, max_bytes=40_000)
    assert len(json.dumps(small)) <= 40_000
    jsonschema.Draft7Validator(SCHEMA).validate(small)
    *kept, note = small["results"]
    # the input errors and the most severe findings are kept, in the order of the whole report
    assert [entry["result"] for entry in kept[-2:]] == ["error", "error"]
    assert {entry["severity"] for entry in kept[:-2]} == {"critical"}
    assert kept[:-2] == [entry for entry in whole["results"] if entry.get("severity") == "critical"][:len(kept) - 2]
    assert note["message"] == (f"{302 - len(kept)} more results are not in this PolicyReport: with them it would be "
                               "larger than 40,000 bytes, more than the API server stores; the audit's own report "
                               "has them all")
    assert small["summary"] == {"pass": 0, "fail": len(kept) - 2, "warn": 0, "error": 3, "skip": 0}


# --- RBAC ---

def _grants(documents: list[dict]) -> set[tuple]:
    return {(doc["kind"], doc["metadata"].get("namespace"), group, resource, verb, tuple(rule.get("resourceNames", ())))
            for doc in documents if doc["kind"] in ("Role", "ClusterRole")
            for rule in doc["rules"] for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}


def test_rbac_publish_adds_exactly_get_create_patch_on_policyreports():
    added = _grants(rbac_objects(namespace=NS, publish=True)) - _grants(rbac_objects(namespace=NS))
    assert added == {("Role", NS, "wgpolicyk8s.io", "policyreports", "get", ("tbyte-policy",)),
                     ("Role", NS, "wgpolicyk8s.io", "policyreports", "patch", ("tbyte-policy",)),
                     ("Role", NS, "wgpolicyk8s.io", "policyreports", "create", ())}
    assert _grants(rbac_objects(namespace=NS)) <= _grants(rbac_objects(namespace=NS, publish=True))
    bindings = [doc for doc in rbac_objects(namespace=NS, publish=True) if doc["metadata"]["name"].endswith("-publish")]
    assert [(doc["kind"], doc["metadata"]["namespace"]) for doc in bindings] == [("Role", NS), ("RoleBinding", NS)]


def test_live_rbac_publish_command():
    result = CliRunner().invoke(app, ["live", "rbac", "--namespace", NS, "--publish"])
    assert result.exit_code == 0
    assert list(yaml.safe_load_all(result.stdout)) == rbac_objects(namespace=NS, publish=True)
    refused = CliRunner().invoke(app, ["live", "rbac", "--publish"])
    assert refused.exit_code == 2
    assert refused.stderr == ("tbyte-policy: --publish writes the PolicyReport of one namespace: give it with "
                              "--namespace\n")


@pytest.mark.parametrize("first_run", [True, False])
def test_rbac_grants_exactly_the_requests_publishing_makes(k8s_server, first_run):
    objects = CRASH_LOOP if first_run else [*CRASH_LOOP, foreign_report({"app.kubernetes.io/managed-by":
                                                                          "tbyte-policy"})]
    server = k8s_server(objects)
    assert live(server, "--quiet").exit_code == 1
    grants = {(verb, names) for _, _, group, resource, verb, names in _grants(rbac_objects(namespace=NS, publish=True))
              if (group, resource) == ("wgpolicyk8s.io", "policyreports")}
    # A GET of the report by name; an apply, which creates it the first time (the API server then asks create too).
    needed = {("get", ("tbyte-policy",)), ("patch", ("tbyte-policy",))} | ({("create", ())} if first_run else set())
    assert {(request.method, request.path) for request in server.requests_for("policyreports")} == \
           {("GET", REPORT_PATH), ("PATCH", REPORT_PATH)}
    assert needed <= grants and grants - needed <= {("create", ())}


def test_no_secret_value_is_published(k8s_server):
    from .cluster_fixtures import PLANTED_CONFIG, PLANTED_SECRET, PLANTED_USER

    server = k8s_server(broken("container-config-error").objects, leaky_metadata=True)
    result = live(server, "--quiet")
    assert result.exit_code == 1, result.output
    (apply,) = writes(server)
    for value in (PLANTED_SECRET, PLANTED_USER, PLANTED_CONFIG):
        assert value.encode() not in apply.body and base64.b64encode(value.encode()) not in apply.body
    assert json.loads(apply.body)["summary"]["fail"] == len(BROKEN["container-config-error"].expected)
