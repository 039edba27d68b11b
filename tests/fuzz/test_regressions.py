"""Every input the campaign found a defect with, replayed with its exact outcome: the exit code, the errors
(line, message) and the findings (rule, object, line); and every property of ``harness.check_run`` on top.

The inputs are the files in ``regressions/`` as found (shrunk), byte for byte: the expectations live here, not
in a header, because a header would change the input (a BOM, an encoding, the line a truncation falls on).
How to add one: regressions/README.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from fuzz import harness
from tbyte_policy.reporters import FORMATS

REGRESSIONS = Path(__file__).parent / "regressions"


class Outcome(NamedTuple):
    exit_code: int
    errors: frozenset[tuple[int | None, str]] = frozenset()  # (line, message)
    findings: frozenset[tuple[str, str, int | None]] = frozenset()  # (rule id, Kind/namespace/name, line)
    stdin: bool = False  # scanned from stdin (``-``) rather than as a file
    jobs: int = 1  # --jobs; with more than one the file is given twice, so that a worker process parses it


EXPECTED: dict[str, Outcome] = {
    # A control character libyaml refuses: the error had no line (ReaderError carries a byte offset, no mark).
    "control-character-has-a-line.yaml": Outcome(2, frozenset({
        (6, "invalid YAML: unacceptable character #x001f: control characters are not allowed")})),
    # 1500 levels of JSON: libyaml refuses it, and the JSON fallback's RecursionError escaped to the top (exit 3).
    "deep-json-fallback.json": Outcome(2, frozenset({
        (1, "invalid YAML: while increasing flow level: exceeded maximum nesting depth")})),
    # Lone surrogate escapes, which libyaml refuses and the JSON fallback kept as Python's lone surrogates: no
    # UTF-8 output could carry them (exit 3 writing any report). Go's encoding/json reads them as U+FFFD.
    "lone-surrogate-escape-in-json.json": Outcome(1, findings=frozenset({("SCH001", "ConfigMap/default/a\ufffd", 1)})),
    # 990 levels parse, but --jobs 2's worker could not pickle them back (RecursionError in the pool, exit 3).
    "deep-document-with-jobs.yaml": Outcome(2, frozenset({
        (1, "ConfigMap/default/deep: document is nested too deeply for rule SCH001 to read")}), jobs=2),
    # A podSelector's matchExpressions of the wrong type, or an expression's values: describing the selector in
    # NET004's message iterated them (TypeError).
    "selector-expressions-not-a-list.yaml": Outcome(1, findings=frozenset({
        ("NET004", "NetworkPolicy/default/np", 6), ("SCH001", "NetworkPolicy/default/np", 7)})),
    "selector-expression-values-not-a-list.yaml": Outcome(1, findings=frozenset({
        ("NET004", "NetworkPolicy/default/np", 6), ("SCH001", "NetworkPolicy/default/np", 7)})),
    # serviceAccountName a list: SCR002's search for a workload that creates the Secret looked the unhashable
    # name up in a dict (TypeError). PodView.service_account now reads it for every rule, None when not a string.
    "service-account-name-not-a-string.yaml": Outcome(2, frozenset({
        (5, "Pod/default/web: spec.serviceAccountName must be a string, not a list")}), frozenset({
            ("NET001", "Namespace/default", None), ("NET002", "Pod/default/web", 3), ("PRB001", "Pod/default/web", 7),
            ("PRB002", "Pod/default/web", 7), ("RES001", "Pod/default/web", 7), ("RES002", "Pod/default/web", 7),
            ("RES003", "Pod/default/web", 7), ("RES004", "Pod/default/web", 7), ("SCH001", "Pod/default/web", 5),
            ("SCR002", "Pod/default/web", 11), ("SEC001", "Pod/default/web", 7), ("SEC003", "Pod/default/web", 7),
            ("SEC005", "Pod/default/web", 7), ("SEC007", "Pod/default/web", 7), ("SEC008", "Pod/default/web", 7)})),
    # "²%" as maxUnavailable and maxSurge, "²" as a probe's and a Service's port: str.isdigit() takes a superscript
    # two, int() refuses it (ValueError in PDB004, ROL002, ROL003, SVC003). Digits are 0-9 only now, as in Go.
    "unicode-digits-in-percent-and-port.yaml": Outcome(1, findings=frozenset({
        ("HPA001", "Deployment/default/web", 12), ("NET001", "Namespace/default", None),
        ("NET002", "Deployment/default/web", 16), ("PDB006", "PodDisruptionBudget/default/p", 4),
        ("PRB002", "Deployment/default/web", 19), ("PRB003", "Deployment/default/web", 22),
        ("RES001", "Deployment/default/web", 19), ("RES002", "Deployment/default/web", 19),
        ("RES003", "Deployment/default/web", 19), ("RES004", "Deployment/default/web", 19),
        ("SEC001", "Deployment/default/web", 19), ("SEC003", "Deployment/default/web", 19),
        ("SEC005", "Deployment/default/web", 19), ("SEC007", "Deployment/default/web", 19),
        ("SEC008", "Deployment/default/web", 19), ("SEC014", "Deployment/default/web", 17),
        ("SVC002", "Service/default/web", 29)})),
    # 300 levels: jsonschema-rs stops at its own depth limit with a ValueError, an internal error in SCH001.
    "schema-validator-depth-limit.yaml": Outcome(2, frozenset({
        (1, "ConfigMap/default/deep: document is nested too deeply for rule SCH001 to read")})),
}


def test_every_fixture_has_an_expectation_and_every_expectation_a_fixture():
    assert {path.name for path in REGRESSIONS.iterdir() if path.name != "README.md"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_regression(name, tmp_path):
    expected = EXPECTED[name]
    if expected.stdin:
        run = harness.scan(["-"], tmp_path, stdin=(REGRESSIONS / name).read_bytes())
        scanned = "<stdin>"
    else:
        scanned = str(tmp_path / name)
        shutil.copyfile(REGRESSIONS / name, scanned)
        run = harness.scan([scanned] * expected.jobs + ["--jobs", str(expected.jobs)], tmp_path)
    harness.check_run(run, [scanned])
    document = run.document
    assert run.exit_code == expected.exit_code
    assert {(error["path"], error["line"], error["message"]) for error in document["errors"]} == {
        (scanned, line, message) for line, message in expected.errors}
    assert {(finding["rule_id"], _ref(finding["resource"]), finding["location"]["line"])
            for finding in document["findings"]} == expected.findings


def _ref(resource: dict) -> str:
    parts = [resource["kind"], resource["namespace"], resource["name"]]
    return "/".join(part for part in parts if part is not None)


# Defects that take an environment as well as an input: a terminal that is not UTF-8, a file name that is not.
NON_ASCII = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"caf\\u00e9\\u202e\"\ndata: {k: 1}\n"


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
@pytest.mark.parametrize("output_format", sorted(FORMATS))
def test_a_terminal_that_is_not_utf8_gets_every_format(tmp_path, encoding, output_format):
    """Writing a non-ASCII name to an ASCII or Latin-1 stdout was a UnicodeEncodeError (exit 3)."""
    path = tmp_path / "names.yaml"
    path.write_text(NON_ASCII, encoding="utf-8")
    process = subprocess.run([sys.executable, "-m", "tbyte_policy", "scan", str(path), "--format", output_format],
                             capture_output=True, env={**os.environ, "PYTHONIOENCODING": encoding}, timeout=120)
    assert (process.returncode, process.stderr) == (1, b"")
    # The formats that declare UTF-8 are UTF-8 whatever the terminal; the others escape what it cannot show.
    if output_format in ("json", "sarif", "junit", "policyreport", "html"):
        assert "caf\u00e9" in process.stdout.decode("utf-8")
    else:
        shown = process.stdout.decode(encoding)  # (U+202E is in neither encoding)
        assert "default/caf" in shown and "\u202e" not in shown


def test_a_file_name_that_is_not_utf8_reaches_every_report(tmp_path):
    """An undecodable byte in a file name (Python keeps it as a lone surrogate) failed every --report (exit 3)."""
    directory = tmp_path / "manifests"
    directory.mkdir()
    (directory / os.fsdecode(b"\xff.yaml")).write_text(NON_ASCII, encoding="utf-8")
    run = harness.scan([str(directory)], tmp_path)
    harness.check_run(run, [str(directory / os.fsdecode(b"\xff.yaml"))])
    assert [finding["location"]["path"] for finding in run.document["findings"]] == [
        str(directory / os.fsdecode(b"\xff.yaml"))] * len(run.document["findings"])
