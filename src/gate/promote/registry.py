"""Copy an approved image by digest into the release registry under a tag (OCI distribution API, httpx).

The digest never changes: manifests are fetched by digest, their sha256 is checked against it, and the
exact bytes are PUT back (by digest for an index's children, by tag for the top one); the registry's
``Docker-Content-Digest`` must echo the digest. Blobs go the cheapest way that keeps them intact:
already there (HEAD), cross-repository mount on the same registry, else streamed from source to target.
A target tag that already names the digest is left alone, so a promotion can be re-run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx

from gate.errors import RegistryError
from gate.imageref import DIGEST, Reference, parse, require_digest, require_tag
from gate.promote.auth import RegistryAuth, load_credentials
from gate.promote.hosts import api_base

logger = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ",".join(MANIFEST_TYPES)
#: layers that live outside the registry (Windows base layers): never copied, as Docker does
FOREIGN_TYPES = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
)
#: a manifest larger than this is not a manifest (the distribution registry's own limit is 4 MiB)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
TIMEOUT = httpx.Timeout(30.0, read=300.0)
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class CopyResult:
    """What a promotion did (or, with ``dry_run``, would do) to the target registry."""

    digest: str
    target: str
    operations: list[str] = field(default_factory=list)
    already_present: bool = False
    dry_run: bool = False


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_digest(data: bytes, expected: str, what: str) -> None:
    """Refuse manifest bytes whose sha256 is not ``expected`` (a registry must never substitute content)."""
    actual = sha256_digest(data)
    if actual != expected:
        raise RegistryError(f"{what}: content digest {actual} does not match the requested {expected}; refusing")


def human_size(size: int | None) -> str:
    """``1.2 MB``-style size for operation lines."""
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def _error_detail(response: httpx.Response) -> str:
    """``CODE: message`` from the registry's error body, if it sent one."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        code, message = str(first.get("code", "")), str(first.get("message", ""))
    except Exception:  # noqa: BLE001 — any non-conforming body just means "no detail"
        return ""
    return f"{code}: {message[:200]}" if message else code


