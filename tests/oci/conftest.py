"""Policy bundles in OCI registries: the promotion tests' real registries (tests/promote/conftest.py), an empty
Docker config per test, and a bundle cache of each test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.promote.conftest import auth_registry, docker_config, registry  # noqa: F401 — fixtures used here too


@pytest.fixture(autouse=True)
def bundle_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$GATE_CACHE_DIR`` of this test: pulled bundles land in ``bundle_cache / "bundles"``."""
    path = tmp_path_factory.mktemp("gate-cache")
    monkeypatch.setenv("GATE_CACHE_DIR", str(path))
    return path
