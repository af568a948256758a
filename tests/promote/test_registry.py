"""copy_image / resolve_digest against real docker-registry instances (no auth here; see test_auth.py)."""

from __future__ import annotations

import json

import pytest

from gate.errors import RegistryError, UsageError
from gate.registry.hosts import api_base, is_loopback
from gate.promote.registry import copy_image, resolve_digest
from gate.registry.client import sha256_digest, verify_digest
from tests.promote.servers import Registry, blob_bytes, manifest_digest, new_repo, push_image, push_index

pytestmark = pytest.mark.server


def test_copy_within_one_registry_mounts_blobs_and_keeps_the_digest(registry: Registry) -> None:
    src, dst = new_repo("staging"), new_repo("release")
    image = push_image(registry, src)

    result = copy_image(f"{registry.host}/{src}@{image.digest}", f"{registry.host}/{dst}:1.0")

    assert not result.already_present
    assert result.digest == image.digest
    assert result.target == f"{registry.host}/{dst}:1.0"
    mounts = [op for op in result.operations if op.startswith("mount ")]
    assert len(mounts) == 3 and all(op.endswith(f"from {src}") for op in mounts)  # config + 2 layers
    assert result.operations[-1] == f"put manifest {image.digest} as :1.0"
    assert manifest_digest(registry, dst, "1.0") == image.digest
    assert resolve_digest(f"{registry.host}/{dst}:1.0") == image.digest
    for blob in (image.config, *image.layers):
        assert blob_bytes(registry, dst, blob) == blob_bytes(registry, src, blob) is not None


def test_copy_between_registries_uploads_blobs(registry: Registry, registry2: Registry) -> None:
    src, dst = new_repo("staging"), new_repo("release")
    image = push_image(registry, src, content=b"x" * 200_000)

    result = copy_image(f"{registry.host}/{src}@{image.digest}", f"{registry2.host}/{dst}:v2")

    uploads = [op for op in result.operations if op.startswith("upload ")]
    assert len(uploads) == 3 and not any(op.startswith("mount ") for op in result.operations)
    assert manifest_digest(registry2, dst, "v2") == image.digest
    for blob in (image.config, *image.layers):
        data = blob_bytes(registry2, dst, blob)
        assert data is not None and sha256_digest(data) == blob


def test_copy_of_an_image_index_copies_every_platform(registry: Registry, registry2: Registry) -> None:
    src, dst = new_repo("staging"), new_repo("release")
    index = push_index(registry, src)

    result = copy_image(f"{registry.host}/{src}@{index.digest}", f"{registry2.host}/{dst}:multi")

    assert manifest_digest(registry2, dst, "multi") == index.digest
    for child in index.children:
        assert manifest_digest(registry2, dst, child.digest) == child.digest
        assert f"put manifest {child.digest} by digest" in result.operations
        for blob in (child.config, *child.layers):
            assert blob_bytes(registry2, dst, blob) is not None
    assert result.operations[-1] == f"put manifest {index.digest} as :multi"


def test_copy_is_idempotent(registry: Registry) -> None:
    src, dst = new_repo("staging"), new_repo("release")
    image = push_image(registry, src)
    source, target = f"{registry.host}/{src}@{image.digest}", f"{registry.host}/{dst}:1.0"
    copy_image(source, target)
    log_size = registry.log.stat().st_size

    again = copy_image(source, target)

    assert again.already_present and again.digest == image.digest
    assert not any(op.startswith(("put ", "mount ", "upload ")) for op in again.operations)
    new_log = registry.log.read_bytes()[log_size:].decode(errors="replace")
    assert '"PUT ' not in new_log and '"POST ' not in new_log