class _Repo:
    """One repository on one registry, with the client (and auth) that talks to it."""

    def __init__(self, ref: Reference, client: httpx.Client) -> None:
        self.ref = ref
        self.client = client

    @property
    def label(self) -> str:
        return f"registry {self.ref.registry} repository {self.ref.repository}"

    def url(self, kind: str, reference: str) -> str:
        return f"/v2/{self.ref.repository}/{kind}/{reference}"

    def fail(self, what: str, response: httpx.Response) -> RegistryError:
        detail = _error_detail(response)
        if not detail and response.status_code == 401:
            detail = "UNAUTHORIZED"
        elif not detail and response.status_code == 403:
            detail = "DENIED"
        suffix = f" {detail}" if detail else ""
        return RegistryError(f"{self.label}: {what} failed: HTTP {response.status_code}{suffix}")

    def request(self, method: str, url: str | httpx.URL, what: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.request(method, url, **kwargs)
        except httpx.HTTPError as e:
            where = api_base(self.ref.registry)
            raise RegistryError(f"{self.label}: {what} failed: {type(e).__name__} talking to {where}") from None

    def manifest_digest(self, reference: str) -> str | None:
        """The digest ``reference`` (tag or digest) resolves to, or None when it does not exist."""
        what = f"resolve manifest {reference}"
        response = self.request("HEAD", self.url("manifests", reference), what, headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code == 200 and response.headers.get("Docker-Content-Digest", "").startswith("sha256:"):
            return response.headers["Docker-Content-Digest"]
        # HEAD carries no error body and some registries omit the digest header: ask with GET
        response = self.request("GET", self.url("manifests", reference), what, headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(what, response)
        return sha256_digest(response.content)

    def get_manifest(self, digest: str) -> tuple[bytes, str]:
        """The manifest's exact bytes and media type, checked against ``digest``."""
        what = f"get manifest {digest}"
        response = self.request("GET", self.url("manifests", digest), what, headers={"Accept": ACCEPT})
        if response.status_code != 200:
            raise self.fail(what, response)
        data = response.content
        if len(data) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"{self.label}: manifest {digest} is larger than {MAX_MANIFEST_BYTES} bytes; refusing")
        verify_digest(data, digest, f"{self.label}: manifest")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            declared = json.loads(data).get("mediaType")
        except (json.JSONDecodeError, AttributeError):
            raise RegistryError(f"{self.label}: manifest {digest} is not a JSON object") from None
        media_type = declared or media_type
        if media_type not in MANIFEST_TYPES:
            raise RegistryError(f"{self.label}: manifest {digest} has unsupported media type {media_type!r}")
        return data, media_type

    def put_manifest(self, reference: str, data: bytes, media_type: str, digest: str) -> None:
        """PUT the exact bytes under ``reference`` and check the digest the registry reports."""
        what = f"put manifest {digest} as {reference}"
        response = self.request(
            "PUT", self.url("manifests", reference), what, content=data, headers={"Content-Type": media_type}
        )
        if response.status_code not in (200, 201):
            raise self.fail(what, response)
        echoed = response.headers.get("Docker-Content-Digest")
        if echoed and echoed != digest:
            raise RegistryError(f"{self.label}: {what}: the registry stored it as {echoed}; refusing")

    def has_blob(self, digest: str) -> bool:
        what = f"check blob {digest}"
        response = self.request("HEAD", self.url("blobs", digest), what)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self.fail(what, response)

    def start_upload(self, digest: str, mount_from: str | None = None) -> tuple[bool, str]:
        """POST an upload (optionally a mount): (True, "") when mounted, else (False, upload Location)."""
        params = {"mount": digest, "from": mount_from} if mount_from else None
        what = f"mount blob {digest} from {mount_from}" if mount_from else f"start upload of {digest}"
        response = self.request("POST", f"/v2/{self.ref.repository}/blobs/uploads/", what, params=params)
        if mount_from and response.status_code == 201:
            return True, ""
        if response.status_code != 202 or not response.headers.get("Location"):
            raise self.fail(what, response)
        return False, response.headers["Location"]

    def finish_upload(self, location: str, digest: str, body: Iterator[bytes], size: int | None) -> None:
        """PUT the whole blob to the upload session (query merged, never replaced: it carries ``_state``)."""
        url = self.client.base_url.join(location) if location.startswith("/") else httpx.URL(location)
        url = url.copy_merge_params({"digest": digest})
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        what = f"upload blob {digest}"
        response = self.request("PUT", url, what, content=body, headers=headers)
        if response.status_code not in (201, 204):
            raise self.fail(what, response)


def _client(registry: str, scopes: list[str]) -> httpx.Client:
    """An httpx client for one registry with its credentials and the given token scopes."""
    auth = RegistryAuth(registry, load_credentials(registry), scopes)
    return httpx.Client(base_url=api_base(registry), auth=auth, timeout=TIMEOUT, follow_redirects=True)


class _Copier:
    """Walks one manifest tree from source to target, recording operation lines."""

    def __init__(self, source: _Repo, target: _Repo, dry_run: bool) -> None:
        self.source = source
        self.target = target
        self.dry_run = dry_run
        self.same_registry = source.ref.registry == target.ref.registry
        self.operations: list[str] = []
        self._done_blobs: set[str] = set()

    def copy_manifest(self, digest: str, data: bytes, media_type: str, tag: str | None) -> None:
        """Copy what ``data`` refers to, then the manifest itself (by tag when ``tag``, else by digest)."""
        manifest = json.loads(data)
        if media_type in INDEX_TYPES:
            for child in manifest.get("manifests") or []:
                child_digest = str(child.get("digest", ""))
                if not DIGEST.fullmatch(child_digest):
                    raise RegistryError(f"{self.source.label}: index {digest} names a manifest {child_digest!r}")
                if self.target.manifest_digest(child_digest) == child_digest:
                    self.operations.append(f"manifest {child_digest} already present")
                    continue
                child_data, child_type = self.source.get_manifest(child_digest)
                self.copy_manifest(child_digest, child_data, child_type, None)
        else:
            blobs = [manifest.get("config") or {}] + list(manifest.get("layers") or [])
            for blob in blobs:
                self.copy_blob(blob)
        self.operations.append(f"put manifest {digest} as :{tag}" if tag else f"put manifest {digest} by digest")
        if not self.dry_run:
            self.target.put_manifest(tag or digest, data, media_type, digest)

    def copy_blob(self, descriptor: dict[str, Any]) -> None:
        """HEAD on target, else mount (same registry), else stream from source."""
        digest = str(descriptor.get("digest", ""))
        size = descriptor.get("size") if isinstance(descriptor.get("size"), int) else None
        if not DIGEST.fullmatch(digest):
            raise RegistryError(f"{self.source.label}: a manifest names a blob without a sha256 digest ({digest!r})")
        if digest in self._done_blobs:
            return
        self._done_blobs.add(digest)
        if descriptor.get("mediaType") in FOREIGN_TYPES:
            self.operations.append(f"skip foreign layer {digest}")
            return
        if self.target.has_blob(digest):
            self.operations.append(f"blob {digest} already present")
            return
        src_repo = self.source.ref.repository
        if self.dry_run:
            if self.same_registry:
                self.operations.append(f"mount {digest} from {src_repo}")
            else:
                self.operations.append(f"upload {digest} ({human_size(size)})")
            return
        location = None
        if self.same_registry:
            mounted, location = self.target.start_upload(digest, mount_from=src_repo)
            if mounted:
                self.operations.append(f"mount {digest} from {src_repo}")
                return
            logger.debug("mount of %s from %s refused; uploading instead", digest, src_repo)
        if not location:
            _, location = self.target.start_upload(digest)
        self._stream(digest, location, size)

    def _stream(self, digest: str, location: str, size: int | None) -> None:
        """GET the blob from source and PUT it to the upload session, chunk by chunk."""
        what = f"get blob {digest}"
        try:
            with self.source.client.stream("GET", self.source.url("blobs", digest)) as response:
                if response.status_code != 200:
                    response.read()
                    raise self.source.fail(what, response)
                length = response.headers.get("Content-Length")
                actual = int(length) if length and length.isdigit() else size
                self.target.finish_upload(location, digest, response.iter_bytes(CHUNK), actual)
        except httpx.HTTPError as e:
            raise RegistryError(f"{self.source.label}: {what} failed: {type(e).__name__}") from None
        self.operations.append(f"upload {digest} ({human_size(actual)})")


def copy_image(source: str, target: str, *, dry_run: bool = False) -> CopyResult:
    """Copy ``registry/repo@sha256:D`` to ``registry/repo:TAG`` keeping D; only reads when ``dry_run``."""
    src, dst = require_digest(source, "source image"), require_tag(target, "target")
    assert src.digest is not None
    digest = src.digest
    same = src.registry == dst.registry
    with ExitStack() as stack:
        if same:
            scopes = [f"repository:{dst.repository}:pull,push", f"repository:{src.repository}:pull"]
            if src.repository == dst.repository:
                scopes = scopes[:1]
            client = stack.enter_context(_client(src.registry, scopes))
            src_client = dst_client = client
        else:
            src_client = stack.enter_context(_client(src.registry, [f"repository:{src.repository}:pull"]))
            dst_client = stack.enter_context(_client(dst.registry, [f"repository:{dst.repository}:pull,push"]))
        source_repo, target_repo = _Repo(src, src_client), _Repo(dst, dst_client)
        current = target_repo.manifest_digest(dst.tag or "latest")
        if current == digest:
            return CopyResult(digest, str(dst), [f"{dst} already resolves to {digest}"], True, dry_run)
        data, media_type = source_repo.get_manifest(digest)
        copier = _Copier(source_repo, target_repo, dry_run)
        copier.copy_manifest(digest, data, media_type, dst.tag)
    logger.info("%s %s → %s (%d operations)", "planned" if dry_run else "copied", src, dst, len(copier.operations))
    return CopyResult(digest, str(dst), copier.operations, False, dry_run)


def resolve_digest(ref: str) -> str | None:
    """The digest ``registry/repo:tag`` (or ``@digest``) resolves to now, or None when it does not exist."""
    parsed = parse(ref)
    with _client(parsed.registry, [f"repository:{parsed.repository}:pull"]) as client:
        return _Repo(parsed, client).manifest_digest(parsed.reference)


__all__ = ["ACCEPT", "CopyResult", "copy_image", "resolve_digest", "sha256_digest", "verify_digest"]
