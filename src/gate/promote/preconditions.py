"""What must hold before an image moves: the decision that lets it through.

``gate promote`` refuses (exit 1, nothing changed) unless the decision exists, says allow, hashes to
its recorded hash, carries a valid signature by a trusted key, is about this digest and environment,
is younger than the maximum age, and no waiver it relied on has expired since. Every reason found is
reported, not only the first, so one run tells the whole story.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gate.decisions.record import Decision, Outcome, record_hash, sha256_digest

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: default maximum age of a decision a promotion may rely on (GATE_PROMOTE_MAX_AGE, --max-age)
DEFAULT_MAX_AGE = "7d"


@dataclass(frozen=True)
class Expectation:
    """What the promotion is about: the decision must match it."""

    environment: str | None
    digest: str | None
    max_age: timedelta
    now: datetime


def parse_timestamp(value: str) -> datetime:
    """A stored RFC 3339 timestamp (``…Z`` or an offset) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def refusals(decision: Decision | None, decision_id: str, expect: Expectation,
             trusted: dict[str, Ed25519PublicKey]) -> list[str]:
    """Why ``decision`` does not allow this promotion; empty when it does."""
    from gate.decisions.signing import verify_signature

    if decision is None:
        return [f"no decision {decision_id} in the decision log"]
    reasons: list[str] = []
    if decision.outcome is not Outcome.ALLOW:
        reasons.append(f"decision {decision_id} is {decision.outcome.value}, not allow")
    if record_hash(decision) != decision.hash or sha256_digest(decision.input) != decision.input_digest:
        reasons.append(f"decision {decision_id} does not hash to its recorded hash: the record was altered")
    else:
        problem = verify_signature(decision, trusted)
        if problem is not None:
            reasons.append(f"decision {decision_id}: {problem}")
    digest = (decision.artifact or {}).get("digest")
    if expect.digest is not None and digest != expect.digest:
        reasons.append(f"decision {decision_id} is about {digest}, not {expect.digest}")
    if expect.environment is not None and decision.environment != expect.environment:
        reasons.append(f"decision {decision_id} is for environment {decision.environment}, not {expect.environment}")
    age = expect.now - parse_timestamp(decision.timestamp)
    if age > expect.max_age:
        reasons.append(
            f"decision {decision_id} is {_days(age)} old, older than the maximum age {_days(expect.max_age)}: evaluate again"
        )
    for waiver in decision.waivers:
        if parse_timestamp(waiver.expires) <= expect.now:
            reasons.append(f"waiver {waiver.id} ({waiver.rule}) the decision relied on expired at {waiver.expires}")
    return reasons


def _days(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f}d" if hours >= 48 else f"{hours:.1f}h"
