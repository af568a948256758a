"""Re-decide stored inputs under another policy bundle: which decisions would flip.

Impact analysis before a policy change ships. Every stored record holds its full input document,
including ``environment`` and ``now``, so it can be evaluated again under the candidate bundle
exactly as it was then: waivers expire and rules come into force (``effective_on``) as judged at
the original time, not today. Nothing is written to the log.

The bundle is compiled once (embedded engine); records are streamed from the store and judged in
batches (one engine run per batch whatever data its records were decided with, on both cores: no
fork per record), the next batch read while one is judged, so a large log is replayed in bounded
memory apart from the flips themselves. A record that cannot be
evaluated, or whose evaluation overruns GATE_POLICY_TIMEOUT (the limit holds per record), is
reported as an error and the run goes on; a bundle that does not compile raises ``PolicyError``
before any record is read.

Each record keeps the ``--data`` documents it was decided with (waivers, threshold overrides), so
by default every input is judged with its own data under the candidate bundle. Given
``data_files``, those replace the recorded data for every record (e.g. today's waiver file).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from gate import rfc3339
from gate.decisions.interface import DecisionQuery, DecisionStore, StoreError, UndecodableRecord
from gate.decisions.record import Decision, Outcome, Violation, sha256_digest
from gate.decisions.replay import Flip, ReplayedDecision, ReplayFailure, ReplayReport, input_at
from gate.errors import GateError
from gate.evaluation import LoadedPolicy, PolicyData, PolicySpecs, load_policy, policy_info
from gate.policy.bundle import merge_data
from gate.policy.embedded import EmbeddedEngine
from gate.policy.evaluate import PolicyResult, promotion_result
from gate.policy.interface import PROMOTION_ROOT
from gate.policy.sources import as_specs
from gate.policy.waivers import validate_waivers

logger = logging.getLogger(__name__)


def replay(
    store: DecisionStore,
    query: DecisionQuery,
    policy: PolicySpecs,
    data_files: list[str] | None = None,
    now: datetime | None = None,
    *,
    policy_data: PolicyData | None = None,
) -> ReplayReport:
    """Replay every decision matching ``query`` under the ``policy`` layers (plus ``data_files``).

    ``now`` judges every input at that time instead of the time it was decided (waiver expiry,
    ``effective_on``). ``policy_data``: the bundle and data already read (``load_policy_data``), not
    read again. Raises ``PolicyError`` when the bundle cannot be loaded or compiled.
    """
    engine = EmbeddedEngine()
    loaded = load_policy(policy, list(data_files or ()), engine, policy_data=policy_data)
    report = ReplayReport(
        policy=policy_info(loaded.bundle, engine, as_specs(policy)),
        now=rfc3339.format(now) if now is not None else None,
    )
    # Without --data, each record is judged with the --data it was decided with (waivers included).
    recorded = None if data_files else _RecordedData(loaded)
    records = store.query(query)  # streamed: the store yields records as it reads them
    judging: _Batch | None = None
    try:
        # one batch ahead: the store reads and the results are counted while the children judge
        for batch in _batches(_readable(store, records)):
            previous, judging = judging, _Batch(batch, engine, now, recorded)
            if previous is not None:  # its children are stopped however this ends
                previous.count(report, loaded)
        if judging is not None:
            judging.count(report, loaded)
            judging = None
    finally:
        if judging is not None:  # stopped by an error: no child left running
            judging.cancel()
        close = getattr(records, "close", None)
        if close is not None:  # stopped early: release the store's cursor before the caller closes the store
            close()
    return report


#: Records judged per engine run: enough that the fork is paid rarely (the embedded engine forks per
#: run, not per record), few enough that a batch of full records stays small in memory ...
BATCH_RECORDS = 256
#: ... and no more findings than this per batch (large inputs hold about 1 KB per finding, more once
#: decoded), so a log of 20,000-finding inputs is still replayed in bounded memory.
BATCH_FINDINGS = 10_000


def _readable(store: DecisionStore, records: Iterator[Decision]) -> Iterator[Decision]:
    """``records``; one that cannot be decoded stops the run with a line naming it."""
    while True:
        try:
            stored = next(records, None)
        except UndecodableRecord as e:  # a record edited into something that is no record
            raise StoreError(
                f"decision log {store.location}: {e.describe()} cannot be read ({e.reason}); run gate decisions verify"
            ) from None
        if stored is None:
            return
        yield stored


def _batches(records: Iterator[Decision]) -> Iterator[list[Decision]]:
    """``records`` in batches of at most ``BATCH_RECORDS`` records and (past the first) ``BATCH_FINDINGS`` findings."""
    batch: list[Decision] = []
    findings = 0
    for stored in records:
        size = _findings(stored)
        if batch and (len(batch) >= BATCH_RECORDS or findings + size > BATCH_FINDINGS):
            yield batch
            batch, findings = [], 0
        batch.append(stored)
        findings += size
    if batch:
        yield batch


def _findings(stored: Decision) -> int:
    found = stored.input.get("findings") if isinstance(stored.input, dict) else None
    return len(found) if isinstance(found, list) else 0


#: the key of a record decided without --data
_NO_DATA = sha256_digest({})


class _RecordedData:
    """Each record's own ``--data`` merged into the bundle's data and checked, once per distinct document."""

    #: documents remembered (records come in time order: a team's data recurs for a while)
    KEPT = 256

    def __init__(self, loaded: LoadedPolicy) -> None:
        self._loaded = loaded
        self._merged: dict[str, dict[str, Any] | GateError] = {}

    def of(self, stored: Decision) -> tuple[str, dict[str, Any]]:
        """(a key naming ``stored``'s data, the data to judge it with); raises when that data is unusable."""
        key = sha256_digest(stored.data or {})
        merged = self._merged.get(key)
        if merged is None:
            try:
                merged = merge_data(self._loaded.bundle.data, stored.data or {})
                validate_waivers(merged)
            except GateError as e:
                merged = e
            if len(self._merged) >= self.KEPT:
                self._merged.clear()
            self._merged[key] = merged
        if isinstance(merged, GateError):
            raise merged
        return key, merged


class _Batch:
    """A batch of records being decided again in one engine run (each record with its recorded data,
    unless ``--data`` replaces it)."""

    def __init__(self, batch: list[Decision], engine: EmbeddedEngine, now: datetime | None, recorded: _RecordedData | None) -> None:
        self._batch = batch
        self._outcomes: list[PolicyResult | GateError | None] = [None] * len(batch)
        self._jobs: list[tuple[int, datetime]] = []
        inputs: list[dict[str, Any]] = []
        data: list[tuple[str, dict[str, Any]]] = []
        for index, stored in enumerate(batch):
            try:
                record_data = recorded.of(stored) if recorded is not None else None
                policy_input, at = input_at(stored, now)
            except GateError as e:
                self._outcomes[index] = e
                continue
            self._jobs.append((index, at))
            inputs.append(policy_input)
            if record_data is not None:
                data.append(record_data)
        # records decided without --data are judged with the engine's own data (the bundle's): no swap
        own = recorded is None or all(key == _NO_DATA for key, _ in data)
        self._pending = engine.start_each(PROMOTION_ROOT, inputs, None if own else data)

    def count(self, report: ReplayReport, loaded: LoadedPolicy) -> None:
        """Wait for the batch's answers; count or list each result in ``report``, in the records' order."""
        answers = self._pending.documents()
        for (index, at), answer in zip(self._jobs, answers, strict=True):
            try:
                if isinstance(answer, GateError):
                    raise answer
                self._outcomes[index] = promotion_result(answer, loaded.metadata, at)
            except GateError as e:
                self._outcomes[index] = e
        for stored, outcome in zip(self._batch, self._outcomes, strict=True):
            assert outcome is not None  # every record was judged or failed above
            _count(report, stored, outcome)

    def cancel(self) -> None:
        self._pending.cancel()


def _count(report: ReplayReport, stored: Decision, outcome: PolicyResult | GateError) -> None:
    """Count or list ``stored``'s replayed ``outcome`` in ``report``."""
    report.replayed += 1
    who = ReplayedDecision.of(stored)
    if isinstance(outcome, GateError):
        logger.debug("replay of %s failed: %s", stored.decision_id, outcome.diagnostics())
        report.errors.append(ReplayFailure(who, stored.outcome, outcome.diagnostics()))
        return
    after = Outcome.DENY if outcome.violations else Outcome.ALLOW
    before_keys = {_key(v) for v in stored.violations}
    after_keys = {_key(v) for v in outcome.violations}
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
            appeared=tuple(v for v in outcome.violations if _key(v) not in before_keys),
            disappeared=tuple(v for v in stored.violations if _key(v) not in after_keys),
        )
    )


def _key(v: Violation) -> tuple[str, str]:
    return (v.rule, v.message)
