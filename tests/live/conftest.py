"""Fixtures for the live-mode tests: a real HTTP Kubernetes API double."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest

from .k8s_api_server import CRD_GROUPS, FakeK8sServer, Knobs, kubeconfig_yaml

HERE = Path(__file__).parent
NO_LIVE_EXTRA = "the live tests need the `live` extra (pip install -e '.[test,live]'): kubernetes is not installed"


def _live_extra_installed() -> bool:
    try:
        return importlib.util.find_spec("kubernetes") is not None
    except ValueError:  # sys.modules holds None for it: importing it is blocked
        return False


def pytest_collection_modifyitems(config, items) -> None:
    if _live_extra_installed():
        return
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.skip(reason=NO_LIVE_EXTRA))


@dataclass
class RunningServer:
    server: FakeK8sServer
    kubeconfig_path: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self):
        return self.server.requests

    @property
    def knobs(self) -> Knobs:
        return self.server.knobs

    def __getattr__(self, name):  # requests_for, count_by_resource, methods, ...
        return getattr(self.server, name)


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def k8s_server(tmp_path: Path):
    """Factory: ``k8s_server(objects=[...], installed_crds=[...], knobs=Knobs(...), **knob_fields)``;
    ``tls=(cert, key)`` serves HTTPS, ``certificate_authority=`` puts a CA file in the kubeconfig.

    ``installed_crds`` defaults to every known CRD group; pass ``()`` for none.
    Returns a :class:`RunningServer` with ``.url``, ``.kubeconfig_path`` (context
    ``test``, current), ``.requests`` and mutable ``.knobs``.
    """
    started: list[FakeK8sServer] = []

    def make(objects=(), installed_crds=CRD_GROUPS, knobs: Knobs | None = None,
             context_namespace: str | None = None, tls: tuple[str, str] | None = None,
             certificate_authority: str | None = None, **knob_fields) -> RunningServer:
        knobs = knobs or Knobs()
        for name, value in knob_fields.items():
            if not hasattr(knobs, name):
                raise TypeError(f"unknown knob {name!r}")
            setattr(knobs, name, value)
        server = FakeK8sServer(objects, installed_crds, knobs, tls).start()
        started.append(server)
        path = tmp_path / f"kubeconfig-{len(started)}"
        path.write_text(kubeconfig_yaml(server.url, namespace=context_namespace,
                                        certificate_authority=certificate_authority))
        return RunningServer(server, str(path))

    yield make
    for server in started:
        server.stop()
