"""The decision-log interface, and choosing a store from GATE_DECISION_STORE.

A store appends records atomically, chaining each to the one before (``prev_hash``/``hash``), and
reads them back. The embedded default is a SQLite file in the user's state folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from gate.decisions.record import Decision
from gate.errors import GateError


class StoreError(GateError):
    """The decision log cannot be opened, read or written: a decision that is not recorded is not an allow."""


class DecisionStore(Protocol):
    """Where decisions are kept."""

    #: where the log is, for messages (never with credentials)
    location: str

    def append(self, decision: Decision) -> Decision:
        """Store ``decision`` after the last record; returns it with ``prev_hash`` and ``hash`` set."""
        ...

    def get(self, decision_id: str) -> Decision | None:
        """The record with this id, or None."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def default_store_path() -> Path:
    """``$XDG_STATE_HOME/gate/decisions.db`` (``~/.local/state`` when unset)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "gate" / "decisions.db"


def open_store(url: str | None = None) -> DecisionStore:
    """The store named by ``url`` (or GATE_DECISION_STORE): a path or ``sqlite:///PATH``."""
    url = url or os.environ.get("GATE_DECISION_STORE") or str(default_store_path())
    if url.startswith(("postgresql://", "postgres://")):
        raise StoreError("PostgreSQL decision logs are not available in this version of gate; use a SQLite path")
    from gate.decisions.sqlite import SqliteStore

    return SqliteStore(Path(url.removeprefix("sqlite://")))
