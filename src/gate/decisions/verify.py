"""``gate decisions verify``: re-hash every record, check the chain and every signature.

One pass over the log in append order. Each record must

- decode (a record that cannot is itself a finding, not a crash);
- carry the next sequence number (a gap is a deleted record);
- hash to its own ``hash`` (``record_hash``: an edited field shows here), and that hash must equal
  the ``hash`` column stored beside it;
- hold an ``input`` whose canonical sha256 is its ``input_digest``;
- link by ``prev_hash`` to the record before it (the first record to none): a reordered, removed
  or inserted record shows here;
- carry a valid Ed25519 signature by a trusted key.

The store's highest issued sequence number, read before the walk, must have been reached by it:
a deleted tail shows here (records appended while the walk runs are fine). The walk stops at the
first problem.

That counter lives in the same database, so an editor who deletes the newest records can lower
it too (SQLite's ``sqlite_sequence``, PostgreSQL's ``decision_log_head``): what is left is a
perfect chain. Only a head kept outside the log shows the cut: ``anchors`` are record hashes
seen earlier (``--expect-head``, the ``Gate-Log-Head`` trailer of every promotion commit), and each
must still be a record of the chain. Events name the decisions they are about; an event naming a
decision the log no longer holds fails too (the tail was cut under it).

Ed25519 verification is most of the cost (well over 100 µs a signature with OpenSSL on a slow
core, against tens of µs for decoding and hashing a record), and ``cryptography`` releases the
GIL while it verifies, so signatures are checked in batches on worker threads while the walk goes
on; the earliest problem by sequence number is still the one reported.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature

from gate.decisions.events import Event, event_hash
from gate.decisions.index import index_rows
from gate.decisions.interface import ChainEntry, DecisionStore, UndecodableRecord
from gate.decisions.record import Decision, record_hash, sha256_digest
from gate.decisions.signing import SignatureCheck, bad_signature, signature_check, verify_signature
from gate.decisions.sql import SEARCH_COLUMNS, column_values

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: signatures per batch handed to a worker thread
BATCH = 512


@dataclass(frozen=True)
class BadRecord:
    """The first record that failed: by sequence number and, when it could be read, decision id."""

    seq: int
    decision_id: str | None = None

    def describe(self) -> str:
        """``record seq 7 (decision 0190…)``."""
        return f"record seq {self.seq}" + (f" (decision {self.decision_id})" if self.decision_id else "")


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify_log`` found."""

    #: every record intact, the chain unbroken, every signature valid and trusted
    ok: bool
    #: records verified intact (all of them when ok; those before the first bad one otherwise)
    count: int
    #: the first bad record, or None
    first_bad: BadRecord | None
    #: what is wrong with it, one line; None when ok
    problem: str | None
    #: hash of the last record verified intact (the chain head when ok); None for an empty log
    head_hash: str | None
    #: anchored heads checked (each found in the chain when ok)
    anchors: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The report as ``--format json`` prints it; ``head`` is the verified chain head to anchor
        (None unless ok: a head that failed verification is nothing to keep)."""
        return {
            "ok": self.ok,
            "count": self.count,
            "first_bad": (
                {"seq": self.first_bad.seq, "decision_id": self.first_bad.decision_id} if self.first_bad else None
            ),
            "problem": self.problem,
            "head_hash": self.head_hash,
            "head": self.head_hash if self.ok else None,
            "anchors": self.anchors,
        }


def _first_invalid(checks: list[SignatureCheck]) -> int:
    """Index of the first signature in ``checks`` that does not verify, or -1 (runs on a worker thread)."""
    for i, (key, signature, message) in enumerate(checks):
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return i
    return -1


def _workers() -> int:
    """Threads for signature checks: one per CPU (at most 8); none on a single CPU."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cpus, 8) if cpus > 1 else 0


