"""Choosing a decision store from a URL (the interface the stores implement is gate.decisions.interface).

A store appends records atomically — reading the chain head, hashing, signing and inserting in
one transaction, so concurrent writers keep one chain — and answers the same queries with the
same results whichever database is behind it. The embedded default is a SQLite file in the
user's state folder; ``postgresql://`` selects a central PostgreSQL log.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gate import settings
from gate.decisions.interface import DecisionStore, StoreError


def default_store_path() -> Path:
    """``$XDG_STATE_HOME/gate/decisions.db`` (``~/.local/state`` when unset)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "gate" / "decisions.db"


def open_store(url: str | None = None, *, create: bool = True, read_only: bool = False) -> DecisionStore:
    """The store named by ``url`` (or GATE_DECISION_STORE, else decision_store in gate.toml): a path, ``sqlite:///PATH`` or ``postgresql://``.

    ``create=False`` (commands that only read: verify, list, show, ...) never makes a log: a missing
    one is a MissingLog error ("no decision log at ..."), and the file or tables are left uncreated.
    ``read_only`` (``gate serve --ui``): the database itself refuses writes (SQLite ``mode=ro``,
    PostgreSQL ``default_transaction_read_only``); never creates or migrates.
    """
    configured = settings.current()
    what = "decision store" if url else configured.source("GATE_DECISION_STORE")
    url = url or configured.env("GATE_DECISION_STORE") or str(default_store_path())
    _refuse_unknown_scheme(url, what)
    if url.startswith(("postgresql://", "postgres://")):
        from gate.decisions.postgres import PostgresStore

        return PostgresStore(url, create=create and not read_only, read_only=read_only)
    from gate.decisions.sqlite import SqliteStore

    return SqliteStore(Path(url.removeprefix("sqlite://")), create=create and not read_only, read_only=read_only)


#: ``scheme:`` at the start of a store setting; the schemes below are the only ones that select a store
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SUPPORTED_PREFIXES = ("postgresql://", "postgres://", "sqlite://")


def _refuse_unknown_scheme(url: str, what: str = "GATE_DECISION_STORE") -> None:
    """A misspelled scheme (``postgress://u:pw@host/db``, ``sqlite:/x``) must not become a local SQLite
    path: the decision would miss the central log and the password would end up in folder names.
    Only the scheme is echoed, never the rest (it may hold a password)."""
    match = _SCHEME.match(url)
    if match is None or url.startswith(_SUPPORTED_PREFIXES):
        return
    scheme = match.group(1)
    known = scheme in ("sqlite", "postgresql", "postgres")
    problem = f"'{scheme}:' without //" if known else f"unsupported scheme {scheme!r}"
    raise StoreError(
        f"{what}: {problem}: use a path, sqlite:///PATH, postgresql://USER@HOST:PORT/DB "
        "or postgres://... (a relative path with a colon: start it with ./)"
    )
