"""Helm charts scanned in place: real rendering through the helm extra's SDK, every finding on the template that
wrote it, the render options of ``helm template``, charts that fail, and the helm-binary path (a stand-in
``helm`` that prints a known rendering: it shows what tbyte-policy does with a binary's output and arguments,
not that a real helm renders the same)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from frozen_catalogue import frozen_rules
from typer.testing import CliRunner

from tbyte_policy.audit import AuditOptions, scan_paths
from tbyte_policy.cli import app
from tbyte_policy.sources import RenderOptions, load_all, scan_inputs
from tbyte_policy.sources.helm_sdk import template_stream
from tbyte_policy.sources.helm_template import TemplateIndex

pytest.importorskip("helm_python", reason="the helm extra (pip install -e '.[helm]') renders the charts")

CHARTS = Path(__file__).parent / "fixtures" / "charts"
REPO = Path(__file__).parent.parent
DEPLOYMENT = "shop/templates/deployment.yaml"
STATEFULSET = "shop/charts/redis/templates/statefulset.yaml"
CRONJOB = "shop/charts/worker/templates/cronjob.yaml"  # the subchart aliased as `batch` lives in charts/worker


# The probes and resources rules that are on by default: findings that do not move when other families change.
RULES = ("PRB001", "PRB002", "PRB003", "PRB004", "RES001", "RES002", "RES003", "RES004", "RES005", "RES006")


def scan(paths: list[str], render: RenderOptions = RenderOptions(), **options):
    return scan_paths(paths, AuditOptions(rules=frozen_rules(*RULES), render=render, **options))


def placed(report) -> set[tuple]:
    """(rule, object, container, template, line, column, rendered line) of every finding."""
    return {(finding.rule_id, finding.resource.ref, finding.container, finding.location.path, finding.location.line,
             finding.location.column, finding.location.rendered.line if finding.location.rendered else None)
            for finding in report.findings}


@pytest.fixture(autouse=True)
def _in_charts(monkeypatch):
    monkeypatch.chdir(CHARTS)  # relative paths, as a CI job scanning its checkout gives them


DEFAULT_FINDINGS = {
    # app: `resources: {}` from `toYaml .Values.resources` under the literal `resources:` key (line 27)
    *{(rule, "Deployment/default/release-name-shop", "app", DEPLOYMENT, 27, 11, 55)
      for rule in ("RES001", "RES002", "RES003", "RES004")},
    # proxy (inside `if .Values.sidecar.enabled`) has no resources: its list item, line 30. Neither it nor redis
    # declares a port and no Service selects redis: they serve nothing, so the probe rules leave them alone.
    *{(rule, "Deployment/default/release-name-shop", "proxy", DEPLOYMENT, 30, 11, 57)
      for rule in ("RES001", "RES002", "RES003", "RES004")},
    *{(rule, "StatefulSet/default/release-name-redis", "redis", STATEFULSET, 15, 11, 78)
      for rule in ("RES001", "RES002", "RES003", "RES004")},
    ("RES004", "CronJob/default/release-name-batch", "work", CRONJOB, 17, 17, 101),  # limits has no cpu
}


def test_a_chart_and_its_subcharts_render_with_every_finding_on_its_template():
    report = scan(["shop"])
    assert placed(report) == DEFAULT_FINDINGS
    assert report.errors == [] and report.resources == 5  # Deployment, Service, ConfigMap, StatefulSet, CronJob
    assert {finding.location.helm_source for finding in report.findings} == {
        DEPLOYMENT, STATEFULSET, "shop/charts/batch/templates/cronjob.yaml"}
    assert {finding.location.rendered.input for finding in report.findings} == {"shop"}


def test_the_rendered_position_is_the_line_helm_template_prints():
    stream = template_stream_of("shop").splitlines()
    finding = next(finding for finding in scan(["shop"]).findings if finding.container == "proxy")
    assert stream[finding.location.rendered.line - 1].strip() == "- name: proxy"
    cronjob = next(finding for finding in scan(["shop"]).findings if finding.resource.kind == "CronJob")
    assert stream[cronjob.location.rendered.line - 1].strip() == "limits: {memory: 64Mi}"


def template_stream_of(chart: str, **flags) -> str:
    from tbyte_policy.sources import helm_sdk

    options = {"values_files": [], "set_values": [], "set_string_values": [], "release": "release-name",
               "namespace": "default", "kube_version": "v1.33.0", **flags}
    return helm_sdk.render(chart, **options)


def test_values_files_set_and_set_string_as_helm_template_has_them():
    render = RenderOptions(values=("shop/values-prod.yaml",), set_values=("redis.enabled=true",),
                           set_string_values=("image.tag=2.0",), release="web", namespace="shop")
    report = scan(["shop"], render)
    # values-prod sets resources, drops the sidecar and redis; --set brings redis back (--set wins over -f)
    assert placed(report) == {
        *{(rule, "StatefulSet/shop/web-redis", "redis", STATEFULSET, 15, 11, 79)
          for rule in ("RES001", "RES002", "RES003", "RES004")},
        ("RES004", "CronJob/shop/web-batch", "work", CRONJOB, 17, 17, 102),
    }
    documents = load_all(scan_inputs(["shop"], render=render)).documents
    deployment = next(document.body for document in documents if document.body["kind"] == "Deployment")
    assert [container["image"] for container in deployment["spec"]["template"]["spec"]["containers"]] == \
        ["registry.example/shop:2.0"]


def test_helm_tests_are_left_out_unless_asked_for():
    default = {document.body["metadata"]["name"] for document in load_all(scan_inputs(["shop"])).documents}
    assert default == {"release-name-shop", "release-name-shop-settings", "release-name-redis", "release-name-batch"}
    report = scan(["shop"], RenderOptions(include_tests=True))
    tests = placed(report) - DEFAULT_FINDINGS
    every = ("RES001", "RES002", "RES003", "RES004")  # test pods serve nothing: no probe rules
    assert tests == {
        *{(rule, "Pod/default/release-name-shop-test", "wget", "shop/templates/tests/test-connection.yaml", 10, 7, 128)
          for rule in every},
        *{(rule, "Pod/default/release-name-redis-ping", "ping", "shop/charts/redis/templates/tests/ping.yaml", 10, 7,
           113) for rule in every},
    }


def test_a_chart_that_fails_to_render_is_an_error_on_its_template_and_the_run_goes_on():
    report = scan(["broken", "shop"], RenderOptions(set_values=("database.user=s3cr3t-admin",)))
    assert [(error.path, error.line, error.message) for error in report.errors] == [
        ("broken/templates/configmap.yaml", 8,
         "chart broken does not render: execution error at (broken/templates/configmap.yaml:8:6): "
         "database.password is required for user ***")]
    assert placed(report) == DEFAULT_FINDINGS
    assert report.exit_code("high") == 2


def test_a_render_error_never_shows_a_value(tmp_path):
    values = tmp_path / "secret-values.yaml"
    values.write_text("database:\n  user: hunter2-the-admin\n")
    report = scan(["broken"], RenderOptions(values=(str(values),)))
    assert len(report.errors) == 1 and "hunter2" not in report.errors[0].message
    assert report.errors[0].message.endswith("for user ***")


def test_packaged_charts_and_subcharts_point_at_the_archive(tmp_path, monkeypatch):
    chart = tmp_path / "shop"
    shutil.copytree(CHARTS / "shop", chart)
    with tarfile.open(chart / "charts" / "redis-0.1.0.tgz", "w:gz") as bundle:
        bundle.add(chart / "charts" / "redis", arcname="redis")
    shutil.rmtree(chart / "charts" / "redis")
    monkeypatch.chdir(tmp_path)
    paths = {(finding.resource.kind, finding.location.path, finding.location.line)
             for finding in scan(["shop"]).findings}
    assert paths == {("Deployment", DEPLOYMENT, 27), ("Deployment", DEPLOYMENT, 30),
                     ("StatefulSet", "shop/charts/redis-0.1.0.tgz", None), ("CronJob", CRONJOB, 17)}
    with tarfile.open(tmp_path / "shop-0.1.0.tgz", "w:gz") as bundle:
        bundle.add(chart, arcname="shop")
    packaged = scan(["shop-0.1.0.tgz"])
    assert {(finding.location.path, finding.location.line) for finding in packaged.findings} == \
        {("shop-0.1.0.tgz", None)}
    assert len(packaged.findings) == len(DEFAULT_FINDINGS)


def test_a_folder_of_charts_renders_each_chart_and_reads_none_of_their_files():
    report = scan(["."])
    # No "unrendered Helm template" error from the templates, no values.yaml counted as skipped documents.
    assert [error.path for error in report.errors] == ["broken/templates/configmap.yaml"]
    assert placed(report) == DEFAULT_FINDINGS and report.skipped_documents == 0


# --- every report format names the template ---

def test_every_format_points_at_the_template():
    runner = CliRunner()
    results = {name: runner.invoke(app, ["scan", "shop", "--format", name, "--no-schema", "--fail-on", "critical"])
               for name in ("json", "sarif", "github", "junit", "markdown")}
    assert {result.exit_code for result in results.values()} == {0}
    finding = next(entry for entry in json.loads(results["json"].output)["findings"]
                   if entry["rule_id"] == "RES004" and entry["container"] == "proxy")
    assert finding["location"] == {"path": DEPLOYMENT, "line": 30, "column": 11,
                                   "pointer": "/spec/template/spec/containers/1/resources", "helm_source": DEPLOYMENT,
                                   "rendered": {"tool": "helm", "input": "shop", "line": 57, "column": 11}}
    sarif = json.loads(results["sarif"].output)["runs"][0]["results"]
    result = next(entry for entry in sarif if entry["ruleId"] == "RES004" and
                  entry["properties"].get("container") == "proxy")
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": DEPLOYMENT, "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 30, "startColumn": 11}}
    assert result["properties"]["rendered"] == {"tool": "helm", "input": "shop", "line": 57, "column": 11}
    assert "::warning file=shop/templates/deployment.yaml,line=30,col=11,title=RES004 cpu-limit-missing::" \
        in results["github"].output
    assert f'file="{DEPLOYMENT}" line="30"' in results["junit"].output
    assert "line 57 of helm template shop" in results["junit"].output
    assert f"{DEPLOYMENT}:30" in results["markdown"].output


# --- the locator ---

def test_the_template_locator_gives_a_line_only_when_it_is_certain():
    template = textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}
        data:
          script: |
            image: not-a-key
        ---
        apiVersion: apps/v1
        kind: Deployment
        spec:
          {{- if .Values.ha }}
          replicas: 3
          {{- else }}
          replicas: 1
          {{- end }}
          template:
            spec:
              containers:
              - name: "app"
                "image": fixed:1
                env:
                  {{- range $key, $value := .Values.env }}
                  - name: {{ $key }}
                    value: {{ $value | quote }}
                  {{- end }}
              {{- range .Values.workers }}
              - name: {{ .name }}
                image: {{ .image }}
              {{- end }}
        """)
    index = TemplateIndex(template)
    assert [(segment.kind, segment.start) for segment in index.segments] == [("ConfigMap", 1), ("Deployment", 9)]
    deployment = index.segment_for("Deployment", 0, 1)
    body = {"spec": {"replicas": 3, "template": {"spec": {"containers": [
        {"name": "app", "image": "fixed:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}}

    def line(pointer: str):
        found = index.locate(deployment, body, pointer.strip("/").split("/"))
        return found[0] if found else None

    assert line("/spec/replicas") == 11  # written twice (if/else): only its parent is certain
    assert line("/spec/template/spec/containers/0/image") == 21  # no action before the item: its place is certain
    assert line("/spec/template/spec/containers/0/env/1/value") == 25  # a range, the list's only item, writes all
    assert line("/spec/template/spec/containers/0/env/5/value") == 22  # not rendered: its nearest rendered parent
    # after an action among a list's items (the range of workers), an item's place is not its rendered place
    assert line("/spec/template/spec/containers/1/image") == 19
    configmap = index.segment_for("ConfigMap", 0, 1)
    assert index.locate(configmap, {"data": {"script": "image: not-a-key\n"}}, ["data", "script", "image"]) == (6, 3)


def test_the_stream_is_ordered_as_helm_template_prints_it():
    files = {
        "c/templates/z-svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
        "c/templates/a-deploy.yaml": "\n---\nkind: Deployment\nmetadata: {name: d}\n---\n# only a comment\n",
        "c/templates/hook.yaml": "kind: Job\nmetadata:\n  name: j\n  annotations: {helm.sh/hook: pre-install}\n",
        "c/templates/odd-hook.yaml": "kind: Job\nmetadata:\n  annotations: {helm.sh/hook: not-a-hook}\n",
        "c/templates/NOTES.txt": "hello",
        "c/templates/empty.yaml": "\n \n",
        "c/templates/widget.yaml": "kind: Widget\nmetadata: {name: w}\n",
    }
    assert template_stream(files) == (
        "---\n# Source: c/templates/z-svc.yaml\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n\n"
        "---\n# Source: c/templates/a-deploy.yaml\nkind: Deployment\nmetadata: {name: d}\n"
        "---\n# Source: c/templates/a-deploy.yaml\n# only a comment\n\n"
        "---\n# Source: c/templates/widget.yaml\nkind: Widget\nmetadata: {name: w}\n"
        "---\n# Source: c/templates/hook.yaml\nkind: Job\nmetadata:\n  name: j\n"
        "  annotations: {helm.sh/hook: pre-install}\n\n")


# --- the helm binary ---

def fake_helm(directory: Path, *, stdout: Path | None = None, stderr: str = "", status: int = 0,
              sleep: float = 0) -> Path:
    """A `helm` that records its arguments and prints a given rendering."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "helm"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys, time
        open({str(directory / "argv.json")!r}, "w").write(__import__("json").dumps(sys.argv[1:]))
        time.sleep({sleep})
        if {str(stdout) if stdout else ""!r}:
            sys.stdout.write(open({str(stdout)!r}).read())
        sys.stderr.write({stderr!r})
        sys.exit({status})
        """))
    script.chmod(0o755)
    return script


def test_the_helm_binary_gives_the_same_findings_from_the_same_rendering(tmp_path):
    rendering = tmp_path / "rendering.yaml"
    rendering.write_text(template_stream_of("shop", values_files=["shop/values.yaml"], set_values=["a=b"],
                                            set_string_values=["c=1"]))
    helm = fake_helm(tmp_path / "bin", stdout=rendering)
    render = RenderOptions(values=("shop/values.yaml",), set_values=("a=b",), set_string_values=("c=1",),
                           helm_bin=str(helm), kubernetes_version="1.30")
    assert placed(scan(["shop"], render)) == DEFAULT_FINDINGS
    assert json.loads((tmp_path / "bin" / "argv.json").read_text()) == [
        "template", "release-name", "shop", "--namespace", "default", "--kube-version", "v1.30.0",
        "--values", "shop/values.yaml", "--set", "a=b", "--set-string", "c=1"]


def test_a_helm_binary_error_is_placed_and_masked(tmp_path):
    helm = fake_helm(tmp_path / "bin", status=1, stderr=(
        "walk.go:75: found symbolic link in path\nError: execution error at (shop/templates/deployment.yaml:8:14): "
        "replicas must be a number, not swordfish-42\n\nUse --debug flag to render out invalid YAML\n"))
    report = scan(["shop"], RenderOptions(helm_bin=str(helm), set_values=("replicaCount=swordfish-42",)))
    assert [(error.path, error.line, error.message) for error in report.errors] == [
        (DEPLOYMENT, 8, "chart shop does not render: execution error at (shop/templates/deployment.yaml:8:14): "
                        "replicas must be a number, not ***")]


def test_a_helm_binary_that_hangs_is_stopped(tmp_path):
    helm = fake_helm(tmp_path / "bin", sleep=30)
    report = scan(["shop"], RenderOptions(helm_bin=str(helm), timeout=1))
    assert [(error.path, error.message) for error in report.errors] == [
        ("shop", "chart shop does not render: helm did not finish within 1 s")]


# Hides the helm extra from this process, as on a machine without it, then runs `tbyte-policy scan`.
_WITHOUT_SDK = """
import sys

sys.modules["helm_python"] = None  # what `import` and find_spec see when a package is absent
from tbyte_policy.cli import main
sys.argv = ["tbyte-policy", "scan", *sys.argv[1:]]
main()
"""


def test_without_the_extra_a_helm_on_path_renders_and_without_either_the_scan_stops(tmp_path):
    rendering = tmp_path / "rendering.yaml"
    rendering.write_text(template_stream_of("shop"))
    fake_helm(tmp_path / "bin", stdout=rendering)
    with_binary = subprocess.run([sys.executable, "-c", _WITHOUT_SDK, "shop", "--format", "json", "--no-schema"],
                                 capture_output=True, text=True, cwd=CHARTS, env={"PATH": str(tmp_path / "bin")})
    assert with_binary.returncode == 1, with_binary.stderr
    assert json.loads((tmp_path / "bin" / "argv.json").read_text())[:3] == ["template", "release-name", "shop"]
    assert {entry["location"]["path"] for entry in json.loads(with_binary.stdout)["findings"]} >= {DEPLOYMENT}
    neither = subprocess.run([sys.executable, "-c", _WITHOUT_SDK, "shop"], capture_output=True, text=True, cwd=CHARTS,
                             env={"PATH": str(tmp_path / "empty")})
    assert (neither.returncode, neither.stdout) == (2, "")
    assert neither.stderr == ("tbyte-policy: charts need Helm to render: install the helm extra "
                              "(pip install 'tbyte-policy[helm]') or put a helm binary on PATH\n")


def test_a_helm_bin_that_does_not_exist_is_a_usage_error():
    result = CliRunner().invoke(app, ["scan", "shop", "--helm-bin", "/nowhere/helm"])
    assert result.exit_code == 2 and "--helm-bin /nowhere/helm: no such executable" in result.output
    missing = CliRunner().invoke(app, ["scan", "shop", "--values", "nope.yaml"])
    assert missing.exit_code == 2 and "--values nope.yaml: no such file" in missing.output


# `tbyte-policy scan PATH --format json --no-schema`, reporting at exit whether the Helm SDK was imported.
_SDK_PROBE = """
import atexit, sys
from tbyte_policy.cli import main

atexit.register(lambda: print("helm_python" in sys.modules, file=sys.stderr))
sys.argv = ["tbyte-policy", "scan", *sys.argv[1:], "--format", "json", "--no-schema"]
main()
"""


@pytest.mark.parametrize(("path", "imported"), [("shop/templates/service.yaml", "False"), ("shop", "True")])
def test_the_sdk_is_imported_only_when_a_chart_is_scanned(path, imported):
    result = subprocess.run([sys.executable, "-c", _SDK_PROBE, path], capture_output=True, text=True, cwd=CHARTS)
    assert result.stderr.strip().splitlines()[-1] == imported
