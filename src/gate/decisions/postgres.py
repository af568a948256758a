"""The central decision log: PostgreSQL through psycopg 3, shared by many CI runners.

Same tables, indexes, queries and results as the SQLite store (gate.decisions.sqlite); RFC 3339 text
columns (timestamp, expires) use the "C" collation so they compare byte-wise, as in SQLite, whatever
the database's locale. ``record`` is text holding exactly the JSON msgspec wrote (not jsonb, which
would reorder keys and drop the bytes verification re-hashes). Appends from
any number of processes keep one chain: each append takes a transaction-scoped advisory lock, reads
the chain head, hashes and signs, inserts the record and its index rows, and commits — so the lock
is released only when the record is visible, and a writer killed mid-append leaves nothing behind.

``seq`` is assigned under that lock from ``decision_log_head.last_seq``, not from a sequence:
PostgreSQL sequences are not transactional, so a rolled-back append (a crash, a lost connection)
would burn a number and look exactly like a deleted tail to ``verify``. The head row is updated in
the append's own transaction, so ``last_seq()`` counts exactly the records ever committed, as
SQLite's ``sqlite_sequence`` does.

This module is imported only for ``postgresql://`` URLs, so ``gate scan`` never loads psycopg.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from itertools import count
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
from gate.redact import redact, url_secrets

if TYPE_CHECKING:
    import psycopg

    from gate.decisions.signing import Signer

#: Each entry upgrades the schema by one version (SQL statements, or a function given the connection
#: inside the migration's transaction); a newer gate opens an older log by running the rest.
MIGRATIONS: tuple[str | Callable[[psycopg.Connection[Any]], None], ...] = (
    """
    create table decisions (
        seq bigint primary key,
        decision_id text not null unique,
        timestamp text collate "C" not null,
        outcome text not null,
        environment text not null,
        image text,
        digest text,
        policy_digest text not null,
        policy_revision text,
        prev_hash text,
        hash text not null,
        record text not null
    );
    create index decisions_digest on decisions (digest, environment, seq);
    create index decisions_image on decisions (image, seq);
    create index decisions_timestamp on decisions (timestamp);
    create index decisions_policy on decisions (policy_digest, seq);
    create table decision_rules (seq bigint not null, rule text not null);
    create index decision_rules_rule on decision_rules (rule, seq);
    create table decision_waivers (
        seq bigint not null, waiver_id text not null, rule text not null, expires text collate "C" not null
    );
    create index decision_waivers_id on decision_waivers (waiver_id, seq);
    create table decision_log_head (
        singleton boolean primary key default true check (singleton),
        last_seq bigint not null
    );
    insert into decision_log_head (last_seq) values (0)
    """,
    # 2: verify reads each record's index rows by seq
    """
    create index decision_rules_seq on decision_rules (seq);
    create index decision_waivers_seq on decision_waivers (seq)
    """,
    # 3: events (promotions, syncs) in their own chain, indexed by the decisions they relate to
    """
    create table events (
        seq bigint primary key,
        event_id text not null unique,
        timestamp text collate "C" not null,
        type text not null,
        outcome text not null,
        environment text not null,
        digest text,
        prev_hash text,
        hash text not null,
        record text not null
    );
    create index events_type on events (type, seq);
    create index events_digest on events (digest, seq);
    create table event_decisions (seq bigint not null, decision_id text not null);
    create index event_decisions_id on event_decisions (decision_id, seq)
    """,
    # 4: content-addressed input documents (gate.decisions.documents), earlier inputs moved there, rules
    # lowercased; signed verify checkpoints
    lambda conn: _migrate_documents(conn),
    # 5: gate serve --ui pages through one environment or outcome (as gate.decisions.sqlite's 5)
    """
    create index decisions_environment on decisions (environment, seq);
    create index decisions_outcome on decisions (outcome, seq)
    """,
)

#: migration 4's tables, as in SQLite (gate.decisions.sqlite.DOCUMENTS_DDL); bodies are zstd already, so
#: PostgreSQL keeps them out of line uncompressed (storage external) instead of trying pglz on them;
#: checkpoints: gate.decisions.checkpoints (``record`` is the signed body's canonical JSON)
DOCUMENTS_DDL = """
    create table documents (digest text primary key, size bigint not null, body bytea not null);
    alter table documents alter column body set storage external;
    create table decision_documents (seq bigint not null, digest text not null);
    create index decision_documents_digest on decision_documents (digest, seq);
    create index decision_documents_seq on decision_documents (seq);
    create table document_findings (digest text not null, finding text not null, primary key (finding, digest));
    -- decisions events: --since/--until by time, --waived probes each event's decisions
    create index events_timestamp on events (timestamp);
    create index event_decisions_seq on event_decisions (seq);
    create table checkpoints (
        seq bigint not null,
        hash text not null,
        count bigint not null,
        timestamp text collate "C" not null,
        signing_key text not null,
        signature text not null,
        keys text not null,
        record text not null
    )
