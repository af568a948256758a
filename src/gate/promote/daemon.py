"""Promote an image that only a Docker daemon has: push it, check the digest, then tag it in the registry.

A daemon push may rebuild the manifest (and re-compress layers), so the digest the registry ends up with
can differ from the approved one. That is the point of the check: the image is pushed under a staging
tag (``gate-push-<digest prefix>``) in the target repository, the digest the registry holds there must
equal ``expected_digest``, and only then is the release tag set to it by a registry copy (same digest).
So a refused push never moves the release tag.
Push failures arrive as ``{"error": ...}`` items in the stream, not as exceptions; each becomes a
RegistryError. ``DOCKER_HOST`` (or ``docker_host``) selects the daemon; podman's API works too.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gate.errors import RegistryError
from gate.redact import redact
from gate.imageref import Reference, join, require_tag, same_repository, split
from gate.promote.registry import CopyResult, copy_image, resolve_digest
from gate.registry.auth import load_credentials

logger = logging.getLogger(__name__)

_STATUS_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """The daemon's message without credentials, cut to one short line."""
    return " ".join(redact(text, secrets).split())[:300]


def _find_image(client: Any, source: str, expected_digest: str) -> Any:
    """The daemon's image for ``source``: by the reference itself, by ``name:tag`` without the digest, by a
    RepoDigest carrying the source's (or expected) digest, or the only image of that repository.

    Daemons record RepoDigests differently (podman keeps its local manifest's digest, not the pushed one),
    so the looser matches are allowed: the digest check after the push is what decides."""
    import docker.errors

    names = [source]
    repository, tag, digest = split(source)
    if digest and tag:
        names.append(join(repository, tag, None))
    for candidate in names:
        try:
            return client.images.get(candidate)
        except docker.errors.ImageNotFound:
            continue
        except docker.errors.APIError as e:
            raise RegistryError(f"Docker daemon: cannot look up image {candidate}: {e.explanation or e}") from None
    wanted = {expected_digest} | ({digest} if digest else set())
    try:
        images = client.images.list()
    except docker.errors.APIError as e:
        raise RegistryError(f"Docker daemon: cannot list images: {e.explanation or e}") from None
    for image in images:
        if any(rd.rsplit("@", 1)[-1] in wanted for rd in image.attrs.get("RepoDigests") or []):
            return image
    same_repo = [
        image for image in images
        if any(same_repository(t, repository) for t in image.attrs.get("RepoTags") or [])
    ]
    if len(same_repo) == 1:
        return same_repo[0]
    raise RegistryError(f"Docker daemon: image {source} not found (neither by name nor by repo digest)")


def push_from_daemon(source: str, target: str, expected_digest: str, *, docker_host: str | None = None) -> CopyResult:
    """Tag the daemon's ``source`` image as ``target`` (REGISTRY/REPO:TAG), push it, refuse a digest change."""
    import docker
    import docker.errors

    ref = require_tag(target, "target")
    credentials = load_credentials(ref.registry)
    secrets = credentials.secrets if credentials else ()
    repository = ref.daemon_name
    auth_config = None
    if credentials is not None:
        auth_config = (
            {"identitytoken": credentials.identity_token}
            if credentials.identity_token
            else {"username": credentials.username, "password": credentials.password}
        )
    if resolve_digest(str(ref)) == expected_digest:
        return CopyResult(expected_digest, str(ref), [f"{ref} already resolves to {expected_digest}"], True, False)
    # Push under a staging tag first, so the release tag never names a digest that was not approved.
    staging = Reference(ref.registry, ref.repository, f"gate-push-{expected_digest.removeprefix('sha256:')[:16]}")
    operations: list[str] = []
    try:
        client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
    except docker.errors.DockerException as e:
        raise RegistryError(f"Docker daemon: cannot connect ({_scrub(str(e), secrets)})") from None
    try:
        image = _find_image(client, source, expected_digest)
        if not image.tag(repository, tag=staging.tag):
            raise RegistryError(f"Docker daemon: tagging {source} as {staging} failed")
        operations.append(f"tag {image.id} as {staging}")
        pushed = None
        stream = client.api.push(repository, tag=staging.tag, stream=True, decode=True, auth_config=auth_config)
        for item in stream:
            if not isinstance(item, dict):
                continue
            if item.get("error") or item.get("errorDetail"):
                message = item.get("error") or (item.get("errorDetail") or {}).get("message", "")
                raise RegistryError(f"Docker daemon: push of {staging} failed: {_scrub(str(message), secrets)}")
            aux = item.get("aux")
            if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                pushed = aux["Digest"]
            match = _STATUS_DIGEST.search(str(item.get("status", "")))
            if match and pushed is None:
                pushed = match.group(1)
    except docker.errors.APIError as e:
        raise RegistryError(
            f"Docker daemon: push of {staging} failed: {_scrub(str(e.explanation or e), secrets)}"
        ) from None
    except docker.errors.DockerException as e:
        raise RegistryError(f"Docker daemon: {type(e).__name__}: {_scrub(str(e), secrets)}") from None
    finally:
        client.close()
    in_registry = resolve_digest(str(staging))
    if in_registry is None:
        raise RegistryError(f"registry {ref.registry}: {staging} does not resolve after the daemon pushed it")
    if pushed is not None and pushed != in_registry:
        raise RegistryError(f"registry {ref.registry}: the daemon reported {pushed} but {staging} is {in_registry}")
    operations.append(f"push {staging} ({in_registry})")
    if in_registry != expected_digest:
        raise RegistryError(
            f"registry {ref.registry}: the daemon pushed {staging} as {in_registry}, not the approved "
            f"{expected_digest}; refusing, {ref} left unchanged (a daemon push may rebuild the manifest)"
        )
    copied = copy_image(str(staging.with_digest(in_registry)), str(ref))
    operations.extend(copied.operations)
    logger.info("pushed %s from the daemon and tagged it %s (%s)", staging, ref, in_registry)
    return CopyResult(in_registry, str(ref), operations, False, False)
