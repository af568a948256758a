"""The embedded decision log: one SQLite file in WAL mode; appends serialized by an immediate lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from gate.decisions.documents import Document, legacy_moves, new_documents, references, split
from gate.decisions.index import index_rows
from gate.decisions.record import Decision
from gate.decisions.events import Event, chain_event
from gate.decisions.sql import (
    COLUMNS, EVENT_COLUMNS, SqlStore, chain_record, column_values, event_values, record_json,
)
from gate.decisions.interface import MissingLog, StoreError

if TYPE_CHECKING:
    from gate.decisions.signing import Signer

#: Each entry upgrades the schema by one version (SQL statements, or a function given the connection
#: inside the migration's transaction); a newer gate opens an older log by running the rest.
MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
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
    # 4: content-addressed input documents (gate.decisions.documents), earlier inputs moved there, rules
    # lowercased; signed verify checkpoints
    lambda db: _migrate_documents(db),
    # 5: gate serve --ui lists the newest decisions of one environment or outcome a page at a time: without
    # these, a rare environment or outcome walks the whole log backwards to fill a page
    """
    create index decisions_environment on decisions (environment, seq);
    create index decisions_outcome on decisions (outcome, seq)
    """,
)

#: migration 4's tables: each document once (body: a zstd frame of its canonical JSON; size: uncompressed
#: bytes), which documents each record references, the lowercased rules and ids of each findings
#: document's findings (``--finding``: one b-tree by finding, no rowid), and signed verify checkpoints
#: (gate.decisions.checkpoints: ``record`` is the signed body's canonical JSON)
DOCUMENTS_DDL = """
    create table documents (digest text primary key, size integer not null, body blob not null);
    create table decision_documents (seq integer not null, digest text not null);
    create index decision_documents_digest on decision_documents (digest, seq);
    create index decision_documents_seq on decision_documents (seq);
    create table document_findings (digest text not null, finding text not null, primary key (finding, digest)) without rowid;
    -- decisions events: --since/--until by time, --waived probes each event's decisions
    create index events_timestamp on events (timestamp);
    create index event_decisions_seq on event_decisions (seq);
    create table checkpoints (
        seq integer not null,
        hash text not null,
        count integer not null,
        timestamp text not null,
        signing_key text not null,
        signature text not null,
        keys text not null,
        record text not null
    )
