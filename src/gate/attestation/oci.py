"""Attaching a DSSE envelope to an image in a registry, and fetching what is attached (client: gate.registry).

Two places an attestation can live, both read by ``fetch``:

- **an OCI 1.1 referrer** (registries with the referrers API): an image manifest with ``artifactType``
  ``application/vnd.dsse.envelope.v1+json``, the empty config, one layer (the envelope) and ``subject``
  = the image's descriptor. ``GET /v2/<name>/referrers/<digest>`` lists it.
- **cosign's tag** ``sha256-<hex>.att`` (registries without the referrers API, such as the
  distribution registry 2.8): one manifest whose layers are DSSE envelopes, each with media type
  ``application/vnd.dsse.envelope.v1+json`` and the ``predicateType`` annotation. Attaching reads the
  manifest under the tag, adds a layer and puts it back (and reads it again to see the layer stayed:
  two attaches at once may race; the loser retries).

``attach`` uses the referrers API when the registry answers it, else the tag. ``fetch`` reads both
(a FAILED verdict must not hide in the place a verifier did not look). Every manifest and blob is
checked against its digest; sizes and counts are bounded.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from gate import dsse, rfc3339
from gate.attestation.vsa import PREDICATE_TYPE, AttestationError, envelope_bytes
from gate.errors import RegistryError
from gate.imageref import DIGEST, Reference, require_digest
from gate.registry.client import (
    DOCKER_MANIFEST,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    Repository,
    open_client,
    pull_scope,
    push_scope,
    sha256_digest,
)

logger = logging.getLogger(__name__)

DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#: annotations gate writes (on the referrer manifest and on each envelope layer); never trusted:
#: verification reads the signed statement only
ENVIRONMENT_ANNOTATION = "dev.promotion-gate.environment"
DECISION_ANNOTATION = "dev.promotion-gate.decision-id"
CREATED_ANNOTATION = "org.opencontainers.image.created"
#: cosign's layer annotations on an attestation layer
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_ANNOTATION = "predicateType"
#: more envelopes than this attached to one digest is refused (a verifier must see them all)
MAX_ENVELOPES = 200
#: pages of a referrers listing followed
MAX_REFERRER_PAGES = 20
#: attempts at the read-modify-write of the .att tag
TAG_ATTEMPTS = 3
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class Attachment:
    """Where an envelope was attached (or, dry run, would be)."""

    #: ``referrer`` (OCI 1.1 referrers API) or ``tag`` (cosign's ``sha256-<hex>.att``)
    mode: str
    #: the pinned manifest holding the envelope: ``REPO@sha256:M`` or ``REPO:sha256-<hex>.att@sha256:M``
    #: (what the GitOps commit's ``Gate-Attestation`` trailer names); with ``dry_run`` the tag or "(new)"
    reference: str
    manifest_digest: str | None
    envelope_digest: str
    operations: tuple[str, ...] = ()
    dry_run: bool = False
    #: the envelope was attached there already (nothing written)
    already_present: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The attachment as JSON outputs carry it."""
        return {
            "mode": self.mode,
            "reference": self.reference,
            "manifest_digest": self.manifest_digest,
            "envelope_digest": self.envelope_digest,
            "operations": list(self.operations),
            "dry_run": self.dry_run,
            "already_present": self.already_present,
        }


@dataclass(frozen=True)
class Candidate:
    """One envelope found attached to an image (not yet verified), or why it could not be read."""

    #: where it was found: ``referrer REPO@sha256:M`` or ``REPO:sha256-<hex>.att layer sha256:L``
    where: str
    #: the envelope's blob digest
    digest: str
    #: the parsed envelope; None when ``problem`` says why it could not be read
    envelope: Any = None
    problem: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


def att_tag(digest: str) -> str:
    """cosign's attestation tag for ``digest``: ``sha256-<hex>.att``."""
    if not DIGEST.fullmatch(digest):
        raise AttestationError(f"{digest!r} is not sha256:<64 hex digits>")
    return digest.replace(":", "-") + ".att"