def verify_log(
    store: DecisionStore, trusted: dict[str, Ed25519PublicKey], workers: int | None = None, batch_size: int = BATCH,
    anchors: Mapping[str, str] | None = None,
) -> VerifyReport:
    """Walk ``store.chain()`` and report the first problem, or that all is intact.

    ``workers`` threads check signatures, ``batch_size`` at a time (default: one thread per CPU;
    0 checks them inline). ``anchors`` maps record hashes kept outside the log to where each was
    found (``--expect-head``, ``Gate-Log-Head of commit …``): each must be a record of the chain.
    """
    unseen = dict(anchors or {})
    workers = _workers() if workers is None else workers
    executor = ThreadPoolExecutor(workers, thread_name_prefix="gate-verify") if workers else None
    #: batches handed to the workers, in order, each with what a report needs about its records:
    #: (records verified before it, seq, decision id, signing key, hash of the record before it)
    futures: deque[tuple[Future[int], list[tuple[int, int, str, str | None, str | None]]]] = deque()
    checks: list[SignatureCheck] = []
    about: list[tuple[int, int, str, str | None, str | None]] = []

    def settle(block: bool) -> VerifyReport | None:
        """Collect finished batches in order (all of them when ``block``): the first bad signature, if any."""
        while futures and (block or futures[0][0].done()):
            future, records = futures.popleft()
            bad = future.result()
            if bad >= 0:
                index, seq, decision_id, signing_key, before = records[bad]
                return VerifyReport(False, index, BadRecord(seq, decision_id), bad_signature(signing_key), before)
        return None

    # Read before the walk: records appended while it runs (a live log) must not look like a
    # deleted tail; a record the store had issued before it started must be found.
    issued = store.last_seq()
    entries: Iterator[ChainEntry] = store.chain()
    count = 0
    prev_seq = 0
    prev_hash: str | None = None
    finding: VerifyReport | None = None
    try:
        while True:
            try:
                entry = next(entries)
            except StopIteration:
                break
            except UndecodableRecord as e:  # bad JSON, a field of the wrong type: tampered
                finding = VerifyReport(
                    False, count, BadRecord(e.seq, e.record_id), f"cannot be decoded: {e.reason}", prev_hash
                )
                break
            decision = entry.decision
            problem = _structural_problem(entry, prev_seq, prev_hash)
            if problem is None:
                check = signature_check(decision, trusted)
                if isinstance(check, str):
                    problem = check
                elif executor is None:
                    if not check.valid():
                        problem = bad_signature(decision.signing_key)
                else:
                    checks.append(check)
                    about.append((count, entry.seq, decision.decision_id, decision.signing_key, prev_hash))
                    if len(checks) >= batch_size:
                        futures.append((executor.submit(_first_invalid, checks), about))
                        checks, about = [], []
                        earlier = settle(block=False)
                        if earlier is not None:
                            return earlier  # every batch before it was settled intact
            if problem is not None:
                finding = VerifyReport(False, count, BadRecord(entry.seq, decision.decision_id), problem, prev_hash)
                break
            count += 1
            prev_seq = entry.seq
            prev_hash = decision.hash
            if unseen and prev_hash in unseen:
                del unseen[prev_hash]
        # A bad signature before the structural finding (or anywhere, when there is none) comes first.
        if executor is not None and checks:
            futures.append((executor.submit(_first_invalid, checks), about))
        earlier = settle(block=True)
        if earlier is not None:
            return earlier
        if finding is not None:
            return finding
        if issued > prev_seq:
            missing = f"seq {prev_seq + 1}" if issued == prev_seq + 1 else f"seq {prev_seq + 1} to {issued}"
            return VerifyReport(
                False,
                count,
                BadRecord(prev_seq + 1),
                f"missing: {missing} deleted from the end of the log (the log ends at seq {prev_seq}, the store issued seq {issued})",
                prev_hash,
            )
        last = store.last_seq()  # the counter only grows: now it must have reached the last record
        if last < prev_seq:
            return VerifyReport(
                False,
                count,
                BadRecord(prev_seq),
                f"the store's sequence counter ({last}) is behind its last record (seq {prev_seq}): tampered with",
                prev_hash,
            )
        if unseen:
            (missing_head, where), *more = unseen.items()
            also = f" (and {len(more)} more anchored head{'s' if len(more) > 1 else ''})" if more else ""
            ends = f"it ends at seq {prev_seq}, head {prev_hash}" if prev_hash else "it is empty"
            return VerifyReport(
                False, count, None,
                f"{where} {missing_head} is not in the chain{also}: {ends}; records anchored there were cut"
                " or the log was rewritten",
                prev_hash, len(anchors or {}),
            )
        return VerifyReport(True, count, None, None, prev_hash, len(anchors or {}))
    finally:
        close = getattr(entries, "close", None)
        if close is not None:
            close()  # ends the store's read transaction when the walk stopped early
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def hash_problem(decision: Decision) -> str | None:
    """What is wrong with the record's own hash: an edited field shows here."""
    recomputed = record_hash(decision)
    if recomputed != decision.hash:
        return f"edited: its contents hash to {recomputed}, not to its recorded hash {decision.hash}"
    return None