"""
SCHEMA_VERSION = len(MIGRATIONS)
#: the oldest schema a read-only open accepts: later migrations only add indexes (what reads it lacks is
#: slower, not wrong); a writing command upgrades the log
READABLE_FROM = 4
#: the memory map of a log opened for reading (SQLite caps it at its SQLITE_MAX_MMAP_SIZE, 2 GB by default)
MMAP_BYTES = 1 << 31


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
            if callable(step):
                step(db)
                continue
            for statement in filter(str.strip, step.split(";")):
                db.execute(statement)
        db.execute(f"pragma user_version = {SCHEMA_VERSION}")
        db.execute("commit")
    except BaseException:
        _rollback(db)
        raise


def _migrate_documents(db: sqlite3.Connection) -> None:
    """Migration 4: the documents tables; every earlier record's input moved to a document, the record
    rewritten with ``"input": {}`` (its hash leaves the input out, so it still verifies); rules lowercased."""
    for statement in filter(str.strip, DOCUMENTS_DDL.split(";")):
        db.execute(statement)
    batch = "select seq, record from decisions where seq > ? order by seq limit 500"
    for move in legacy_moves(lambda after: db.execute(batch, (after,)).fetchall()):
        _store_documents(db, new_documents([move.document], _stored(db, [move.document])))
        if move.reference is not None:
            db.execute("insert into decision_documents (seq, digest) values (?, ?)", (move.seq, move.reference))
        db.execute("update decisions set record = ? where seq = ?", (move.record, move.seq))
    db.execute("update decision_rules set rule = lower(rule)")


def _stored(db: sqlite3.Connection, documents: list[Document] | tuple[Document, ...]) -> set[str]:
    """Which of ``documents`` the log already holds (those are not compressed again)."""
    digests = [d.digest for d in documents]
    if not digests:
        return set()
    marks = ", ".join("?" * len(digests))
    return {row[0] for row in db.execute(f"select digest from documents where digest in ({marks})", digests)}


def _store_documents(db: sqlite3.Connection, fresh: list[tuple[str, int, bytes, tuple[str, ...]]]) -> None:
    """Insert new documents (one another writer stored meanwhile is left as it is) and their findings rows."""
    for digest, size, body, terms in fresh:
        cursor = db.execute("insert or ignore into documents (digest, size, body) values (?, ?, ?)", (digest, size, body))
        if cursor.rowcount == 1 and terms:
            db.executemany("insert into document_findings (digest, finding) values (?, ?)", [(digest, t) for t in terms])


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

    def __init__(self, path: Path, create: bool = True, read_only: bool = False) -> None:
        """Open (``create``: or make) the log at ``path``; without ``create`` a missing, 0-byte or
        non-gate file is a MissingLog and nothing is written to it. ``read_only`` (``gate serve --ui``):
        opened with ``mode=ro``, so SQLite itself refuses every write; the schema must be current (a
        log written by an older gate is upgraded by any command that writes), and the connection may
        be handed between threads (one at a time)."""
        self.location = str(path)
        self._path = path
        self._read_only = read_only
        try:
            if read_only:
                if not path.is_file() or path.stat().st_size == 0:
                    raise MissingLog(f"no decision log at {path}")
                self._db = sqlite3.connect(
                    f"{path.absolute().as_uri()}?mode=ro", timeout=60, isolation_level=None, uri=True,
                    check_same_thread=False,
                )
                self._db.execute("pragma busy_timeout=60000")
                self._db.execute(f"pragma mmap_size={MMAP_BYTES}")
                version = self._db.execute("pragma user_version").fetchone()[0]
                if version == 0:
                    self._db.close()
                    raise MissingLog(f"no decision log at {path} (a SQLite file gate did not create)")
                if not READABLE_FROM <= version <= SCHEMA_VERSION:
                    self._db.close()
                    newer = "upgrade gate" if version > SCHEMA_VERSION else "run any gate command that writes to it (gate decisions verify --checkpoint, gate evaluate) to upgrade it"
                    raise StoreError(
                        f"decision log {path} has schema version {version}; this gate knows {SCHEMA_VERSION} and"
                        f" opens it read-only: {newer}"
                    )
                return
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
            if not create:  # commands that read (verify walks gigabytes): reads from a memory map, half the CPU
                self._db.execute(f"pragma mmap_size={MMAP_BYTES}")
            migrate(self._db, self.location)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"decision log {path}: cannot open: {e}") from None

    def append(self, decision: Decision, signer: Signer | None = None) -> Decision:
        """Append atomically: the chain head is read and extended inside one write transaction.

        The record is stored in stored form with the documents it references that the log does not hold
        yet (compressed before the write lock is taken); the full form is returned.
        """
        parts = split(decision)
        rows = index_rows(parts.full)
        try:
            fresh = new_documents(parts.documents, _stored(self._db, parts.documents))
            self._db.execute("begin immediate")
            try:
                head = self._db.execute("select hash from decisions order by seq desc limit 1").fetchone()
                chained = chain_record(parts.stored, head[0] if head else None, signer)
                cursor = self._db.execute(
                    f"insert into decisions ({', '.join(COLUMNS)}) values ({', '.join('?' * len(COLUMNS))})",
                    (*column_values(chained), record_json(chained)),
                )
                seq = cursor.lastrowid
                _store_documents(self._db, fresh)
                self._db.executemany(
                    "insert into decision_documents (seq, digest) values (?, ?)", [(seq, d) for d in references(chained)]
                )
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
        return msgspec.structs.replace(
            parts.full, prev_hash=chained.prev_hash, hash=chained.hash, signing_key=chained.signing_key,
            signature=chained.signature,
        )

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

    def reopen(self) -> SqliteStore:
        """A new connection to this log (verify's worker processes each open their own), read-only if this one is."""
        return SqliteStore(self._path, create=False, read_only=self._read_only)

    def _write(self, sql: str, params: Any) -> None:
        try:
            self._db.execute(sql, params)  # autocommit: one statement, one transaction
        except sqlite3.Error as e:
            raise StoreError(f"decision log {self.location}: cannot write: {e}") from None

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