def _descriptor(media_type: str, data: bytes, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    desc: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if annotations:
        desc["annotations"] = dict(annotations)
    return desc


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return json.dumps(manifest, separators=(",", ":")).encode("utf-8")


def referrers_supported(repo: Repository, digest: str) -> bool:
    """Whether the registry answers ``GET /v2/<name>/referrers/<digest>`` with an image index."""
    what = f"list referrers of {digest}"
    response = repo.request("GET", repo.url("referrers", digest), what, headers={"Accept": OCI_INDEX})
    return _has_referrers_api(repo, what, response)


#: what a registry without the referrers API answers (distribution 2.8: 404)
_NO_REFERRERS_API = (400, 404, 405)


def _has_referrers_api(repo: Repository, what: str, response: httpx.Response) -> bool:
    """Whether ``response`` (to a referrers GET) is a listing; an auth or server error is raised, not taken
    for "no API": a verifier that cannot read the listing must not go on as if there were none."""
    if response.status_code == 200:
        return _media_type(response) == OCI_INDEX
    if response.status_code in _NO_REFERRERS_API:
        return False
    raise repo.fail(what, response)


def _media_type(response: httpx.Response) -> str:
    return str(response.headers.get("Content-Type", "")).split(";")[0].strip()


def attach(
    image: str,
    envelope: Mapping[str, Any],
    *,
    environment: str,
    decision_id: str,
    created: datetime,
    dry_run: bool = False,
    mode: str = "auto",
) -> Attachment:
    """Attach ``envelope`` (a DSSE envelope) to ``image`` (``REPO@sha256:D``) in its repository.

    ``mode``: ``auto`` (the referrers API when the registry has it, else the tag), ``referrer`` or ``tag``.
    Registry failures raise RegistryError (nothing is half-attached: the manifest goes last).
    """
    ref = require_digest(image, "image")
    assert ref.digest is not None
    if mode not in ("auto", "referrer", "tag"):
        raise AttestationError(f"attach mode {mode!r}: expected auto, referrer or tag")
    data = envelope_bytes(envelope)
    if len(data) > dsse.MAX_ENVELOPE_BYTES:
        raise AttestationError(f"VSA envelope is {len(data)} bytes, over the {dsse.MAX_ENVELOPE_BYTES} byte limit")
    annotations = {
        ENVIRONMENT_ANNOTATION: environment,
        DECISION_ANNOTATION: decision_id,
        CREATED_ANNOTATION: rfc3339.format(created, microseconds=False),
    }
    layer = _descriptor(
        DSSE_MEDIA_TYPE, data, {PREDICATE_ANNOTATION: PREDICATE_TYPE, COSIGN_SIGNATURE_ANNOTATION: ""} | annotations
    )
    with open_client(ref.registry, [push_scope(ref)]) as client:
        repo = Repository(ref, client)
        subject_data, subject_type = repo.get_manifest(ref.digest)
        if mode == "auto":
            mode = "referrer" if referrers_supported(repo, ref.digest) else "tag"
        operations = [f"upload envelope {layer['digest']} ({len(data)} B)"]
        if not dry_run:
            repo.put_blob(data)
        if mode == "referrer":
            subject = {"mediaType": subject_type, "digest": ref.digest, "size": len(subject_data)}
            return _attach_referrer(repo, ref, layer, subject, annotations, operations, dry_run)
        return _attach_tag(repo, ref, layer, operations, dry_run)


def _attach_referrer(repo: Repository, ref: Reference, layer: dict[str, Any], subject: dict[str, Any],
                     annotations: dict[str, str], operations: list[str], dry_run: bool) -> Attachment:
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": DSSE_MEDIA_TYPE,
        "config": _descriptor(EMPTY_MEDIA_TYPE, EMPTY_CONFIG),
        "layers": [layer],
        "subject": subject,
        "annotations": annotations,
    }
    body = _manifest_bytes(manifest)
    digest = sha256_digest(body)
    operations.append(f"put referrer manifest {digest} (subject {ref.digest})")
    if not dry_run:
        repo.put_blob(EMPTY_CONFIG)
        response = repo.put_manifest(digest, body, OCI_MANIFEST, digest)
        if response.headers.get("OCI-Subject") not in (None, ref.digest):
            raise RegistryError(f"{repo.label}: the registry took referrer {digest} for another subject; refusing")
    return Attachment("referrer", f"{ref.name}@{digest}", digest, layer["digest"], tuple(operations), dry_run)


