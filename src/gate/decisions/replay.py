"""Re-decide stored inputs under another policy bundle: which decisions would flip.

Impact analysis before a policy change ships. Every stored record holds its full input document,
including ``environment`` and ``now``, so it can be evaluated again under the candidate bundle
exactly as it was then: waivers expire and rules come into force (``effective_on``) as judged at
the original time, not today. Nothing is written to the log.

The bundle is compiled once (embedded engine); records are streamed from the store, so a large
log is replayed in constant memory apart from the flips themselves. A record that cannot be
evaluated is reported as an error and the run goes on; a bundle that does not compile raises
``PolicyError`` before any record is read.

Each record keeps the ``--data`` documents it was decided with (waivers, threshold overrides), so
by default every input is judged with its own data under the candidate bundle. Given
``data_files``, those replace the recorded data for every record (e.g. today's waiver file).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import msgspec

from gate.decisions.record import Decision, Outcome, PolicyInfo, Violation, rfc3339, sha256_digest
from gate.decisions.store import DecisionQuery, DecisionStore, StoreError
from gate.errors import GateError, PolicyError
from gate.evaluation import LoadedPolicy, load_policy, make_engine
from gate.policy.bundle import merge_data
from gate.policy.embedded import EmbeddedEngine
from gate.policy.evaluate import evaluate_promotion
from gate.policy.waivers import validate_waivers

logger = logging.getLogger(__name__)


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


def replay(
    store: DecisionStore,
    query: DecisionQuery,
    policy_dir: Path | str,
    data_files: list[str] | None = None,
    now: datetime | None = None,
) -> ReplayReport:
    """Replay every decision matching ``query`` under the bundle at ``policy_dir`` (plus ``data_files``).

    ``now`` judges every input at that time instead of the time it was decided (waiver expiry,
    ``effective_on``). Raises ``PolicyError`` when the bundle cannot be loaded or compiled.
    """
    engine = make_engine("embedded", None)
    loaded = load_policy(Path(policy_dir), list(data_files or ()), engine)
    report = ReplayReport(
        policy=PolicyInfo(
            digest=loaded.bundle.digest,
            engine=engine.name,
            engine_version=engine.version(),
            revision=loaded.bundle.revision,
            bundle=str(policy_dir),
        ),
        now=rfc3339(now) if now is not None else None,
    )
    # Without --data, each record is judged with the --data it was decided with (waivers included).
    recorded = None if data_files else _RecordedData(loaded)
    records = store.query(query)  # streamed: the store yields records as it reads them
    try:
        while True:
            try:
                stored = next(records, None)
            except msgspec.DecodeError as e:  # a record edited into something that is no record
                raise StoreError(
                    f"decision log {store.location}: a record after the {report.replayed} replayed cannot be read"
                    f" ({e}); run gate decisions verify"
                ) from None
            if stored is None:
                break
            _replay_one(report, stored, loaded, now, recorded)
    finally:
        close = getattr(records, "close", None)
        if close is not None:  # stopped early: release the store's cursor before the caller closes the store
            close()
    return report


class _RecordedData:
    """Puts each record's own ``--data`` on the engine, swapping only when it differs from the last."""

    def __init__(self, loaded: LoadedPolicy) -> None:
        self._loaded = loaded
        self._current = sha256_digest({})  # load_policy() set the bundle's data alone

    def apply(self, stored: Decision) -> None:
        extra = stored.data or {}
        key = sha256_digest(extra)
        if key != self._current:
            data = merge_data(self._loaded.bundle.data, extra)
            validate_waivers(data)
            cast(EmbeddedEngine, self._loaded.engine).set_data(data)
            self._current = key


def _replay_one(
    report: ReplayReport, stored: Decision, loaded: LoadedPolicy, now: datetime | None, recorded: _RecordedData | None
) -> None:
    """Decide ``stored``'s input again and count or list the result in ``report``."""
    report.replayed += 1
    who = ReplayedDecision.of(stored)
    try:
        if recorded is not None:
            recorded.apply(stored)
        policy_input, at = input_at(stored, now)
        result = evaluate_promotion(loaded.engine, loaded.metadata, policy_input, at)
    except GateError as e:
        logger.debug("replay of %s failed: %s", stored.decision_id, e.diagnostics())
        report.errors.append(ReplayFailure(who, stored.outcome, e.diagnostics()))
        return
    after = Outcome.DENY if result.violations else Outcome.ALLOW
    before_keys = {_key(v) for v in stored.violations}
    after_keys = {_key(v) for v in result.violations}
    if after is stored.outcome:
        report.unchanged += 1
        if after is Outcome.DENY and before_keys != after_keys:
            report.reasons_changed += 1
        return
    report.flips.append(
        Flip(
            decision=who,
            before=stored.outcome,
            after=after,
            appeared=tuple(v for v in result.violations if _key(v) not in before_keys),
            disappeared=tuple(v for v in stored.violations if _key(v) not in after_keys),
        )
    )


def input_at(stored: Decision, now: datetime | None) -> tuple[dict[str, Any], datetime]:
    """The stored input and the time it is judged at (its own ``now`` unless overridden)."""
    policy_input = stored.input
    if not isinstance(policy_input, dict) or not policy_input:
        raise PolicyError("the record holds no input document")
    if now is not None:
        return {**policy_input, "now": rfc3339(now)}, now
    raw = policy_input.get("now")
    if not isinstance(raw, str):
        raise PolicyError("the stored input has no 'now' time")
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise PolicyError(f"the stored input's now {raw!r} is not an RFC 3339 time") from None
    if at.tzinfo is None:
        raise PolicyError(f"the stored input's now {raw!r} has no time zone")
    return policy_input, at


def _key(v: Violation) -> tuple[str, str]:
    return (v.rule, v.message)


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
