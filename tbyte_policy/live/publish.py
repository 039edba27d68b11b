"""``tbyte-policy live --publish``: the audit's PolicyReport, applied to the namespace it audited.

The one write the live mode ever sends. The report is the ``--format policyreport`` document
(``reporters/policyreport.py``) placed in the audited namespace, with what the Policy Reporter UI and
other readers of ``wgpolicyk8s.io/v1alpha2`` reports use besides: the report's ``scope`` (the Namespace),
each resource's ``uid`` and each result's ``timestamp``. It is named ``tbyte-policy``, so each run
replaces the previous run's results instead of adding a report.

Two requests: a GET of the report, then a server-side apply (PATCH, ``application/apply-patch+yaml``,
field manager ``tbyte-policy``) that creates or updates it. The apply is forced — fields someone else
changed are taken back — only when the report is tbyte-policy's own (labelled managed-by tbyte-policy);
a report of that name that another tool made is never overwritten: the apply is then unforced and the
API server refuses it with a conflict. RBAC: get and patch on that one report, create on policyreports
(``tbyte-policy live rbac --publish``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from tbyte_policy.findings import Report
from tbyte_policy.model import mapping, text
from tbyte_policy.reporters.policyreport import API_VERSION, REPORT_NAME, as_document
from tbyte_policy.sources.cluster_listing import STATUS_MESSAGE_CHARS, MalformedAnswer, named_object, one_line
from tbyte_policy.sources.cluster_transport import Api, Deadline, LiveError, Reply

FIELD_MANAGER = "tbyte-policy"
APPLY_PATCH = "application/apply-patch+yaml"
MANAGED_BY = ("app.kubernetes.io/managed-by", "tbyte-policy")
# etcd stores objects of up to 1.5 MiB by default; the API server's managedFields and a margin take the rest.
MAX_REPORT_BYTES = 1_000_000
_RESULT_ORDER = {"error": 0, "fail": 1, "warn": 2, "skip": 3, "pass": 4}
_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def report_path(namespace: str) -> str:
    return f"/apis/{API_VERSION}/namespaces/{quote(namespace, safe='')}/policyreports/{REPORT_NAME}"


def published_document(report: Report, namespace: str, objects: Iterable[dict], now: float,
                       max_bytes: int = MAX_REPORT_BYTES) -> dict[str, Any]:
    """The PolicyReport to apply: ``--format policyreport``'s document in ``namespace``, with its scope, the
    uids of the resources (from the ``objects`` read) and the results' timestamps. When the results would
    make the object larger than ``max_bytes``, the most important ones are kept (errors, then failures by
    severity) and one more ``error`` result says how many were left out."""
    document = as_document(report)
    uids = {(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]): uid for obj in objects
            if isinstance(uid := obj["metadata"].get("uid"), str)}
    scope = {"apiVersion": "v1", "kind": "Namespace", "name": namespace}
    if uid := uids.get(("Namespace", None, namespace)):
        scope["uid"] = uid
    timestamp = {"seconds": int(now), "nanos": 0}
    results = []
    for result in document["results"]:
        for resource in result.get("resources", ()):
            if uid := uids.get((resource["kind"], resource.get("namespace"), resource["name"])):
                resource["uid"] = uid
        results.append({**result, "timestamp": timestamp})
    envelope = {"apiVersion": document["apiVersion"], "kind": document["kind"],
                "metadata": {**document["metadata"], "namespace": namespace}, "scope": scope}
    results = _within(results, len(json.dumps(envelope)) + 200, max_bytes, timestamp)
    summary = dict.fromkeys(document["summary"], 0)
    for result in results:
        summary[result["result"]] += 1
    return {**envelope, "summary": summary, "results": results}


def _within(results: list[dict], base: int, max_bytes: int, timestamp: dict) -> list[dict]:
    sizes = [len(json.dumps(result)) + 1 for result in results]
    if base + sum(sizes) <= max_bytes:
        return results
    ranked = sorted(range(len(results)), key=lambda index: (_RESULT_ORDER.get(results[index]["result"], 5),
                                                            _SEVERITY_ORDER.get(str(results[index].get("severity")), 5),
                                                            index))
    budget, kept = max_bytes - base - 400, set()  # 400: the note below
    for index in ranked:
        if sizes[index] > budget:
            break
        budget -= sizes[index]
        kept.add(index)
    left_out = len(results) - len(kept)
    note = {"policy": "input", "result": "error", "source": "tbyte-policy", "timestamp": timestamp,
            "message": f"{left_out} more results are not in this PolicyReport: with them it would be larger than "
                       f"{max_bytes:,} bytes, more than the API server stores; the audit's own report has them all"}
    return [results[index] for index in sorted(kept)] + [note]


def publish(api: Api, report: Report, namespace: str, objects: Iterable[dict]) -> str:
    """Create or update the namespace's PolicyReport; -> what was done, in one line. Raises LiveError."""
    where = f"PolicyReport {namespace}/{REPORT_NAME}"
    path = report_path(namespace)
    try:
        current = api.get_document(path, f"reading {where}")
        if current.status == 200:
            # Checked: anything else would be taken for another tool's report.
            found = named_object(current.body, "PolicyReport", REPORT_NAME, where)
            ours = _labels(found).get(MANAGED_BY[0]) == MANAGED_BY[1]
        elif current.status == 404 and _names_the_report(current.body):
            ours = True  # there is none yet: the apply creates it
        else:
            raise _refused(current, where, namespace)
        document = published_document(report, namespace, objects, time.time())
        body = json.dumps(document, separators=(",", ":")).encode()
        query = [("fieldManager", FIELD_MANAGER), *([("force", "true")] if ours else [])]
        applied = api.send("PATCH", path, f"applying {where}", body, APPLY_PATCH, query)
    except MalformedAnswer as exc:
        raise LiveError(f"cannot publish {where}: malformed answer from the API server: {exc}") from None
    if applied.status not in (200, 201):
        if applied.status == 409 and not ours:
            raise LiveError(f"cannot publish {where}: a PolicyReport of that name exists and is not tbyte-policy's "
                            f"(no label {MANAGED_BY[0]}={MANAGED_BY[1]}), and the API server refused to take its "
                            f"fields over (409 Conflict{_said(applied.body)}); delete or rename it")
        raise _refused(applied, where, namespace)
    done = "created" if applied.status == 201 else "updated"
    return f"{where} {done}: {len(document['results'])} results ({_counts(document['summary'])})"


