"""The embedded decision log: one SQLite file in WAL mode; appends serialized by an immediate lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from gate.decisions.index import index_rows
from gate.decisions.record import Decision, record_hash
from gate.decisions.store import ChainEntry, DecisionQuery, Signer, StoreError

#: Each entry upgrades the schema by one version; a newer gate opens an older log by running the rest.
MIGRATIONS: tuple[str, ...] = (
    """
    create table decisions (
        seq integer primary key autoincrement,
        decision_id text not null unique,
        timestamp text not null,
        outcome text not null,
        environment text not null,
        image text,
        digest text,
        policy_digest text not null,
        policy_revision text,
        prev_hash text,
        hash text not null,
        record blob not null
    );
    create index decisions_digest on decisions (digest, environment, seq);
    create index decisions_image on decisions (image, seq);
    create index decisions_timestamp on decisions (timestamp);
    create index decisions_policy on decisions (policy_digest, seq);
    create table decision_rules (seq integer not null, rule text not null);
    create index decision_rules_rule on decision_rules (rule, seq);
    create table decision_waivers (seq integer not null, waiver_id text not null, rule text not null, expires text not null);
    create index decision_waivers_id on decision_waivers (waiver_id, seq);
    """,
    # 2: verify reads each record's index rows by seq
    """
    create index decision_rules_seq on decision_rules (seq);
    create index decision_waivers_seq on decision_waivers (seq)
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection, location: str) -> None:
    """Bring the schema to SCHEMA_VERSION; refuse a log written by a newer gate."""
    version = db.execute("pragma user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return  # current: opening for reading takes no write lock and changes nothing
    db.execute("begin immediate")
    try:
        version = db.execute("pragma user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"decision log {location} has schema version {version}; this gate knows {SCHEMA_VERSION}: upgrade gate"
            )
        for step in MIGRATIONS[version:]:
            for statement in filter(str.strip, step.split(";")):
                db.execute(statement)
        db.execute(f"pragma user_version = {SCHEMA_VERSION}")
        db.execute("commit")
    except BaseException:
        db.execute("rollback")
        raise


#: the columns of ``decisions`` an append writes (``seq`` is assigned by the store), ``record`` last
COLUMNS = (
    "decision_id", "timestamp", "outcome", "environment", "image", "digest",
    "policy_digest", "policy_revision", "prev_hash", "hash", "record",
)
#: the columns queries search on, each derived from the record (verify checks they still agree)
SEARCH_COLUMNS = COLUMNS[:-1]


def chain_record(decision: Decision, prev_hash: str | None, signer: Signer | None) -> Decision:
    """``decision`` linked after the record whose hash is ``prev_hash``: hashed, and signed when a signer is given.

    Both stores call this inside their append transaction, after reading the chain head under the write lock.
    """
    chained = msgspec.structs.replace(decision, prev_hash=prev_hash, signing_key=signer.key_id if signer else None)
    digest = record_hash(chained)
    return msgspec.structs.replace(chained, hash=digest, signature=signer.sign(digest) if signer else None)


def column_values(chained: Decision) -> tuple[Any, ...]:
    """The values of COLUMNS but ``record`` for a chained decision (shared with the PostgreSQL store)."""
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
    """SQL conditions and parameters for ``query`` (shared with the PostgreSQL store)."""
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
    """``order by`` and ``limit`` for ``query``: newest first, or append order (shared with the PostgreSQL store)."""
    key = "r.seq" if query.rule is not None else "d.seq"  # the same value; r.seq lets the rule index order
    limit = f" limit {int(query.limit)}" if query.limit is not None else ""
    return f" order by {key} {'asc' if query.oldest_first else 'desc'}{limit}"


class SqliteStore:
    """Decisions in a SQLite file; several gate processes may append at once."""

    def __init__(self, path: Path) -> None:
        self.location = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=60, isolation_level=None)
            self._db.execute("pragma journal_mode=wal")
            self._db.execute("pragma busy_timeout=60000")
            migrate(self._db, self.location)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"decision log {path}: cannot open: {e}") from None

    def append(self, decision: Decision, signer: Signer | None = None) -> Decision:
        """Append atomically: the chain head is read and extended inside one write transaction."""
        rows = index_rows(decision)
        try:
            self._db.execute("begin immediate")
            try:
                head = self._db.execute("select hash from decisions order by seq desc limit 1").fetchone()
                chained = chain_record(decision, head[0] if head else None, signer)
                cursor = self._db.execute(
                    f"insert into decisions ({', '.join(COLUMNS)}) values ({', '.join('?' * len(COLUMNS))})",
                    (*column_values(chained), msgspec.json.encode(chained)),
                )
                seq = cursor.lastrowid
                self._db.executemany("insert into decision_rules (seq, rule) values (?, ?)", [(seq, r) for r in rows.rules])
                self._db.executemany(
                    "insert into decision_waivers (seq, waiver_id, rule, expires) values (?, ?, ?, ?)",
                    [(seq, *w) for w in rows.waivers],
                )
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise
        except sqlite3.Error as e:
            raise StoreError(f"decision log {self.location}: cannot append: {e}") from None
        return chained

    def get(self, decision_id: str) -> Decision | None:
        """The record with this id, or None."""
        row = self._one("select record from decisions where decision_id = ?", (decision_id,))
        return _decode(row[0]) if row else None

    def query(self, query: DecisionQuery) -> Iterator[Decision]:
        """Records matching ``query``, newest first (append order with ``oldest_first``)."""
        where, params = where_clause(query)
        for (record,) in self._rows(f"select d.record{from_clause(query)}{where}{order_clause(query)}", params):
            yield _decode(record)

    def chain(self) -> Iterator[ChainEntry]:
        """Every record in append order, with the columns and index rows stored beside it."""
        for seq, *columns, record, rules, waivers in self._rows(chain_sql("group_concat", "char"), ()):
            yield chain_entry(seq, columns, record, rules, waivers)

    def last_seq(self) -> int:
        """The highest sequence number SQLite ever issued for this log."""
        row = self._one("select seq from sqlite_sequence where name = 'decisions'", ())
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def _one(self, sql: str, params: Any) -> Any:
        try:
            return self._db.execute(sql, params).fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"decision log {self.location}: cannot read: {e}") from None

    def _rows(self, sql: str, params: Any) -> Iterator[Any]:
        try:
            yield from self._db.execute(sql, params)
        except sqlite3.Error as e:
            raise StoreError(f"decision log {self.location}: cannot read: {e}") from None


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


def chain_entry(seq: int, columns: list[Any], record: bytes | str, rules: str | None, waivers: str | None) -> ChainEntry:
    """A ChainEntry from a chain() row: aggregated index rows come joined by \x1f (fields by \x1e)."""
    return ChainEntry(
        seq=int(seq),
        decision=_decode(record),
        stored_hash=columns[SEARCH_COLUMNS.index("hash")],
        columns=tuple(columns),
        rules=tuple(sorted(rules.split("\x1f"))) if rules else (),
        waivers=tuple(sorted(tuple(w.split("\x1e")) for w in waivers.split("\x1f"))) if waivers else (),  # type: ignore[misc]
    )


def _decode(record: bytes | str) -> Decision:
    return msgspec.json.decode(record, type=Decision)
