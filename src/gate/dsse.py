"""DSSE envelopes (https://github.com/secure-systems-lab/dsse, v1.0): signing and checking signed payloads.

The one home for "is this payload signed by a key gate trusts": the VSA gate attaches to an image and
a signed VEX document are both DSSE envelopes with Ed25519 signatures over the pre-authentication
encoding (PAE) of payload type and payload. Key ids are gate's (``gate.decisions.signing.key_id``:
16 hex digits of the sha256 of the raw public key), so one trust list serves records and envelopes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.errors import GateError

#: the in-toto Statement payload type
IN_TOTO = "application/vnd.in-toto+json"

#: an envelope larger than this is refused before it is decoded
MAX_ENVELOPE_BYTES = 4 * 1024 * 1024


class EnvelopeError(GateError):
    """An envelope is malformed, or none of its signatures is by a trusted key."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSEv1 pre-authentication encoding: what each signature is over."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign(payload: bytes, payload_type: str, key_id: str, sign_bytes: Callable[[bytes], bytes]) -> dict[str, Any]:
    """An envelope carrying ``payload``, signed by ``sign_bytes`` (raw Ed25519 signature of the PAE)."""
    signature = sign_bytes(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": key_id, "sig": base64.b64encode(signature).decode("ascii")}],
    }


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"{what} must be a base64 string")
    try:
        # DSSE allows standard or URL-safe base64, padded or not
        text = value.replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{what} is not base64") from None


def open_envelope(envelope: Any) -> tuple[str, bytes, list[tuple[str | None, bytes]]]:
    """The payload type, payload and (keyid, signature) pairs of a well-formed envelope."""
    if not isinstance(envelope, Mapping):
        raise EnvelopeError("a DSSE envelope must be a JSON object")
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str) or not payload_type:
        raise EnvelopeError("DSSE envelope: payloadType is missing")
    payload = _b64(envelope.get("payload"), "DSSE envelope: payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise EnvelopeError("DSSE envelope: no signatures")
    pairs: list[tuple[str | None, bytes]] = []
    for index, entry in enumerate(signatures):
        if not isinstance(entry, Mapping):
            raise EnvelopeError(f"DSSE envelope: signatures[{index}] must be an object")
        keyid = entry.get("keyid")
        pairs.append((keyid if isinstance(keyid, str) and keyid else None, _b64(entry.get("sig"), f"DSSE envelope: signatures[{index}].sig")))
    return payload_type, payload, pairs


def verify(envelope: Any, trusted: Mapping[str, Ed25519PublicKey], payload_type: str = IN_TOTO) -> tuple[bytes, str]:
    """The payload of ``envelope`` and the id of the trusted key that signed it.

    Raises EnvelopeError when the envelope is malformed, carries another payload type, or has no
    valid signature by a key of ``trusted``. A signature naming no key id is tried with every key.
    """
    kind, payload, pairs = open_envelope(envelope)
    if kind != payload_type:
        raise EnvelopeError(f"DSSE envelope: payloadType is {kind!r}, expected {payload_type!r}")
    message = pae(kind, payload)
    named = sorted({keyid for keyid, _ in pairs if keyid})
    for keyid, signature in pairs:
        for candidate in ([keyid] if keyid else sorted(trusted)):
            key = trusted.get(candidate)
            if key is None:
                continue
            try:
                key.verify(signature, message)
            except InvalidSignature:
                continue
            return payload, candidate
    if not trusted:
        raise EnvelopeError("DSSE envelope: no key is trusted (set GATE_TRUSTED_KEYS)")
    if named and not set(named) & set(trusted):
        raise EnvelopeError(f"DSSE envelope: signed by {', '.join(named)}, not a trusted key ({', '.join(sorted(trusted))})")
    raise EnvelopeError("DSSE envelope: no signature verifies with a trusted key")
