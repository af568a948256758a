"""The embedded decision log: one SQLite file in WAL mode; appends serialized by an immediate lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from gate.decisions.index import index_rows
from gate.decisions.record import Decision
from gate.decisions.events import Event, chain_event
from gate.decisions.sql import COLUMNS, EVENT_COLUMNS, SqlStore, chain_record, column_values, event_values
from gate.decisions.interface import MissingLog, StoreError

if TYPE_CHECKING:
    from gate.decisions.signing import Signer

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
    # 3: events (promotions, syncs) in their own chain, indexed by the decisions they relate to
    """
    create table events (
        seq integer primary key autoincrement,
        event_id text not null unique,
        timestamp text not null,
        type text not null,
        outcome text not null,
        environment text not null,
        digest text,
        prev_hash text,
        hash text not null,
        record blob not null
    );
    create index events_type on events (type, seq);
    create index events_digest on events (digest, seq);
    create table event_decisions (seq integer not null, decision_id text not null);
    create index event_decisions_id on event_decisions (decision_id, seq)
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
        _rollback(db)
        raise


def _rollback(db: sqlite3.Connection) -> None:
    """End a failed write transaction. SQLite has already rolled back after some errors (a full
    disk: SQLITE_FULL), and a second rollback would replace the real error with "cannot rollback -
    no transaction is active"; a rollback that fails itself is less telling than the first error."""
    if db.in_transaction:
        try:
            db.execute("rollback")
        except sqlite3.Error:
            pass


class SqliteStore(SqlStore):
    """Decisions in a SQLite file; several gate processes may append at once."""

    def __init__(self, path: Path, create: bool = True) -> None:
        """Open (``create``: or make) the log at ``path``; without ``create`` a missing, 0-byte or
        non-gate file is a MissingLog and nothing is written to it."""
        self.location = str(path)
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, timeout=60, isolation_level=None)
            else:
                if not path.is_file() or path.stat().st_size == 0:
                    raise MissingLog(f"no decision log at {path}")
                # mode=rw: open an existing file only, never create one
                self._db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", timeout=60, isolation_level=None, uri=True)
                if self._db.execute("pragma user_version").fetchone()[0] == 0:
                    self._db.close()
                    raise MissingLog(f"no decision log at {path} (a SQLite file gate did not create)")
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
                _rollback(self._db)
                raise
        except sqlite3.Error as e:
            raise StoreError(f"decision log {self.location}: cannot append: {e}") from None
        return chained

    def append_event(self, event: Event, signer: Signer | None = None) -> Event:
        """Append an event to the event chain, atomically like ``append``."""
        try:
            self._db.execute("begin immediate")
            try:
                head = self._db.execute("select hash from events order by seq desc limit 1").fetchone()
                chained = chain_event(event, head[0] if head else None, signer)
                cursor = self._db.execute(
                    f"insert into events ({', '.join(EVENT_COLUMNS)}) values ({', '.join('?' * len(EVENT_COLUMNS))})",
                    (*event_values(chained), msgspec.json.encode(chained)),
                )
                self._db.executemany(
                    "insert into event_decisions (seq, decision_id) values (?, ?)",
                    [(cursor.lastrowid, d) for d in chained.decision_ids],
                )
                self._db.execute("commit")
            except BaseException:
                _rollback(self._db)
                raise
        except sqlite3.Error as e:
            raise StoreError(f"decision log {self.location}: cannot append an event: {e}") from None
        return chained

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
