"""The VSA statement: its shape per the SLSA VSA v1 specification, validated with the in-toto attestation
model, signed in DSSE and checked with securesystemslib both ways."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from google.protobuf import json_format
from in_toto_attestation.predicates.vsa.v1 import vsa_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from gate import dsse
from gate.attestation import vsa
from gate.decisions.signing import Ed25519Signer
from tests.attestation.decisions import COVERAGE_SHA, POLICY_DIGEST, TRIVY_SHA, make_decision

IMAGE = "registry.example.com/shop/cart"
DIGEST = "sha256:" + "a1" * 32
WHEN = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def in_toto_validate(statement: dict[str, Any]) -> vsa_pb2.VerificationSummary:  # type: ignore[name-defined]
    """Validate ``statement`` as a consumer using the in-toto-attestation package would.

    The Statement strictly (its proto and ``Statement.validate``). The predicate with the VSA v1 model,
    ignoring fields the model does not know, as the VSA's parsing rules tell consumers to (gate's
    URI-named decision extension; ``verifier.version``, which the spec has and the model lacks) — and
    with ``verifiedLevels`` checked against the specification (an array of strings), since the model
    types it as one string (in-toto/attestation#425)."""
    pb = json_format.ParseDict(statement, statement_pb2.Statement())
    Statement.copy_from_pb(pb).validate()
    predicate = copy.deepcopy(statement["predicate"])
    levels = predicate.pop("verifiedLevels")
    assert isinstance(levels, list) and levels and all(isinstance(level, str) for level in levels)
    model = json_format.ParseDict(predicate, vsa_pb2.VerificationSummary(), ignore_unknown_fields=True)
    # what the model ignored is exactly what gate means it to ignore
    known = {f.json_name for f in vsa_pb2.VerificationSummary.DESCRIPTOR.fields}
    assert set(predicate) - known == {vsa.DECISION_FIELD}
    assert set(predicate["verifier"]) == {"id", "version"}
    return model


def test_statement_of_an_allow_is_a_passed_vsa_that_validates() -> None:
    decision = make_decision(IMAGE, DIGEST)
    statement = vsa.statement(decision, time_verified=WHEN)
    model = in_toto_validate(statement)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/verification_summary/v1"
    assert statement["subject"] == [{"name": IMAGE, "digest": {"sha256": "a1" * 32}}]
    assert model.verifier.id == vsa.DEFAULT_VERIFIER_ID
    assert model.resource_uri == f"{IMAGE}@{DIGEST}"
    assert model.time_verified.ToDatetime(tzinfo=UTC) == WHEN
    assert model.verification_result == "PASSED"
    assert dict(model.policy.digest) == {"sha256": POLICY_DIGEST.split(":")[1]}
    assert model.policy.uri == "gate:library"
    assert [(a.uri, dict(a.digest)) for a in model.input_attestations] == [
        ("trivy:reports/trivy.json", {"sha256": TRIVY_SHA.split(":")[1]}),
        ("coverage:reports/coverage.xml", {"sha256": COVERAGE_SHA.split(":")[1]}),
    ]
    predicate = statement["predicate"]
    assert predicate["verifiedLevels"] == ["PROMOTION_GATE_ALLOW"]
    assert predicate["verifier"]["version"] == {"promotion-gate": vsa.__version__}
    assert predicate[vsa.DECISION_FIELD] == {
        "decisionId": decision.decision_id, "environment": "prod", "outcome": "allow",
        "recordHash": decision.hash, "policyRevision": "r7",
    }


@pytest.mark.parametrize("outcome", ["deny", "error"])
def test_deny_and_error_are_failed(outcome: str) -> None:
    statement = vsa.statement(make_decision(IMAGE, DIGEST, outcome=outcome), time_verified=WHEN)
    in_toto_validate(statement)
    assert statement["predicate"]["verificationResult"] == "FAILED"
    assert statement["predicate"]["verifiedLevels"] == ["FAILED"]


def test_release_repository_names_the_subject_and_docker_hub_is_canonical() -> None:
    decision = make_decision("nginx", DIGEST)
    statement = vsa.statement(decision, time_verified=WHEN, image=f"nginx:1.27@{DIGEST}")
    assert statement["subject"][0]["name"] == "docker.io/library/nginx"
    assert statement["predicate"]["resourceUri"] == f"docker.io/library/nginx@{DIGEST}"
    promoted = vsa.statement(decision, time_verified=WHEN, image=f"release.example.com/shop/nginx@{DIGEST}")
    assert promoted["subject"][0]["name"] == "release.example.com/shop/nginx"


def test_no_vsa_for_another_digest_or_without_an_image() -> None:
    decision = make_decision(IMAGE, DIGEST)
    with pytest.raises(vsa.AttestationError, match="no VSA for another digest"):
        vsa.statement(decision, time_verified=WHEN, image=f"{IMAGE}@sha256:{'b2' * 32}")
    with pytest.raises(vsa.AttestationError, match="names no image"):
        vsa.statement(msgspec.structs.replace(decision, artifact=None), time_verified=WHEN)


def test_read_statement_gives_back_what_was_built() -> None:
    decision = make_decision(IMAGE, DIGEST, environment="staging")
    facts = vsa.read_statement(vsa.payload(vsa.statement(decision, time_verified=WHEN)))
    assert facts == vsa.VsaFacts(
        subject_name=IMAGE, subject_digest=DIGEST, resource_uri=f"{IMAGE}@{DIGEST}",
        verifier_id=vsa.DEFAULT_VERIFIER_ID, time_verified=WHEN, result="PASSED", environment="staging",
        decision_id=decision.decision_id, policy_digest=POLICY_DIGEST, record_hash=decision.hash,
    )


def _edited(change: Any) -> bytes:
    statement = vsa.statement(make_decision(IMAGE, DIGEST), time_verified=WHEN)
    change(statement)
    return json.dumps(statement).encode()


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"), "statement type"),
        (lambda s: s.update(predicateType="https://slsa.dev/verification_summary/v0.2"), "predicate type"),
        (lambda s: s["subject"].append(dict(s["subject"][0])), "exactly one subject"),
        (lambda s: s.update(subject=[]), "exactly one subject"),
        (lambda s: s["subject"][0].update(digest={"sha512": "ab"}), "no sha256 digest"),
        (lambda s: s["subject"][0]["digest"].update(sha256="A1" * 32), "no sha256 digest"),
        (lambda s: s["predicate"].update(verificationResult="passed"), "verificationResult"),
        (lambda s: s["predicate"].update(timeVerified="2026-12-07T09:30:00"), "no time zone"),
        (lambda s: s["predicate"].pop(vsa.DECISION_FIELD), "gate's decision"),
        (lambda s: s["predicate"][vsa.DECISION_FIELD].update(environment="Prod "), "not an environment name"),
        (lambda s: s["predicate"][vsa.DECISION_FIELD].update(environment=["prod"]), "environment"),
        (lambda s: s["predicate"].update(verifier="gate"), "verifier"),
        (lambda s: s.update(predicate=[]), "predicate"),
    ],
)
def test_malformed_statements_are_named(change: Any, problem: str) -> None:
    with pytest.raises(vsa.AttestationError, match=problem):
        vsa.read_statement(_edited(change))


