"""Which attached VSA counts, on the real registry: newest wins, and the ways around a check."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gate import rfc3339
from gate.attestation import oci, vsa
from gate.attestation.verify import judge, verify_image
from gate.decisions.record import AppliedWaiver
from gate.decisions.signing import Ed25519Signer
from gate.errors import RegistryError, UsageError
from tests.attestation.decisions import make_decision
from tests.promote.servers import Registry, new_repo, push_image

pytestmark = pytest.mark.server
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


class Image:
    """One pushed image and helpers to attach VSAs to it."""

    def __init__(self, registry: Registry, signer: Ed25519Signer) -> None:
        self.repo = f"{registry.host}/{new_repo('vsa')}"
        self.digest = push_image(registry, self.repo.split("/", 1)[1]).digest
        self.ref = f"{self.repo}@{self.digest}"
        self.signer = signer

    def statement(self, *, outcome: str = "allow", environment: str = "prod", at: datetime = NOW - timedelta(hours=1),
                  image: str | None = None, waivers: tuple[AppliedWaiver, ...] = (), **kwargs: Any) -> dict[str, Any]:
        decision = make_decision(self.repo, self.digest, outcome=outcome, environment=environment, waivers=waivers)
        return vsa.statement(decision, time_verified=at, image=image, **kwargs)

    def attach(self, statement: dict[str, Any] | None = None, signer: Ed25519Signer | None = None,
               envelope: dict[str, Any] | None = None, target: str | None = None, **kwargs: Any) -> None:
        envelope = envelope or vsa.sign(statement or self.statement(**kwargs), signer or self.signer)
        oci.attach(target or self.ref, envelope, environment="prod", decision_id="d", created=NOW)

    def verify(self, environment: str = "prod", **kwargs: Any) -> Any:
        return verify_image(self.ref, environment, {self.signer.key_id: self.signer.public_key()}, NOW, **kwargs)


@pytest.fixture
def image(registry: Registry, signer: Ed25519Signer) -> Image:
    return Image(registry, signer)


def test_gate_verifies_what_gate_attached(image: Image) -> None:
    image.attach()
    check = image.verify()
    assert check.passed, check.reason
    assert check.result == "PASSED" and check.key_id == image.signer.key_id and check.found == 1
    assert check.attestation and ".att@" in check.attestation
    assert check.reason.startswith("the newest VSA for prod (decision ")


def test_nothing_attached_is_not_passed(image: Image) -> None:
    check = image.verify()
    assert not check.passed and check.found == 0
    assert check.reason == f"no valid VSA for environment prod is attached to {image.ref}"


def test_newer_failed_supersedes_older_passed_and_newer_passed_supersedes_failed(image: Image) -> None:
    image.attach(at=NOW - timedelta(hours=2))
    image.attach(outcome="deny", at=NOW - timedelta(hours=1))
    check = image.verify()
    assert not check.passed and check.result == "FAILED" and check.found == 2
    assert check.reason.endswith("is FAILED")
    image.attach(at=NOW - timedelta(minutes=1))
    assert image.verify().passed


def test_on_equal_times_failed_wins(image: Image) -> None:
    image.attach(at=NOW - timedelta(hours=1))
    image.attach(outcome="error", at=NOW - timedelta(hours=1))
    assert not image.verify().passed


def test_other_environment_and_other_spellings_do_not_count(image: Image) -> None:
    image.attach(environment="staging")
    check = image.verify()
    assert not check.passed and "1 for another environment" in check.reason
    assert image.verify("staging").passed
    for spelling in ("Staging", "staging ", "ѕtaging"):
        with pytest.raises(UsageError, match="not an environment name"):
            image.verify(spelling)


def test_untrusted_key_and_edited_payload_do_not_count(image: Image, other_signer: Ed25519Signer) -> None:
    image.attach(signer=other_signer)
    envelope = vsa.sign(image.statement(outcome="deny", at=NOW - timedelta(minutes=5)), image.signer)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["verificationResult"] = "PASSED"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    image.attach(envelope=envelope)
    check = image.verify()
    assert not check.passed
    assert "2 not signed by a trusted key" in check.reason


def test_vsa_for_another_digest_copied_here_does_not_count(registry: Registry, image: Image) -> None:
    other = Image(registry, image.signer)
    # a PASSED VSA of another image, attached under this image's .att tag
    image.attach(statement=other.statement())
    # and a VSA whose subject is this digest but whose resourceUri names the other image
    statement = image.statement()
    statement["predicate"]["resourceUri"] = other.ref
    image.attach(statement=statement)
    # and one whose subject is another repository at this digest
    statement = image.statement()
    statement["subject"][0]["name"] = other.repo
    image.attach(statement=statement)
    check = image.verify()
    assert not check.passed and "3 about another image" in check.reason


def test_a_tag_in_the_resource_uri_is_fine(image: Image) -> None:
    statement = image.statement()
    statement["predicate"]["resourceUri"] = f"{image.repo}:1.0@{image.digest}"
    image.attach(statement=statement)
    assert image.verify().passed


def test_verifier_id_must_be_gates(image: Image) -> None:
    image.attach(statement=image.statement(verifier_id="https://example.com/other-verifier"))
    check = image.verify()
    assert not check.passed and "1 by another verifier" in check.reason
    assert image.verify(verifier_id="https://example.com/other-verifier").passed


def test_stale_and_future_vsas_are_not_passed(image: Image) -> None:
    image.attach(at=NOW - timedelta(days=31))
    check = image.verify()
    assert not check.passed and check.reason.endswith("is 31 day(s) old, older than 30d")
    assert image.verify(max_age=timedelta(days=40)).passed
    image.attach(at=NOW + timedelta(minutes=3))  # within the clock skew
    assert image.verify().passed
    image.attach(at=NOW + timedelta(hours=1))
    check = image.verify()
    assert not check.passed and check.reason.endswith("is dated in the future")


@pytest.mark.parametrize(
    "envelope",
    [
        {"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []},
        {"payloadType": "text/plain", "payload": "e30=", "signatures": [{"sig": "AA=="}]},
        [],
    ],
)
def test_malformed_envelopes_do_not_count(image: Image, envelope: Any) -> None:
    image.attach(envelope=envelope)  # type: ignore[arg-type]
    image.attach()
    check = image.verify()
    assert check.passed and check.found == 2


def test_signed_statement_that_is_not_a_gate_vsa_does_not_count(image: Image) -> None:
    statement = image.statement()
    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    image.attach(statement=statement)
    check = image.verify()
    assert not check.passed and "1 not a gate VSA" in check.reason


def test_unreadable_candidates_are_counted() -> None:
    candidates = [oci.Candidate("somewhere", "sha256:" + "00" * 32, problem="blob unknown")]
    check = judge(f"r.example.com/a@sha256:{'ab' * 32}", candidates, "prod", {}, NOW)
    assert not check.passed and "1 unreadable" in check.reason


def test_unpinned_reference_is_a_usage_error_and_unreachable_registry_raises() -> None:
    with pytest.raises(UsageError, match="not pinned by digest"):
        verify_image("r.example.com/a:1.0", "prod", {}, NOW)
    with pytest.raises(RegistryError):
        verify_image(f"127.0.0.1:9/a@sha256:{'ab' * 32}", "prod", {}, NOW)


def test_as_dict_is_json(image: Image) -> None:
    image.attach()
    document: Callable[[], dict[str, Any]] = image.verify().as_dict
    assert json.loads(json.dumps(document()))["passed"] is True


def _waiver(id_: str, expires: datetime) -> AppliedWaiver:
    return AppliedWaiver(id=id_, rule="CVE-2024-0001", expires=rfc3339.format(expires), approved_by="secops",
                         reason="no fix yet", finding_ids=("f1",))


def test_an_allow_resting_on_waivers_ends_with_the_first_of_them(image: Image) -> None:
    """Where only the VSA is seen (offline admission), an allow that a waiver made stops passing when the
    waiver expires, as it would in the log: the VSA carries the earliest expiry of its waivers."""
    waivers = (_waiver("W-LATE", NOW + timedelta(days=60)), _waiver("W-SOON", NOW + timedelta(days=2)))
    statement = image.statement(waivers=waivers)
    assert statement["predicate"][vsa.DECISION_FIELD]["triageExpires"] == rfc3339.format(NOW + timedelta(days=2))
    image.attach(statement=statement)
    assert image.verify().passed
    later = verify_image(image.ref, "prod", {image.signer.key_id: image.signer.public_key()}, NOW + timedelta(days=3))
    assert not later.passed and "rests on a waiver that expired at" in later.reason


def test_a_vsa_without_waivers_carries_no_expiry(image: Image) -> None:
    assert "triageExpires" not in image.statement()["predicate"][vsa.DECISION_FIELD]


def test_a_malformed_waiver_expiry_makes_the_vsa_unreadable(image: Image) -> None:
    statement = image.statement()
    statement["predicate"][vsa.DECISION_FIELD]["triageExpires"] = "tomorrow"
    image.attach(statement=statement)
    check = image.verify()
    assert not check.passed and check.found == 1
