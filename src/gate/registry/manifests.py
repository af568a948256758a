"""What an image's manifest says about platforms: an image index (or Docker manifest list) and its
per-platform manifests, or a single image manifest.

The bytes are judged against the digest they must have (``read_manifest``): a manifest file handed to
``gate evaluate --image-manifest`` cannot speak for another image. Nothing here talks to a registry
(``gate.registry.client`` fetches; this module reads what was fetched or saved), so it is cheap to
import and works offline.

Platforms are written ``os/architecture[/variant]``, normalised as containerd normalises them
(``gate.models.normalize_platform``): ``linux/arm64/v8`` is ``linux/arm64``, ``x86_64`` is ``amd64``.
An index entry that is not a runnable image — a BuildKit attestation manifest
(``vnd.docker.reference.type: attestation-manifest``) or one whose platform is ``unknown/unknown`` — is
left out of the platforms. An image entry that states no platform is kept as ``unknown``: no report can
cover it, so the policy denies rather than guess (fail closed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from gate.errors import UsageError
from gate.imageref import DIGEST
from gate.models import normalize_platform

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
#: a manifest larger than this is not a manifest (the distribution registry's own limit is 4 MiB)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: the platform an index entry gets when it states none (never coverable)
UNKNOWN_PLATFORM = "unknown"
#: the annotation BuildKit puts on the attestation manifests (SBOM, provenance) it adds to an index
REFERENCE_TYPE = "vnd.docker.reference.type"
ATTESTATION = "attestation-manifest"


@dataclass(frozen=True)
class ChildManifest:
    """One entry of an image index: the per-platform manifest's digest and its platform."""

    digest: str
    platform: str


@dataclass(frozen=True)
class ManifestInfo:
    """An image's manifest as far as platform coverage is concerned."""

    digest: str
    media_type: str
    #: the index's runnable entries (attestations left out); empty for a single image manifest
    children: tuple[ChildManifest, ...] = ()

    @property
    def is_index(self) -> bool:
        """Whether the image is an index (or manifest list) of per-platform manifests."""
        return self.media_type in INDEX_TYPES

    @property
    def platforms(self) -> list[str]:
        """The platforms an index carries, sorted, each once; [] for a single image manifest."""
        return sorted({child.platform for child in self.children})

    def artifact_fields(self) -> dict[str, Any]:
        """What the input document's ``artifact`` gains: the media type, and for an index its platforms
        and per-platform manifests (``[{digest, platform}]``, in the index's order)."""
        fields: dict[str, Any] = {"media_type": self.media_type}
        if self.is_index:
            fields["platforms"] = self.platforms
            fields["manifests"] = [{"digest": c.digest, "platform": c.platform} for c in self.children]
        return fields


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_manifest(data: bytes, digest: str, what: str, *, media_type: str | None = None) -> ManifestInfo:
    """The manifest ``data`` of the image pinned to ``digest``; ``what`` names the source in errors.

    Refused (``UsageError``, exit 2): bytes whose sha256 is not ``digest`` (a saved file may carry one
    trailing newline the tool printing it added; the digest is then checked without it), more than
    ``MAX_MANIFEST_BYTES``, anything but a JSON object, a media type that is not an image manifest or
    index, an index entry without a sha256 digest, and an index of indexes.
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise UsageError(f"{what}: larger than {MAX_MANIFEST_BYTES} bytes: not an image manifest")
    actual = sha256_digest(data)
    if actual != digest and data.endswith(b"\n") and sha256_digest(data.rstrip(b"\r\n")) == digest:
        data, actual = data.rstrip(b"\r\n"), digest
    if actual != digest:
        raise UsageError(
            f"{what} is not the manifest of the image: its sha256 is {actual}, the image is {digest} "
            "(save the exact bytes: crane manifest, oras manifest fetch, skopeo inspect --raw)"
        )
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UsageError(f"{what}: not JSON (or nested too deeply): not an image manifest") from None
    if not isinstance(manifest, dict):
        raise UsageError(f"{what}: not a JSON object: not an image manifest")
    declared = manifest.get("mediaType")
    kind = declared if isinstance(declared, str) and declared else (media_type or _guess(manifest))
    if kind in IMAGE_TYPES:
        return ManifestInfo(digest, kind)
    if kind not in INDEX_TYPES:
        raise UsageError(
            f"{what}: media type {str(kind)[:100]!r} is not an image manifest or image index "
            "(gate reads OCI and Docker v2 manifests and indexes)"
        )
    entries = manifest.get("manifests")
    if not isinstance(entries, list):
        raise UsageError(f"{what}: an image index without a manifests list")
    children = []
    for n, entry in enumerate(entries):
        child = _child(entry, f"{what}: manifests[{n}]")
        if child is not None:
            children.append(child)
    return ManifestInfo(digest, kind, tuple(children))


def _guess(manifest: dict[str, Any]) -> str | None:
    """The media type of an OCI document that leaves ``mediaType`` out (allowed before image-spec 1.1)."""
    if "manifests" in manifest:
        return OCI_INDEX
    if "config" in manifest and "layers" in manifest:
        return OCI_MANIFEST
    return None


def _child(entry: Any, where: str) -> ChildManifest | None:
    """One index entry as a platform manifest; None for an attestation (or ``unknown/unknown``) entry."""
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: not a descriptor object")
    digest = entry.get("digest")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise UsageError(f"{where}: no sha256 digest")
    if entry.get("mediaType") in INDEX_TYPES:
        raise UsageError(f"{where}: an index inside the index ({digest}): nested image indexes are not supported")
    annotations = entry.get("annotations")
    if isinstance(annotations, dict) and annotations.get(REFERENCE_TYPE) == ATTESTATION:
        return None
    platform = entry.get("platform")
    if not isinstance(platform, dict):
        return ChildManifest(digest, UNKNOWN_PLATFORM)
    os_name, arch, variant = (platform.get(k) for k in ("os", "architecture", "variant"))
    if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
        return ChildManifest(digest, UNKNOWN_PLATFORM)
    if os_name == "unknown" and arch == "unknown":
        return None
    text = normalize_platform(os_name, arch, variant if isinstance(variant, str) else None)
    return ChildManifest(digest, text or UNKNOWN_PLATFORM)


__all__ = [
    "ChildManifest",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "INDEX_TYPES",
    "MAX_MANIFEST_BYTES",
    "ManifestInfo",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "UNKNOWN_PLATFORM",
    "read_manifest",
]
