"""push_from_daemon against podman's Docker API and a real registry."""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gate.errors import RegistryError
from gate.promote.daemon import push_from_daemon
from gate.promote.registry import resolve_digest
from tests.promote.servers import Podman, Registry, free_port, manifest_digest, new_repo

pytestmark = pytest.mark.server


def _context(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture(scope="module")
def built(podman_socket: Podman) -> Iterator[str]:
    """A ``FROM scratch`` image built in podman; yields its local name."""
    import docker

    name = f"gate-test/app-{uuid.uuid4().hex[:8]}:built"
    context = _context({
        "Containerfile": b"FROM scratch\nCOPY hello.txt /hello.txt\nLABEL org.example.test=gate\n",
        "hello.txt": f"hello {uuid.uuid4()}\n".encode(),
    })
    client = docker.DockerClient(base_url=podman_socket.socket_url)
    try:
        client.images.build(fileobj=context, custom_context=True, dockerfile="Containerfile", tag=name)
        yield name
    finally:
        client.close()


def _push_to_staging(podman: Podman, image: str, reg: Registry) -> tuple[str, str]:
    """What CI does before promotion: push the daemon's image to a staging repo; (staging ref, digest)."""
    import docker

    staging = f"{reg.host}/{new_repo('staging')}"
    client = docker.DockerClient(base_url=podman.socket_url)
    try:
        client.images.get(image).tag(staging, tag="ci")
        items: list[dict[str, Any]] = list(client.api.push(staging, tag="ci", stream=True, decode=True))
    finally:
        client.close()
    assert not [i for i in items if "error" in i], items
    digest = resolve_digest(f"{staging}:ci")
    assert digest is not None
    return staging, digest


def test_push_from_daemon_keeps_the_approved_digest(
    podman_socket: Podman, registry: Registry, built: str
) -> None:
    staging, approved = _push_to_staging(podman_socket, built, registry)
    target_repo = new_repo("release")
    target = f"{registry.host}/{target_repo}:1.0"

    result = push_from_daemon(built, target, approved, docker_host=podman_socket.socket_url)

    assert result.digest == approved and result.target == target and not result.already_present
    assert manifest_digest(registry, target_repo, "1.0") == approved
    assert resolve_digest(target) == result.digest
    assert result.operations[-1] == f"put manifest {approved} as :1.0"
    assert f"push {registry.host}/{target_repo}:gate-push-{approved[7:23]} ({approved})" in result.operations


def test_docker_host_from_the_environment_and_lookup_by_repo_digest(
    podman_socket: Podman, registry: Registry, built: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging, approved = _push_to_staging(podman_socket, built, registry)
    monkeypatch.setenv("DOCKER_HOST", podman_socket.socket_url)
    target = f"{registry.host}/{new_repo('release')}:2.0"

    # the source is named as a decision record names it: REF:TAG@DIGEST
    result = push_from_daemon(f"{staging}:ci@{approved}", target, approved)

    assert resolve_digest(target) == result.digest == approved


def test_a_different_pushed_digest_is_refused_and_the_release_tag_is_untouched(
    podman_socket: Podman, registry: Registry, built: str
) -> None:
    wrong = "sha256:" + "e" * 64
    target_repo = new_repo("release")
    with pytest.raises(RegistryError) as err:
        push_from_daemon(built, f"{registry.host}/{target_repo}:1.0", wrong, docker_host=podman_socket.socket_url)
    message = err.value.diagnostics()
    assert "not the approved" in message and wrong in message and registry.host in message
    assert manifest_digest(registry, target_repo, "1.0") is None
    assert manifest_digest(registry, target_repo, "gate-push-" + "e" * 16) is not None  # the staging tag


def test_push_error_in_the_stream_is_a_registry_error(
    podman_socket: Podman, registry2: Registry, built: str
) -> None:
    # registry2 is not in podman's registries.conf, so podman insists on HTTPS and the push fails
    target_repo = new_repo("release")
    target = f"{registry2.host}/{target_repo}:1.0"
    with pytest.raises(RegistryError) as err:
        push_from_daemon(built, target, "sha256:" + "a" * 64, docker_host=podman_socket.socket_url)
    message = err.value.diagnostics()
    assert message.startswith(f"Docker daemon: push of {registry2.host}/{target_repo}:gate-push-")
    assert "HTTP response to HTTPS client" in message
    assert manifest_digest(registry2, target_repo, "1.0") is None


def test_registry_refusing_without_credentials(podman_socket: Podman, auth_registry: Registry, built: str) -> None:
    target = f"{auth_registry.host}/{new_repo('release')}:1.0"
    with pytest.raises(RegistryError) as err:
        push_from_daemon(built, target, "sha256:" + "a" * 64, docker_host=podman_socket.socket_url)
    message = err.value.diagnostics()
    assert "UNAUTHORIZED" in message and auth_registry.host in message


def test_push_is_idempotent(podman_socket: Podman, registry: Registry, built: str) -> None:
    staging, approved = _push_to_staging(podman_socket, built, registry)
    target = f"{registry.host}/{new_repo('release')}:1.0"
    push_from_daemon(built, target, approved, docker_host=podman_socket.socket_url)

    again = push_from_daemon(built, target, approved, docker_host=podman_socket.socket_url)

    assert again.already_present and again.digest == approved


def test_push_with_credentials_from_docker_config(
    podman_socket: Podman, registry: Registry, auth_registry: Registry, built: str, docker_config: Any
) -> None:
    import json

    staging, approved = _push_to_staging(podman_socket, built, registry)
    (docker_config / "config.json").write_text(json.dumps(
        {"auths": {auth_registry.host: {"username": auth_registry.user, "password": auth_registry.password}}}
    ))
    target_repo = new_repo("release")
    target = f"{auth_registry.host}/{target_repo}:1.0"

    result = push_from_daemon(built, target, approved, docker_host=podman_socket.socket_url)

    assert manifest_digest(auth_registry, target_repo, "1.0") == result.digest == approved


def test_stopped_registry_is_a_registry_error(podman_socket: Podman, built: str) -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError, match=f"registry {host}.*ConnectError"):
        push_from_daemon(built, f"{host}/gate/x:1", "sha256:" + "a" * 64, docker_host=podman_socket.socket_url)


def test_unknown_image_and_unreachable_daemon(podman_socket: Podman, registry: Registry, tmp_path: Any) -> None:
    with pytest.raises(RegistryError, match="not found"):
        push_from_daemon(
            "gate-test/none:missing", f"{registry.host}/{new_repo()}:1", "sha256:" + "a" * 64,
            docker_host=podman_socket.socket_url,
        )
    with pytest.raises(RegistryError, match="Docker daemon"):
        push_from_daemon(
            "gate-test/none:missing", f"{registry.host}/{new_repo()}:1", "sha256:" + "a" * 64,
            docker_host=f"unix://{tmp_path}/no.sock",
        )
