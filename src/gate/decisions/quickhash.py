"""Hashing a stored record without decoding its bulk: the fast path of ``gate decisions verify``.

Most of a large record is its ``violations`` and ``warnings`` (a message, title, solution and finding
ids per finding: megabytes for a report of thousands), and decoding a record into objects and
encoding it again is most of what verify spends on it. The stores write each record as its
canonical JSON (sql.record_json: sorted keys, compact), and a record's hash is the sha256 of the
canonical JSON of the record without ``hash`` and ``signature`` (record.record_hash; a stored-form
record's body is exactly its stored fields). So ``quick_decode`` decodes only what verify checks
(the bulk stays raw bytes, scanned, not decoded), cuts the ``"hash":…,`` and ``"signature":…,``
members out of the stored bytes and hashes the rest. Of the violations it reads only each one's
``rule`` (what verify checks the index rows against).

This can only confirm a record, never condemn one: when a member is not found exactly once (a
record written before records were canonical, by another encoder, or edited), or the bytes left do
not hash to the record's ``hash``, it returns None and the caller decodes the record fully and
reports what that shows. It confirms only bytes whose sha256 is the record's (signed) hash: those
are the canonical body itself, and the two members cut out must be the record's top-level hash
and signature (the body has neither), so the record decodes to exactly what was hashed.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, cast

import msgspec

from gate.decisions.record import Decision, canonical_json

#: fields verify does not read: kept raw (scanned for their end, never decoded); of ``violations`` only rules are
_RAW = frozenset({"warnings", "scanners", "summary", "context", "data", "stale_waivers", "error"})


class RuleOnly(msgspec.Struct, frozen=True):
    """A violation as verify's index check reads it: its rule (every other key skipped, not decoded)."""

    rule: str
    #: not read: the stored form has no input findings for index_rows to match them against
    finding_ids: ClassVar[tuple[str, ...]] = ()


def _view_fields() -> list[Any]:
    fields: list[Any] = []
    for field in msgspec.structs.fields(Decision):
        kind = msgspec.Raw if field.name in _RAW else tuple[RuleOnly, ...] if field.name == "violations" else field.type
        if field.required:
            fields.append((field.name, kind))
        elif field.default_factory is not msgspec.NODEFAULT:
            fields.append((field.name, kind, msgspec.field(default_factory=field.default_factory)))
        else:
            fields.append((field.name, kind, field.default))
    return fields


#: Decision with what verify does not read left raw, and violations reduced to their rules
StoredView = msgspec.defstruct("StoredView", _view_fields(), frozen=True, omit_defaults=True, module=__name__)


def quick_decode(record: bytes | str) -> tuple[Decision, str] | None:
    """(the record as verify reads it — violations reduced to their rules, the bulk raw —, its recomputed
    hash) when its stored bytes hash to its own ``hash``; None otherwise (decode it fully to see why)."""
    data = record.encode() if isinstance(record, str) else bytes(record)
    try:
        view: Any = msgspec.json.decode(data, type=StoredView)
        if not isinstance(view.hash, str):
            return None
        cuts: list[tuple[int, int]] = []
        for name, value in (("hash", view.hash), ("signature", view.signature)):
            if value is None:
                continue
            member = b'"' + name.encode() + b'":' + canonical_json(value) + b","  # never the last member
            at = data.find(member)
            if at < 0 or data.find(member, at + 1) >= 0:  # exactly once, or decode it fully
                return None
            cuts.append((at, at + len(member)))
        digest = hashlib.sha256()
        kept = 0
        for at, end in sorted(cuts):
            digest.update(memoryview(data)[kept:at])
            kept = end
        digest.update(memoryview(data)[kept:])
        recomputed = "sha256:" + digest.hexdigest()
    except (msgspec.DecodeError, TypeError, ValueError):
        return None
    return (cast(Decision, view), recomputed) if recomputed == view.hash else None
