"""kustomizations scanned in place, built with the real kustomize (``kubectl kustomize`` here): overlays built once
each with their base, namespace transform, patches and components; findings on the files kustomize took each
object from; remote bases refused; and which of a tree's kustomizations are top-level."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from frozen_catalogue import frozen_rules
from typer.testing import CliRunner

from tbyte_policy.audit import AuditOptions, scan_paths
from tbyte_policy.cli import app
from tbyte_policy.sources import RenderOptions, load_all, scan_inputs
from tbyte_policy.sources.inputs import plan_inputs
from tbyte_policy.sources.kustomize import strip_origins
from tbyte_policy.sources.tools import find_executable

TREE = Path(__file__).parent / "fixtures" / "kustomize"
KUSTOMIZE = find_executable("kustomize") or find_executable("kubectl")
BUILD = [KUSTOMIZE, "build" if KUSTOMIZE and os.path.basename(KUSTOMIZE) == "kustomize" else "kustomize"]
# CI must build for real; elsewhere a machine without kustomize or kubectl skips these tests.
needs_kustomize = pytest.mark.skipif(KUSTOMIZE is None and not os.environ.get("CI"),
                                     reason="neither kustomize nor kubectl is on PATH")
RULES = ("PRB001", "PRB002", "PRB003", "PRB004", "RES001", "RES002", "RES003", "RES004", "RES005", "RES006")
DEPLOYMENT = "shop/base/deployment.yaml"


@pytest.fixture(autouse=True)
def _in_tree(monkeypatch):
    monkeypatch.chdir(TREE)


def scan(paths: list[str], render: RenderOptions = RenderOptions()):
    return scan_paths(paths, AuditOptions(rules=frozen_rules(*RULES), render=render))


def placed(report) -> set[tuple]:
    return {(finding.rule_id, finding.resource.ref, finding.container, finding.location.path, finding.location.line,
             finding.location.column, finding.location.rendered.input if finding.location.rendered else None,
             finding.location.rendered.line if finding.location.rendered else None)
            for finding in report.findings}


PROD = "shop/overlays/prod"
STAGING = "shop/overlays/staging"
FINDINGS = {
    # prod: the patch gives web its resources and adds log-shipper, which the base does not have: its findings
    # stand on the base's `containers:`, the nearest parent the base writes. log-shipper declares no port: a
    # helper that serves nothing, which the probe rules leave alone.
    ("PRB002", "Deployment/shop-prod/prod-web", "web", DEPLOYMENT, 18, 11, PROD, 40),
    *{(rule, "Deployment/shop-prod/prod-web", "log-shipper", DEPLOYMENT, 17, 7, PROD, 59)
      for rule in ("RES001", "RES002", "RES003", "RES004")},
    # staging: the probes component adds the liveness probe; no patch sets resources
    *{(rule, "Deployment/shop-staging/web", "web", DEPLOYMENT, 18, 11, STAGING, 40)
      for rule in ("RES001", "RES002", "RES003", "RES004")},
}


@needs_kustomize
def test_each_overlay_is_built_once_and_its_findings_stand_on_the_source_files():
    report = scan(["."])
    assert placed(report) == FINDINGS
    assert report.errors == []
    # The base is built only inside its overlays (no Deployment/default/web), its unlisted notes.yaml is not
    # read, and no file of a kustomization is scanned on its own.
    documents = load_all(scan_inputs(["."]))
    assert sorted((document.body["kind"], document.body["metadata"].get("namespace"), document.path, document.line)
                  for document in documents.documents) == [
        ("ConfigMap", "shop-prod", "shop/base/kustomization.yaml", 7),
        ("ConfigMap", "shop-staging", "shop/base/kustomization.yaml", 7),
        ("Deployment", "shop-prod", DEPLOYMENT, 1),
        ("Deployment", "shop-staging", DEPLOYMENT, 1),
        ("Service", "shop-prod", "shop/base/service.yaml", 1),
        ("Service", "shop-staging", "shop/base/service.yaml", 1)]
    # kustomize's origin annotations never reach the rules.
    assert not any("config.kubernetes.io/origin" in str(document.body) for document in documents.documents)


@needs_kustomize
def test_one_overlay_named_alone():
    assert placed(scan([PROD])) == {entry for entry in FINDINGS if entry[6] == PROD}
    assert placed(scan([f"{PROD}/kustomization.yaml"])) == {entry for entry in FINDINGS if entry[6] == PROD}


@needs_kustomize
def test_the_output_is_a_plain_build_without_the_origin_annotations(tmp_path):
    plain = subprocess.run([*BUILD, PROD], capture_output=True, text=True, check=True).stdout
    wrapper = tmp_path / "wrapper"
    wrapper.mkdir()
    (wrapper / "kustomization.yaml").write_text(
        f"resources: [{os.path.relpath(Path(PROD).resolve(), wrapper)}]\nbuildMetadata: [originAnnotations]\n")
    annotated = subprocess.run([*BUILD, str(wrapper)], capture_output=True, text=True, check=True).stdout
    assert "config.kubernetes.io/origin" in annotated
    text, origins = strip_origins(annotated)
    assert text == plain
    assert [origin.fields.get("path") or origin.fields.get("configuredIn") for origin in origins] == [
        os.path.relpath(Path(path).resolve(), wrapper) for path in
        ("shop/base/kustomization.yaml", "shop/base/service.yaml", DEPLOYMENT)]


@needs_kustomize
def test_a_remote_base_is_an_error_and_nothing_is_fetched(tmp_path, monkeypatch):
    overlay = tmp_path / "remote"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "namespace: x\nresources:\n  - github.com/kubernetes-sigs/kustomize/examples/helloWorld?ref=v5.5.0\n")
    monkeypatch.chdir(tmp_path)
    report = scan(["remote"])
    assert [(error.path, error.line, error.message) for error in report.errors] == [
        ("remote/kustomization.yaml", 3,
         "kustomization remote is not built: 'github.com/kubernetes-sigs/kustomize/examples/helloWorld?ref=v5.5.0' "
         "is not a file or folder here, and a scan never fetches remote bases (vendor it into the repository, or "
         "scan kustomize build's output)")]
    assert report.resources == 0 and report.exit_code("high") == 2


@needs_kustomize
def test_a_kustomization_that_does_not_build_is_an_error_and_the_run_goes_on(tmp_path, monkeypatch):
    shutil.copytree(TREE / "shop", tmp_path / "shop")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text("resources: [../shop/base]\npatches:\n  - path: missing.yaml\n")
    monkeypatch.chdir(tmp_path)
    report = scan(["broken", PROD])
    assert [(error.path, error.line) for error in report.errors] == [("broken/kustomization.yaml", None)]
    assert report.errors[0].message.startswith("kustomization broken does not build: ")
    assert "missing.yaml" in report.errors[0].message and "tbyte-policy-kustomize" not in report.errors[0].message
    assert placed(report) == {entry for entry in FINDINGS if entry[6] == PROD}


def test_no_kustomize_is_a_one_line_error(tmp_path):
    command = "import sys; from tbyte_policy.cli import main; sys.argv = ['tbyte-policy', 'scan', sys.argv[1]]; main()"
    result = subprocess.run([sys.executable, "-c", command, PROD], capture_output=True, text=True, cwd=TREE,
                            env={"PATH": str(tmp_path)})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("tbyte-policy: kustomizations need kustomize to build: put kustomize or kubectl (its "
                             "`kubectl kustomize`) on PATH, or name one with --kustomize-bin\n")
    missing = CliRunner().invoke(app, ["scan", PROD, "--kustomize-bin", "/nowhere/kustomize"])
    assert missing.exit_code == 2 and "--kustomize-bin /nowhere/kustomize: no such executable" in missing.output


@needs_kustomize
def test_kustomize_bin_chooses_the_tool():
    report = scan([STAGING], RenderOptions(kustomize_bin=KUSTOMIZE))
    assert placed(report) == {entry for entry in FINDINGS if entry[6] == STAGING}


# --- which paths are what ---

def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_top_level_kustomizations_files_and_charts_of_a_tree(tmp_path, monkeypatch):
    write(tmp_path, {
        "apps/base/kustomization.yaml": "resources: [deploy.yaml]\n",
        "apps/base/deploy.yaml": "kind: Deployment\n",
        "apps/base/unlisted.yaml": "kind: Pod\n",
        "apps/prod/kustomization.yaml": "resources: [../base, ../shared/ns.yaml]\ncomponents: [../comp]\n"
                                        "patches: [{path: ../patches/replicas.yaml}]\n",
        "apps/comp/kustomization.yaml": "kind: Component\n",
        "apps/shared/ns.yaml": "kind: Namespace\n",
        "apps/patches/replicas.yaml": "kind: Deployment\n",
        "apps/lonely/Kustomization": "resources: []\n",
        "loop/a/kustomization.yaml": "resources: [../b]\n",
        "loop/b/kustomization.yaml": "resources: [../a]\n",
        "charts/web/Chart.yaml": "name: web\n",
        "charts/web/templates/x.yaml": "kind: {{ .Values.kind }}\n",
        "charts/web/charts/sub/Chart.yaml": "name: sub\n",
        "plain/svc.yaml": "kind: Service\n",
    })
    monkeypatch.chdir(tmp_path)
    plan = plan_inputs(["."], exclude=["excluded/*"])
    assert plan.files == ["plain/svc.yaml"]
    assert plan.charts == ["charts/web"]
    # prod is built (with base and the component), lonely too; of the cycle, its first member
    assert [kustomization.folder for kustomization in plan.kustomizations] == ["apps/lonely", "apps/prod", "loop/a"]
    assert plan.errors == []


def test_files_a_kustomization_names_are_not_scanned_again_even_when_named(tmp_path, monkeypatch):
    write(tmp_path, {"overlay/kustomization.yaml": "resources: [../raw/deploy.yaml]\n",
                     "raw/deploy.yaml": "kind: Deployment\n", "raw/other.yaml": "kind: Service\n"})
    monkeypatch.chdir(tmp_path)
    plan = plan_inputs(["overlay", "raw", "raw/deploy.yaml"])
    assert plan.files == ["raw/other.yaml"]
    assert [kustomization.folder for kustomization in plan.kustomizations] == ["overlay"]


def test_a_plain_scan_plans_nothing_to_render(tmp_path, monkeypatch):
    write(tmp_path, {"a.yaml": "kind: Service\n", "b/c.yml": "kind: Pod\n"})
    monkeypatch.chdir(tmp_path)
    assert plan_inputs(["a.yaml", "b", "-", "gone.yaml"]) == (
        ["a.yaml", "b/c.yml", "-"], [], [], [("gone.yaml", None, "no such file or directory")])
