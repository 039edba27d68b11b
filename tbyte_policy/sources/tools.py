"""Running the external renderers (``helm``, ``kustomize``, ``kubectl kustomize``): found on PATH, run with a
timeout, offline, and with no configuration of the user's (kubeconfig, Helm repositories) to read."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from typing import NamedTuple

from tbyte_policy.sources import ToolMissing

__all__ = ["ToolFailed", "ToolMissing", "ToolResult", "find_executable", "offline_environment", "run_tool"]

# An address nothing listens on: a tool that tries to fetch something (a remote kustomize base, a chart
# dependency) fails at once instead of reaching the network.
_NO_PROXY_HERE = "http://127.0.0.1:9"


class ToolResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


class ToolFailed(Exception):
    """The tool could not be run to the end (timeout, not executable)."""


def find_executable(name: str) -> str | None:
    """``name`` when it is a path to an executable, else where PATH has it."""
    if os.sep in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    return shutil.which(name)


def offline_environment(home: str) -> dict[str, str]:
    """The process environment for a renderer: the user's PATH and locale, nothing that reaches a cluster or a
    registry. ``home`` is an empty folder that stands for the tools' config, cache and data homes."""
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    environment = {key: value for key, value in os.environ.items() if key in keep}
    environment.update({
        "HOME": home,
        "KUBECONFIG": os.devnull,
        "HELM_CONFIG_HOME": os.path.join(home, "config"),
        "HELM_CACHE_HOME": os.path.join(home, "cache"),
        "HELM_DATA_HOME": os.path.join(home, "data"),
        "XDG_CONFIG_HOME": os.path.join(home, "config"),
        "XDG_CACHE_HOME": os.path.join(home, "cache"),
        "HTTP_PROXY": _NO_PROXY_HERE, "HTTPS_PROXY": _NO_PROXY_HERE,
        "http_proxy": _NO_PROXY_HERE, "https_proxy": _NO_PROXY_HERE,
        "NO_PROXY": "", "no_proxy": "",
        "GIT_ALLOW_PROTOCOL": "file",  # kustomize clones remote bases with git
        "GIT_TERMINAL_PROMPT": "0",
    })
    return environment


def run_tool(command: Sequence[str], *, timeout: float, cwd: str | None = None) -> ToolResult:
    """Run a renderer offline and wait at most ``timeout`` seconds for it."""
    with tempfile.TemporaryDirectory(prefix="tbyte-policy-") as home:
        try:
            completed = subprocess.run(list(command), capture_output=True, text=True, encoding="utf-8",
                                       errors="replace", timeout=timeout, cwd=cwd, env=offline_environment(home),
                                       stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise ToolFailed(f"{os.path.basename(command[0])} did not finish within {timeout:g} s") from None
        except OSError as exc:
            raise ToolFailed(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    return ToolResult(completed.returncode, completed.stdout, completed.stderr)
