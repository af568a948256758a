"""Which platform of the image each report covers, and the image's own manifest (``--image-manifest``).

A report covers a platform when it states one (a Trivy image scan: the os/architecture/variant of
the config it scanned, ``Metadata.ImageConfig``) and it is bound to the image being decided:

- it names no digest (a scan of a saved tarball or a local image): bound by its platform alone —
  gate cannot tell more, and says so in docs/evidence.md;
- it names digests (``Metadata.RepoDigests``): one of them must be the image's digest (a
  ``trivy image --platform P REPO@sha256:<index>`` scan) or, for an index, the digest of one of its
  per-platform manifests, and then that manifest's platform must be the one the report states;
  otherwise the report covers nothing, and (when the manifest was given) a note on its scanner entry
  says why. Without the manifest only the image's own digest binds, silently: gate cannot tell a
  per-platform manifest of the image from another image's.

A report that states no platform (coverage, SonarQube, a source-tree or CycloneDX scan) covers none.
"""

from __future__ import annotations

from pathlib import Path

from gate.errors import UsageError
from gate.imageref import ImageRef
from gate.models import ScanResult
from gate.registry.manifests import MAX_MANIFEST_BYTES, ManifestInfo, read_manifest

#: ``--image-manifest registry``: fetch the manifest from the image's registry instead of a file
FROM_REGISTRY = "registry"


def bind_platform(result: ScanResult, digest: str | None, manifest: ManifestInfo | None) -> tuple[str | None, str | None]:
    """``(platform, note)``: the platform ``result`` covers for the image pinned to ``digest`` (None:
    none), and why a report that states a platform covers none of this image (None: no reason to say)."""
    platform = result.platform
    if platform is None:
        return None, None
    named = result.image_digests
    if not named or (digest is not None and digest in named):
        return platform, None
    children = {child.digest: child.platform for child in manifest.children} if manifest is not None else {}
    ours = [d for d in named if d in children]
    if ours:
        wrong = sorted({children[d] for d in ours if children[d] != platform})
        if wrong:
            return None, (
                f"the report states platform {platform}, but the manifest it names is the index's "
                f"{', '.join(wrong)} manifest: it covers no platform"
            )
        return platform, None
    if manifest is None:
        # without the manifest gate cannot tell whether a named digest is one of the image's own
        # manifests: the report covers nothing, and says nothing (platforms may play no part at all)
        return None, None
    where = "this image or one of its per-platform manifests" if manifest.is_index else "this image"
    return None, f"the report is of {', '.join(named)}, not {where}: it covers no platform of it"


def read_image_manifest(value: str, image: ImageRef) -> ManifestInfo:
    """``--image-manifest VALUE`` for ``image``: a file holding the manifest's exact bytes, or
    ``registry`` to fetch it from the image's registry (Docker config credentials). Either way its
    sha256 must be the image's digest: a manifest of another image is exit 2."""
    if value == FROM_REGISTRY:
        return _fetch(image)
    path = Path(value)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as e:
        raise UsageError(f"--image-manifest {value}: cannot read: {e.strerror or type(e).__name__}") from None
    return read_manifest(data, image.digest, f"--image-manifest {value}")


def _fetch(image: ImageRef) -> ManifestInfo:
    """The manifest of ``image`` from its registry, checked against its digest (``gate.registry.client``)."""
    from gate.errors import RegistryError
    from gate.imageref import require_digest
    from gate.registry.client import Repository, open_client, pull_scope

    ref = require_digest(f"{image.image}@{image.digest}", "--image")
    try:
        with open_client(ref.registry, [pull_scope(ref)]) as client:
            data, media_type = Repository(ref, client).get_manifest(image.digest)
    except RegistryError as e:
        raise RegistryError(f"--image-manifest registry: {e.diagnostics()}") from None
    return read_manifest(data, image.digest, f"the manifest of {ref.name}@{image.digest}", media_type=media_type)
