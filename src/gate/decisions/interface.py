"""The decision-log interface: what every store offers, the queries auditors ask, and its error.

The SQLite and PostgreSQL stores implement ``DecisionStore``; ``gate.decisions.store`` chooses one
from a URL. Kept apart from that choice so the stores depend on the interface and not on the
module that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gate.errors import GateError

if TYPE_CHECKING:
    from gate.decisions.checkpoints import StoredCheckpoint
    from gate.decisions.events import Event, EventQuery
    from gate.decisions.record import Decision
    from gate.decisions.signing import Signer

__all__ = ["ChainEntry", "DecisionQuery", "DecisionStore", "MissingLog", "StoreError", "UndecodableRecord"]


class StoreError(GateError):
    """The decision log cannot be opened, read or written: a decision that is not recorded is not an allow."""


class MissingLog(StoreError):
    """A command that only reads was pointed at a log that does not exist (it is never created for it)."""


class UndecodableRecord(StoreError):
    """A stored record (or event) that no longer decodes: bad JSON, a field of the wrong type.

    Names the row by its seq and the id column stored beside it, so one damaged record is pointed
    at instead of breaking every command that reads the log.
    """

    def __init__(self, location: str, seq: int, record_id: str | None, reason: str, kind: str = "decision") -> None:
        self.location, self.seq, self.record_id, self.reason, self.kind = location, seq, record_id, reason, kind
        super().__init__(f"decision log {location}: {self.describe()} cannot be decoded: {reason}")

    def describe(self) -> str:
        """``record seq 4 (decision 0190…)`` or ``event seq 2 (event 0190…)``."""
        row = "record" if self.kind == "decision" else "event"
        return f"{row} seq {self.seq}" + (f" ({self.kind} {self.record_id})" if self.record_id else "")


@dataclass(frozen=True)
class DecisionQuery:
    """Filters of ``gate decisions list`` (all optional; combined with AND)."""

    digest: str | None = None
    image: str | None = None
    environment: str | None = None
    outcome: str | None = None
    #: a policy rule id (vulnerabilities.severity) or a finding rule (CVE id) a violation names
    rule: str | None = None
    #: a finding rule (CVE id, check id) or finding id anywhere in the input: waived, below threshold,
    #: warned or denied (case-insensitive)
    finding: str | None = None
    #: a waiver id the decision applied
    waiver: str | None = None
    #: a triage entry the decision applied: a waiver id, a VEX statement id, or a VEX document digest
    #: (``sha256:…``; a prefix of 12 or more hex digits is enough)
    triaged_by: str | None = None
    #: RFC 3339 bounds on the decision timestamp (since inclusive, until exclusive)
    since: str | None = None
    until: str | None = None
    policy_digest: str | None = None
    #: only decisions that applied at least one waiver
    waived: bool = False
    #: only decisions that applied a waiver expiring before this RFC 3339 time (the ``waiver`` one, if given)
    waiver_expired_before: str | None = None
    limit: int | None = None
    #: append order (chain order) instead of newest first, e.g. for exports
    oldest_first: bool = False
    #: full form (input and data read back from the log's documents); False: the stored form, with only
    #: the inline input keys, read without touching documents (fast listings)
    with_input: bool = True
    #: only records with after_seq < seq <= through_seq (log shipping reads the log in windows of seq)
    after_seq: int | None = None
    through_seq: int | None = None
    #: only records with an index row: a violation, or a waiver or VEX statement applied — those whose
    #: records ``gate decisions stats`` reads beyond the columns (gate.decisions.stats.compute_from_store)
    indexed: bool = False


@dataclass(frozen=True)
class ChainEntry:
    """One stored record in append order, as verification reads it."""

    seq: int
    decision: Decision
    #: the hash column, as stored next to the record
    stored_hash: str
    #: the searchable columns stored beside the record (sqlite.COLUMNS but ``record``), for verify
    columns: tuple[Any, ...] = ()
    #: the rules and (waiver id, rule, expires) rows indexed for this record, sorted
    rules: tuple[str, ...] = ()
    waivers: tuple[tuple[str, str, str], ...] = ()
    #: the digests of the documents indexed as referenced by this record (``decision_documents``), sorted
    documents: tuple[str, ...] = ()
    #: the record's hash, recomputed while it was read (``chain(quick=True)``: then ``decision`` has its
    #: violations reduced to their rules and what verify does not read left raw, gate.decisions.quickhash);
    #: None: not yet
    hashed: str | None = None


class DecisionStore(Protocol):
    """Where decisions are kept."""

    #: where the log is, for messages (never with credentials)
    location: str

    def append(self, decision: Decision, signer: Signer | None = None) -> Decision:
        """Store ``decision`` after the last record; returns it with ``prev_hash``, ``hash`` (and signature) set."""
        ...

    def get(self, decision_id: str) -> Decision | None:
        """The record with this id, or None."""
        ...

    def query(
        self, query: DecisionQuery, on_undecodable: Callable[[UndecodableRecord], None] | None = None
    ) -> Iterator[Decision]:
        """Records matching ``query``, newest first (append order when ``query.oldest_first``).

        A record that cannot be decoded raises UndecodableRecord, or, given ``on_undecodable``, is
        handed to it and skipped (listings name it and go on).
        """
        ...

    def seq_of_decision(self, decision_id: str) -> int | None:
        """The seq (chain position) of the record with this id, or None."""
        ...

    def seq_range(self, since: str | None, until: str | None) -> tuple[int, int] | None:
        """(lowest, highest) seq of the records with ``since <= timestamp < until``, or None when there are none."""
        ...

    def seq_of_event(self, event_id: str) -> int | None:
        """The seq of the event with this id, or None."""
        ...

    def head(self) -> str | None:
        """The hash column of the newest record (None for an empty log): what a promotion anchors."""
        ...

    def known_decisions(self, decision_ids: Collection[str]) -> set[str]:
        """Those of ``decision_ids`` that are records of this log."""
        ...

    def chain(self, start: int = 1, end: int | None = None, quick: bool = False) -> Iterator[ChainEntry]:
        """Every record with ``start <= seq <= end`` (no end: to the last) in append order, in stored form
        (``quick``: hashed while read, its bulk not decoded, where that confirms its hash)."""
        ...

    def seq_of_hash(self, record_hash: str) -> int | None:
        """The seq of the newest record whose hash column is ``record_hash``, or None."""
        ...

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every stored verify checkpoint, newest first."""
        ...

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Store a signed verify checkpoint."""
        ...

    def reopen(self) -> DecisionStore:
        """A new connection to the same log (for a worker process)."""
        ...

    def documents(self, findings: bool = False, after: int = 0) -> Iterator[tuple[Any, ...]]:
        """Every stored document: (digest, size uncompressed, zstd body), by digest; with ``findings``
        a fourth item, its ``document_findings`` rows, sorted; ``after``: only those records after seq ``after`` use."""
        ...

    def document_user(self, digest: str, after: int = 0) -> tuple[int, str] | None:
        """(seq, decision id) of the first record (after seq ``after``) referencing document ``digest``, or None."""
        ...

    def missing_document(self, after: int = 0) -> tuple[int, str] | None:
        """(seq, digest) of the first record reference (after seq ``after``) to a document that is not stored, or None."""
        ...

    def last_seq(self) -> int:
        """The highest sequence number ever issued (a deleted tail still counts)."""
        ...

    def append_event(self, event: Event, signer: Signer | None = None) -> Event:
        """Store ``event`` after the last event; returns it hashed (and signed)."""
        ...

    def events(self, query: EventQuery) -> Iterator[Event]:
        """Events matching ``query``, newest first (append order when ``query.oldest_first``)."""
        ...

    def event_chain(self) -> Iterator[tuple[int, Event, str]]:
        """Every event in append order: (seq, event, stored hash column)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...
