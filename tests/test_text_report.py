"""The text format: compiler-style lines, source snippets with carets, masking of secret values, colour
only on a terminal, and the default format by where stdout goes.

The golden file of a scan with source lines is tests/golden/text.txt (test_reporters.py); this module holds
the other goldens (no source, live) and the behaviour around them. Regenerate with
``TBYTE_UPDATE_GOLDEN=1 pytest tests/test_text_report.py`` and review the diff.
"""

from __future__ import annotations

import base64
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from frozen_catalogue import frozen_rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reporters import FIXTURES, GOLDEN, GOLDEN_RULES, GOLDEN_VERSION, scan_fixtures
from test_secret_leaks import PLANTS, assert_not_leaked, manifest, secrets
from typer.testing import CliRunner

from tbyte_policy.audit import AuditOptions, audit_documents, scan_paths
from tbyte_policy.cli import app
from tbyte_policy.findings import Finding, Location, Report, ReportError, ResourceId
from tbyte_policy.live.command import audit_collection
from tbyte_policy.model import ObjectRef
from tbyte_policy.reporters import render
from tbyte_policy.reporters.snippets import MASK, SourceLines
from tbyte_policy.sources.cluster import Collection
from tbyte_policy.sources.yaml_documents import load_text

ANSI = re.compile(r"\x1b\[[0-9;]*m")
HEADLINE = re.compile(r"^(?P<path>[^:\s]+):(?P<line>\d+):(?P<column>\d+): ")


