"""The fuzzing campaign of ``live`` (issue 16): a test API server that misbehaves, the real client, the real CLI.

Each example draws a namespace (healthy or broken in a known way), a few of the resources the audit reads
(lists, the Namespace, a CRD group's discovery, the PolicyReport ``--publish`` writes) and for each one or
two misbehaviours of the catalogue (``tests/live/misbehaviour.py``), each on every request or on the Nth
only; then runs ``tbyte-policy live`` once, writing every format. What the audit must make of each
misbehaviour is the catalogue's ``effect``, applied to the requests the server actually answered with it
(its log), so the expectation is exact whatever the timing:

- exit 0, 1 or 2, never 3; no traceback; every format renders (JSON, SARIF and PolicyReport parse, JUnit is
  XML, HTML is a page); the JSON report keeps its contract, ``unreadable_kinds`` included;
- no value of a Secret ever appears in any output (the stored ones, and those a misbehaving server plants
  in full Secrets it sends to a metadata-only request);
- a kind that cannot be read is in ``unreadable_kinds`` (and the text report's ``could not read KIND``)
  with the reason of its class, the run exits 2, and no finding appears that the healthy namespace does not
  have: the rules never take an unreadable kind for empty; full Secrets change nothing at all;
- a fatal answer (a cut body, a reset, a 5xx, a connection that keeps ending before any answer) is one line
  on stderr naming what was being read, exit 2;
- the run ends: ``--timeout`` and ``--deadline`` bound it (Retry-After included), and a run still going
  after ``RUN_BOUND_SECONDS`` fails the example instead of hanging the suite.
"""

from __future__ import annotations

import importlib.util
import json
import re
import tempfile
import threading
import xml.etree.ElementTree as ElementTree
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tbyte_policy.reporters import FORMATS

if importlib.util.find_spec("kubernetes") is None:
    pytest.skip("the live fuzzing needs the `live` extra (pip install -e '.[test,live]'): kubernetes is not "
                "installed", allow_module_level=True)

from live import misbehaviour as mb
from live.cluster_fixtures import NS, PLANTED_CONFIG, PLANTED_SECRET, PLANTED_USER, broken, cluster
from live.k8s_api_server import FakeK8sServer, Knobs, kubeconfig_yaml
from typer.testing import CliRunner

from tbyte_policy.cli import app
from tbyte_policy.sources.cluster import ALL_KINDS, KINDS
from tbyte_policy.sources.cluster_transport import MAX_ATTEMPTS

pytestmark = pytest.mark.fuzz

TIMEOUT, DEADLINE = 3, 20  # the command's own bounds (--timeout, --deadline)
RUN_BOUND_SECONDS = 60  # far past both: a run this long is stuck, not slow
NAMESPACES = ("production", "no-ready-endpoints", "rollout-paused", "statefulset-down", "bare-pod")
SECRET_VALUES = (PLANTED_SECRET, PLANTED_USER, PLANTED_CONFIG, *mb.PLANTED_FORMS)
MALFORMED = ("malformed answer from the API server: ", "malformed discovery answer from the API server: ")

KIND_OF_PLURAL = {kind.plural: kind.kind for kind in ALL_KINDS}
CRD_GROUPS = sorted({(kind.group, kind.version) for kind in KINDS if kind.crd})
DISCOVERY = {f"/apis/{group}/{version}": [kind.kind for kind in KINDS if (kind.group, kind.version) == (group, version)]
             for group, version in CRD_GROUPS}
PUBLISHED = "policyreports"
# What the run reads, in the order it reads it (the first fatal answer in this order is the one reported): the
# Namespace first (a GET), the CRD groups' discovery, then the lists (with --all-namespaces, Namespaces' first).
READ_ORDER = ["namespaces", *DISCOVERY, *(kind.plural for kind in KINDS)]
READ_ORDER_ALL_NAMESPACES = [*DISCOVERY, "namespaces", *(kind.plural for kind in KINDS)]


@cache
def objects(name: str) -> tuple[dict, ...]:
    return tuple(cluster("production").objects if name == "production" else broken(name).objects)


# ---------------------------------------------------------------- the strategies

# Text a server controls and a message might quote: long, multi-line, control characters, odd unicode.
odd_text = st.one_of(st.text(max_size=20), st.text(alphabet="a\n\r\t\x1b\u2028%:,<>&'\"", max_size=20),
                     st.integers(300, 5000).map(lambda n: "K" * n))
