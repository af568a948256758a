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
from datetime import datetime
from pathlib import Path

from gate import rfc3339
from gate.decisions.interface import DecisionQuery, DecisionStore, StoreError, UndecodableRecord
from gate.decisions.record import Decision, Outcome, PolicyInfo, Violation, sha256_digest
from gate.decisions.replay import Flip, ReplayedDecision, ReplayFailure, ReplayReport, input_at
from gate.errors import GateError
from gate.evaluation import LoadedPolicy, PolicyData, load_policy, make_engine
from gate.policy.bundle import merge_data
from gate.policy.evaluate import evaluate_promotion
from gate.policy.waivers import validate_waivers

logger = logging.getLogger(__name__)


def replay(
    store: DecisionStore,
    query: DecisionQuery,
    policy_dir: Path | str,
    data_files: list[str] | None = None,
    now: datetime | None = None,
    *,
    policy_data: PolicyData | None = None,
) -> ReplayReport:
    """Replay every decision matching ``query`` under the bundle at ``policy_dir`` (plus ``data_files``).

    ``now`` judges every input at that time instead of the time it was decided (waiver expiry,
    ``effective_on``). ``policy_data``: the bundle and data already read (``load_policy_data``), not
    read again. Raises ``PolicyError`` when the bundle cannot be loaded or compiled.
    """
    engine = make_engine("embedded", None)
    loaded = load_policy(Path(policy_dir), list(data_files or ()), engine, policy_data=policy_data)
    report = ReplayReport(
        policy=PolicyInfo(
            digest=loaded.bundle.digest,
            engine=engine.name,
            engine_version=engine.version(),
            revision=loaded.bundle.revision,
            bundle=str(policy_dir),
        ),
        now=rfc3339.format(now) if now is not None else None,
    )
    # Without --data, each record is judged with the --data it was decided with (waivers included).
    recorded = None if data_files else _RecordedData(loaded)
    records = store.query(query)  # streamed: the store yields records as it reads them
    try:
        while True:
            try:
                stored = next(records, None)
            except UndecodableRecord as e:  # a record edited into something that is no record
                raise StoreError(
                    f"decision log {store.location}: {e.describe()} cannot be read ({e.reason}); run gate decisions verify"
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
            self._loaded.engine.set_data(data)
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


def _key(v: Violation) -> tuple[str, str]:
    return (v.rule, v.message)
