"""Fixtures for the reconciler: the Kubernetes API emulator, a gate Cluster on it, kubeconfig files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reconcile.emulator import EmulatorThread, write_kubeconfig

__all__ = ["write_kubeconfig"]  # for CLI tests: a --kubeconfig file for the emulator's URL


@pytest.fixture
def cluster_server() -> Iterator[EmulatorThread]:
    """A fresh emulated API server for one test: ``.url``, ``.emulator`` (state, refusals), ``.set_status``."""
    server = EmulatorThread()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster(cluster_server: EmulatorThread) -> Iterator[object]:
    """A gate ``Cluster`` pointed at ``cluster_server``."""
    from gate.reconcile.kube import Cluster

    with Cluster(host=cluster_server.url, timeout_s=10) as c:
        yield c


@pytest.fixture
def kubeconfig(cluster_server: EmulatorThread, tmp_path: Path) -> Path:
    """A kubeconfig file for ``cluster_server``."""
    return write_kubeconfig(tmp_path / "kubeconfig", cluster_server.url)
