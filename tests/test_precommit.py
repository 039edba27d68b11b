"""The pre-commit hooks, run by the real pre-commit against this checkout, and the command behind the
reference hook.

``pre-commit try-repo`` installs the hooks from a git repository into a fresh virtualenv (a pip install of
this package: about a minute). It carries a checkout's staged and modified tracked files but not new
untracked ones, so the test commits a snapshot of the working tree (tracked and untracked files that git
does not ignore) into a scratch repository and tries that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tbyte_policy import reference
from tbyte_policy.cli import app

ROOT = Path(__file__).resolve().parents[1]
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
                "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}

FAILING = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
        - name: api
          image: ghcr.io/acme/api:1.4.2
"""
SCAN_HOOK, REFERENCE_HOOK = "tbyte-policy scan", "tbyte-policy reference check"
RENDER_HOOK_ID = "tbyte-policy-render"
NOT_KUBERNETES = "name: CI\non: [push]\njobs: {}\n"


def git(directory: Path, *arguments: str) -> str:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    return subprocess.run(["git", *arguments], cwd=directory, env={**environment, **GIT_IDENTITY}, check=True,
                          capture_output=True, text=True).stdout


def snapshot_checkout(target: Path) -> Path:
    """A one-commit repository holding this checkout's working tree as it is now."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and "__pycache__" not in source.parts:
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    git(target, "init", "-q")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "snapshot")
    return target


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of tbyte-policy")
    pytest.importorskip("pre_commit")
    return snapshot_checkout(tmp_path_factory.mktemp("hook-repo"))


@pytest.fixture
def project(tmp_path) -> Path:
    """A user's repository: the reference manifests exported where the reference hook looks by default."""
    directory = tmp_path / "project"
    directory.mkdir()
    git(directory, "init", "-q")
    reference.export(directory / "deploy" / "reference", None, None, force=False)
    return directory


def try_repo(hook_repo: Path, project: Path, files: dict[str, str]) -> subprocess.CompletedProcess:
    for name, text in files.items():
        (project / name).write_text(text)
    git(project, "add", "-A")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    # Keeps pre-commit's own store out of the user's home (try-repo installs the hooks in a scratch store).
    environment["PRE_COMMIT_HOME"] = str(hook_repo.parent / "pre-commit-home")
    environment.pop("VIRTUAL_ENV", None)
    environment["SKIP"] = RENDER_HOOK_ID  # it scans whole folders, not these files: see its own test
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "--color", "never",
                           "--verbose", "--files", *files], cwd=project, env=environment, capture_output=True,
                          text=True, timeout=900)


def hook_outcomes(output: str) -> dict[str, str]:
    """``{hook name: Passed|Failed|...}`` from pre-commit's status lines (``name.....Passed``)."""
    outcomes = {}
    for line in output.splitlines():
        name, dots, status = line.partition("...")
        if dots and name.strip() in (SCAN_HOOK, REFERENCE_HOOK):
            outcomes[name.strip()] = status.strip(".").strip()
    return outcomes


def test_hooks_fail_on_a_failing_manifest_and_drift_then_pass_when_clean(hook_repo, project):
    # The bundled reference is clean by contract (CI scans it), so it is the passing manifest.
    passing = reference.show(None)
    drifted = project / "deploy" / "reference" / "backend" / "deployment.yaml"
    drifted.write_text(drifted.read_text().replace("image:", "image:  ", 1))

    failing_run = try_repo(hook_repo, project, {"failing.yaml": FAILING, "passing.yaml": passing,
                                                "workflow.yml": NOT_KUBERNETES})
    output = failing_run.stdout + failing_run.stderr
    assert failing_run.returncode == 1, output
    assert hook_outcomes(output) == {SCAN_HOOK: "Failed", REFERENCE_HOOK: "Failed"}, output
    assert "failing.yaml:13:11: PRB001 readiness-probe-missing [high] container api has no readinessProbe" in output
    assert "13 |         - name: api\n   |           ^^^^ Deployment/default/api\n" in output  # the text format
    assert "backend/deployment.yaml" in output and "differ from the bundled ones" in output

    (project / "failing.yaml").unlink()
    reference.export(project / "deploy" / "reference", None, None, force=True)
    clean_run = try_repo(hook_repo, project, {"passing.yaml": passing, "workflow.yml": NOT_KUBERNETES})
    output = clean_run.stdout + clean_run.stderr
    assert clean_run.returncode == 0, output
    assert hook_outcomes(output) == {SCAN_HOOK: "Passed", REFERENCE_HOOK: "Passed"}, output
    assert "1 non-Kubernetes documents skipped" in output


