"""What must hold before an image moves: the decision that lets it through.

``gate promote`` refuses (exit 1, nothing changed) unless the decision exists, says allow, hashes to
its recorded hash, carries a valid signature by a trusted key, is about this digest and environment,
is younger than the maximum age, no waiver it relied on has expired since, and it is the newest
decision for that digest and environment (``gate reconcile`` and the admission webhook judge by the
newest one, so a superseded allow would only be blocked at deploy time). The checks themselves are
``gate.decisions.trust``'s, shared with reconcile and the webhook. Every reason found is reported,
not only the first, so one run tells the whole story.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gate.decisions.trust import check_decision, decision_trust

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from gate.decisions.record import Decision
    from gate.decisions.interface import DecisionStore

#: default maximum age of a decision a promotion may rely on (GATE_PROMOTE_MAX_AGE, --max-age)
DEFAULT_MAX_AGE = "7d"


@dataclass(frozen=True)
class Expectation:
    """What the promotion is about: the decision must match it."""

    environment: str | None
    digest: str | None
    max_age: timedelta
    now: datetime


def refusals(decision: Decision | None, decision_id: str, expect: Expectation,
             trusted: dict[str, Ed25519PublicKey], store: DecisionStore) -> list[str]:
    """Why ``decision`` does not allow this promotion; empty when it does."""
    if decision is None:
        return [f"no decision {decision_id} in the decision log"]
    digest = expect.digest or (decision.artifact or {}).get("digest")
    environment = expect.environment or decision.environment
    about = (decision.artifact or {}).get("digest")
    if about != digest or decision.environment != environment or not isinstance(digest, str):
        # not about what is promoted: its own checks say why; which decision is newest is moot
        return list(check_decision(decision, trusted, expect.now, max_age=expect.max_age,
                                   digest=expect.digest, environment=expect.environment).problems)
    trust = decision_trust(store, digest, environment, trusted, expect.now, expect.max_age)
    newest = trust.decision
    if newest is not None and newest.decision_id == decision.decision_id:
        return list(trust.problems)
    reasons = list(check_decision(decision, trusted, expect.now, max_age=expect.max_age,
                                  digest=digest, environment=environment).problems)
    if newest is None:  # the log returned it by id but not by (digest, environment): judge nothing on it
        reasons.append(f"decision {decision_id} is not found among the decisions for {digest} in {environment}")
    else:
        reasons.append(
            f"decision {decision_id} is superseded by the newer decision {newest.decision_id} "
            f"({newest.outcome.value}, {newest.timestamp}) for {digest} in {environment}: the newest decision counts"
        )
    return reasons