"""
SCHEMA_VERSION = len(MIGRATIONS)
#: the oldest schema a read-only open accepts (later migrations only add indexes)
READABLE_FROM = 4

#: pg_advisory_xact_lock keys (per database): 'gatelog' and 'gatemig' as ASCII, unlikely to clash with other users
APPEND_LOCK = 0x676174656C6F67
MIGRATION_LOCK = 0x676174656D6967
EVENT_LOCK = 0x67617465657674

_LOCK_AND_READ_HEAD = (
    f"select pg_advisory_xact_lock({APPEND_LOCK});"
    " select h.last_seq, (select hash from decisions order by seq desc limit 1) from decision_log_head h"
)
#: new documents (one another writer stored meanwhile is left as it is) and the findings rows of those
#: this statement inserted
_DOCUMENTS = (
    "docs as (insert into documents (digest, size, body) select * from unnest(%s::text[], %s::bigint[], %s::bytea[])"
    " on conflict do nothing returning digest),"
    " finds as (insert into document_findings (digest, finding) select f.d, f.t from unnest(%s::text[], %s::text[]) f(d, t)"
    " where f.d in (select digest from docs)),"
)
#: the record, the head row, its documents and the index rows in one statement (data-modifying CTEs all
#: run, in one snapshot)
_WRITE = (
    f"with record as (insert into decisions (seq, {', '.join(COLUMNS)}) values (%s, {', '.join(['%s'] * len(COLUMNS))})),"
    " head as (update decision_log_head set last_seq = %s),"
    f" {_DOCUMENTS}"
    " refs as (insert into decision_documents (seq, digest) select %s, r from unnest(%s::text[]) r),"
    " rules as (insert into decision_rules (seq, rule) select %s, r from unnest(%s::text[]) r),"
    " waivers as (insert into decision_waivers (seq, waiver_id, rule, expires)"
    " select %s, w.* from unnest(%s::text[], %s::text[], %s::text[]) w)"
    " select 1"
)

#: rows fetched per round trip when streaming the chain or a large query
ITERSIZE = 2000

_cursor_names = count()


def _migrate_documents(conn: psycopg.Connection[Any]) -> None:
    """Migration 4: the documents tables; every earlier record's input moved to a document, the record
    rewritten with ``"input": {}`` (its hash leaves the input out, so it still verifies); rules lowercased."""
    for statement in filter(str.strip, DOCUMENTS_DDL.split(";")):
        conn.execute(statement)
    batch = "select seq, record from decisions where seq > %s order by seq limit 500"
    for move in legacy_moves(lambda after: conn.execute(batch, (after,)).fetchall()):
        fresh = new_documents([move.document], _stored(conn, [move.document]))
        conn.execute(f"with {_DOCUMENTS.rstrip(',')} select 1", _document_params(fresh))
        if move.reference is not None:
            conn.execute("insert into decision_documents (seq, digest) values (%s, %s)", (move.seq, move.reference))
        conn.execute("update decisions set record = %s where seq = %s", (move.record.decode(), move.seq))
    conn.execute("update decision_rules set rule = lower(rule)")


def _stored(conn: psycopg.Connection[Any], documents: list[Document] | tuple[Document, ...]) -> set[str]:
    """Which of ``documents`` the log already holds (those are not compressed again)."""
    if not documents:
        return set()
    rows = conn.execute("select digest from documents where digest = any(%s::text[])", ([d.digest for d in documents],))
    return {str(row[0]) for row in rows}


def _document_params(fresh: list[tuple[str, int, bytes, tuple[str, ...]]]) -> tuple[list[Any], ...]:
    """The parameters of _DOCUMENTS for the new documents ``fresh``."""
    terms = [(digest, term) for digest, _, _, found in fresh for term in found]
    return (
        [f[0] for f in fresh], [f[1] for f in fresh], [f[2] for f in fresh],
        [t[0] for t in terms], [t[1] for t in terms],
    )


def location(url: str) -> str:
    """``postgresql://host:port/db`` for messages: no user, password or options."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - an unparseable URL is reported by connect; never echo it
        return "postgresql://(unparseable URL)"
    host = str(info.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(info.get("port") or os.environ.get("PGPORT") or "5432")
    dbname = str(info.get("dbname") or os.environ.get("PGDATABASE") or info.get("user") or "")
    if host.startswith("/"):  # a unix socket directory
        return f"postgresql://[{host}]:{port}/{dbname}"
    return f"postgresql://{host}:{port}/{dbname}"


class PostgresStore(SqlStore):
    """Decisions in a PostgreSQL database; any number of processes on any number of hosts may append."""

    placeholder = "%s"
    aggregate, char = "string_agg", "chr"

    def __init__(self, url: str, create: bool = True, read_only: bool = False) -> None:
        """Connect, and (``create``) make or upgrade the tables; without ``create`` a database that
        holds no log is a MissingLog and gets no tables. ``read_only`` (``gate serve --ui``): every
        transaction of the session is read-only (``default_transaction_read_only``), so PostgreSQL
        refuses any write, and the schema must be current (nothing is migrated)."""
        self.location = location(url)
        self._create = create and not read_only
        self._read_only = read_only
        self._secrets = url_secrets(url)
        self._url = url  # kept in memory only, to reopen (never printed: location is what messages name)
        try:
            import psycopg
        except ImportError as e:
            raise StoreError(f"decision log {self.location}: psycopg is not installed ({e})") from None
        self._psycopg = psycopg
        kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in url and "PGCONNECT_TIMEOUT" not in os.environ:
            kwargs["connect_timeout"] = 10
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(url, **kwargs)
        except psycopg.Error as e:
            raise StoreError(f"decision log {self.location}: cannot connect: {self._one_line(e)}") from None
        try:
            if read_only:
                self._conn.execute("set default_transaction_read_only = on")
            self._migrate()
        except psycopg.Error as e:
            self._conn.close()
            raise StoreError(f"decision log {self.location}: cannot open: {self._one_line(e)}") from None
        except BaseException:
            self._conn.close()
            raise

    def _migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION under an advisory lock; refuse a log written by a newer gate.

        A log already at this version is opened without the lock or any DDL, so a role that may only
        read and append (no CREATE on the schema) can use a log its administrator created.
        """
        exists = self._conn.execute("select to_regclass('gate_schema') is not null").fetchone()
        if exists and exists[0]:
            current = self.schema_version()
            self._refuse_newer(current)
            if current == SCHEMA_VERSION or (self._read_only and current >= READABLE_FROM):
                return
            if self._read_only:
                raise StoreError(
                    f"decision log {self.location} has schema version {current}; this gate knows {SCHEMA_VERSION} and"
                    " opens it read-only: run any gate command that writes to it to upgrade it"
                )
        elif not self._create:
            raise MissingLog(f"no decision log at {self.location}")
        with self._conn.transaction():
            # Two processes opening a new log at once: the second waits here, then sees the first's tables.
            self._conn.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            self._conn.execute(
                "create table if not exists gate_schema ("
                " version int primary key, applied_at timestamptz not null default now())"
            )
            row = self._conn.execute("select coalesce(max(version), 0) from gate_schema").fetchone()
            version = int(row[0]) if row else 0
            self._refuse_newer(version)
            for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
                if callable(step):
                    step(self._conn)
                else:
                    for statement in filter(str.strip, step.split(";")):
                        self._conn.execute(statement)
                self._conn.execute("insert into gate_schema (version) values (%s)", (number,))

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"decision log {self.location} has schema version {version}; "
                f"this gate knows {SCHEMA_VERSION}: upgrade gate"
            )

    def schema_version(self) -> int:
        """The schema version this log was last migrated to."""
        row = self._one("select coalesce(max(version), 0) from gate_schema", ())
        return int(row[0]) if row else 0

    def append(self, decision: Decision, signer: Signer | None = None) -> Decision:
        """Append atomically: the chain head is read and extended inside one locked transaction.

        Five round trips: which of its documents the log holds (the others are compressed before the
        lock); begin; lock and head read; one statement writing the record, the head row, the new
        documents and the index rows; commit. The record is stored in stored form; the full form is returned.
        """
        parts = split(decision)
        rows = index_rows(parts.full)
        conn = self._conn
        try:
            fresh = new_documents(parts.documents, _stored(conn, parts.documents))
            with conn.transaction():
                # Two statements in one round trip: the head is read by a later statement than the one
                # that waited for the lock, so it sees the record the previous lock holder committed.
                cur = conn.execute(_LOCK_AND_READ_HEAD)
                cur.nextset()  # past the lock's result to the head's
                head = cur.fetchone()
                if head is None:
                    raise StoreError(f"decision log {self.location}: decision_log_head is empty: the log was tampered with")
                seq = int(head[0]) + 1
                chained = chain_record(parts.stored, head[1], signer)
                waivers: list[tuple[str, ...]] = list(zip(*rows.waivers, strict=True)) or [(), (), ()]
                conn.execute(
                    _WRITE,
                    (
                        seq,
                        *column_values(chained),
                        record_json(chained).decode(),
                        seq,
                        *_document_params(fresh),
                        seq,
                        list(references(chained)),
                        seq,
                        list(rows.rules),
                        seq,
                        *(list(column) for column in waivers),
                    ),
                )
        except self._psycopg.Error as e:
            raise StoreError(f"decision log {self.location}: cannot append: {self._one_line(e)}") from None
        return msgspec.structs.replace(
            parts.full, prev_hash=chained.prev_hash, hash=chained.hash, signing_key=chained.signing_key,
            signature=chained.signature,
        )

    def append_event(self, event: Event, signer: Signer | None = None) -> Event:
        """Append an event to the event chain under its own advisory lock."""
        conn = self._conn
        try:
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s)", (EVENT_LOCK,))
                head = conn.execute("select seq, hash from events order by seq desc limit 1").fetchone()
                seq = int(head[0]) + 1 if head else 1
                chained = chain_event(event, head[1] if head else None, signer)
                conn.execute(
                    f"insert into events (seq, {', '.join(EVENT_COLUMNS)}) values (%s, {', '.join(['%s'] * len(EVENT_COLUMNS))})",
                    (seq, *event_values(chained), msgspec.json.encode(chained).decode()),
                )
                if chained.decision_ids:
                    conn.execute(
                        "insert into event_decisions (seq, decision_id) select %s, d from unnest(%s::text[]) d",
                        (seq, list(chained.decision_ids)),
                    )
        except self._psycopg.Error as e:
            raise StoreError(f"decision log {self.location}: cannot append an event: {self._one_line(e)}") from None
        return chained

    def last_seq(self) -> int:
        """The highest sequence number ever committed to this log (a deleted tail still counts)."""
        row = self._one("select last_seq from decision_log_head", ())
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def reopen(self) -> PostgresStore:
        """A new connection to this log (verify's worker processes each open their own)."""
        return PostgresStore(self._url, create=False, read_only=self._read_only)

    def _write(self, sql: str, params: Any) -> None:
        try:
            self._conn.execute(sql, params)  # autocommit: one statement, one transaction
        except self._psycopg.Error as e:
            raise StoreError(f"decision log {self.location}: cannot write: {self._one_line(e)}") from None

    def _one(self, sql: str, params: Any) -> Any:
        try:
            return self._conn.execute(sql, params).fetchone()
        except self._psycopg.Error as e:
            raise StoreError(f"decision log {self.location}: cannot read: {self._one_line(e)}") from None

    def _rows(self, sql: str, params: Any) -> Iterator[Any]:
        """Rows of ``sql`` through a server-side cursor, ITERSIZE at a time, in one read-only snapshot."""
        try:
            with self._conn.transaction(), self._conn.cursor(name=f"gate_rows_{next(_cursor_names)}") as cur:
                cur.itersize = ITERSIZE
                cur.execute(sql, params)
                yield from cur
        except self._psycopg.Error as e:
            raise StoreError(f"decision log {self.location}: cannot read: {self._one_line(e)}") from None

    def _one_line(self, error: BaseException) -> str:
        """libpq's message on one line, with anything secret from the URL blanked out."""
        text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__
        return redact(text, self._secrets)
