"""Events: what happened after a decision — promotions and reconciler syncs — in the decision log.

An auditor asking "who let this image through" wants the decision and what was done with it:
pushed to the release registry and committed to the GitOps repository, refused, or found already
there; applied to a cluster or blocked there. Each event is a record of its own hash chain (table
``events``), hashed and signed exactly like decisions, so ``gate decisions verify`` finds an edited,
reordered or deleted event the same way. Events name the decisions they relate to
(``decision_ids``), indexed, so ``gate decisions show ID`` lists what happened after decision ID.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from gate import rfc3339
from gate.decisions.record import canonical_json, new_decision_id

if TYPE_CHECKING:
    from gate.decisions.signing import Signer

#: event types
PROMOTION = "promotion"
SYNC = "sync"
#: the outcomes each type of event records (``gate decisions events --outcome`` offers these)
OUTCOMES: dict[str, tuple[str, ...]] = {
    PROMOTION: ("done", "noop", "refused", "error"),
    SYNC: ("synced", "blocked", "error"),
}


class Event(msgspec.Struct, frozen=True, omit_defaults=True):
    """One event record.

    ``outcome`` for a promotion: ``done``, ``noop`` (already promoted), ``refused`` or ``error``;
    for a sync: ``synced``, ``blocked`` or ``error``. ``details`` holds what was done and why
    (registry operations, the GitOps commit, refusal reasons; applied and blocked objects).
    """

    event_id: str
    timestamp: str
    type: str
    outcome: str
    environment: str
    decision_ids: tuple[str, ...] = ()
    #: the image concerned, when there is one: {image, digest, target?}
    artifact: dict[str, Any] | None = None
    details: dict[str, Any] = {}
    #: who did it: CI context or the reconciler's identity
    context: dict[str, Any] = {}
    prev_hash: str | None = None
    hash: str | None = None
    signing_key: str | None = None
    signature: str | None = None


def new_event(type_: str, outcome: str, environment: str, *, decision_ids: tuple[str, ...] = (),
              artifact: dict[str, Any] | None = None, details: dict[str, Any] | None = None,
              context: dict[str, Any] | None = None) -> Event:
    """An event stamped now, with a fresh time-ordered id; every credential redacted, as it is signed
    and kept for good."""
    from datetime import UTC, datetime

    from gate.redact import redact_value

    artifact, details, context = redact_value(artifact), redact_value(details or {}), redact_value(context or {})
    return Event(
        event_id=new_decision_id(),
        timestamp=rfc3339.format(datetime.now(UTC)),
        type=type_,
        outcome=outcome,
        environment=environment,
        decision_ids=tuple(decision_ids),
        artifact=artifact,
        details=details,
        context=context,
    )


def event_hash(event: Event) -> str:
    """sha256 over the canonical event without ``hash`` and ``signature``."""
    body = msgspec.structs.replace(event, hash=None, signature=None)
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def chain_event(event: Event, prev_hash: str | None, signer: Signer | None) -> Event:
    """``event`` linked after the event whose hash is ``prev_hash``: hashed, and signed when a signer is given."""
    linked = msgspec.structs.replace(event, prev_hash=prev_hash, signing_key=signer.key_id if signer else None)
    digest = event_hash(linked)
    return msgspec.structs.replace(linked, hash=digest, signature=signer.sign(digest) if signer else None)


@dataclass(frozen=True)
class EventQuery:
    """Filters on events (all optional; combined with AND)."""

    decision_id: str | None = None
    type: str | None = None
    environment: str | None = None
    digest: str | None = None
    #: bounds on the event timestamp in the stored format (since inclusive, until exclusive)
    since: str | None = None
    until: str | None = None
    outcome: str | None = None
    #: only events naming a decision that applied at least one waiver: what was let through on an exception
    waived: bool = False
    limit: int | None = None
    oldest_first: bool = False
    #: only events with seq <= through_seq (a page cursor: ``gate serve --ui`` lists events in pages)
    through_seq: int | None = None
