"""Signed verify checkpoints: "every record up to seq S, ending in hash H, was verified intact and validly signed".

``gate decisions verify --checkpoint`` stores one after a fully successful verify, signed by
GATE_SIGNING_KEY. A later verify still re-hashes and re-links every record, but skips the Ed25519
check of each record's signature (139 µs each on a slow core: most of verify's time) at or before
the newest checkpoint it can trust:

- its signature verifies under a trusted key (GATE_TRUSTED_KEYS),
- every key the covered records were signed with (``keys``) is still trusted, and
- the chain's record at ``seq`` still has hash ``hash`` (checked during the walk).

Why that is sound: a record's hash covers everything in it but its signature, and each record's
``prev_hash`` covers the one before, so H pins the content of every record up to S. What the
checkpoint vouches for is that each of those contents carried a valid signature by one of ``keys``
when it was made; the signature bytes themselves are not re-checked (``--full`` re-checks them).

Checkpoints live in the log's own ``checkpoints`` table, so whoever can write the log can delete or
forge them: a deleted one only makes verify slower (every signature is checked), one signed by a key
that is not trusted is ignored (with a note), and one that claims a trusted key but whose signature
does not verify, or whose body disagrees with its columns, is reported: verify fails. A validly
signed checkpoint whose (seq, hash) the chain no longer holds fails verify too (the log was rewritten
or cut after it was verified), even when it is not the one used.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from cryptography.exceptions import InvalidSignature

from gate.decisions.record import canonical_json, sha256_digest

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from gate.decisions.signing import Signer

#: what a checkpoint body says it is: its signature can never pass for a record's (nor the reverse)
KIND = "gate.decisions.checkpoint/v1"


class Checkpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The signed body of a checkpoint (the ``record`` column holds its canonical JSON)."""

    kind: str
    #: the last record covered, and its hash
    seq: int
    hash: str
    #: records in the chain up to and including ``seq``
    count: int
    #: when the verify that wrote it ran (RFC 3339, UTC)
    timestamp: str
    #: the key ids the covered records were signed with, sorted
    keys: tuple[str, ...]


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint as a store keeps it: the body's JSON and the signature over its digest."""

    seq: int
    hash: str
    count: int
    timestamp: str
    signing_key: str
    signature: str
    #: JSON array of ``keys``, for people reading the table
    keys: str
    #: canonical JSON of the Checkpoint body: what is signed (through its sha256 digest)
    record: str


def make_checkpoint(seq: int, record_hash: str, count: int, timestamp: str, keys: Iterable[str], signer: Signer) -> StoredCheckpoint:
    """A checkpoint over the chain up to ``seq`` (whose record hashes to ``record_hash``), signed by ``signer``."""
    body = Checkpoint(KIND, seq, record_hash, count, timestamp, tuple(sorted(set(keys))))
    return StoredCheckpoint(
        seq=seq, hash=record_hash, count=count, timestamp=timestamp, signing_key=signer.key_id,
        signature=signer.sign(sha256_digest(body)), keys=msgspec.json.encode(list(body.keys)).decode(),
        record=canonical_json(body).decode(),
    )


@dataclass(frozen=True)
class TrustedCheckpoint:
    """A checkpoint whose signature verified under a trusted key."""

    body: Checkpoint
    signing_key: str

    def as_dict(self) -> dict[str, Any]:
        """What ``verify --format json`` prints about it."""
        b = self.body
        return {"seq": b.seq, "hash": b.hash, "count": b.count, "timestamp": b.timestamp, "signing_key": self.signing_key}

    def describe(self) -> str:
        """``checkpoint at seq 7 (signed by key K at T)``."""
        return f"checkpoint at seq {self.body.seq} (signed by key {self.signing_key} at {self.body.timestamp})"


@dataclass(frozen=True)
class Checkpoints:
    """What the stored checkpoints allow a verify to skip, and what they pin."""

    #: the newest usable checkpoint: signatures at or before its seq are vouched for (None: check them all)
    used: TrustedCheckpoint | None = None
    #: seq -> (hash, checkpoint) for every validly signed checkpoint: the chain must still hold each
    pins: dict[int, tuple[str, TrustedCheckpoint]] = field(default_factory=dict)
    #: checkpoints not used, one line each (untrusted signer, a key no longer trusted)
    ignored: tuple[str, ...] = ()
    #: the first checkpoint that claims a trusted key but does not verify: verify fails with this
    forged: str | None = None

    @property
    def signed_through(self) -> int:
        """Records with seq up to this one need no Ed25519 check of their own (0: all do)."""
        return self.used.body.seq if self.used else 0


def assess(stored: Iterable[StoredCheckpoint], trusted: dict[str, Ed25519PublicKey]) -> Checkpoints:
    """Sort the stored checkpoints (newest first) into used, pinned, ignored and forged."""
    used: TrustedCheckpoint | None = None
    pins: dict[int, tuple[str, TrustedCheckpoint]] = {}
    ignored: list[str] = []
    forged: str | None = None
    for row in sorted(stored, key=lambda r: r.seq, reverse=True):
        where = f"checkpoint at seq {row.seq}"
        public = trusted.get(row.signing_key)
        if public is None:
            ignored.append(f"{where}: signed by key {row.signing_key}, which is not a trusted key (GATE_TRUSTED_KEYS)")
            continue
        problem, body = _check(row, public)
        if problem is not None or body is None:
            forged = forged or f"{where} (signed by key {row.signing_key}): {problem}; forged or edited"
            continue
        checkpoint = TrustedCheckpoint(body, row.signing_key)
        pins.setdefault(body.seq, (body.hash, checkpoint))
        untrusted = [k for k in body.keys if k not in trusted]
        if untrusted:
            ignored.append(f"{where}: covers records signed by key {', '.join(untrusted)}, which is no longer trusted")
        elif used is None:
            used = checkpoint
    return Checkpoints(used, pins, tuple(ignored), forged)


def _check(row: StoredCheckpoint, public: Ed25519PublicKey) -> tuple[str | None, Checkpoint | None]:
    """What is wrong with a checkpoint claiming a trusted key, or its body."""
    try:
        body = msgspec.json.decode(row.record, type=Checkpoint)
    except (msgspec.DecodeError, TypeError) as e:
        return f"its body cannot be decoded ({e})", None
    if body.kind != KIND:
        return f"its body is a {body.kind!r}, not a checkpoint", None
    try:
        signature = base64.b64decode(row.signature, validate=True)
        public.verify(signature, sha256_digest(body).encode("ascii"))
    except (binascii.Error, ValueError, InvalidSignature):
        return "bad signature", None
    if (body.seq, body.hash, body.count, body.timestamp) != (row.seq, row.hash, row.count, row.timestamp):
        return "its columns disagree with its signed body", None
    return None, body