def _attach_tag(repo: Repository, ref: Reference, layer: dict[str, Any], operations: list[str],
                dry_run: bool) -> Attachment:
    assert ref.digest is not None
    tag = att_tag(ref.digest)
    for _attempt in range(TAG_ATTEMPTS):
        current = repo.manifest_digest(tag)
        if current is None:
            manifest: dict[str, Any] = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": _descriptor(EMPTY_MEDIA_TYPE, EMPTY_CONFIG),
                "layers": [],
            }
            media_type = OCI_MANIFEST
        else:
            raw, media_type = repo.get_manifest(current)
            manifest = json.loads(raw)
            if media_type not in (OCI_MANIFEST, DOCKER_MANIFEST) or not isinstance(manifest, dict) \
                    or not isinstance(manifest.get("layers", []), list):
                raise RegistryError(f"{repo.label}: manifest {current} under :{tag} is not an image manifest; refusing")
            manifest.setdefault("layers", [])
        layers = manifest["layers"]
        if any(isinstance(item, dict) and item.get("digest") == layer["digest"] for item in layers):
            operations.append(f":{tag} already holds envelope {layer['digest']}")
            return Attachment("tag", f"{ref.name}:{tag}@{current}", current, layer["digest"], tuple(operations), dry_run,
                              already_present=True)
        if len(layers) >= MAX_ENVELOPES:
            raise AttestationError(f"{repo.label}: :{tag} already holds {len(layers)} layers; refusing to add more")
        layers.append(layer)
        body = _manifest_bytes(manifest)
        digest = sha256_digest(body)
        operations.append(f"put manifest {digest} as :{tag} ({len(layers)} envelope(s))")
        if dry_run:
            return Attachment("tag", f"{ref.name}:{tag}", None, layer["digest"], tuple(operations), True)
        config = manifest.get("config") or {}
        if config.get("digest") == EMPTY_DIGEST:
            repo.put_blob(EMPTY_CONFIG)
        repo.put_manifest(tag, body, media_type, digest)
        if repo.manifest_digest(tag) == digest:
            return Attachment("tag", f"{ref.name}:{tag}@{digest}", digest, layer["digest"], tuple(operations), False)
        logger.info("%s: :%s moved while attaching; trying again", repo.label, tag)
    raise RegistryError(f"{repo.label}: :{tag} kept changing while attaching the VSA ({TAG_ATTEMPTS} attempts)")


# --- fetch ---------------------------------------------------------------------------------------------


def fetch(image: str, timeout: float | None = None) -> list[Candidate]:
    """Every DSSE envelope attached to ``image`` (``REPO@sha256:D``): its referrers (where the registry has
    the API) and cosign's ``.att`` tag, each blob checked against its digest, duplicates dropped.

    An envelope that cannot be read is a Candidate with a ``problem``. The registry unreachable, or
    more than MAX_ENVELOPES envelopes, raises (RegistryError, AttestationError). ``timeout``: seconds
    for each registry request (default: the registry client's).
    """
    ref = require_digest(image, "image")
    assert ref.digest is not None
    found: dict[str, Candidate] = {}
    with open_client(ref.registry, [pull_scope(ref)], timeout) as client:
        repo = Repository(ref, client)
        for manifest_digest in _referrer_manifests(repo, ref.digest):
            where = f"referrer {ref.name}@{manifest_digest}"
            try:
                raw, _ = repo.get_manifest(manifest_digest)
                manifest = json.loads(raw)
            except RegistryError as e:
                found.setdefault(manifest_digest, Candidate(where, manifest_digest, problem=str(e)))
                continue
            subject = manifest.get("subject") if isinstance(manifest, dict) else None
            if not isinstance(subject, dict) or subject.get("digest") != ref.digest:
                found.setdefault(manifest_digest, Candidate(where, manifest_digest, problem="its subject is another manifest"))
                continue
            _layers(repo, manifest, where, found)
        tag = att_tag(ref.digest)
        current = repo.manifest_digest(tag)
        if current is not None:
            where = f"{ref.name}:{tag}@{current}"
            try:
                raw, _ = repo.get_manifest(current)
                manifest = json.loads(raw)
            except RegistryError as e:
                found.setdefault(current, Candidate(where, current, problem=str(e)))
            else:
                _layers(repo, manifest, where, found)
    return list(found.values())


