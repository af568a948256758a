"""Fixtures of the web view's tests: a log seeded once through the real CLI (tests/ui/seed.py), copied
into each test's log on each store, and a served ``gate serve --ui`` on it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Seeded:
    """The decisions (full form, in append order) and events of the seeded log, and their ids by name."""

    decisions: list[Any]
    events: list[Any]
    ids: dict[str, str]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, signing_key: tuple[Path, Path]) -> Seeded:
    """tests/ui/seed.py run once per module into a scratch log (module-scoped: it sets the state folder,
    store and key itself, as the per-test fixtures have not run yet)."""
    from gate.cli import main
    from gate.decisions.events import EventQuery
    from gate.decisions.interface import DecisionQuery
    from gate.decisions.store import open_store
    from tests.ui.seed import seed

    work = tmp_path_factory.mktemp("seeded")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", str(work / "state"))
        mp.setenv("GATE_SIGNING_KEY", str(signing_key[0]))
        mp.setenv("GATE_DECISION_STORE", str(work / "decisions.db"))
        mp.delenv("GATE_TRUSTED_KEYS", raising=False)
        mp.delenv("GATE_CONFIG", raising=False)
        ids = seed(main, work)
        store = open_store(create=False)
        try:
            decisions = list(store.query(DecisionQuery(oldest_first=True)))
            events = list(store.events(EventQuery(oldest_first=True)))
        finally:
            store.close()
    return Seeded(decisions, events, ids)


@pytest.fixture
def ui_log(store_url: str, seeded: Seeded) -> Seeded:
    """The seeded decisions and events appended, re-chained and signed with the session key, to this
    test's log (on each store)."""
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store

    signer = load_signer()
    store = open_store(store_url)
    try:
        for decision in seeded.decisions:
            store.append(decision, signer)
        for event in seeded.events:
            store.append_event(event, signer)
    finally:
        store.close()
    return seeded


@dataclass
class Served:
    """A running ``gate serve --ui``: its base URL and server."""

    base: str
    server: Any


def serve_ui(**options: Any) -> Iterator[Served]:
    """A ``gate serve --ui`` on 127.0.0.1 (a free port) in a thread, stopped after the test."""
    from gate.ui.app import make_ui_server

    server = make_ui_server("127.0.0.1", 0, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Served(server.url, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def ui_server(ui_log: Seeded) -> Iterator[Served]:
    """``gate serve --ui`` on the seeded log (GATE_DECISION_STORE: each store in turn)."""
    yield from serve_ui()