KINDS_READ = {*KIND_OF_PLURAL.values(), "PartialObjectMetadata", "PolicyReport"}
LIST_KINDS = {f"{kind}List" for kind in KINDS_READ}
retry_afters = st.sampled_from([None, "0", "0", "date-past", "1", "date-1s", *mb.RETRY_AFTER_TOO_LONG,
                                *mb.RETRY_AFTER_INVALID])
nths = st.sampled_from([None, None, 1, 2, 3])


# Every class of the catalogue, drawn with its parameters (a test holds this to the catalogue).
DRAWN = {
    mb.MalformedJson: lambda nth: st.just(mb.MalformedJson(nth)),
    mb.HtmlPage: lambda nth: st.builds(mb.HtmlPage, st.just(nth), st.sampled_from([200, 500, 502])),
    mb.EmptyBody: lambda nth: st.just(mb.EmptyBody(nth)),
    mb.JunkItems: lambda nth: st.just(mb.JunkItems(nth)),
    mb.ItemMetadata: lambda nth: st.builds(mb.ItemMetadata, st.just(nth), st.sampled_from(sorted(mb.BROKEN_METADATA))),
    mb.WrongKindItem: lambda nth: st.builds(
        mb.WrongKindItem, st.just(nth), st.one_of(st.none(), odd_text.filter(lambda k: k not in KINDS_READ)),
        st.one_of(st.just("intruder"), odd_text.filter(bool))),
    mb.WrongListKind: lambda nth: st.builds(mb.WrongListKind, st.just(nth),
                                            odd_text.filter(lambda k: k not in LIST_KINDS)),
    mb.StatusIn200: lambda nth: st.builds(mb.StatusIn200, st.just(nth), odd_text),
    mb.TooManyRequests: lambda nth: st.builds(mb.TooManyRequests, st.just(nth), retry_afters),
    mb.ServerError: lambda nth: st.builds(mb.ServerError, st.just(nth), retry_afters,
                                          st.sampled_from([500, 502, 503, 504]), st.booleans(), odd_text,
                                          st.one_of(st.none(), odd_text)),
    mb.Refused: lambda nth: st.builds(mb.Refused, st.just(nth), st.sampled_from([400, 403, 409, 422]), odd_text),
    mb.TruncatedBody: lambda nth: st.builds(mb.TruncatedBody, st.just(nth), st.integers(1, 1 << 20)),
    mb.ChunkedCut: lambda nth: st.just(mb.ChunkedCut(nth)),
    mb.ResetMidBody: lambda nth: st.just(mb.ResetMidBody(nth)),
    mb.Dropped: lambda nth: st.builds(mb.Dropped, st.just(nth), st.booleans()),
    mb.FullSecrets: lambda nth: st.builds(mb.FullSecrets, st.just(nth),
                                          st.sampled_from(["SecretList", "PartialObjectMetadataList"])),
}
misbehaviours = nths.flatmap(lambda nth: st.one_of([draw(nth) for draw in DRAWN.values()]))


class Case(NamedTuple):
    namespace: str
    misbehave: dict[str, tuple[mb.Misbehaviour, ...]]
    chunk_size: int
    publish: bool
    all_namespaces: bool = False


@st.composite
def cases(draw) -> Case:
    all_namespaces = draw(st.integers(0, 4)) == 0
    publish = not all_namespaces and draw(st.booleans())
    # secrets twice: the one kind whose full answer is a leak
    targets = draw(st.lists(st.sampled_from([*READ_ORDER, *([PUBLISHED] if publish else []), "secrets"]),
                            min_size=1, max_size=4, unique=True))
    misbehave = {target: tuple(draw(st.lists(misbehaviours, min_size=1, max_size=2))) for target in targets}
    return Case(draw(st.sampled_from(NAMESPACES)), misbehave, draw(st.sampled_from([0, 0, 2])), publish,
                all_namespaces)


# ---------------------------------------------------------------- running it