def check_golden(name: str, text: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("TBYTE_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), \
        f"{golden.name} is stale; regenerate with TBYTE_UPDATE_GOLDEN=1 and review the diff"


@pytest.fixture
def report(monkeypatch) -> Report:
    return scan_fixtures(monkeypatch)


def test_golden_without_source(report):
    check_golden("text-no-source.txt", render("text", report, source=False))


def live_fixture_report() -> Report:
    """The fixtures' objects as a live run reads them: no file, no line."""
    objects = [body for name in ("helm.yaml", "multi.yaml")
               for body in yaml.safe_load_all((FIXTURES / name).read_text()) if body and "kind" in body]
    report = audit_collection(Collection(objects=objects, namespace="shop",
                                         unreadable={"Secret": "forbidden: secrets is forbidden"}),
                              AuditOptions(rules=frozen_rules(*GOLDEN_RULES)))
    return report._replace(tool_version=GOLDEN_VERSION)


def test_golden_live():
    text = render("text", live_fixture_report())
    check_golden("text-live.txt", text)
    assert "|" not in text  # no source to show
    assert text.splitlines()[0].startswith("Deployment/shop/api: PRB001 readiness-probe-missing [high] ")


def test_every_caret_stands_under_the_column_its_line_names(report):
    lines = render("text", report).splitlines()
    carets = 0
    for index, line in enumerate(lines):
        match = HEADLINE.match(line)
        if not match:
            continue
        block = lines[index + 1:lines.index("", index)]
        (source,) = [row for row in block if row.startswith(f"{match['line']} |")]
        (caret,) = [row for row in block if "^" in row]
        gutter = len(f"{match['line']} | ")
        assert caret.index("^") - gutter == int(match["column"]) - 1
        original = (FIXTURES / match["path"]).read_text().splitlines()[int(match["line"]) - 1]
        assert source[gutter:] == original
        carets += 1
    assert carets == 5


def synthetic(findings: list[Finding], **changes) -> Report:
    return Report(tool_version=GOLDEN_VERSION, rules=frozen_rules(*GOLDEN_RULES), findings=findings, **changes)


def a_finding(path: str | None, line: int | None, column: int | None, **changes) -> Finding:
    values = {"rule_id": "PRB001", "rule_name": "readiness-probe-missing", "family": "probes", "severity": "high",
              "message": "container api has no readinessProbe",
              "resource": ResourceId("apps/v1", "Deployment", "api", "shop"), "container": "api",
              "location": Location(path, line, column, "/spec/template/spec/containers/0")}
    values.update(changes)
    return Finding(**values)


def test_order_related_objects_errors_and_findings_without_a_file():
    findings = [
        a_finding("b.yaml", 9, 3, related=[ObjectRef("Service", "api", "shop", "svc.yaml", 4),
                                           ObjectRef("PodDisruptionBudget", "api", "shop")]),
        a_finding("a.yaml", 30, 5, severity="medium", rule_id="PRB002", rule_name="liveness-probe-missing",
                  message="container api has no livenessProbe"),
        a_finding("a.yaml", 4, 1, message="line one\nline two \x1b[31mred\x07"),
        a_finding(None, None, None, resource=ResourceId("v1", "Namespace", "shop", None), message="no policy"),
        a_finding("a.yaml", 2, 1, suppressed=True, suppression_reason="accepted"),
    ]
    report = synthetic(findings, errors=[ReportError("a.yaml", 10, "invalid YAML: bad"),
                                         ReportError(None, None, "Deployment/x: internal trouble")],
                       warnings=[ReportError(".tbyte-policy.yaml", 3, "exemption expired")],
                       unreadable_kinds={"Secret": "forbidden"}, files=2, resources=3)
    assert render("text", report, source=False).splitlines() == [
        ".tbyte-policy.yaml:3: warning: exemption expired",
        "a.yaml:4:1: PRB001 readiness-probe-missing [high] line one line two \ufffd[31mred\ufffd",
        "a.yaml:10: error: invalid YAML: bad",
        "a.yaml:30:5: PRB002 liveness-probe-missing [medium] container api has no livenessProbe",
        "b.yaml:9:3: PRB001 readiness-probe-missing [high] container api has no readinessProbe",
        "svc.yaml:4: note: related object Service/shop/api",
        "note: related object PodDisruptionBudget/shop/api",
        "Namespace/shop: PRB001 readiness-probe-missing [high] no policy",
        "error: Deployment/x: internal trouble",
        "error: could not read Secret: forbidden",
        "",
        "4 findings (0 critical, 3 high, 1 medium, 0 low, 0 info); 1 suppressed; 3 resources in 2 files; 3 errors",
    ]


def test_colour_codes_only_when_asked(report):
    plain = render("text", report)
    colored = render("text", report, color=True)
    assert "\x1b" not in plain
    assert "\x1b[1;31mPRB001\x1b[0m" in colored and "\x1b[1;34m" in colored  # severity, gutter
    assert ANSI.sub("", colored) == plain


def test_findings_at_one_position_share_one_snippet(tmp_path):
    path = tmp_path / "pod.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n"
                    "    - name: app\n      image: ghcr.io/acme/app:1.0.0\n")
    report = scan_paths([str(path)], AuditOptions(namespace="shop", rules=frozen_rules("PRB001", "PRB002", "RES001")))
    lines = render("text", report).splitlines()
    assert [line.split(": ", 1)[1].split(" ")[0] for line in lines[:3]] == ["PRB001", "PRB002", "RES001"]
    assert lines[3:8] == ["  |", "6 |   containers:", "7 |     - name: app", "  |       ^^^^ Pod/shop/p", ""]


def test_list_items_and_stdin_point_at_their_own_lines(tmp_path):
    listed = ("apiVersion: v1\nkind: List\nitems:\n"
              "  - apiVersion: v1\n    kind: Pod\n    metadata: {name: first, namespace: shop}\n"
              "    spec:\n      containers:\n        - {name: a, image: 'ghcr.io/acme/a:1.0.0'}\n"
              "  - apiVersion: v1\n    kind: Pod\n    metadata: {name: second, namespace: shop}\n"
              "    spec:\n      containers:\n        - name: b\n          image: ghcr.io/acme/b:1.0.0\n")
    path = tmp_path / "list.yaml"
    path.write_text(listed)
    rules = frozen_rules("RES001")
    from_file = render("text", scan_paths([str(path)], AuditOptions(rules=rules)))
    assert f"{path}:9:11: RES001 cpu-request-missing" in from_file
    assert "9 |         - {name: a, image: 'ghcr.io/acme/a:1.0.0'}\n  |           ^ Pod/shop/first\n" in from_file
    assert f"{path}:15:11: RES001" in from_file and "15 |         - name: b\n   |           ^^^^ Pod/shop/second\n" \
        in from_file
    # Text read from stdin cannot be read again: the report carries it.
    from_stdin = render("text", audit_documents(load_text(listed, "<stdin>"), AuditOptions(rules=rules)))
    assert from_stdin == from_file.replace(str(path), "<stdin>").replace("1 files", "0 files")


def test_stdin_through_the_cli(monkeypatch, tmp_path):
    monkeypatch.setattr("tbyte_policy.commands.load_catalogue", lambda: frozen_rules("RES001", "PRB002"))
    monkeypatch.chdir(tmp_path)
    text = (FIXTURES / "multi.yaml").read_text()
    result = CliRunner().invoke(app, ["scan", "-", "--format", "text"], input=text)
    assert result.exit_code == 1, result.output
    assert "<stdin>:39:7: RES001 cpu-request-missing [high] container worker sets no cpu request\n" \
           "   |\n38 |   containers:\n39 |     - name: worker\n   |       ^^^^ Pod/shop/worker\n" in result.stdout
    no_source = CliRunner().invoke(app, ["scan", "-", "--format", "text", "--no-source"], input=text)
    assert "|" not in no_source.stdout and "<stdin>:39:7: RES001" in no_source.stdout


def test_a_file_that_no_longer_reads_shows_no_source(report, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the report's relative paths now lead nowhere
    assert render("text", report) == render("text", report, source=False)


# --- masking

TRICKY = """\
apiVersion: v1
kind: Secret
metadata:
  name: s
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"v1","data":{"password":"PLANTED1"},"kind":"Secret"}
stringData: {password: PLANTED2, other: "PLANTED3"}
data:
  tls.key: |
    PLANTED4
    PLANTED5
  token: >-
    PLANTED6
    PLANTED7
  plain: PLANTED8
    PLANTED9
  quoted: "PLANTED10
    PLANTED11"
  anchored: &value PLANTED12
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: c}
    binaryData: {blob: PLANTED13}
    data:
      app.properties: |-
        password=PLANTED14
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: d}
    spec:
      template:
        spec:
          containers:
            - name: app
              env: [{name: A, value: PLANTED15}, {name: B, valueFrom: {secretKeyRef: {name: s, key: k}}}]
              envFrom: [{secretRef: {name: s}}]
          initContainers:
            - name: init
              env:
                - name: C
                  value: &shared PLANTED16
                - name: D
                  value: *shared
                - name: E
                  value: !!str PLANTED17
                - PLANTED18
---
{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}, "data": {"k": "PLANTED19"}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: broken
data:
  password: "PLANTED20
---
apiVersion: v1
kind: ConfigMap
metadata: {name: after}
data: {k: PLANTED21}
"""


def shown_lines(text: str) -> list[str | None]:
    lines = SourceLines({"t.yaml": text})
    return [snippet.text if (snippet := lines.line("t.yaml", number)) else None
            for number in range(1, text.count("\n") + 2)]


def test_every_value_that_may_be_secret_is_masked_wherever_it_stands():
    shown = shown_lines(TRICKY)
    assert not any("PLANTED" in line for line in shown if line is not None)
    original = TRICKY.splitlines()
    changed = {number: line for number, line in enumerate(shown, 1) if number <= len(original)
               and line != original[number - 1]}
    assert changed == {
        6: "    kubectl.kubernetes.io/last-applied-configuration: ***", 7: "      ***",
        8: "stringData: {password: ***, other: ***}",
        10: "  tls.key: ***", 11: "    ***", 12: "    ***", 13: "  token: ***", 14: "    ***", 15: "    ***",
        16: "  plain: ***", 17: "    ***", 18: "  quoted: ***", 19: "    ***", 20: "  anchored: ***",
        28: "    binaryData: {blob: ***}", 30: "      app.properties: ***", 31: "        ***",
        40: "              env: [{name: A, value: ***}, {name: B, valueFrom: {secretKeyRef: {name: s, key: k}}}]",
        46: "                  value: ***", 50: "                  value: ***",  # 48, an alias: its anchor is masked
        51: "                - ***",
        53: '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}, "data": {"k": ***}}',
        # the document that does not parse is not shown at all, from the end of the last one to the next ---
        54: None, 55: None, 56: None, 57: None, 58: None, 59: None, 60: None,
        65: "data: {k: ***}",
    }


def test_a_caret_after_a_masked_value_moves_with_the_text():
    text = 'apiVersion: v1\nkind: Pod\nspec:\n  env: [{name: A, value: "a long secret value"}, {name: B}]\n'
    snippet = SourceLines({"p.yaml": text}).line("p.yaml", 4, text.splitlines()[3].index("{name: B") + 2)
    assert snippet.text == "  env: [{name: A, value: ***}, {name: B}]"
    assert snippet.text[snippet.column - 1:].startswith("name: B") and snippet.width == 4


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=secrets, plants=st.lists(st.sampled_from(sorted(PLANTS)), min_size=1, max_size=5, unique=True),
       wrong_shapes=st.booleans(), broken_tail=st.booleans())
def test_no_line_of_a_planted_file_shows_the_value(value, plants, wrong_shapes, broken_tail):
    shown = [line for line in shown_lines(manifest(value, plants, "DB_PASSWORD", "password", wrong_shapes,
                                                   broken_tail)) if line is not None]
    assert_not_leaked(value, "\n".join(shown))
    assert MASK in "\n".join(shown)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=secrets, plants=st.lists(st.sampled_from(sorted(PLANTS)), min_size=1, max_size=5, unique=True),
       wrong_shapes=st.booleans(), broken_tail=st.booleans())
