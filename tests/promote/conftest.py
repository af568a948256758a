"""Session-scoped real servers for the promotion tests (see servers.py), and an empty Docker config per test.

Each server starts once per session on a free 127.0.0.1 port in a temp folder and is stopped at the end,
also when tests fail; tests use fresh repository names (``servers.new_repo``) so they do not interfere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.promote.servers import (
    Podman,
    Registry,
    TokenServer,
    start_podman,
    start_registry,
    stop_podman,
    stop_registry,
)

AUTH_USER = "gate-user"
AUTH_PASSWORD = "s3cret-Pa55-word"


@pytest.fixture(autouse=True)
def docker_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DOCKER_CONFIG folder for every test, so the user's ~/.docker never leaks in."""
    folder = tmp_path_factory.mktemp("docker-config")
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    return folder


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry without auth."""
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        stop_registry(reg)


@pytest.fixture(scope="session")
def registry2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A second registry without auth (copies between registries take the upload path)."""
    reg = start_registry(tmp_path_factory.mktemp("registry2"))
    try:
        yield reg
    finally:
        stop_registry(reg)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with htpasswd (bcrypt) auth; ``.user`` / ``.password`` are the only valid credentials."""
    reg = start_registry(tmp_path_factory.mktemp("auth-registry"), htpasswd=(AUTH_USER, AUTH_PASSWORD))
    try:
        yield reg
    finally:
        stop_registry(reg)


@pytest.fixture(scope="session")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    """The stand-in token server (see servers.TokenServer) for ``token_registry``."""
    server = TokenServer(tmp_path_factory.mktemp("token"), AUTH_USER, AUTH_PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory, token_server: TokenServer) -> Iterator[Registry]:
    """A registry with ``auth: token`` backed by ``token_server`` (Bearer challenges)."""
    reg = start_registry(tmp_path_factory.mktemp("token-registry"), token=token_server)
    try:
        yield reg
    finally:
        stop_registry(reg)


@pytest.fixture(scope="session")
def podman_socket(
    tmp_path_factory: pytest.TempPathFactory, registry: Registry, auth_registry: Registry
) -> Iterator[Podman]:
    """podman's Docker API; the test registries are marked insecure (plain HTTP) in its registries.conf."""
    pod = start_podman(tmp_path_factory.mktemp("podman"), [registry.host, auth_registry.host])
    try:
        yield pod
    finally:
        stop_podman(pod)