class Run(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str
    reports: dict[str, str | None]  # format -> the file's text (None: not written)
    requests: list  # the server's log


def run_live(case: Case, work: Path) -> Run:
    server = FakeK8sServer(objects(case.namespace), knobs=Knobs(misbehave=dict(case.misbehave))).start()
    try:
        kubeconfig = work / "kubeconfig"
        kubeconfig.write_text(kubeconfig_yaml(server.url))
        files = {name: work / f"report.{name}" for name in FORMATS}
        args = ["live", "--kubeconfig", str(kubeconfig), *(["-A"] if case.all_namespaces else ["--namespace", NS]),
                "--format", "text", "--no-source",
                "--timeout", str(TIMEOUT), "--deadline", str(DEADLINE), "--chunk-size", str(case.chunk_size),
                *(["--publish"] if case.publish else []),
                *(arg for name, file in files.items() for arg in ("--report", f"{name}={file}"))]
        outcome: list = []
        runner = threading.Thread(target=lambda: outcome.append(CliRunner().invoke(app, args)), daemon=True)
        runner.start()
        runner.join(RUN_BOUND_SECONDS)
        assert not runner.is_alive(), f"the live run did not end within {RUN_BOUND_SECONDS} s"
    finally:
        server.stop()
    (result,) = outcome
    return Run(result.exit_code, result.stdout, result.stderr,
               {name: file.read_text(encoding="utf-8") if file.exists() else None for name, file in files.items()},
               list(server.requests))


# ---------------------------------------------------------------- what each target must come to


def _effect(request) -> str:
    """What the answer to one request must lead to (``normal`` when the server answered it well)."""
    misbehaviour = request.misbehaviour
    if misbehaviour is None:
        return "normal"
    if request.method != "GET" and misbehaviour.effect == "unreadable" and \
            not isinstance(misbehaviour, (mb.TooManyRequests, mb.Refused)):
        return "normal"  # a 200 to a write: it was done, whatever the body says
    if request.method != "GET" and isinstance(misbehaviour, mb.Dropped):
        return "fatal"  # a write is never sent twice
    return misbehaviour.effect


def outcome(requests: list) -> tuple[str, mb.Misbehaviour | None]:
    """(readable | unreadable | fatal, the misbehaviour that decided it) for one target's requests in order:
    the first answer that is unreadable or fatal decides; one the client was told to retry must have been
    asked again, unless it was the last of MAX_ATTEMPTS or its wait would have passed the --timeout (a wait of
    a second, after the first) — then the client gave up on it."""
    told_to_retry = 0
    for request in requests:
        effect = _effect(request)
        if effect in ("unreadable", "fatal"):
            return effect, request.misbehaviour
        told_to_retry = told_to_retry + 1 if effect == "retry" else 0
    if told_to_retry:
        last = requests[-1].misbehaviour
        waits = last.retry_after in ("1", "date-1s")
        assert told_to_retry == MAX_ATTEMPTS or (waits and told_to_retry > 1), \
            f"told to retry ({last}), the client did not ask again ({told_to_retry} attempts)"
        return last.given_up, last
    return "readable", None


def _requests_of(requests: list, target: str) -> list:
    return [r for r in requests if r.resource == target or r.path == target]


def names(target: str) -> list[str]:
    return DISCOVERY.get(target) or [KIND_OF_PLURAL[target]]


def what_is_read(target: str, all_namespaces: bool) -> str:
    """How a one-line error names the request it is about."""
    if target == "namespaces" and not all_namespaces:
        return f"getting namespace {NS}"
    if target in DISCOVERY:
        return f"discovering {target.removeprefix('/apis/')}"
    return f"listing {KIND_OF_PLURAL[target]}"


@cache
def healthy(namespace: str, all_namespaces: bool) -> tuple[int, dict]:
    """The exit code and JSON report of the namespace served well (once per namespace)."""
    run = run_live(Case(namespace, {}, 0, False, all_namespaces), Path(tempfile.mkdtemp(prefix="tbyte-live-fuzz-")))
    assert run.exit_code in (0, 1), run.stdout + run.stderr
    return run.exit_code, json.loads(run.reports["json"])


# ---------------------------------------------------------------- the properties


def check_outputs(run: Run) -> None:
    everything = [run.stdout, run.stderr, *(text for text in run.reports.values() if text is not None)]
    assert run.exit_code in (0, 1, 2), run.stdout + run.stderr
    for text in everything:
        assert "Traceback" not in text and "internal error" not in text, text
        for value in SECRET_VALUES:
            assert value not in text, f"a Secret's value is in the output: {text}"


def check_reports(reports: dict[str, str | None]) -> dict:
    assert None not in reports.values(), f"formats not written: {[k for k, v in reports.items() if v is None]}"
    document = json.loads(reports["json"])
    assert document["version"] == 1 and document["mode"] == "live", document
    assert set(document) <= {"version", "tool", "mode", "summary", "findings", "errors", "warnings",
                             "unreadable_kinds"}
    unreadable = document.get("unreadable_kinds", {})
    assert all(isinstance(k, str) and isinstance(v, str) and one_line(v) for k, v in unreadable.items()), unreadable
    assert isinstance(document["findings"], list) and document["summary"]["findings"] == len(
        [f for f in document["findings"] if not f["suppressed"]])
    json.loads(reports["sarif"])
    ElementTree.fromstring(reports["junit"])
    assert yaml.safe_load(reports["policyreport"])["kind"] == "PolicyReport"
    assert reports["html"].lstrip().lower().startswith("<!doctype html>")
    for name in ("table", "text", "markdown"):
        assert reports[name].strip(), name
    return document


def reason_start(misbehaviour: mb.Misbehaviour) -> str | tuple[str, ...]:
    """How the reason of a kind made unreadable by ``misbehaviour`` starts."""
    if isinstance(misbehaviour, mb.TooManyRequests):
        return "HTTP 429 TooManyRequests"
    if isinstance(misbehaviour, mb.Refused):
        return "forbidden" if misbehaviour.status == 403 else f"HTTP {misbehaviour.status} "
    return MALFORMED


def one_line(message: str) -> bool:
    """A message as a person reads it: one line, of a length that fits a terminal or two."""
    return bool(message) and message.isprintable() and len(message) <= 500


def _findings(document: dict) -> set[tuple]:
    return {(f["rule_id"], f["resource"]["kind"], f["resource"]["name"], f["location"]["pointer"], f["message"])
            for f in document["findings"]}


def check_expectations(case: Case, run: Run) -> None:
    decided = {target: outcome(_requests_of(run.requests, target)) for target in case.misbehave}
    fatal = [target for target in (READ_ORDER_ALL_NAMESPACES if case.all_namespaces else READ_ORDER)
             if decided.get(target, ("",))[0] == "fatal"]
    if fatal:
        assert run.exit_code == 2, run.stdout + run.stderr
        assert run.stdout == "" and set(run.reports.values()) == {None}, run.stdout
        assert run.stderr.startswith("tbyte-policy: ") and run.stderr.endswith("\n"), run.stderr
        assert one_line(run.stderr.removesuffix("\n")), run.stderr
        assert what_is_read(fatal[0], case.all_namespaces) in run.stderr, (fatal[0], run.stderr)
        return
    document = check_reports(run.reports)
    expected = {}
    for target, (effect, misbehaviour) in decided.items():
        if effect == "unreadable" and target != PUBLISHED:
            expected.update(dict.fromkeys(names(target), misbehaviour))
    unreadable = document.get("unreadable_kinds", {})
    assert set(unreadable) == set(expected), (unreadable, expected)
    for kind, reason in unreadable.items():
        assert reason.startswith(reason_start(expected[kind])), (kind, reason, expected[kind])
        assert f"could not read {kind}: {reason}" in run.stdout, run.stdout
    healthy_exit, baseline = healthy(case.namespace, case.all_namespaces)
    if unreadable:
        assert _findings(document) <= _findings(baseline), _findings(document) - _findings(baseline)
    else:
        assert _findings(document) == _findings(baseline)
        assert document["summary"] == baseline["summary"]
    publish_failed = case.publish and decided.get(PUBLISHED, ("readable",))[0] != "readable"
    if case.publish:
        assert one_line(run.stderr.removesuffix("\n")) and f"PolicyReport {NS}/tbyte-policy" in run.stderr, \
            run.stderr
        published = re.match(f"tbyte-policy: PolicyReport {NS}/tbyte-policy (created|updated): ", run.stderr)
        assert bool(published) != publish_failed, run.stderr
    failed = bool(unreadable) or publish_failed
    assert run.exit_code == (2 if failed else healthy_exit), (run.exit_code, run.stderr)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_a_misbehaving_api_server_never_crashes_misleads_or_leaks(case, tmp_path_factory):
    work = tmp_path_factory.mktemp("live-fuzz")
    run = run_live(case, work)
    check_outputs(run)
    check_expectations(case, run)


def test_the_fuzzing_draws_every_misbehaviour_of_the_catalogue():
    assert set(DRAWN) == set(mb.CATALOGUE)
