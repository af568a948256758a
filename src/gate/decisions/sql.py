"""What the SQL stores share: the columns, the chaining of a record, the query SQL, and reading.

SQLite and PostgreSQL run the same SQL (only the placeholder and the string-aggregate functions
differ), so both answer every query with the same records; each store adds how it connects,
migrates, appends under its write lock and streams rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from gate.decisions.events import Event, EventQuery
from gate.decisions.interface import ChainEntry, DecisionQuery, UndecodableRecord
from gate.decisions.record import Decision, record_hash

if TYPE_CHECKING:
    from gate.decisions.signing import Signer

_Record = TypeVar("_Record", Decision, Event)

#: the columns of ``decisions`` an append writes (``seq`` is assigned by the store), ``record`` last
COLUMNS = (
    "decision_id", "timestamp", "outcome", "environment", "image", "digest",
    "policy_digest", "policy_revision", "prev_hash", "hash", "record",
)
#: the columns queries search on, each derived from the record (verify checks they still agree)
SEARCH_COLUMNS = COLUMNS[:-1]
#: the columns of ``events`` an append writes, ``record`` last; ``event_decisions`` indexes decision_ids
EVENT_COLUMNS = ("event_id", "timestamp", "type", "outcome", "environment", "digest", "prev_hash", "hash", "record")


def event_values(event: Event) -> tuple[Any, ...]:
    """The values of EVENT_COLUMNS but ``record`` for a chained event."""
    digest = (event.artifact or {}).get("digest")
    return (event.event_id, event.timestamp, event.type, event.outcome, event.environment, digest, event.prev_hash, event.hash)


def chain_record(decision: Decision, prev_hash: str | None, signer: Signer | None) -> Decision:
    """``decision`` linked after the record whose hash is ``prev_hash``: hashed, and signed when a signer is given.

    Both stores call this inside their append transaction, after reading the chain head under the write lock.
    """
    chained = msgspec.structs.replace(decision, prev_hash=prev_hash, signing_key=signer.key_id if signer else None)
    digest = record_hash(chained)
    return msgspec.structs.replace(chained, hash=digest, signature=signer.sign(digest) if signer else None)


def column_values(chained: Decision) -> tuple[Any, ...]:
    """The values of COLUMNS but ``record`` for a chained decision."""
    artifact = chained.artifact or {}
    return (
        chained.decision_id,
        chained.timestamp,
        chained.outcome.value,
        chained.environment,
        artifact.get("image"),
        artifact.get("digest"),
        chained.policy.digest,
        chained.policy.revision,
        chained.prev_hash,
        chained.hash,
    )


def where_clause(query: DecisionQuery, placeholder: str = "?") -> tuple[str, list[Any]]:
    """SQL conditions and parameters for ``query``."""
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("digest", query.digest),
        ("image", query.image),
        ("environment", query.environment),
        ("outcome", query.outcome),
        ("policy_digest", query.policy_digest),
    ):
        if value is not None:
            conditions.append(f"d.{column} = {placeholder}")
            params.append(value)
    if query.since is not None:
        conditions.append(f"d.timestamp >= {placeholder}")
        params.append(query.since)
    if query.until is not None:
        conditions.append(f"d.timestamp < {placeholder}")
        params.append(query.until)
    if query.rule is not None:
        conditions.append(f"r.rule = {placeholder}")  # joined in from_clause
        params.append(query.rule)
    if query.waiver is not None and query.waiver_expired_before is not None:
        # the same waiver: applied here, and expired since (expires is indexed in the stored UTC format)
        conditions.append(
            f"d.seq in (select seq from decision_waivers where waiver_id = {placeholder} and expires < {placeholder})"
        )
        params += [query.waiver, query.waiver_expired_before]
    elif query.waiver is not None:
        conditions.append(f"d.seq in (select seq from decision_waivers where waiver_id = {placeholder})")
        params.append(query.waiver)
    elif query.waiver_expired_before is not None:
        conditions.append(f"d.seq in (select seq from decision_waivers where expires < {placeholder})")
        params.append(query.waiver_expired_before)
    elif query.waived:
        conditions.append("d.seq in (select seq from decision_waivers)")
    return (" where " + " and ".join(conditions)) if conditions else "", params


def from_clause(query: DecisionQuery) -> str:
    """The tables for ``query``. A rule filter walks the (rule, seq) index in seq order and joins the
    records: ``seq in (subquery)`` would collect every match (most of a million records for a
    common rule) before the limit applies."""
    return " from decision_rules r join decisions d on d.seq = r.seq" if query.rule is not None else " from decisions d"


def order_clause(query: DecisionQuery) -> str:
    """``order by`` and ``limit`` for ``query``: newest first, or append order."""
    key = "r.seq" if query.rule is not None else "d.seq"  # the same value; r.seq lets the rule index order
    limit = f" limit {int(query.limit)}" if query.limit is not None else ""
    return f" order by {key} {'asc' if query.oldest_first else 'desc'}{limit}"


class SqlStore(ABC):
    """Reading a decision log through SQL: get, query and chain, identical for every SQL store."""

    #: where the log is, for messages (never with credentials)
    location: str
    #: the driver's parameter placeholder
    placeholder = "?"
    #: the database's string-aggregate and code-to-character functions, for chain()
    aggregate, char = "group_concat", "char"

    @abstractmethod
    def _one(self, sql: str, params: Any) -> Any:
        """The first row of ``sql``, or None; a database error is a StoreError."""

    @abstractmethod
    def _rows(self, sql: str, params: Any) -> Iterator[Any]:
        """The rows of ``sql``, streamed; a database error is a StoreError."""

    def get(self, decision_id: str) -> Decision | None:
        """The record with this id, or None; one that cannot be decoded is an UndecodableRecord."""
        row = self._one(f"select seq, record from decisions where decision_id = {self.placeholder}", (decision_id,))
        return self._decode(Decision, row[0], decision_id, row[1]) if row else None

    def query(
        self, query: DecisionQuery, on_undecodable: Callable[[UndecodableRecord], None] | None = None
    ) -> Iterator[Decision]:
        """Records matching ``query``, newest first (append order with ``oldest_first``); an undecodable
        one raises UndecodableRecord, or is handed to ``on_undecodable`` and skipped."""
        where, params = where_clause(query, self.placeholder)
        sql = f"select d.seq, d.decision_id, d.record{from_clause(query)}{where}{order_clause(query)}"
        for seq, decision_id, record in self._rows(sql, params):
            try:
                yield self._decode(Decision, seq, decision_id, record)
            except UndecodableRecord as e:
                if on_undecodable is None:
                    raise
                on_undecodable(e)

    def chain(self) -> Iterator[ChainEntry]:
        """Every record in append order, with the columns and index rows stored beside it; the walk
        ends with UndecodableRecord at a record that cannot be decoded."""
        for seq, *columns, record, rules, waivers in self._rows(chain_sql(self.aggregate, self.char), ()):
            decision = self._decode(Decision, seq, columns[COLUMNS.index("decision_id")], record)
            yield chain_entry(seq, columns, decision, rules, waivers)

    def head(self) -> str | None:
        """The hash column of the newest record, or None for an empty log."""
        row = self._one("select hash from decisions order by seq desc limit 1", ())
        return str(row[0]) if row else None

    def known_decisions(self, decision_ids: Collection[str]) -> set[str]:
        """Those of ``decision_ids`` that are records of this log (looked up in batches)."""
        wanted = sorted(set(decision_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ", ".join([self.placeholder] * len(batch))
            found.update(r[0] for r in self._rows(f"select decision_id from decisions where decision_id in ({marks})", batch))
        return found

    def events(self, query: EventQuery) -> Iterator[Event]:
        """Events matching ``query``, newest first (append order with ``oldest_first``)."""
        p = self.placeholder
        conditions, params = [], []
        for column, value in (("e.type", query.type), ("e.environment", query.environment), ("e.digest", query.digest)):
            if value is not None:
                conditions.append(f"{column} = {p}")
                params.append(value)
        if query.since is not None:
            conditions.append(f"e.timestamp >= {p}")
            params.append(query.since)
        if query.decision_id is not None:
            conditions.append(f"e.seq in (select seq from event_decisions where decision_id = {p})")
            params.append(query.decision_id)
        where = (" where " + " and ".join(conditions)) if conditions else ""
        limit = f" limit {int(query.limit)}" if query.limit is not None else ""
        order = "asc" if query.oldest_first else "desc"
        sql = f"select e.seq, e.event_id, e.record from events e{where} order by e.seq {order}{limit}"
        for seq, event_id, record in self._rows(sql, params):
            yield self._decode(Event, seq, event_id, record)

    def event_chain(self) -> Iterator[tuple[int, Event, str]]:
        """Every event in append order with the hash column stored beside it (UndecodableRecord ends it)."""
        for seq, event_id, stored_hash, record in self._rows("select seq, event_id, hash, record from events order by seq", ()):
            yield int(seq), self._decode(Event, seq, event_id, record), stored_hash

    def _decode(self, kind: type[_Record], seq: Any, record_id: Any, record: Any) -> _Record:
        """``record`` (JSON text or bytes) as ``kind``; anything else is an UndecodableRecord naming the row."""
        try:
            return msgspec.json.decode(record, type=kind)
        except (msgspec.DecodeError, TypeError) as e:  # ValidationError is a DecodeError; TypeError: not text at all
            reason = str(e) if isinstance(e, msgspec.DecodeError) else f"the record column holds {type(record).__name__}, not JSON text"
            raise UndecodableRecord(
                self.location, int(seq), str(record_id) if record_id else None, reason,
                kind="decision" if kind is Decision else "event",
            ) from None


def chain_sql(aggregate: str, char: str) -> str:
    """The chain() query: records in order with their index rows joined (``aggregate``: the string
    aggregate function, ``char``: the code-to-character function of the database)."""
    return (
        f"select d.seq, {', '.join('d.' + c for c in COLUMNS)},"  # ends with d.record
        f" (select {aggregate}(rule, {char}(31)) from decision_rules r where r.seq = d.seq),"
        f" (select {aggregate}(waiver_id || {char}(30) || rule || {char}(30) || expires, {char}(31))"
        "  from decision_waivers w where w.seq = d.seq)"
        " from decisions d order by d.seq"
    )


def chain_entry(seq: int, columns: list[Any], decision: Decision, rules: str | None, waivers: str | None) -> ChainEntry:
    """A ChainEntry from a chain() row: aggregated index rows come joined by \x1f (fields by \x1e)."""
    return ChainEntry(
        seq=int(seq),
        decision=decision,
        stored_hash=columns[SEARCH_COLUMNS.index("hash")],
        columns=tuple(columns),
        rules=tuple(sorted(rules.split("\x1f"))) if rules else (),
        waivers=tuple(sorted(tuple(w.split("\x1e")) for w in waivers.split("\x1f"))) if waivers else (),  # type: ignore[misc]
    )

