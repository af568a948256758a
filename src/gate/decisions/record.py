"""The decision record (schemas/decision.schema.json): what was decided, about what, under which policy.

A record carries the full input document so the decision can be replayed. ``input_digest`` is the
sha256 of the input's canonical JSON (sorted keys, no insignificant whitespace); ``prev_hash``,
``hash`` and ``signature`` are filled in by the decision log when the record is appended.

A record has two forms (format v2, ``input_parts`` set): the **full form** every caller sees, with
``input`` and ``data`` complete, and the **stored form** the log keeps in its row, where the large
input values (``findings``, ...) and ``data`` are replaced by the digests of content-addressed
documents stored once (gate.decisions.documents). ``record_hash`` gives both forms the same hash.
Records written before v2 (``input_parts`` absent) hash exactly as they always did.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from enum import StrEnum
from typing import Any

import msgspec


class Outcome(StrEnum):
    """What a decision says."""

    ALLOW = "allow"
    DENY = "deny"
    #: no decision could be made (engine or policy failure): never an allow
    ERROR = "error"


class Violation(msgspec.Struct, frozen=True, omit_defaults=True):
    """A deny (or, in ``warnings``, a warn) result of a policy rule."""

    rule: str
    message: str
    severity: str
    finding_ids: tuple[str, ...] = ()
    title: str | None = None
    solution: str | None = None
    #: the Rego package the result came from
    package: str | None = None
    #: set when a rule is not yet in force: the result is a warning until then
    effective_on: str | None = None


class AppliedWaiver(msgspec.Struct, frozen=True, omit_defaults=True):
    """One triage entry the decision applied: a waiver, or a VEX statement (``kind`` "vex").

    The record's ``waivers`` list is the decision's triage (the JSON key stays ``waivers`` so records
    made before VEX hash the same). A waiver has ``expires`` and ``approved_by``; a VEX statement has
    its ``document`` digest, ``statement``, ``status``, ``justification`` and ``author`` instead. Fields
    left unset are omitted, so a waiver entry reads and hashes as it always did.
    """

    id: str
    rule: str
    expires: str | None = None
    approved_by: str | None = None
    reason: str | None = None
    #: the findings it applies to: those it matches where no more specific triage entry does
    finding_ids: tuple[str, ...] = ()
    #: the scope fields the waiver sets (image, image_digest, environment, purl, package, path, target,
    #: finding_id), or the VEX product that matched: why it matched; None on records made before scopes
    scope: dict[str, str] | None = None
    #: "vex" for a VEX statement; None (omitted) for a waiver
    kind: str | None = None
    #: VEX: ``sha256:`` of the document file, the statement (@id, bom-ref or #index), its format
    document: str | None = None
    statement: str | None = None
    format: str | None = None
    #: VEX: not_affected or fixed (the statuses that triage)
    status: str | None = None
    justification: str | None = None
    #: VEX: the document's author
    author: str | None = None

    @property
    def is_vex(self) -> bool:
        """Whether this entry is a VEX statement (else a waiver)."""
        return self.kind == "vex"

    @property
    def source(self) -> str:
        """Where the entry comes from, for people: ``waiver W-1`` or ``VEX openvex 1a2b3c4d5e6f statement #0``."""
        if self.is_vex:
            digest = (self.document or "").removeprefix("sha256:")[:12]
            return f"VEX {self.format or ''} {digest} statement {self.statement}".replace("  ", " ")
        return f"waiver {self.id}"

    @property
    def who(self) -> str:
        """The approver of a waiver, the author of a VEX statement ("" when unknown)."""
        return (self.author if self.is_vex else self.approved_by) or ""


class LayerInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """One bundle of a layered policy (``--policy`` given more than once), bottom first."""

    #: the ``--policy`` value (``gate:library``, a directory), an OCI bundle pinned by its manifest digest
    source: str
    digest: str
    revision: str | None = None


class PolicyInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """Which policy decided, and with which engine."""

    #: the bundle's digest; with several layers, sha256 over the layers' digests in order
    digest: str
    engine: str
    engine_version: str
    #: the top layer's ``.manifest`` revision
    revision: str | None = None
    #: the ``--policy`` values, joined by ", "
    bundle: str | None = None
    #: every layer, bottom first (records from before layers have none: omitted, so they hash the same)
    layers: tuple[LayerInfo, ...] = ()


class Decision(msgspec.Struct, frozen=True, omit_defaults=True):
    """One decision record."""

    decision_id: str
    timestamp: str
    outcome: Outcome
    environment: str
    artifact: dict[str, Any] | None
    violations: tuple[Violation, ...]
    warnings: tuple[Violation, ...]
    waivers: tuple[AppliedWaiver, ...]
    summary: dict[str, dict[str, int]]
    policy: PolicyInfo
    input_digest: str
    input: dict[str, Any]
    scanners: tuple[dict[str, Any], ...]
    context: dict[str, Any]
    stale_waivers: tuple[str, ...] = ()
    #: the ``--data`` documents merged into the bundle's data (waivers, thresholds): with ``input``,
    #: everything needed to replay the decision
    data: dict[str, Any] | None = None
    error: str | None = None
    #: format v2: top-level input key -> digest (``sha256_digest``) of its value, for the keys stored as
    #: documents; the stored form's ``input`` holds only the other keys. None: a record from before v2
    input_parts: dict[str, str] | None = None
    #: format v2: digest of ``data``, stored as a document; the stored form's ``data`` is None
    data_digest: str | None = None
    #: format v2: digest of ``{"violations": [...], "warnings": [...]}`` when they are large, stored as a
    #: document (re-evaluations share it); the stored form's ``violations`` and ``warnings`` are empty
    results_digest: str | None = None
    prev_hash: str | None = None
    hash: str | None = None
    #: id of the Ed25519 key that signed ``hash`` (sha256 of the raw public key, 16 hex digits)
    signing_key: str | None = None
    #: base64 Ed25519 signature over the ASCII bytes of ``hash``
    signature: str | None = None



def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the bytes every hash is taken over."""
    return msgspec.json.encode(value, order="sorted")


def sha256_digest(value: Any) -> str:
    """``sha256:<hex>`` of ``value``'s canonical JSON."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()


def record_hash(decision: Decision) -> str:
    """sha256 over the canonical record without ``hash`` and ``signature``.

    Before v2 (``input_parts`` None) the input is left out: it is bound through ``input_digest``
    (checked on its own). From v2 the body holds the inline input keys and, for each document, its
    digest: recomputed from the value when the record is in full form, the stored reference
    otherwise; so both forms hash the same, an edited document shows in a full-form check, and
    verify hashes a stored record without reading its documents. ``signing_key`` is covered: a
    signature cannot be moved to another key's name.
    """
    import msgspec.structs

    if decision.input_parts is None:
        body = msgspec.structs.replace(decision, hash=None, signature=None, input={})
    else:
        full = decision.input
        body = msgspec.structs.replace(
            decision,
            hash=None,
            signature=None,
            input={k: v for k, v in full.items() if k not in decision.input_parts},
            input_parts={k: sha256_digest(full[k]) if k in full else ref for k, ref in decision.input_parts.items()},
            data=None,
            data_digest=sha256_digest(decision.data) if decision.data is not None else decision.data_digest,
            # results kept as a document are bound by their digest (re-hashed on every read and by verify)
            **({"violations": (), "warnings": ()} if decision.results_digest is not None else {}),
        )
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def new_decision_id(now_ns: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so ids sort by creation like the log does."""
    ms = (now_ns if now_ns is not None else time.time_ns()) // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def summarize(findings: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Counts of findings per scanner and severity."""
    pairs = Counter((f["scanner"], f["severity"]) for f in findings)
    summary: dict[str, dict[str, int]] = {}
    for (scanner, severity), n in sorted(pairs.items()):
        summary.setdefault(scanner, {})[severity] = n
    return summary
