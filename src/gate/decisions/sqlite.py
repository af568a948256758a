"""The embedded decision log: one SQLite file, WAL mode, appends serialized by an immediate lock."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import msgspec

from gate.decisions.record import Decision, canonical_json
from gate.decisions.store import StoreError

SCHEMA_VERSION = 1
_SCHEMA = """
create table if not exists decisions (
    seq integer primary key autoincrement,
    decision_id text not null unique,
    timestamp text not null,
    outcome text not null,
    environment text not null,
    image text,
    digest text,
    policy_digest text not null,
    hash text not null,
    record blob not null
);
create index if not exists decisions_digest on decisions (digest, environment);
"""


def record_hash(decision: Decision) -> str:
    """sha256 over the canonical record without ``hash``, ``signature`` and ``input``.

    The input is bound through ``input_digest`` (checked on its own), so a large input is
    serialized once less, and a log could later drop old inputs without breaking the chain.
    """
    body = msgspec.structs.replace(decision, hash=None, signature=None, input={})
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


class SqliteStore:
    """Decisions in a SQLite file; several gate processes may append at once."""

    def __init__(self, path: Path) -> None:
        self.location = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("pragma journal_mode=wal")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"pragma user_version={SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"decision log {path}: cannot open: {e}") from None

    def append(self, decision: Decision) -> Decision:
        """Append atomically: the chain head is read and extended inside one write transaction."""
        try:
            self._db.execute("begin immediate")
            try:
                row = self._db.execute("select hash from decisions order by seq desc limit 1").fetchone()
                chained = msgspec.structs.replace(decision, prev_hash=row[0] if row else None)
                chained = msgspec.structs.replace(chained, hash=record_hash(chained))
                artifact = chained.artifact or {}
                self._db.execute(
                    "insert into decisions (decision_id, timestamp, outcome, environment, image, digest,"
                    " policy_digest, hash, record) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        chained.decision_id,
                        chained.timestamp,
                        chained.outcome.value,
                        chained.environment,
                        artifact.get("image"),
                        artifact.get("digest"),
                        chained.policy.digest,
                        chained.hash,
                        msgspec.json.encode(chained),
                    ),
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
        try:
            row = self._db.execute("select record from decisions where decision_id = ?", (decision_id,)).fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"decision log {self.location}: cannot read: {e}") from None
        return msgspec.json.decode(row[0], type=Decision) if row else None

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