def _labels(obj: Any) -> dict:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return labels if isinstance(labels, dict) else {}


def _names_the_report(body: Any) -> bool:
    """Whether a 404 is about the report (which does not exist yet), not about its kind (no CRD)."""
    details = body.get("details") if isinstance(body, dict) else None
    return isinstance(details, dict) and details.get("name") == REPORT_NAME


def _said(body: Any) -> str:
    message = body.get("message") if isinstance(body, dict) else None
    return f": {one_line(message, STATUS_MESSAGE_CHARS)}" if isinstance(message, str) and message else ""


def _refused(reply: Reply, where: str, namespace: str) -> LiveError:
    status, body = reply.status, reply.body
    if status == 404:
        return LiveError(f"cannot publish {where}: the API server does not serve {API_VERSION} PolicyReports (its "
                         "CRD is not installed; Kyverno and the Policy Reporter install it)")
    if status == 403:
        return LiveError(f"cannot publish {where}: forbidden{_said(body)} (the audit's account needs get, create "
                         f"and patch on policyreports: tbyte-policy live rbac --namespace {namespace} --publish)")
    if status == 401:
        return LiveError(f"cannot publish {where}: unauthorized (401): check the credentials")
    if status == 409:
        return LiveError(f"cannot publish {where}: conflict (409){_said(body)}")
    reason = one_line(text(mapping(body).get("reason")), 60)
    not_retried = f" ({reply.not_retried})" if reply.not_retried else ""
    return LiveError(f"cannot publish {where}: the API server answered {status}{' ' + reason if reason else ''}"
                     f"{not_retried}{_said(body)}")


def _counts(summary: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in summary.items() if count) or "none"


def open_api(kubeconfig: str | None, context: str | None, timeout: float, deadline: Deadline | None,
             verbose: bool) -> Api:
    from tbyte_policy.sources.cluster import MAX_WORKERS, _load_configuration

    configuration, _ = _load_configuration(kubeconfig, context)
    return Api(configuration, timeout, deadline, verbose, MAX_WORKERS)
