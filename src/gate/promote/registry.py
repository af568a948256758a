"""Copy an approved image by digest into the release registry under a tag (client: ``gate.registry``).

The digest never changes: manifests are fetched by digest, their sha256 is checked against it, and the
exact bytes are PUT back (by digest for an index's children, by tag for the top one); the registry's
``Docker-Content-Digest`` must echo the digest. Blobs go the cheapest way that keeps them intact:
already there (HEAD), cross-repository mount on the same registry, else streamed from source to target.
A target tag that already names the digest is left alone, so a promotion can be re-run.
"""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx

from gate.errors import RegistryError
from gate.imageref import DIGEST, parse, require_digest, require_tag
from gate.registry.client import CHUNK, INDEX_TYPES, Repository, open_client, pull_scope, push_scope

logger = logging.getLogger(__name__)

#: layers that live outside the registry (Windows base layers): never copied, as Docker does
FOREIGN_TYPES = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
)


@dataclass(frozen=True)
class CopyResult:
    """What a promotion did (or, with ``dry_run``, would do) to the target registry."""

    digest: str
    target: str
    operations: list[str] = field(default_factory=list)
    already_present: bool = False
    dry_run: bool = False


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


class _Copier:
    """Walks one manifest tree from source to target, recording operation lines."""

    def __init__(self, source: Repository, target: Repository, dry_run: bool) -> None:
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
            scopes = [push_scope(dst), pull_scope(src)]
            if src.repository == dst.repository:
                scopes = scopes[:1]
            client = stack.enter_context(open_client(src.registry, scopes))
            src_client = dst_client = client
        else:
            src_client = stack.enter_context(open_client(src.registry, [pull_scope(src)]))
            dst_client = stack.enter_context(open_client(dst.registry, [push_scope(dst)]))
        source_repo, target_repo = Repository(src, src_client), Repository(dst, dst_client)
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
    with open_client(parsed.registry, [pull_scope(parsed)]) as client:
        return Repository(parsed, client).manifest_digest(parsed.reference)


__all__ = ["CopyResult", "copy_image", "resolve_digest"]
