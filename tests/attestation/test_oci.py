"""Attaching VSAs to images on the real distribution registry (no referrers API: cosign's .att tag), fetching
them back, and the referrers path's parsing on a real-shaped listing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gate.attestation import oci, vsa
from gate.decisions.signing import Ed25519Signer
from gate.errors import RegistryError
from tests.attestation.decisions import make_decision
from tests.promote.servers import Registry, blob_bytes, manifest_digest, new_repo, push_image, sha256

pytestmark = pytest.mark.server
WHEN = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def _envelope(image: str, digest: str, signer: Ed25519Signer, **kwargs: object) -> dict[str, object]:
    decision = make_decision(image, digest, **kwargs)  # type: ignore[arg-type]
    return vsa.sign(vsa.statement(decision, time_verified=WHEN), signer)


def test_attach_uses_the_att_tag_on_a_registry_without_referrers(registry: Registry, signer: Ed25519Signer) -> None:
    repo = new_repo("vsa")
    pushed = push_image(registry, repo, "1.0")
    image = f"{registry.host}/{repo}@{pushed.digest}"
    envelope = _envelope(f"{registry.host}/{repo}", pushed.digest, signer)
    attached = oci.attach(image, envelope, environment="prod", decision_id="d-1", created=WHEN)
    tag = "sha256-" + pushed.digest.split(":")[1] + ".att"
    assert attached.mode == "tag"
    assert attached.reference == f"{registry.host}/{repo}:{tag}@{attached.manifest_digest}"
    assert manifest_digest(registry, repo, tag) == attached.manifest_digest
    with registry.client() as client:
        manifest = client.get(f"/v2/{repo}/manifests/{tag}",
                              headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
    layer = manifest["layers"][0]
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert layer["annotations"]["predicateType"] == "https://slsa.dev/verification_summary/v1"
    assert layer["annotations"]["dev.cosignproject.cosign/signature"] == ""
    assert manifest["config"]["digest"] == oci.EMPTY_DIGEST == sha256(b"{}")
    assert json.loads(blob_bytes(registry, repo, layer["digest"]) or b"") == envelope
    found = oci.fetch(image)
    assert [(c.envelope, c.problem, c.digest) for c in found] == [(envelope, None, attached.envelope_digest)]


def test_attach_twice_keeps_both_and_again_is_a_noop(registry: Registry, signer: Ed25519Signer) -> None:
    repo = new_repo("vsa")
    pushed = push_image(registry, repo)
    image = f"{registry.host}/{repo}@{pushed.digest}"
    first = _envelope(f"{registry.host}/{repo}", pushed.digest, signer)
    second = _envelope(f"{registry.host}/{repo}", pushed.digest, signer, outcome="deny")
    oci.attach(image, first, environment="prod", decision_id="d-1", created=WHEN)
    attached = oci.attach(image, second, environment="prod", decision_id="d-2", created=WHEN)
    again = oci.attach(image, second, environment="prod", decision_id="d-2", created=WHEN)
    assert again.manifest_digest == attached.manifest_digest
    assert "already holds" in again.operations[-1]
    assert [c.envelope for c in oci.fetch(image)] == [first, second]


def test_dry_run_attaches_nothing(registry: Registry, signer: Ed25519Signer) -> None:
    repo = new_repo("vsa")
    pushed = push_image(registry, repo)
    image = f"{registry.host}/{repo}@{pushed.digest}"
    envelope = _envelope(f"{registry.host}/{repo}", pushed.digest, signer)
    planned = oci.attach(image, envelope, environment="prod", decision_id="d", created=WHEN, dry_run=True)
    assert planned.dry_run and planned.manifest_digest is None
    assert any(op.startswith("put manifest") for op in planned.operations)
    assert oci.fetch(image) == []
    assert blob_bytes(registry, repo, planned.envelope_digest) is None


def test_referrer_mode_pushes_a_subject_manifest(registry: Registry, signer: Ed25519Signer) -> None:
    """distribution 2.8 has no referrers API, but takes the manifest: its shape is what a referrers
    registry would list (the listing itself is tested below on a real-shaped index)."""
    repo = new_repo("vsa")
    pushed = push_image(registry, repo)
    image = f"{registry.host}/{repo}@{pushed.digest}"
    envelope = _envelope(f"{registry.host}/{repo}", pushed.digest, signer)
    attached = oci.attach(image, envelope, environment="prod", decision_id="d", created=WHEN, mode="referrer")
    assert attached.mode == "referrer" and attached.reference == f"{registry.host}/{repo}@{attached.manifest_digest}"
    with registry.client() as client:
        manifest = client.get(f"/v2/{repo}/manifests/{attached.manifest_digest}",
                              headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
    assert manifest["artifactType"] == "application/vnd.dsse.envelope.v1+json"
    assert manifest["subject"] == {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "digest": pushed.digest, "size": len(pushed.manifest)}
    assert manifest["config"] == {"mediaType": "application/vnd.oci.empty.v1+json", "digest": oci.EMPTY_DIGEST,
                                  "size": 2}
    assert manifest["annotations"]["dev.promotion-gate.environment"] == "prod"
    # this registry cannot list it: the tag was not written, so nothing is found
    assert oci.fetch(image) == []


def test_missing_image_and_unreachable_registry_raise(registry: Registry, signer: Ed25519Signer) -> None:
    repo = new_repo("vsa")
    digest = "sha256:" + "ab" * 32
    envelope = _envelope(f"{registry.host}/{repo}", digest, signer)
    with pytest.raises(RegistryError, match="get manifest"):
        oci.attach(f"{registry.host}/{repo}@{digest}", envelope, environment="prod", decision_id="d", created=WHEN)
    with pytest.raises(RegistryError, match="ConnectError"):
        oci.fetch(f"127.0.0.1:9/{repo}@{digest}")


def _put_att(registry: Registry, repo: str, digest: str, manifest: dict[str, object]) -> None:
    tag = "sha256-" + digest.split(":")[1] + ".att"
    with registry.client() as client:
        r = client.put(f"/v2/{repo}/manifests/{tag}", content=json.dumps(manifest).encode(),
                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 201, r.text


def test_bad_layers_are_candidates_with_problems(registry: Registry, signer: Ed25519Signer) -> None:
    repo = new_repo("vsa")
    pushed = push_image(registry, repo)
    image = f"{registry.host}/{repo}@{pushed.digest}"
    with registry.client() as client:
        from tests.promote.servers import _push_blob

        good = json.dumps(_envelope(f"{registry.host}/{repo}", pushed.digest, signer)).encode()
        not_json = b"not json at all"
        empty = b"{}"
        digests = [_push_blob(client, repo, blob) for blob in (good, not_json, empty)]
    dsse = "application/vnd.dsse.envelope.v1+json"
    _put_att(registry, repo, pushed.digest, {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digests[2], "size": 2},
        "layers": [
            {"mediaType": dsse, "digest": digests[0], "size": len(good)},
            {"mediaType": dsse, "digest": digests[1], "size": len(not_json)},
            # an oversized layer is refused before it is read
            {"mediaType": dsse, "digest": digests[2], "size": 5 * 1024 * 1024},
            # other layer kinds are not envelopes
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digests[2], "size": 2},
        ],
    })
    found = {c.digest: c for c in oci.fetch(image)}
    assert found[digests[0]].problem is None
    assert found[digests[1]].problem == "the envelope is not JSON"
    assert "is not within" in (found[digests[2]].problem or "")
    assert len(found) == 3


REFERRERS = {
    # the shape of the OCI 1.1 referrers response (image-spec/distribution-spec): a stand-in, written here
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1234,
         "digest": "sha256:" + "1a" * 32, "artifactType": "application/vnd.dsse.envelope.v1+json",
         "annotations": {"dev.promotion-gate.environment": "prod"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1234,
         "digest": "sha256:" + "2b" * 32, "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json"},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 99,
         "digest": "sha256:" + "1a" * 32, "artifactType": "application/vnd.dsse.envelope.v1+json"},
    ],
}


def test_referrers_listing_keeps_the_dsse_artifacts() -> None:
    assert oci.parse_referrers(json.dumps(REFERRERS).encode(), "listing") == ["sha256:" + "1a" * 32]


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"<html>", "not JSON"),
        (b"[]", "not an image index"),
        (json.dumps({"manifests": [{"artifactType": "application/vnd.dsse.envelope.v1+json", "digest": "md5:x"}]}).encode(),
         "no sha256 digest"),
        (b" " * (4 * 1024 * 1024 + 1), "larger than"),
    ],
)
def test_malformed_referrers_listing_is_refused(data: bytes, problem: str) -> None:
    with pytest.raises(vsa.AttestationError, match=problem):
        oci.parse_referrers(data, "listing")


def test_att_tag_is_cosigns() -> None:
    assert oci.att_tag("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32 + ".att"
    with pytest.raises(vsa.AttestationError):
        oci.att_tag("sha256:AB")
