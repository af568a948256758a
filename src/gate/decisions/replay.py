"""What a replay found (``gate decisions replay``; the replaying itself is gate.replay).

The report types, and the time a stored input is judged at (``input_at``, which admission uses too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from gate import rfc3339
from gate.decisions.record import Decision, Outcome, PolicyInfo, Violation
from gate.errors import PolicyError


@dataclass(frozen=True)
class ReplayedDecision:
    """Which stored decision a result is about."""

    decision_id: str
    timestamp: str
    environment: str
    image: str | None
    digest: str | None
    tag: str | None

    @classmethod
    def of(cls, decision: Decision) -> ReplayedDecision:
        """The identifying fields of ``decision``."""
        artifact = decision.artifact or {}
        return cls(
            decision_id=decision.decision_id,
            timestamp=decision.timestamp,
            environment=decision.environment,
            image=artifact.get("image"),
            digest=artifact.get("digest"),
            tag=artifact.get("tag"),
        )

    @property
    def ref(self) -> str:
        """``image[:tag]@digest``, or a placeholder for a decision about no artifact."""
        if not self.image:
            return "(no artifact)"
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.image}{tag}{digest}"


@dataclass(frozen=True)
class Flip:
    """A decision whose outcome would change under the replayed bundle."""

    decision: ReplayedDecision
    before: Outcome
    after: Outcome
    #: violations the replayed bundle reports that the stored decision did not (by rule and message)
    appeared: tuple[Violation, ...]
    #: violations of the stored decision that the replayed bundle no longer reports
    disappeared: tuple[Violation, ...]

    @property
    def kind(self) -> str:
        """``allow→deny``, ``deny→allow``, ``error→allow`` ..."""
        return f"{self.before.value}→{self.after.value}"


@dataclass(frozen=True)
class ReplayFailure:
    """A stored decision the replayed bundle could not decide."""

    decision: ReplayedDecision
    before: Outcome
    error: str


@dataclass
class ReplayReport:
    """What replaying the matching decisions under ``policy`` found."""

    policy: PolicyInfo
    #: the decisions replay read (matching the filters)
    replayed: int = 0
    #: same outcome before and after
    unchanged: int = 0
    #: of ``unchanged``, denials the replayed bundle would give for other reasons
    reasons_changed: int = 0
    flips: list[Flip] = field(default_factory=list)
    errors: list[ReplayFailure] = field(default_factory=list)
    #: the time each input was judged at: ``None`` means each record's stored ``now``
    now: str | None = None

    def count(self, before: Outcome, after: Outcome) -> int:
        """How many decisions went from ``before`` to ``after``."""
        return sum(1 for f in self.flips if f.before is before and f.after is after)

    @property
    def allow_to_deny(self) -> list[Flip]:
        """Decisions that allowed and would now deny."""
        return [f for f in self.flips if f.before is Outcome.ALLOW and f.after is Outcome.DENY]

    @property
    def deny_to_allow(self) -> list[Flip]:
        """Decisions that denied and would now allow."""
        return [f for f in self.flips if f.before is Outcome.DENY and f.after is Outcome.ALLOW]

    @property
    def decided(self) -> int:
        """Decisions the replayed bundle could decide."""
        return self.replayed - len(self.errors)

    def as_dict(self) -> dict[str, Any]:
        """The report as one JSON document (``--format json``)."""
        return {
            "policy": {
                "digest": self.policy.digest,
                "revision": self.policy.revision,
                "bundle": self.policy.bundle,
                "engine": self.policy.engine,
                "engine_version": self.policy.engine_version,
                **({"layers": [msgspec.to_builtins(layer) for layer in self.policy.layers]} if self.policy.layers else {}),
            },
            "now": self.now or "stored",
            "replayed": self.replayed,
            "allow_to_deny": self.count(Outcome.ALLOW, Outcome.DENY),
            "deny_to_allow": self.count(Outcome.DENY, Outcome.ALLOW),
            "error_to_allow": self.count(Outcome.ERROR, Outcome.ALLOW),
            "error_to_deny": self.count(Outcome.ERROR, Outcome.DENY),
            "unchanged": self.unchanged,
            "reasons_changed": self.reasons_changed,
            "errors": len(self.errors),
            "flips": [
                {
                    **_identity(f.decision),
                    "before": f.before.value,
                    "after": f.after.value,
                    "appeared": [_violation(v) for v in f.appeared],
                    "disappeared": [_violation(v) for v in f.disappeared],
                }
                for f in self.flips
            ],
            "failures": [
                {**_identity(e.decision), "before": e.before.value, "error": e.error} for e in self.errors
            ],
        }


def input_at(stored: Decision, now: datetime | None) -> tuple[dict[str, Any], datetime]:
    """The stored input and the time it is judged at (its own ``now`` unless overridden)."""
    policy_input = stored.input
    if not isinstance(policy_input, dict) or not policy_input:
        raise PolicyError("the record holds no input document")
    if now is not None:
        return {**policy_input, "now": rfc3339.format(now)}, now
    raw = policy_input.get("now")
    if not isinstance(raw, str):
        raise PolicyError("the stored input has no 'now' time")
    try:
        at = rfc3339.parse(raw)
    except rfc3339.TimeFormatError as e:
        raise PolicyError(f"the stored input's now: {e}") from None
    return policy_input, at


def _identity(d: ReplayedDecision) -> dict[str, Any]:
    return {
        "decision_id": d.decision_id,
        "timestamp": d.timestamp,
        "environment": d.environment,
        "image": d.image,
        "digest": d.digest,
    }


def _violation(v: Violation) -> dict[str, Any]:
    return {"rule": v.rule, "message": v.message, "severity": v.severity, "finding_ids": list(v.finding_ids)}