def input_problem(decision: Decision) -> str | None:
    """What is wrong with the stored input: it must hash to the record's input_digest."""
    if sha256_digest(decision.input) != decision.input_digest:
        return f"input edited: it no longer hashes to its input_digest {decision.input_digest}"
    return None


def _structural_problem(entry: ChainEntry, prev_seq: int, prev_hash: str | None) -> str | None:
    """What is wrong with ``entry``'s place in the chain or its contents, signatures aside."""
    decision = entry.decision
    if entry.seq != prev_seq + 1:
        if entry.seq > prev_seq + 1:
            gap = f"seq {prev_seq + 1}" if entry.seq == prev_seq + 2 else f"seq {prev_seq + 1} to {entry.seq - 1}"
            return f"missing before it: {gap} deleted"
        return f"out of order: follows seq {prev_seq}"
    problem = hash_problem(decision)
    if problem is not None:
        return problem
    if entry.stored_hash != decision.hash:
        return f"hash column edited: it says {entry.stored_hash}, the record's hash is {decision.hash}"
    problem = input_problem(decision)
    if problem is not None:
        return problem
    stored = dict(zip(SEARCH_COLUMNS, entry.columns))
    for column, value in zip(SEARCH_COLUMNS, column_values(decision)):
        if column in stored and stored[column] != value:
            return f"{column} column edited: it says {stored[column]!r}, the record says {value!r} (queries would miss it)"
    rows = index_rows(decision)
    if entry.rules != rows.rules or entry.waivers != rows.waivers:
        return "index rows edited: the rules or waivers it can be found by no longer match the record"
    if decision.prev_hash != prev_hash:
        before = f"the previous record's hash {prev_hash}" if prev_hash else "none (it is the first record)"
        return (
            f"chain broken: prev_hash is {decision.prev_hash}, expected {before}"
            " (records reordered, removed or inserted)"
        )
    return None


@dataclass(frozen=True)
class EventsReport:
    """What ``verify_events`` found."""

    ok: bool
    count: int
    problem: str | None = None


def verify_events(store: DecisionStore, trusted: dict[str, Ed25519PublicKey]) -> EventsReport:
    """Walk the event chain: sequence, hash, stored hash, link and signature of every event; then
    every decision an intact event names must still be in the log (a cut tail leaves such events)."""
    count = 0
    prev_seq = 0
    prev_hash: str | None = None
    #: decision id -> the first event naming it, checked against the log in one pass at the end
    named: dict[str, tuple[int, str]] = {}
    entries: Iterator[tuple[int, Event, str]] = store.event_chain()
    while True:
        try:
            seq, event, stored_hash = next(entries)
        except StopIteration:
            break
        except UndecodableRecord as e:
            return EventsReport(False, count, f"{e.describe()}: cannot be decoded: {e.reason}")
        where = f"event seq {seq} ({event.event_id})"
        if seq != prev_seq + 1:
            return EventsReport(False, count, f"{where}: missing before it: seq {prev_seq + 1} deleted")
        recomputed = event_hash(event)
        if recomputed != event.hash or stored_hash != event.hash:
            return EventsReport(False, count, f"{where}: edited: its contents hash to {recomputed}, not {event.hash}")
        if event.prev_hash != prev_hash:
            return EventsReport(False, count, f"{where}: chain broken: events reordered, removed or inserted")
        problem = verify_signature(event, trusted)  # type: ignore[arg-type]  # same signature fields as Decision
        if problem is not None:
            return EventsReport(False, count, f"{where}: {problem}")
        count += 1
        prev_seq, prev_hash = seq, event.hash
        for decision_id in event.decision_ids:
            named.setdefault(decision_id, (seq, where))
    if named:
        known = store.known_decisions(named)
        gone = sorted((named[d], d) for d in named if d not in known)
        if gone:
            (_, where), decision_id = gone[0]  # the earliest event naming a missing decision
            return EventsReport(
                False, count,
                f"{where}: names decision {decision_id}, which is not in the log (deleted, or the log's tail cut)",
            )
    return EventsReport(True, count)
