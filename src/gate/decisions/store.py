"""The decision-log interface, the queries auditors ask, and choosing a store.

A store appends records atomically — reading the chain head, hashing, signing and inserting in
one transaction, so concurrent writers keep one chain — and answers the same queries with the
same results whichever database is behind it. The embedded default is a SQLite file in the
user's state folder; ``postgresql://`` selects a central PostgreSQL log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gate.decisions.events import Event, EventQuery
from gate.decisions.record import Decision
from gate.errors import GateError


class StoreError(GateError):
    """The decision log cannot be opened, read or written: a decision that is not recorded is not an allow."""


class Signer(Protocol):
    """Signs record hashes (see gate.decisions.signing)."""

    #: the key's id, recorded as ``signing_key``
    key_id: str

    def sign(self, record_hash: str) -> str:
        """A base64 signature over the ASCII bytes of ``record_hash``."""
        ...


@dataclass(frozen=True)
class DecisionQuery:
    """Filters of ``gate decisions list`` (all optional; combined with AND)."""

    digest: str | None = None
    image: str | None = None
    environment: str | None = None
    outcome: str | None = None
    #: a policy rule id (vulnerabilities.severity) or a finding rule (CVE id) a violation names
    rule: str | None = None
    #: a waiver id the decision applied
    waiver: str | None = None
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

    def query(self, query: DecisionQuery) -> Iterator[Decision]:
        """Records matching ``query``, newest first (append order when ``query.oldest_first``)."""
        ...

    def chain(self) -> Iterator[ChainEntry]:
        """Every record in append order."""
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


def default_store_path() -> Path:
    """``$XDG_STATE_HOME/gate/decisions.db`` (``~/.local/state`` when unset)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "gate" / "decisions.db"


def open_store(url: str | None = None) -> DecisionStore:
    """The store named by ``url`` (or GATE_DECISION_STORE): a path, ``sqlite:///PATH`` or ``postgresql://``."""
    url = url or os.environ.get("GATE_DECISION_STORE") or str(default_store_path())
    if url.startswith(("postgresql://", "postgres://")):
        from gate.decisions.postgres import PostgresStore

        return PostgresStore(url)
    from gate.decisions.sqlite import SqliteStore

    return SqliteStore(Path(url.removeprefix("sqlite://")))
