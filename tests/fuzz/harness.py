"""The command line run on a fuzzed input, and the properties every run keeps whatever the input.

One ``scan`` writes every format at once (stdout in one, ``--report FORMAT=FILE`` for the others), so a case
costs one run however many formats are checked. The CLI is driven in-process through typer's CliRunner; an
exception escaping it is what ``cli.main`` turns into exit 3, and is reported as such here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from functools import cache
from pathlib import Path
from typing import NamedTuple

import jsonschema
import yaml
from typer.testing import CliRunner

from fuzz.corpus import POLICYREPORT_CRD, SARIF_SCHEMA
from fuzz.strategies import CANARY, Case
from tbyte_policy.cli import app
from tbyte_policy.findings import SEVERITIES, at_least
from tbyte_policy.reporters import FORMATS

FAIL_ON = "high"
MARKERS_OF_A_BUG = ("Traceback", "internal error")

# The JSON report's contract (README, "JSON output"), as a schema: every key, every type.
_LOCATED = {"type": "object", "required": ["path", "line", "message"], "additionalProperties": False,
            "properties": {"path": {"type": ["string", "null"]}, "line": {"type": ["integer", "null"], "minimum": 1},
                           "message": {"type": "string", "minLength": 1}}}
REPORT_SCHEMA = {
    "type": "object", "required": ["version", "tool", "mode", "summary", "findings", "errors", "warnings"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "tool": {"type": "object", "required": ["name", "version"],
                 "properties": {"name": {"const": "tbyte-policy"}, "version": {"type": "string"}}},
        "mode": {"const": "scan"},
        "summary": {"type": "object", "additionalProperties": False,
                    "required": ["files", "resources", "skipped_documents", "findings", "suppressed", "by_severity"],
                    "properties": {**{key: {"type": "integer", "minimum": 0} for key in
                                      ("files", "resources", "skipped_documents", "findings", "suppressed")},
                                   "by_severity": {"type": "object", "additionalProperties": False,
                                                   "required": list(SEVERITIES),
                                                   "properties": {severity: {"type": "integer", "minimum": 0}
                                                                  for severity in SEVERITIES}}}},
        "findings": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["rule_id", "rule_name", "family", "severity", "message", "resource", "container", "location",
                         "related", "remediation", "suppressed", "suppression_reason"],
            "properties": {
                "rule_id": {"type": "string", "pattern": "^[A-Z]{3}[0-9]{3}$"}, "rule_name": {"type": "string"},
                "family": {"type": "string"}, "severity": {"enum": list(SEVERITIES)},
                "message": {"type": "string", "minLength": 1},
                "resource": {"type": "object", "required": ["apiVersion", "kind", "name", "namespace"],
                             "properties": {"apiVersion": {"type": ["string", "null"]}, "kind": {"type": "string"},
                                            "name": {"type": "string"}, "namespace": {"type": ["string", "null"]}}},
                "container": {"type": ["string", "null"]},
                "location": {"type": "object", "required": ["path", "line", "column", "pointer", "helm_source",
                                                            "rendered"],
                             "properties": {"path": {"type": ["string", "null"]},
                                            "line": {"type": ["integer", "null"], "minimum": 1},
                                            "column": {"type": ["integer", "null"], "minimum": 1},
                                            "pointer": {"type": ["string", "null"]},
                                            "helm_source": {"type": ["string", "null"]},
                                            "rendered": {"type": "null"}}},
                "related": {"type": "array", "items": {"type": "object",
                                                       "required": ["kind", "name", "namespace", "path", "line"]}},
                "remediation": {"type": ["string", "null"]}, "suppressed": {"type": "boolean"},
                "suppression_reason": {"type": ["string", "null"]}}}},
        "errors": {"type": "array", "items": _LOCATED},
        "warnings": {"type": "array", "items": _LOCATED},
    },
}


@cache
def _validators() -> dict[str, jsonschema.protocols.Validator]:
    crd = yaml.safe_load(POLICYREPORT_CRD.read_text())
    policyreport = next(version for version in crd["spec"]["versions"] if version["name"] == "v1alpha2")
    return {"json": jsonschema.Draft202012Validator(REPORT_SCHEMA),
            "sarif": jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())),
            "policyreport": jsonschema.Draft7Validator(policyreport["schema"]["openAPIV3Schema"])}


class Run(NamedTuple):
    exit_code: int
    exception: BaseException | None
    stdout: str
    stderr: str
    reports: dict[str, str]  # format -> the text it wrote

    def outputs(self) -> dict[str, str]:
        return {"stdout": self.stdout, "stderr": self.stderr, **self.reports}

    @property
    def document(self) -> dict:
        return json.loads(self.reports["json"])


def write_case(directory: Path, case: Case) -> Path:
    path = directory / case.name
    path.write_bytes(case.data)
    return path


def scan(arguments: list[str], directory: Path, stdin: bytes | None = None, formats=tuple(FORMATS)) -> Run:
    """``tbyte-policy scan ARGUMENTS`` in-process, with every format in ``formats`` written as a --report."""
    targets = {name: directory / f"report.{name}" for name in formats}
    for target in targets.values():
        target.unlink(missing_ok=True)
    extra = [option for name, target in targets.items() for option in ("--report", f"{name}={target}")]
    result = CliRunner().invoke(app, ["scan", *arguments, *extra], input=stdin)
    exception = None if result.exception is None or isinstance(result.exception, SystemExit) else result.exception
    reports = {name: target.read_text(encoding="utf-8") for name, target in targets.items() if target.exists()}
    return Run(result.exit_code, exception, result.stdout, result.stderr, reports)


def scan_subprocess(arguments: list[str], stdin: bytes | None = None,
                    encoding: str = "utf-8") -> subprocess.CompletedProcess:
    """The installed command itself: cli.main's exit codes, the real stdout and stderr in ``encoding``."""
    return subprocess.run([sys.executable, "-m", "tbyte_policy", "scan", *arguments], input=stdin or b"",
                          capture_output=True, timeout=120, env={**os.environ, "PYTHONIOENCODING": encoding})


