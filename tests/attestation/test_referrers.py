"""The referrers path: attach and fetch through the referrers-API STAND-IN in front of the real registry
(tests/attestation/referrers_standin.py; distribution 2.8 has no referrers API of its own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gate.attestation import oci, vsa
from gate.attestation.verify import verify_image
from gate.decisions.signing import Ed25519Signer
from gate.errors import RegistryError
from tests.attestation.decisions import make_decision
from tests.attestation.referrers_standin import ReferrersStandIn
from tests.promote.servers import Registry, manifest_digest, new_repo, push_image

pytestmark = pytest.mark.server
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def _pushed(registry: Registry, standin: ReferrersStandIn) -> tuple[str, str, str]:
    repo = new_repo("vsa")
    digest = push_image(registry, repo).digest
    return repo, digest, f"{standin.host}/{repo}@{digest}"


def _envelope(standin: ReferrersStandIn, repo: str, digest: str, signer: Ed25519Signer, *, outcome: str = "allow",
              at: datetime = NOW - timedelta(hours=1)) -> dict[str, Any]:
    decision = make_decision(f"{standin.host}/{repo}", digest, outcome=outcome)
    return vsa.sign(vsa.statement(decision, time_verified=at), signer)


def _trusted(signer: Ed25519Signer) -> dict[str, Any]:
    return {signer.key_id: signer.public_key()}


def test_auto_uses_the_referrers_api_where_the_registry_has_it(
    registry: Registry, referrers_registry: ReferrersStandIn, signer: Ed25519Signer
) -> None:
    repo, digest, image = _pushed(registry, referrers_registry)
    envelope = _envelope(referrers_registry, repo, digest, signer)
    attached = oci.attach(image, envelope, environment="prod", decision_id="d", created=NOW)
    assert attached.mode == "referrer"
    assert attached.reference == f"{referrers_registry.host}/{repo}@{attached.manifest_digest}"
    listed = referrers_registry.referrers[(repo, digest)]
    assert [d["digest"] for d in listed] == [attached.manifest_digest]
    assert listed[0]["artifactType"] == oci.DSSE_MEDIA_TYPE
    # no .att tag was written
    assert manifest_digest(registry, repo, oci.att_tag(digest)) is None
    found = oci.fetch(image)
    assert [(c.envelope, c.where) for c in found] == [(envelope, f"referrer {referrers_registry.host}/{repo}@"
                                                                  f"{attached.manifest_digest} layer {attached.envelope_digest}")]
    check = verify_image(image, "prod", _trusted(signer), NOW)
    assert check.passed and check.attestation and check.attestation.startswith("referrer ")


def test_a_failed_vsa_under_the_att_tag_is_seen_beside_the_referrers(
    registry: Registry, referrers_registry: ReferrersStandIn, signer: Ed25519Signer
) -> None:
    repo, digest, image = _pushed(registry, referrers_registry)
    oci.attach(image, _envelope(referrers_registry, repo, digest, signer), environment="prod", decision_id="d",
               created=NOW)
    failed = _envelope(referrers_registry, repo, digest, signer, outcome="deny", at=NOW - timedelta(minutes=5))
    oci.attach(image, failed, environment="prod", decision_id="d2", created=NOW, mode="tag")
    check = verify_image(image, "prod", _trusted(signer), NOW)
    assert not check.passed and check.result == "FAILED" and check.found == 2
    assert check.attestation and ".att@" in check.attestation


def test_listing_pages_are_followed(
    registry: Registry, referrers_registry: ReferrersStandIn, signer: Ed25519Signer
) -> None:
    referrers_registry.page_size = 1
    repo, digest, image = _pushed(registry, referrers_registry)
    for hours in (3, 2, 1):
        envelope = _envelope(referrers_registry, repo, digest, signer, at=NOW - timedelta(hours=hours))
        oci.attach(image, envelope, environment="prod", decision_id=f"d{hours}", created=NOW)
    assert len(oci.fetch(image)) == 3


def test_a_listed_referrer_of_another_subject_is_a_problem(
    registry: Registry, referrers_registry: ReferrersStandIn, signer: Ed25519Signer
) -> None:
    repo, digest, image = _pushed(registry, referrers_registry)
    other = push_image(registry, repo, content=b"other\n").digest
    attached = oci.attach(f"{referrers_registry.host}/{repo}@{other}",
                          _envelope(referrers_registry, repo, other, signer), environment="prod", decision_id="d",
                          created=NOW)
    # the registry lists the other image's referrer under this digest
    referrers_registry.extra[(repo, digest)] = list(referrers_registry.referrers[(repo, other)])
    found = oci.fetch(image)
    assert [(c.digest, c.problem) for c in found] == [(attached.manifest_digest, "its subject is another manifest")]
    assert not verify_image(image, "prod", _trusted(signer), NOW).passed


@pytest.mark.parametrize("status, raises", [(404, False), (405, False), (403, True), (500, True), (503, True)])
def test_a_listing_that_fails_is_an_error_not_no_api(
    registry: Registry, referrers_registry: ReferrersStandIn, signer: Ed25519Signer, status: int, raises: bool
) -> None:
    repo, digest, image = _pushed(registry, referrers_registry)
    oci.attach(image, _envelope(referrers_registry, repo, digest, signer), environment="prod", decision_id="d",
               created=NOW, mode="tag")
    referrers_registry.fail_status = status
    if raises:
        with pytest.raises(RegistryError, match=f"list referrers of {digest} failed: HTTP {status}"):
            verify_image(image, "prod", _trusted(signer), NOW)
    else:
        assert verify_image(image, "prod", _trusted(signer), NOW).passed