def test_hook_manifest_declares_both_hooks():
    hooks = {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    scan, drift = hooks["tbyte-policy"], hooks["tbyte-policy-reference"]
    assert (scan["entry"], scan["language"], scan["pass_filenames"], scan["args"]) == (
        "tbyte-policy scan --format text", "python", True, ["--fail-on", "high"])
    assert scan["types_or"] == ["yaml", "json"] and scan["require_serial"] is True
    assert (drift["entry"], drift["pass_filenames"], drift["args"]) == (
        "tbyte-policy reference check", False, ["deploy/reference"])
    render = hooks[RENDER_HOOK_ID]
    assert (render["entry"], render["language"], render["pass_filenames"], render["args"]) == (
        "tbyte-policy scan", "python", False, ["--fail-on", "high", "."])


def test_the_render_hook_command_scans_a_chart_repository(tmp_path, monkeypatch):
    """What the tbyte-policy-render hook runs in a chart repository (pre-commit adds no file names)."""
    pytest.importorskip("helm_python")
    shutil.copytree(ROOT / "tests" / "fixtures" / "charts" / "shop", tmp_path / "charts" / "shop")
    (tmp_path / "charts" / "shop" / "templates" / "deployment.yaml").write_text("{{- /* nothing */ -}}\n")
    monkeypatch.chdir(tmp_path)
    hook = next(hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
                if hook["id"] == RENDER_HOOK_ID)
    result = CliRunner().invoke(app, [*hook["entry"].split()[1:], *hook["args"], "--format", "json"])
    report = json.loads(result.output)
    assert result.exit_code == 1 and report["errors"] == []
    assert {entry["location"]["path"] for entry in report["findings"] if entry["location"]["path"]} == {
        "charts/shop/templates/service.yaml", "charts/shop/charts/redis/templates/statefulset.yaml",
        "charts/shop/charts/worker/templates/cronjob.yaml"}


# --- reference check: the command behind the tbyte-policy-reference hook ---

def test_reference_check_passes_on_a_fresh_export_in_any_namespace(tmp_path):
    runner = CliRunner()
    exported = runner.invoke(app, ["reference", "export", str(tmp_path), "-n", "shop", "--variant", "canary"])
    assert exported.exit_code == 0
    result = runner.invoke(app, ["reference", "check", str(tmp_path), "-n", "shop", "--variant", "canary"])
    assert result.exit_code == 0, result.output
    assert reference.drift(tmp_path, "canary", "shop") == []
    # Files of other variants or the user's own files beside them are none of its business.
    (tmp_path / "notes.yaml").write_text("a: 1\n")
    assert runner.invoke(app, ["reference", "check", str(tmp_path), "-n", "shop", "--variant", "canary"]).exit_code == 0


def test_reference_check_reports_edited_and_missing_files_as_a_diff(tmp_path):
    reference.export(tmp_path, None, None, force=False)
    files = sorted(tmp_path.rglob("*.yaml"))
    edited, missing = files[0], files[1]
    edited.write_text(edited.read_text() + "# local edit\n")
    missing.unlink()
    result = CliRunner().invoke(app, ["reference", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"+++ {edited}\n" in result.stdout and "+# local edit\n" in result.stdout
    assert f"{missing}: missing or unreadable" in result.stdout
    assert "2 reference file(s)" in result.stderr and "reference export" in result.stderr


def test_reference_check_sees_a_namespace_mismatch(tmp_path):
    reference.export(tmp_path, None, "shop", force=False)
    assert reference.drift(tmp_path, None, "shop") == []
    drifted = reference.drift(tmp_path, None, None)
    assert drifted[0].startswith(f"--- bundled/namespace/namespace.yaml\n+++ {tmp_path}/namespace/namespace.yaml\n")
    assert "-  name: tbyte\n+  name: shop\n" in drifted[0]
    result = CliRunner().invoke(app, ["reference", "check", str(tmp_path), "--variant", "nope"])
    assert result.exit_code == 2 and "no variant 'nope'" in result.stderr