@pytest.mark.parametrize("data", [b"", b"[]", b"{", b"\xff", b"[" * 100_000 + b"]" * 100_000])
def test_not_json_or_deep_is_refused(data: bytes) -> None:
    with pytest.raises(vsa.AttestationError):
        vsa.read_statement(data)


def test_gate_envelope_verifies_with_securesystemslib(signer: Ed25519Signer) -> None:
    statement = vsa.statement(make_decision(IMAGE, DIGEST), time_verified=WHEN)
    envelope = vsa.sign(statement, signer)
    theirs = Envelope.from_dict(copy.deepcopy(envelope))
    key = SSlibKey.from_crypto(signer.public_key(), keyid=signer.key_id)
    assert set(theirs.verify([key], 1)) == {signer.key_id}
    assert theirs.payload_type == "application/vnd.in-toto+json"
    assert json.loads(theirs.payload) == statement
    # and an edited payload fails there too
    tampered = copy.deepcopy(envelope)
    tampered["payload"] = base64.b64encode(theirs.payload.replace(b"PASSED", b"FAILED")).decode()
    with pytest.raises(Exception, match="threshold"):
        Envelope.from_dict(tampered).verify([key], 1)


def test_securesystemslib_envelope_verifies_with_gate() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gate.decisions.signing import key_id

    private = Ed25519PrivateKey.generate()
    public = SSlibKey.from_crypto(private.public_key(), keyid=key_id(private.public_key()))
    statement = vsa.statement(make_decision(IMAGE, DIGEST), time_verified=WHEN)
    theirs = Envelope(vsa.payload(statement), dsse.IN_TOTO, {})
    theirs.sign(CryptoSigner(private, public))
    payload, signed_by = dsse.verify(theirs.to_dict(), {public.keyid: private.public_key()})
    assert signed_by == public.keyid
    assert vsa.read_statement(payload).result == "PASSED"
