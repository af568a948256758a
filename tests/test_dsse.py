"""DSSE envelopes: PAE as the spec gives it, sign/verify round trip, and the ways a check can be got around."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate import dsse
from gate.decisions.signing import Ed25519Signer


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer(Ed25519PrivateKey.generate())


def test_pae_is_the_specs_encoding() -> None:
    # the example in the DSSE protocol document
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_signed_envelope_verifies_with_the_trusted_key(signer: Ed25519Signer) -> None:
    envelope = dsse.sign(b'{"a":1}', dsse.IN_TOTO, signer.key_id, signer.sign_bytes)
    payload, key = dsse.verify(envelope, {signer.key_id: signer.public_key()})
    assert (payload, key) == (b'{"a":1}', signer.key_id)


def test_untrusted_key_is_refused_and_named(signer: Ed25519Signer) -> None:
    other = Ed25519Signer(Ed25519PrivateKey.generate())
    envelope = dsse.sign(b"{}", dsse.IN_TOTO, signer.key_id, signer.sign_bytes)
    with pytest.raises(dsse.EnvelopeError, match=f"signed by {signer.key_id}, not a trusted key"):
        dsse.verify(envelope, {other.key_id: other.public_key()})


def test_edited_payload_is_refused(signer: Ed25519Signer) -> None:
    envelope = dsse.sign(b'{"verificationResult":"FAILED"}', dsse.IN_TOTO, signer.key_id, signer.sign_bytes)
    envelope["payload"] = base64.b64encode(b'{"verificationResult":"PASSED"}').decode()
    with pytest.raises(dsse.EnvelopeError, match="no signature verifies"):
        dsse.verify(envelope, {signer.key_id: signer.public_key()})


def test_payload_type_is_bound(signer: Ed25519Signer) -> None:
    envelope = dsse.sign(b"{}", "text/plain", signer.key_id, signer.sign_bytes)
    with pytest.raises(dsse.EnvelopeError, match="payloadType is 'text/plain'"):
        dsse.verify(envelope, {signer.key_id: signer.public_key()})
    # relabelling the type does not carry the signature over
    envelope["payloadType"] = dsse.IN_TOTO
    with pytest.raises(dsse.EnvelopeError, match="no signature verifies"):
        dsse.verify(envelope, {signer.key_id: signer.public_key()})


def test_signature_without_keyid_is_tried_with_every_trusted_key(signer: Ed25519Signer) -> None:
    envelope = dsse.sign(b"{}", dsse.IN_TOTO, signer.key_id, signer.sign_bytes)
    del envelope["signatures"][0]["keyid"]
    other = Ed25519Signer(Ed25519PrivateKey.generate())
    assert dsse.verify(envelope, {other.key_id: other.public_key(), signer.key_id: signer.public_key()})[1] == signer.key_id


@pytest.mark.parametrize(
    "envelope, problem",
    [
        ([], "must be a JSON object"),
        ({"payload": "e30=", "signatures": [{"sig": "AA=="}]}, "payloadType is missing"),
        ({"payloadType": dsse.IN_TOTO, "payload": "not base64!", "signatures": [{"sig": "AA=="}]}, "payload is not base64"),
        ({"payloadType": dsse.IN_TOTO, "payload": "e30=", "signatures": []}, "no signatures"),
        ({"payloadType": dsse.IN_TOTO, "payload": "e30=", "signatures": ["x"]}, r"signatures\[0\] must be an object"),
    ],
)
def test_malformed_envelopes_are_named(envelope: object, problem: str, signer: Ed25519Signer) -> None:
    with pytest.raises(dsse.EnvelopeError, match=problem):
        dsse.verify(envelope, {signer.key_id: signer.public_key()})


def test_no_trusted_key_says_so(signer: Ed25519Signer) -> None:
    envelope = dsse.sign(b"{}", dsse.IN_TOTO, signer.key_id, signer.sign_bytes)
    with pytest.raises(dsse.EnvelopeError, match="no key is trusted"):
        dsse.verify(envelope, {})