def test_the_text_report_never_shows_a_planted_value(value, plants, wrong_shapes, broken_tail):
    text = manifest(value, plants, "DB_PASSWORD", "password", wrong_shapes, broken_tail)
    report = audit_documents(load_text(text, "planted.yaml"), AuditOptions(namespace="shop"))
    output = render("text", report)
    assert_not_leaked(value, output, render("html", report))
    # Not vacuous: the snippets did show the planted fields, masked.
    if "env" in plants and not {"env-unquoted-tag", "env-alias"} & set(plants):  # the Deployment loads
        assert "|               value: ***\n" in output  # SCR004 points at the literal env value
    if "secret-string" in plants or "secret-data" in plants:
        assert "SCR001" in output


def test_planted_base64_spelling_is_masked_too():
    value = "Zq9-v3ry-s3cr3t"
    encoded = base64.b64encode(value.encode()).decode()
    text = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  password: {encoded}\n"
    assert shown_lines(text)[5] == "  password: ***"


# --- the CLI: default format, colour, the pre-commit hook

def run_on_terminal(arguments: list[str], environment: dict[str, str]) -> str:
    """The real command with its stdout on a pseudo-terminal, as a person at a terminal runs it."""
    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "tbyte_policy", *arguments], stdout=secondary,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, cwd=FIXTURES,
                               env={**environment, "COLUMNS": "200"})
    os.close(secondary)
    chunks, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 1)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif process.poll() is not None:
            break
    process.wait(timeout=60)
    os.close(primary)
    return b"".join(chunks).decode()