def test_retag_to_a_different_digest_overwrites(registry: Registry) -> None:
    src, dst = new_repo("staging"), new_repo("release")
    first, second = push_image(registry, src, content=b"one"), push_image(registry, src, content=b"two")
    copy_image(f"{registry.host}/{src}@{first.digest}", f"{registry.host}/{dst}:live")

    result = copy_image(f"{registry.host}/{src}@{second.digest}", f"{registry.host}/{dst}:live")

    assert not result.already_present
    assert resolve_digest(f"{registry.host}/{dst}:live") == second.digest
    assert result.operations[-1] == f"put manifest {second.digest} as :live"


def test_dry_run_changes_nothing(registry: Registry, registry2: Registry) -> None:
    src, dst = new_repo("staging"), new_repo("release")
    image = push_image(registry, src)

    same = copy_image(f"{registry.host}/{src}@{image.digest}", f"{registry.host}/{dst}:1.0", dry_run=True)
    other = copy_image(f"{registry.host}/{src}@{image.digest}", f"{registry2.host}/{dst}:1.0", dry_run=True)

    assert same.dry_run and sum(op.startswith("mount ") for op in same.operations) == 3
    assert sum(op.startswith("upload ") for op in other.operations) == 3
    assert same.operations[-1] == other.operations[-1] == f"put manifest {image.digest} as :1.0"
    assert manifest_digest(registry, dst, "1.0") is None
    assert manifest_digest(registry2, dst, "1.0") is None
    assert blob_bytes(registry, dst, image.config) is None
    assert blob_bytes(registry2, dst, image.config) is None


def test_missing_source_digest_is_a_registry_error(registry: Registry) -> None:
    src = new_repo("staging")
    push_image(registry, src)
    missing = "sha256:" + "0" * 64

    with pytest.raises(RegistryError) as err:
        copy_image(f"{registry.host}/{src}@{missing}", f"{registry.host}/{new_repo()}:1.0")

    message = err.value.diagnostics()
    assert "MANIFEST_UNKNOWN" in message and "404" in message
    assert registry.host in message and src in message


def test_unreachable_registry_is_a_registry_error(registry: Registry) -> None:
    from tests.promote.servers import free_port

    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError, match=f"registry {host}.*ConnectError"):
        copy_image(f"{host}/a/b@sha256:{'1' * 64}", f"{host}/a/c:1")
    with pytest.raises(RegistryError, match=host):
        resolve_digest(f"{host}/a/c:1")


def test_resolve_digest_of_a_missing_tag_or_repository_is_none(registry: Registry) -> None:
    src = new_repo("staging")
    image = push_image(registry, src, "present")

    assert resolve_digest(f"{registry.host}/{src}:present") == image.digest
    assert resolve_digest(f"{registry.host}/{src}:absent") is None
    assert resolve_digest(f"{registry.host}/{new_repo('nothing')}:1") is None


def test_manifest_whose_bytes_do_not_match_the_digest_is_refused() -> None:
    body = json.dumps({"schemaVersion": 2}).encode()
    verify_digest(body, sha256_digest(body), "m")
    with pytest.raises(RegistryError, match="does not match the requested"):
        verify_digest(body + b" ", sha256_digest(body), "registry r repository x: manifest")


def test_source_and_target_must_be_pinned_and_tagged(registry: Registry) -> None:
    with pytest.raises(UsageError, match="not pinned by digest"):
        copy_image(f"{registry.host}/a/b:1", f"{registry.host}/a/c:1")
    with pytest.raises(UsageError, match="REGISTRY/REPO:TAG"):
        copy_image(f"{registry.host}/a/b@sha256:{'1' * 64}", f"{registry.host}/a/c")


def test_api_base_uses_plain_http_only_for_loopback() -> None:
    assert api_base("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert api_base("localhost:5000") == "http://localhost:5000"
    assert api_base("[::1]:5000") == "http://[::1]:5000"
    assert api_base("ghcr.io") == "https://ghcr.io"
    assert api_base("10.0.0.1:5000") == "https://10.0.0.1:5000"
    assert api_base("docker.io") == "https://registry-1.docker.io"
    assert is_loopback("127.1.2.3") and not is_loopback("localhost.example.com")
