"""Decision trust: which decision counts for an image digest in an environment, and can it be relied on.

The one home of the questions ``gate promote``, ``gate reconcile`` and the admission webhook ask of
the decision log (each used to carry its own copy, and the copies disagreed):

- the newest decision for (digest, environment) is the one that counts: an allow is superseded by
  any decision recorded after it for the same digest and environment;
- its record must hash to its recorded hash and its stored input to its ``input_digest``;
- it must carry a valid Ed25519 signature by a trusted key;
- it must be no older than a maximum age (when the caller has one; admission's comes from policy
  data and is judged by the admission rules from ``age``);
- no waiver it relied on may have expired since (an unreadable expiry counts as expired).

Fail closed: an unreadable timestamp is a problem (age unknown), never a pass. A record that cannot
be decoded is an ``UndecodableRecord`` (a ``StoreError``) naming the log and the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gate import rfc3339
from gate.decisions.record import AppliedWaiver, Decision, Outcome
from gate.decisions.signing import verify_signature
from gate.decisions.interface import DecisionQuery, DecisionStore
from gate.decisions.verify import hash_problem, input_problem

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["DecisionCheck", "DecisionTrust", "check_decision", "decision_trust"]


@dataclass(frozen=True)
class DecisionCheck:
    """What was found checking one stored decision at one moment."""

    decision: Decision
    #: the record was edited: it no longer hashes to its hash, or its input to its input_digest
    integrity_problem: str | None
    #: unsigned, signed by an untrusted key, or a bad signature; None when it verifies (and when the
    #: record was edited: a signature cannot vouch for an edited record, integrity_problem says why)
    signature_problem: str | None
    #: the decision's signing key is one of the trusted keys
    trusted_key: bool
    #: how long before ``now`` it was decided; None when its timestamp cannot be read
    age: timedelta | None
    #: the waivers it applied that have expired by ``now`` (or whose expiry cannot be read)
    expired_waivers: tuple[AppliedWaiver, ...]
    #: every reason not to rely on it, one line each, in a fixed order; empty when it can be relied on
    problems: tuple[str, ...]

    @property
    def record_problem(self) -> str | None:
        """Why the record itself cannot be trusted (edited or not validly signed by a trusted key)."""
        return self.integrity_problem or self.signature_problem


@dataclass(frozen=True)
class DecisionTrust:
    """The decision that counts for (digest, environment), and why it cannot be relied on."""

    digest: str
    environment: str
    #: the newest decision for (digest, environment); None when there is none
    decision: Decision | None
    #: every reason not to rely on it; empty when it can be relied on
    problems: tuple[str, ...]
    #: the checks of the decisions looked up, newest first (``history`` of them; the first is ``decision``'s)
    checks: tuple[DecisionCheck, ...] = ()

    @property
    def trusted(self) -> bool:
        """True when the newest decision is an allow that can be relied on."""
        return self.decision is not None and not self.problems


def decision_trust(
    store: DecisionStore,
    digest: str,
    environment: str,
    trusted: dict[str, Ed25519PublicKey],
    now: datetime,
    max_age: timedelta | None = None,
    *,
    history: int = 1,
) -> DecisionTrust:
    """The newest decision for ``digest`` in ``environment`` and every reason not to rely on it.

    ``history`` decisions are looked up, newest first, and each is checked (``checks``); only the
    newest one's stored input is re-hashed (it is the one relied on and replayed).
    """
    records = store.query(DecisionQuery(digest=digest, environment=environment, limit=max(1, history)))
    try:
        stored = list(records)  # an undecodable record raises UndecodableRecord, naming the log and the row
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()
    checks = tuple(
        check_decision(decision, trusted, now, max_age=max_age, digest=digest, environment=environment, check_input=index == 0)
        for index, decision in enumerate(stored)
    )
    if not checks:
        return DecisionTrust(digest, environment, None, (f"no decision for {digest} in {environment}: it never passed the gate",))
    return DecisionTrust(digest, environment, checks[0].decision, checks[0].problems, checks)


def check_decision(
    decision: Decision,
    trusted: dict[str, Ed25519PublicKey],
    now: datetime,
    *,
    max_age: timedelta | None = None,
    digest: str | None = None,
    environment: str | None = None,
    check_input: bool = True,
) -> DecisionCheck:
    """Check one decision: allow, intact, trusted signature, about ``digest`` in ``environment`` (when
    given), no older than ``max_age`` (when given), no relied-on waiver expired by ``now``."""
    name = f"decision {decision.decision_id}"
    problems: list[str] = []
    if decision.outcome is not Outcome.ALLOW:
        problems.append(f"{name} is {decision.outcome.value}, not allow")
    integrity = hash_problem(decision) or (input_problem(decision) if check_input else None)
    signature = None if integrity else verify_signature(decision, trusted)
    if integrity:
        problems.append(f"{name} does not hash to its recorded hash: the record was altered")
    elif signature:
        problems.append(f"{name}: {signature}")
    about = (decision.artifact or {}).get("digest")
    if digest is not None and about != digest:
        problems.append(f"{name} is about {about}, not {digest}")
    if environment is not None and decision.environment != environment:
        problems.append(f"{name} is for environment {decision.environment}, not {environment}")
    age = _age(decision.timestamp, now)
    if age is None:
        problems.append(f"{name} has no readable timestamp ({decision.timestamp!r}): its age is unknown")
    elif max_age is not None and age > max_age:
        problems.append(f"{name} is {_duration(age)} old, older than the maximum age {_duration(max_age)}: evaluate again")
    expired = tuple(w for w in decision.waivers if w.expires is not None and _expired(w.expires, now))
    for waiver in expired:
        problems.append(f"waiver {waiver.id} ({waiver.rule}) the decision relied on expired at {waiver.expires}")
    return DecisionCheck(
        decision=decision,
        integrity_problem=integrity,
        signature_problem=signature,
        trusted_key=bool(decision.signing_key) and decision.signing_key in trusted,
        age=age,
        expired_waivers=expired,
        problems=tuple(problems),
    )


def _age(timestamp: str, now: datetime) -> timedelta | None:
    try:
        return now - rfc3339.parse(timestamp)
    except rfc3339.TimeFormatError:
        return None


def _expired(expires: str, now: datetime) -> bool:
    """A waiver whose expiry cannot be read waives nothing: it counts as expired."""
    try:
        return rfc3339.parse(expires) <= now
    except rfc3339.TimeFormatError:
        return True


def _duration(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f}d" if hours >= 48 else f"{hours:.1f}h"
