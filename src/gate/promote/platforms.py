"""An image index is promoted only on a decision that knew it was one.

A decision made without the image's manifest (``gate evaluate`` without ``--image-manifest``) never
checked that the reports cover every platform of an index: promoting on it could ship an arm64 image
nobody scanned. So before anything is copied, the source manifest is read (by digest, checked against
it): when it is an index, the decision's input must list its platforms (``input.artifact.platforms``),
and the same ones. A single image manifest needs nothing more. A daemon push (``--from-daemon``) is
not checked here: the daemon pushes one image manifest, whose digest promote checks after the push.
"""

from __future__ import annotations

from typing import Any

from gate.decisions.record import Decision
from gate.imageref import require_digest
from gate.registry.manifests import ManifestInfo, read_manifest


def source_manifest(source: str) -> ManifestInfo:
    """The manifest of ``source`` (REF@sha256:D) from its registry, checked against D."""
    from gate.registry.client import Repository, open_client, pull_scope

    ref = require_digest(source, "--source")
    assert ref.digest is not None
    with open_client(ref.registry, [pull_scope(ref)]) as client:
        data, media_type = Repository(ref, client).get_manifest(ref.digest)
    return read_manifest(data, ref.digest, f"the manifest of {ref.name}@{ref.digest}", media_type=media_type)


def index_refusals(decision: Decision, source: str, manifest: ManifestInfo | None = None) -> list[str]:
    """Why ``decision`` cannot promote ``source`` as an index (empty: it can, or it is no index)."""
    manifest = manifest or source_manifest(source)
    if not manifest.is_index:
        return []
    carried = manifest.platforms
    what = f"{source} is an index of {len(carried)} platform(s) ({', '.join(carried) or 'none'})"
    artifact: Any = decision.input.get("artifact") if isinstance(decision.input, dict) else None
    recorded = artifact.get("platforms") if isinstance(artifact, dict) else None
    if not isinstance(recorded, list):
        return [
            f"decision {decision.decision_id} was made without the image's manifest; {what}: evaluate with "
            "--image-manifest so the reports are checked against every platform"
        ]
    if sorted(str(p) for p in recorded) != carried:
        return [
            f"decision {decision.decision_id} was made for the platforms {', '.join(map(str, recorded)) or 'none'}, "
            f"but {what}: evaluate again with --image-manifest"
        ]
    return []
