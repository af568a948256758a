"""``gate decisions verify``: re-hash every record, check the chain and every signature.

One pass over the log in append order. Each record must

- decode (a record that cannot is itself a finding, not a crash);
- carry the next sequence number (a gap is a deleted record);
- hash to its own ``hash`` (``record_hash``: an edited field shows here), and that hash must equal
  the ``hash`` column stored beside it;
- hold an ``input`` whose canonical sha256 is its ``input_digest``;
- link by ``prev_hash`` to the record before it (the first record to none): a reordered, removed
  or inserted record shows here;
- carry a valid Ed25519 signature by a trusted key — or lie at or before a signed checkpoint that
  vouches for it (gate.decisions.checkpoints): then its signature is only checked to be present,
  well formed and by a trusted key, and the checkpoint's hash must be the chain's at its seq.

The store's highest issued sequence number, read before the walk, must have been reached by it:
a deleted tail shows here (records appended while the walk runs are fine). The walk stops at the
first problem.

That counter lives in the same database, so an editor who deletes the newest records can lower
it too (SQLite's ``sqlite_sequence``, PostgreSQL's ``decision_log_head``): what is left is a
perfect chain. Only a head kept outside the log shows the cut: ``anchors`` are record hashes
seen earlier (``--expect-head``, the ``Gate-Log-Head`` trailer of every promotion commit), and each
must still be a record of the chain. Events name the decisions they are about; an event naming a
decision the log no longer holds fails too (the tail was cut under it).

Speed. Ed25519 verification is most of the cost (139 µs a signature on this project's slow cores,
against tens of µs to decode, hash and check a record). A large log is split into seq ranges, one
per CPU: the parent walks the first, forked worker processes (each with its own store connection)
the others, and the parent checks each range's first record against the last of the range before
(its seq and its link), so the report names the same earliest problem as one walk would. A small
log is walked in one process (a fork and a connection cost more than a few thousand records), its
signatures checked in batches on threads (``cryptography`` releases the GIL while it verifies).
A checkpoint removes the signature cost up to its seq; ``since_head`` walks only what is new.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from cryptography.exceptions import InvalidSignature

from gate.decisions.checkpoints import Checkpoints, TrustedCheckpoint
from gate.decisions.events import Event, event_hash
from gate.decisions.documents import decompress as decompress_document
from gate.decisions.documents import references, stored_terms
from gate.decisions.index import index_rows, violation_rules
from gate.decisions.interface import ChainEntry, DecisionStore, StoreError, UndecodableRecord
from gate.decisions.record import Decision, record_hash, sha256_digest
from gate.decisions.signing import SignatureCheck, bad_signature, signature_check, verify_signature
from gate.decisions.sql import SEARCH_COLUMNS, column_values
from gate.errors import GateError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: signatures per batch handed to a worker thread
BATCH = 512
#: records from which verify splits the walk between processes (below: one process is faster)
PARALLEL_MIN = 20_000


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
    #: seq of the chain head when ok (0: an empty log)
    head_seq: int = 0
    #: the key ids the records verified were signed with (what a checkpoint written now covers)
    keys: frozenset[str] = frozenset()
    #: the checkpoint that vouched for the signatures up to its seq, if one did
    checkpoint: TrustedCheckpoint | None = None
    #: with ``since_head``: (seq, hash) of the record the walk started after
    since: tuple[int, str] | None = None

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
            "head_seq": self.head_seq if self.ok else None,
            "anchors": self.anchors,
            "since_head": {"seq": self.since[0], "hash": self.since[1]} if self.since else None,
        }


def _first_invalid(checks: list[SignatureCheck]) -> int:
    """Index of the first signature in ``checks`` that does not verify, or -1 (runs on a worker thread)."""
    for i, (key, signature, message) in enumerate(checks):
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return i
    return -1


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _workers() -> int:
    """Threads for signature checks: one per CPU (at most 8); none on a single CPU."""
    cpus = _cpus()
    return min(cpus, 8) if cpus > 1 else 0


@dataclass(frozen=True)
class _Found:
    """A problem a walk found: where, what, and the hash of the record before it (None: the walk's first)."""

    seq: int
    decision_id: str | None
    problem: str
    #: records the walk verified intact before it, and the hash of the last of them
    intact: int
    before: str | None


@dataclass(frozen=True)
class _Walk:
    """What one walk over a seq range found (crosses the pipe from a worker process)."""

    #: the first record read: its place in the chain (seq, link) is checked by whoever knows the record before
    first: ChainEntry | None
    #: records verified intact (when ``found``: see its ``intact``)
    count: int
    last_seq: int
    last_hash: str | None
    found: _Found | None
    keys: frozenset[str] = frozenset()
    #: anchored heads met among the intact records
    anchors_seen: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Rules:
    """What every walk of one verify checks against."""

    trusted: dict[str, Ed25519PublicKey]
    #: records up to this seq need no Ed25519 check of their own (a trusted checkpoint vouches for them)
    signed_through: int = 0
    #: seq -> (hash, checkpoint): the chain must still hold each validly signed checkpoint's hash
    pins: Mapping[int, tuple[str, TrustedCheckpoint]] = field(default_factory=dict)
    anchors: frozenset[str] = frozenset()


def _walk(
    entries: Iterator[ChainEntry], prev_seq: int, prev_hash: str | None, rules: _Rules, *,
    linked: bool = True, workers: int = 0, batch_size: int = BATCH,
) -> _Walk:
    """Check every record ``entries`` yields, stopping at the first problem.

    ``linked``: the first record must follow (``prev_seq``, ``prev_hash``); otherwise its place is
    taken as given (the caller checks it) and everything else about it is checked. ``workers``
    threads check signatures ``batch_size`` at a time (0: inline).
    """
    executor = ThreadPoolExecutor(workers, thread_name_prefix="gate-verify") if workers else None
    #: batches handed to the threads, in order, each with what a report needs about its records:
    #: (records verified before it, seq, decision id, signing key, hash of the record before it)
    futures: deque[tuple[Future[int], list[tuple[int, int, str, str | None, str | None]]]] = deque()
    checks: list[SignatureCheck] = []
    about: list[tuple[int, int, str, str | None, str | None]] = []
    first: ChainEntry | None = None
    count = 0
    keys: set[str] = set()
    seen: set[str] = set()
    found: _Found | None = None

    def settle(block: bool) -> _Found | None:
        """Collect finished batches in order (all of them when ``block``): the first bad signature, if any."""
        while futures and (block or futures[0][0].done()):
            future, records = futures.popleft()
            bad = future.result()
            if bad >= 0:
                index, seq, decision_id, signing_key, before = records[bad]
                return _Found(seq, decision_id, bad_signature(signing_key), index, before)
        return None

    pins, trusted, signed_through = rules.pins, rules.trusted, rules.signed_through
    try:
        while True:
            try:
                entry = next(entries)
            except StopIteration:
                break
            except UndecodableRecord as e:  # bad JSON, a field of the wrong type: tampered
                found = _Found(e.seq, e.record_id, f"cannot be decoded: {e.reason}", count, prev_hash)
                break
            decision = entry.decision
            if first is None:
                first = entry
                if not linked:
                    prev_seq, prev_hash = entry.seq - 1, decision.prev_hash
            problem = _structural_problem(entry, prev_seq, prev_hash)
            if problem is None and entry.seq in pins and pins[entry.seq][0] != decision.hash:
                pinned, checkpoint = pins[entry.seq]
                problem = (
                    f"not the record the {checkpoint.describe()} verified: its hash is {decision.hash}, the"
                    f" checkpoint's {pinned} (the log was rewritten after that verify)"
                )
            if problem is None:
                check = signature_check(decision, trusted)
                if isinstance(check, str):
                    problem = check
                elif entry.seq <= signed_through:
                    pass  # present, well formed, by a trusted key; the checkpoint vouches it verified
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
                            found = earlier
                            break
            if problem is not None:
                found = _Found(entry.seq, decision.decision_id, problem, count, prev_hash)
                break
            count += 1
            prev_seq = entry.seq
            prev_hash = decision.hash
            if decision.signing_key:
                keys.add(decision.signing_key)
            if prev_hash in rules.anchors:
                seen.add(prev_hash)
        # A bad signature before the structural finding (or anywhere, when there is none) comes first.
        if executor is not None and checks:
            futures.append((executor.submit(_first_invalid, checks), about))
        earlier = settle(block=True)
        if earlier is not None and (found is None or earlier.seq < found.seq):
            found = earlier
    finally:
        close = getattr(entries, "close", None)
        if close is not None:
            close()  # ends the store's read transaction when the walk stopped early
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return _Walk(first, count, prev_seq, prev_hash, found, frozenset(keys), frozenset(seen))


def _ranges(start: int, last: int, parts: int) -> list[tuple[int, int | None]]:
    """``start..last`` cut into ``parts`` seq ranges; the last one open (records appended meanwhile)."""
    size = max(1, -(-(last - start + 1) // parts))
    bounds = [(s, s + size - 1) for s in range(start, last + 1, size)][:parts] or [(start, last)]
    return [*bounds[:-1], (bounds[-1][0], None)]


def _run_forked(store: DecisionStore, send: Connection, job: Callable[[DecisionStore], Any]) -> None:
    """Runs in a forked process: ``job`` on a store connection of its own, its result sent back.
    The parent's connection, inherited by the fork, is never touched here."""
    try:
        own = store.reopen()
        try:
            outcome: tuple[str, Any] = ("ok", job(own))
        finally:
            own.close()
    except GateError as e:
        outcome = ("error", str(e))
    except Exception as e:  # noqa: BLE001 - reported by the parent as a verify error, never a pass
        outcome = ("error", f"decision log {store.location}: verify worker failed: {type(e).__name__}: {e}")
    send.send(outcome)
    send.close()


class _Forked:
    """A job running in a forked process (cheap, and the store object needs no pickling)."""

    def __init__(self, store: DecisionStore, job: Callable[[DecisionStore], Any]) -> None:
        context = multiprocessing.get_context("fork")
        self._location = store.location
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_run_forked, args=(store, send, job), daemon=True)
        self._process.start()
        send.close()

    def result(self) -> Any:
        """The job's result; its error as a StoreError."""
        try:
            status, value = self._receive.recv()
        except EOFError:
            self._process.join()
            raise StoreError(
                f"decision log {self._location}: a verify worker process ended without an answer (exit {self._process.exitcode})"
            ) from None
        if status != "ok":
            raise StoreError(value)
        return value

    def stop(self) -> None:
        """End the process (a job whose result is no longer needed is killed)."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._receive.close()


def _range_job(start: int, end: int | None, rules: _Rules) -> Callable[[DecisionStore], _Walk]:
    """A worker's walk of ``start..end``: its first record's place is checked by the parent."""
    return lambda store: _walk(store.chain(start, end, quick=True), start - 1, None, rules, linked=False)


def verify_log(
    store: DecisionStore, trusted: dict[str, Ed25519PublicKey], workers: int | None = None, batch_size: int = BATCH,
    anchors: Mapping[str, str] | None = None, *, checkpoints: Checkpoints | None = None,
    since_head: str | None = None, processes: int | None = None,
) -> VerifyReport:
    """Walk the chain and its documents and report the first problem, or that all is intact.

    ``workers`` threads check signatures, ``batch_size`` at a time, in a one-process walk (default:
    one thread per CPU; 0 checks them inline). ``anchors`` maps record hashes kept outside the log
    to where each was found (``--expect-head``, ``Gate-Log-Head of commit …``): each must be a
    record of the chain. ``checkpoints`` (checkpoints.assess) may vouch for signatures up to a seq
    and pin hashes the chain must still hold. ``since_head``: only the records after the one whose
    hash it is (it must be in the chain), and the documents they reference. ``processes``: how many
    processes walk the log (default: one per CPU from PARALLEL_MIN records, else one).
    """
    checkpoints = checkpoints or Checkpoints()
    rules = _Rules(trusted, checkpoints.signed_through, checkpoints.pins, frozenset(anchors or {}))
    # Read before the walk: records appended while it runs (a live log) must not look like a
    # deleted tail; a record the store had issued before it started must be found.
    issued = store.last_seq()
    prev_seq, prev_hash, since = 0, None, None
    if since_head is not None:
        found_at = store.seq_of_hash(since_head)
        if found_at is None:
            return VerifyReport(
                False, 0, None,
                f"--since-head {since_head} is not in the chain: the log was rewritten or cut, or it is another log's head",
                None,
            )
        prev_seq, prev_hash, since = found_at, since_head, (found_at, since_head)
    after = prev_seq
    records = issued - prev_seq
    parts = processes if processes is not None else (_cpus() if records >= PARALLEL_MIN else 1)
    ranges = _ranges(prev_seq + 1, issued, parts) if parts > 1 and records > 1 else []
    jobs: list[_Forked] = []
    documents_job: _Forked | None = None
    if ranges:
        sys.stdout.flush()  # a forked child flushes its copy of what is buffered: flush it once, here
        sys.stderr.flush()
    try:
        # forked before this process opens a read (no lock or cursor is inherited)
        jobs = [_Forked(store, _range_job(start, end, rules)) for start, end in ranges[1:]]
        if ranges:
            documents_job = _Forked(store, lambda own: documents_problem(own, after))

        def walks() -> Iterator[_Walk]:
            if ranges:
                start, end = ranges[0]
                yield _walk(store.chain(start, end, quick=True), prev_seq, prev_hash, rules)
                yield from (job.result() for job in jobs)
            else:
                threads = _workers() if workers is None else workers
                entries = store.chain(prev_seq + 1, quick=True)
                yield _walk(entries, prev_seq, prev_hash, rules, workers=threads, batch_size=batch_size)

        report = _stitch(store, walks(), issued, prev_seq, prev_hash, anchors or {}, checkpoints, since)
        for job in jobs:
            job.stop()  # a range after the first problem is not needed
        documents = documents_job.result() if documents_job is not None else documents_problem(store, after)
    finally:
        for job in [*jobs, *([documents_job] if documents_job else [])]:
            job.stop()
    if documents is not None and (report.first_bad is None or documents[0].seq < report.first_bad.seq):
        bad, problem = documents  # records before it were walked intact
        before = _hash_at(store, bad.seq - 1) if bad.seq - 1 > after else prev_hash
        return VerifyReport(False, bad.seq - 1 - after, bad, problem, before, since=since)
    return report


def _hash_at(store: DecisionStore, seq: int) -> str | None:
    """The hash column of the record at ``seq``, if any."""
    entries = store.chain(seq, seq)
    try:
        return next((entry.stored_hash for entry in entries), None)
    finally:
        close = getattr(entries, "close", None)
        if close is not None:
            close()


def _stitch(
    store: DecisionStore, walks: Iterator[_Walk], issued: int, prev_seq: int, prev_hash: str | None,
    anchors: Mapping[str, str], checkpoints: Checkpoints, since: tuple[int, str] | None,
) -> VerifyReport:
    """The walks of consecutive ranges as one: each later range's first record is checked against the
    last record of the range before; the earliest problem wins."""
    count = 0
    keys: set[str] = set()
    seen: set[str] = set()

    def failed(seq: int, decision_id: str | None, problem: str, intact: int, before: str | None) -> VerifyReport:
        return VerifyReport(False, count + intact, BadRecord(seq, decision_id), problem, before, since=since)

    try:
        for index, walk in enumerate(walks):
            first = walk.first
            if index and first is not None:
                # a later range's first record: its place after the record before it, checked where both are known
                problem = _structural_problem(first, prev_seq, prev_hash)
                if problem is not None:
                    return failed(first.seq, first.decision.decision_id, problem, 0, prev_hash)
            if walk.found is not None:
                f = walk.found
                return failed(f.seq, f.decision_id, f.problem, f.intact, f.before if f.intact else prev_hash)
            count += walk.count
            keys |= walk.keys
            seen |= walk.anchors_seen
            if walk.count:
                prev_seq, prev_hash = walk.last_seq, walk.last_hash
    finally:
        close = getattr(walks, "close", None)
        if close is not None:
            close()
    return _after_walk(store, issued, count, prev_seq, prev_hash, anchors, seen, checkpoints, keys, since)


def _after_walk(
    store: DecisionStore, issued: int, count: int, prev_seq: int, prev_hash: str | None,
    anchors: Mapping[str, str], seen: set[str], checkpoints: Checkpoints, keys: set[str], since: tuple[int, str] | None,
) -> VerifyReport:
    """What only the whole walk shows: a cut tail, a lowered counter, anchors and checkpoints not in the chain."""

    def failed(problem: str, seq: int | None = None) -> VerifyReport:
        bad = BadRecord(seq) if seq is not None else None
        return VerifyReport(False, count, bad, problem, prev_hash, len(anchors), since=since)

    if issued > prev_seq:
        missing = f"seq {prev_seq + 1}" if issued == prev_seq + 1 else f"seq {prev_seq + 1} to {issued}"
        return failed(
            f"missing: {missing} deleted from the end of the log (the log ends at seq {prev_seq}, the store issued seq {issued})",
            prev_seq + 1,
        )
    last = store.last_seq()  # the counter only grows: now it must have reached the last record
    if last < prev_seq:
        return failed(f"the store's sequence counter ({last}) is behind its last record (seq {prev_seq}): tampered with", prev_seq)
    ends = f"it ends at seq {prev_seq}, head {prev_hash}" if prev_hash else "it is empty"
    unseen = {head: where for head, where in anchors.items() if head not in seen}
    if unseen and since is not None:  # heads before the one the walk started after are not walked again
        unseen = {head: where for head, where in unseen.items() if (store.seq_of_hash(head) or since[0] + 1) > since[0]}
    if unseen:
        (missing_head, where), *more = unseen.items()
        also = f" (and {len(more)} more anchored head{'s' if len(more) > 1 else ''})" if more else ""
        return failed(f"{where} {missing_head} is not in the chain{also}: {ends}; records anchored there were cut or the log was rewritten")
    beyond = sorted(seq for seq in checkpoints.pins if seq > prev_seq)
    if beyond:
        checkpoint = checkpoints.pins[beyond[0]][1]
        return failed(f"the {checkpoint.describe()} is beyond the chain: {ends}; records it verified were cut")
    if checkpoints.forged is not None:
        return failed(checkpoints.forged)
    return VerifyReport(True, count, None, None, prev_hash, len(anchors), prev_seq, frozenset(keys), checkpoints.used, since)


def hash_problem(decision: Decision, recomputed: str | None = None) -> str | None:
    """What is wrong with the record's own hash (``recomputed`` already, or now): an edited field shows here."""
    recomputed = recomputed or record_hash(decision)
    if recomputed != decision.hash:
        return f"edited: its contents hash to {recomputed}, not to its recorded hash {decision.hash}"
    return None


def input_problem(decision: Decision) -> str | None:
    """What is wrong with a full-form record's input: it must be complete and hash to its input_digest.

    With ``hash_problem`` (which recomputes each document's digest from the full value) this is the
    whole check of one decision read back from the log: an edited, swapped or missing document shows.
    """
    missing = [k for k in decision.input_parts or () if k not in decision.input]
    if missing:
        return f"input incomplete: its document{'s' if len(missing) > 1 else ''} {', '.join(missing)} not read back"
    if sha256_digest(decision.input) != decision.input_digest:
        return f"input edited: it no longer hashes to its input_digest {decision.input_digest}"
    return None


def stored_input_problem(decision: Decision) -> str | None:
    """What is wrong with a stored-form record's input. Since format v2 the inline keys are covered by
    the record hash and each document is re-hashed once (``documents_problem``); a record from before
    v2 whose input was not moved out (migration 4 moves every one) must still hash to its input_digest."""
    if decision.input_parts is None and decision.input:
        return input_problem(decision)
    if decision.results_digest is not None and not (_empty(decision.violations) and _empty(decision.warnings)):
        return "edited: violations or warnings written beside its results_digest (they are not what was hashed)"
    return None


def _empty(results: Any) -> bool:
    """No results inline: an empty tuple, or (verify's fast path leaves some fields raw) the bytes ``[]``."""
    return bytes(results) == b"[]" if isinstance(results, msgspec.Raw) else not results


def _structural_problem(entry: ChainEntry, prev_seq: int, prev_hash: str | None) -> str | None:
    """What is wrong with ``entry``'s place in the chain or its contents, signatures aside."""
    decision = entry.decision
    if entry.seq != prev_seq + 1:
        if entry.seq > prev_seq + 1:
            gap = f"seq {prev_seq + 1}" if entry.seq == prev_seq + 2 else f"seq {prev_seq + 1} to {entry.seq - 1}"
            return f"missing before it: {gap} deleted"
        return f"out of order: follows seq {prev_seq}"
    problem = hash_problem(decision, entry.hashed)
    if problem is not None:
        return problem
    if entry.stored_hash != decision.hash:
        return f"hash column edited: it says {entry.stored_hash}, the record's hash is {decision.hash}"
    problem = stored_input_problem(decision)
    if problem is not None:
        return problem
    if entry.documents != references(decision):
        return (
            f"document references edited: the log indexes {', '.join(entry.documents) or 'none'},"
            f" the record references {', '.join(references(decision))}"
        )
    stored = dict(zip(SEARCH_COLUMNS, entry.columns))
    for column, value in zip(SEARCH_COLUMNS, column_values(decision)):
        if column in stored and stored[column] != value:
            return f"{column} column edited: it says {stored[column]!r}, the record says {value!r} (queries would miss it)"
    # The rules of the findings its violations name are in its findings document, not read here: the
    # stored record vouches for its violations' own rules and its waivers.
    rows = index_rows(decision)
    if not violation_rules(decision) <= set(entry.rules) or entry.waivers != rows.waivers:
        return "index rows edited: the rules or waivers it can be found by no longer match the record"
    if decision.prev_hash != prev_hash:
        before = f"the previous record's hash {prev_hash}" if prev_hash else "none (it is the first record)"
        return (
            f"chain broken: prev_hash is {decision.prev_hash}, expected {before}"
            " (records reordered, removed or inserted)"
        )
    return None


def documents_problem(store: DecisionStore, after: int = 0) -> tuple[BadRecord, str] | None:
    """The first record (by seq) whose document is missing, edited (it no longer decompresses and hashes
    to its digest, e.g. two bodies swapped) or whose ``--finding`` rows were edited; None when all are
    intact. Each document is checked once, however many records share it; one no record uses is skipped.

    Relies on each record's ``decision_documents`` rows matching its references, which the chain walk
    checks (``_structural_problem``). ``after``: only the documents records after that seq reference
    (``verify --since-head``).
    """
    found: list[tuple[BadRecord, str]] = []
    missing = store.missing_document(after)
    if missing is not None:
        seq, digest = missing
        user = store.document_user(digest, after)
        found.append((BadRecord(seq, user[1] if user else None), f"document {digest} missing: deleted from the log"))
    bad: list[tuple[str, str]] = []
    for digest, size, body, terms in store.documents(findings=True, after=after):
        try:
            canonical = decompress_document(body)
        except Exception as e:  # noqa: BLE001 - any failure to decompress is damage, named below
            bad.append((digest, f"document {digest} edited: it cannot be decompressed ({e})"))
            continue
        actual = "sha256:" + hashlib.sha256(canonical).hexdigest()
        if actual != digest:
            bad.append((digest, f"document {digest} edited: its contents hash to {actual} (edited or swapped)"))
        elif len(canonical) != size:
            bad.append((digest, f"document {digest} size column edited: it says {size}, the document has {len(canonical)} bytes"))
        elif stored_terms(canonical) != terms:
            bad.append((digest, f"document {digest} findings index edited: `decisions list --finding` would not find it right"))
    for digest, problem in bad:
        user = store.document_user(digest, after)
        if user is not None:
            found.append((BadRecord(*user), problem))
    return min(found, key=lambda item: item[0].seq) if found else None


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
