"""The image the audit CronJob runs: its Containerfile builds the wheel from the files it copies, installs it
with the `live` extra and runs it as a non-root user on a read-only root. No container engine is needed
here: the test builds the wheel the same way, from the same files, installs it the same way into a fresh
virtual environment, and runs the installed CLI from there — a live audit that publishes included.
(.ci/run builds and runs the image itself where a container engine answers.)"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from tbyte_policy import __version__

ROOT = Path(__file__).resolve().parents[1]
CONTAINERFILE = ROOT / "Containerfile"
CRONJOB = ROOT / "reference_manifests" / "audit" / "cronjob.yaml"
IMAGE = f"ghcr.io/tbyte/tbyte-policy:{__version__}"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            found.append((keyword.upper(), " ".join(arguments.split())))
    return found


def stages(text: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for keyword, arguments in instructions(text):
        if keyword == "FROM":
            current = found.setdefault(arguments.split()[-1], [])
        elif current is not None:
            current.append((keyword, arguments))
    return found


STAGES = stages(CONTAINERFILE.read_text())
BUILD, RUNTIME = STAGES["build"], STAGES["runtime"]


def test_the_containerfile_is_two_stages_and_its_runtime_runs_as_a_non_root_user():
    assert list(STAGES) == ["build", "runtime"]
    assert ("RUN", "python -m build --wheel --outdir /dist .") in BUILD
    assert ("COPY", "--from=build /dist /dist") in RUNTIME
    assert any(keyword == "RUN" and '"$(ls /dist/tbyte_policy-*.whl)[live]"' in arguments
               for keyword, arguments in RUNTIME)
    assert ("ENTRYPOINT", '["tbyte-policy"]') in RUNTIME
    (user,) = [arguments for keyword, arguments in RUNTIME if keyword == "USER"]
    cronjob = yaml.safe_load(CRONJOB.read_text())
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    # numeric, so the kubelet can verify runAsNonRoot; the same IDs as the CronJob's pod
    assert user == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == "10001:10001"
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {mount["mountPath"] for mount in container["volumeMounts"]} == {"/tmp"}
    assert {"name": "HOME", "value": "/tmp"} in container["env"]
    assert f"docker build -f Containerfile -t {IMAGE} ." in (ROOT / "README.md").read_text()
    assert f"docker build -f Containerfile -t {IMAGE} ." in CONTAINERFILE.read_text()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from exactly the files the build stage copies, installed with `[live]` into a venv."""
    work = tmp_path_factory.mktemp("image")
    source = work / "src"
    source.mkdir()
    for keyword, arguments in BUILD:
        if keyword == "COPY":
            *paths, _ = shlex.split(arguments)
            for path in paths:
                origin = ROOT / path
                if origin.is_dir():
                    shutil.copytree(origin, source / path, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(origin, source / path)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(source)],
                   check=True, capture_output=True, text=True, timeout=600)
    (wheel,) = (work / "dist").glob("tbyte_policy-*.whl")
    environment = work / "venv"
    venv.create(environment, with_pip=True)
    subprocess.run([str(environment / "bin" / "pip"), "install", "-q", f"{wheel}[live]"], check=True,
                   capture_output=True, text=True, timeout=900)
    return environment


def run(environment: Path, *args: str, home: Path, program: str = "tbyte-policy") -> subprocess.CompletedProcess:
    """The installed CLI as the image runs it: its own venv, PYTHONDONTWRITEBYTECODE, HOME a directory
    it may not write (the cache goes nowhere: a read-only root without the /tmp volume)."""
    variables = {key: value for key, value in os.environ.items()
                 if not key.startswith(("PYTHON", "VIRTUAL_ENV", "XDG_", "TBYTE_POLICY", "KUBE"))
                 and key.upper() not in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}
    variables.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1", NO_PROXY="127.0.0.1,localhost")
    return subprocess.run([str(environment / "bin" / program), *args], capture_output=True, text=True,
                          env=variables, cwd=home.parent.parent, timeout=300)


@pytest.fixture
def read_only_home(tmp_path) -> Path:
    """A HOME nothing can be written under, not even by root: its parent is a file."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    return blocker / "home"


def test_the_installed_cli_runs_from_its_own_environment(installed, read_only_home):
    located = run(installed, "-c", "import tbyte_policy, kubernetes; print(tbyte_policy.__file__)",
                  home=read_only_home, program="python")
    assert located.returncode == 0 and located.stdout.startswith(str(installed)), located
    version = run(installed, "--version", home=read_only_home)
    assert (version.returncode, version.stdout) == (0, f"tbyte-policy {__version__}\n")
    scan = run(installed, "scan", "--format", "json", home=read_only_home)
    assert scan.returncode == 0, scan.stderr
    assert json.loads(scan.stdout)["summary"]["findings"] == 0  # the bundled reference, clean
    assert read_only_home.parent.read_text() == ""  # nothing could be written, and nothing needed to be


def test_the_installed_cli_audits_and_publishes(installed, read_only_home, tmp_path):
    from tests.live.cluster_fixtures import NS, cluster
    from tests.live.k8s_api_server import FakeK8sServer, kubeconfig_yaml

    server = FakeK8sServer(cluster().objects).start()
    try:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(kubeconfig_yaml(server.url))
        audit = run(installed, "live", "--kubeconfig", str(kubeconfig), "--namespace", NS, "--publish",
                    "--format", "json", home=read_only_home)
    finally:
        server.stop()
    assert audit.returncode == 0, audit.stderr
    assert json.loads(audit.stdout)["mode"] == "live"
    assert audit.stderr == f"tbyte-policy: PolicyReport {NS}/tbyte-policy created: 0 results (none)\n"
    assert [request.method for request in server.requests if request.method != "GET"] == ["PATCH"]