def _referrer_manifests(repo: Repository, digest: str) -> list[str]:
    """The digests of the DSSE referrers of ``digest`` (empty when the registry has no referrers API)."""
    url: str | httpx.URL = repo.url("referrers", digest)
    params: dict[str, str] | None = {"artifactType": DSSE_MEDIA_TYPE}
    digests: list[str] = []
    for _page in range(MAX_REFERRER_PAGES):
        what = f"list referrers of {digest}"
        response = repo.request("GET", url, what, headers={"Accept": OCI_INDEX}, params=params)
        if not _has_referrers_api(repo, what, response):
            return digests  # no referrers API (404, or an old registry's answer of another kind)
        digests += parse_referrers(response.content, f"{repo.label}: referrers of {digest}")
        if len(digests) > MAX_ENVELOPES:
            raise AttestationError(f"{repo.label}: more than {MAX_ENVELOPES} referrers of {digest}; refusing")
        link = _NEXT_LINK.search(response.headers.get("Link", ""))
        if link is None:
            return digests
        url, params = httpx.URL(link.group(1)), None
        if not url.is_absolute_url:
            url = repo.client.base_url.join(url)
    raise AttestationError(f"{repo.label}: the referrers listing of {digest} has more than {MAX_REFERRER_PAGES} pages")


def parse_referrers(data: bytes, what: str) -> list[str]:
    """The manifest digests of the DSSE-envelope artifacts in a referrers response (an OCI image index)."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise AttestationError(f"{what}: the listing is larger than {MAX_MANIFEST_BYTES} bytes; refusing")
    try:
        index = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise AttestationError(f"{what}: the listing is not JSON") from None
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise AttestationError(f"{what}: the listing is not an image index")
    digests = []
    for entry in manifests:
        if not isinstance(entry, dict) or entry.get("artifactType") != DSSE_MEDIA_TYPE:
            continue
        digest = entry.get("digest")
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            raise AttestationError(f"{what}: a listed manifest has no sha256 digest")
        if digest not in digests:
            digests.append(digest)
    return digests


def _layers(repo: Repository, manifest: Any, where: str, found: dict[str, Candidate]) -> None:
    """Read the DSSE layers of ``manifest`` into ``found`` (by envelope digest)."""
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        found.setdefault(where, Candidate(where, "", problem="the manifest has no layers list"))
        return
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("mediaType") != DSSE_MEDIA_TYPE:
            continue
        if len(found) >= MAX_ENVELOPES:
            raise AttestationError(f"{repo.label}: more than {MAX_ENVELOPES} envelopes attached; refusing")
        digest, size = layer.get("digest"), layer.get("size")
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            found.setdefault(f"{where}#{len(found)}", Candidate(where, "", problem="a layer has no sha256 digest"))
            continue
        if digest in found:
            continue
        annotations = layer.get("annotations") if isinstance(layer.get("annotations"), dict) else {}
        place = f"{where} layer {digest}"
        if not isinstance(size, int) or size < 0 or size > dsse.MAX_ENVELOPE_BYTES:
            found[digest] = Candidate(place, digest, problem=f"its size {size!r} is not within {dsse.MAX_ENVELOPE_BYTES} bytes")
            continue
        try:
            data = repo.get_blob(digest, dsse.MAX_ENVELOPE_BYTES)
        except RegistryError as e:
            found[digest] = Candidate(place, digest, problem=str(e))
            continue
        try:
            envelope = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            found[digest] = Candidate(place, digest, problem="the envelope is not JSON")
            continue
        found[digest] = Candidate(place, digest, envelope, None,
                                  {str(k): str(v) for k, v in (annotations or {}).items()})


__all__ = [
    "DSSE_MEDIA_TYPE",
    "EMPTY_DIGEST",
    "EMPTY_MEDIA_TYPE",
    "MAX_ENVELOPES",
    "Attachment",
    "Candidate",
    "att_tag",
    "attach",
    "fetch",
    "parse_referrers",
    "referrers_supported",
]