def check_run(run: Run, scanned: list[str]) -> None:
    """Every property a scan keeps on any input; ``scanned``: the paths as the report names them."""
    if run.exception is not None:
        raise AssertionError(f"exit 3: {type(run.exception).__name__} escaped the CLI") from run.exception
    assert not Path(CANARY).exists(), "a !!python tag was constructed: the YAML was not loaded safely"
    assert run.exit_code in (0, 1, 2), run.outputs()
    for name, output in run.outputs().items():
        for marker in MARKERS_OF_A_BUG:
            assert marker not in output, f"{marker!r} in {name}:\n{output[-2000:]}"
    assert set(run.reports) == set(FORMATS), f"formats not written: {set(FORMATS) - set(run.reports)}; {run.stderr}"
    check_formats(run.reports)
    document = run.document
    expected = 2 if document["errors"] else 1 if any(
        at_least(finding["severity"], FAIL_ON) for finding in document["findings"] if not finding["suppressed"]) else 0
    assert run.exit_code == expected, (run.exit_code, document["errors"])
    check_errors_are_located(document, scanned)


def check_formats(reports: dict[str, str]) -> None:
    validators = _validators()
    validators["json"].validate(json.loads(reports["json"]))
    validators["sarif"].validate(json.loads(reports["sarif"]))
    validators["policyreport"].validate(yaml.safe_load(reports["policyreport"]))
    ElementTree.fromstring(reports["junit"])
    assert reports["html"].lstrip().lower().startswith("<!doctype html>")
    # The page draws itself from the JSON report it embeds: one element, which no finding's text can close early.
    _, opening, rest = reports["html"].partition('<script type="application/json" id="report-data">')
    embedded, closing, _ = rest.partition("</script>")
    assert opening and closing, "the page has no data element"
    page = json.loads(embedded)  # (it would not parse had a finding's text closed the element early)
    report = json.loads(reports["json"])
    assert (page["findings"], page["errors"]) == (report["findings"], report["errors"])
    for name in ("text", "table", "markdown"):
        assert reports[name].strip(), f"{name} is empty"


# Errors about a whole file, which have no line to name.
FILE_ERRORS = ("binary file", "file is ", "input is over", "cannot read file", "no such file")


def check_errors_are_located(document: dict, scanned: list[str]) -> None:
    """Every error names a file of the run and, unless it is about the whole file, a line of it."""
    for error in document["errors"]:
        assert error["path"] in scanned, error
        if not error["message"].startswith(FILE_ERRORS):
            assert isinstance(error["line"], int), error