def test_default_format_is_the_table_on_a_terminal_and_text_elsewhere(monkeypatch):
    environment = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "FORCE_COLOR")}
    on_terminal = run_on_terminal(["scan", "multi.yaml", "--no-schema"], environment)
    assert "Deployment shop/web" in on_terminal and "┃" in on_terminal  # the table's title and box
    text_on_terminal = run_on_terminal(["scan", "multi.yaml", "--no-schema", "--format", "text"], environment)
    assert "\x1b[" in text_on_terminal and "PRB003" in ANSI.sub("", text_on_terminal)
    no_color = run_on_terminal(["scan", "multi.yaml", "--no-schema", "--format", "text"],
                               {**environment, "NO_COLOR": "1"})
    assert "\x1b[" not in no_color and "multi.yaml:20:37: PRB003 probe-port-undeclared [high]" in no_color
    piped = subprocess.run([sys.executable, "-m", "tbyte_policy", "scan", "multi.yaml", "--no-schema"], cwd=FIXTURES,
                           capture_output=True, text=True, env=environment)
    assert piped.returncode == 1
    assert piped.stdout.startswith("multi.yaml:") and "\x1b" not in piped.stdout
    assert "   |                                     ^^^^ Deployment/shop/web\n" in piped.stdout


def test_output_file_defaults_to_text_without_colour(tmp_path, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    monkeypatch.setattr("tbyte_policy.commands.load_catalogue", lambda: frozen_rules(*GOLDEN_RULES))
    target = tmp_path / "out.txt"
    result = CliRunner().invoke(app, ["scan", "helm.yaml", "multi.yaml", "-o", str(target), "--report",
                                      f"text={tmp_path / 'report.txt'}", "--no-source"])
    assert result.exit_code == 1 and result.stdout == ""
    written = target.read_text()
    assert written == (tmp_path / "report.txt").read_text()
    assert written.startswith("helm.yaml:26:11: PRB001") and "|" not in written


def test_pre_commit_hook_uses_the_text_format():
    hooks = {hook["id"]: hook for hook in yaml.safe_load((Path(__file__).parents[1] / ".pre-commit-hooks.yaml")
                                                         .read_text())}
    assert hooks["tbyte-policy"]["entry"] == "tbyte-policy scan --format text"


def test_the_text_format_does_not_import_rich():
    """The pre-commit hook's format keeps start-up short: rich (about 40 ms to import) is the table's."""
    script = ("import sys\nfrom tbyte_policy.cli import main\n"
              "sys.argv = ['tbyte-policy', 'scan', 'multi.yaml', '--format', 'text', '--no-schema']\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print('rich' in sys.modules, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", script], cwd=FIXTURES, capture_output=True, text=True, check=True)
    assert "multi.yaml:20:37: PRB003" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "False"
