"""What the hash chain alone cannot see, and the log's own failure modes, on both stores (SQLite, real
PostgreSQL 15) through the CLI:

- a cut tail with the sequence counter lowered to match (SQLite ``sqlite_sequence``, PostgreSQL
  ``decision_log_head.last_seq``) is caught by a head anchored outside the log (``--expect-head``);
  an event naming a decision that is no longer in the log fails verify;
- read-only commands never create a log: a missing or 0-byte log is exit 2, and stays missing;
- one undecodable record is named (seq and decision id), not a crash of the whole command;
- a full disk is a one-line StoreError naming the log, not SQLite's "cannot rollback".
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import pytest

from gate.decisions.events import PROMOTION, new_event
from gate.decisions.record import Decision
from gate.decisions.signing import load_signer
from gate.decisions.interface import StoreError
from gate.decisions.store import open_store
from tests.conftest import Run
from tests.decisions.logcheck import append_five, make_decision, raw
from tests.decisions.test_signing_verify import one_line


@pytest.fixture
def log(store_url: str) -> list[Decision]:
    """Five signed records on the store under test: allow, deny, deny, allow, deny."""
    return append_five(store_url)


def cut_tail(url: str, keep: int) -> None:
    """Delete every record after seq ``keep`` and lower the store's counter to match: what an editor
    who knows the schema does to hide the newest decisions."""
    raw(url, "delete from decision_rules where seq > ?", (keep,))
    raw(url, "delete from decision_waivers where seq > ?", (keep,))
    raw(url, "delete from decisions where seq > ?", (keep,))
    if url.startswith("postgresql://"):
        raw(url, "update decision_log_head set last_seq = ?", (keep,))
    else:
        raw(url, "update sqlite_sequence set seq = ? where name = 'decisions'", (keep,))


# --- item 4: a tail anchored outside the log ---------------------------------------------------------


def test_json_verify_prints_the_head_to_anchor(gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    run = gate("decisions", "verify", "--format", "json")
    assert run.code == 0, run.out
    assert run.json()["head"] == log[-1].hash


def test_a_cut_tail_with_a_lowered_counter_is_caught_by_the_expected_head(
    gate: Callable[..., Run], store_url: str, log: list[Decision]
) -> None:
    intact = gate("decisions", "verify", "--expect-head", log[-1].hash)
    assert intact.code == 0 and "1 anchored head found in the chain" in intact.out
    cut_tail(store_url, keep=3)

    # the chain alone cannot tell: what is left is a perfect chain of three records
    assert gate("decisions", "verify").code == 0
    run = gate("decisions", "verify", "--expect-head", log[-1].hash)
    assert run.code == 1, run.out
    assert f"--expect-head {log[-1].hash} is not in the chain" in run.out
    assert "ends at seq 3" in run.out

    body = gate("decisions", "verify", "--expect-head", log[-1].hash, "--format", "json").json()
    assert body["ok"] is False and log[-1].hash in body["problem"]
    assert body["head"] is None  # a head that failed verification is nothing to anchor
    assert body["count"] == 3 and body["head_hash"] == log[2].hash

    # an anchor from before the cut still holds
    assert gate("decisions", "verify", "--expect-head", log[1].hash).code == 0


def test_expect_head_must_be_a_sha256(gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    run = gate("decisions", "verify", "--expect-head", "abc")
    assert run.code == 2
    assert "--expect-head" in one_line(run)


def test_an_event_naming_a_decision_that_is_gone_fails_verify(
    gate: Callable[..., Run], store_url: str, log: list[Decision]
) -> None:
    store = open_store(store_url)
    try:
        event = store.append_event(new_event(PROMOTION, "done", "prod", decision_ids=(log[4].decision_id,)), load_signer())
    finally:
        store.close()
    assert gate("decisions", "verify").code == 0
    cut_tail(store_url, keep=4)

    run = gate("decisions", "verify")
    assert run.code == 1, run.out
    assert f"event seq 1 ({event.event_id}): names decision {log[4].decision_id}, which is not in the log" in run.out
    body = gate("decisions", "verify", "--format", "json").json()
    assert body["ok"] is True and body["events"]["ok"] is False


# --- item 4: verify (and every read-only command) never creates a log -------------------------------

READ_ONLY = {
    "verify": ["decisions", "verify"],
    "list": ["decisions", "list"],
    "show": ["decisions", "show", "0193aaaa-0000-7000-8000-000000000000"],
    "stats": ["decisions", "stats"],
    "export": ["decisions", "export"],
    "events": ["decisions", "events"],
    "replay": ["decisions", "replay", "--policy", "policies"],
}


@pytest.mark.parametrize("command", list(READ_ONLY))
def test_a_missing_sqlite_log_is_exit_2_and_is_not_created(
    command: str, gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state" / "decisions.db"
    monkeypatch.setenv("GATE_DECISION_STORE", str(path))
    run = gate(*READ_ONLY[command])
    assert run.code == 2, run.out
    assert one_line(run) == f"gate: error: no decision log at {path}"
    assert not path.parent.exists()


#: the stages that judge by the log: a missing log is a wrong setting, not an empty history
JUDGING = {
    "promote": ["promote", "--decision", "0193aaaa-0000-7000-8000-000000000000", "--target",
                "127.0.0.1:5000/shop/cart:1.0", "--gitops-repo", "file:///nonexistent", "--gitops-path", "apps/cart"],
    "reconcile": ["reconcile", "--repo", "file:///nonexistent", "--path", "apps", "--env", "prod",
                  "--policy", "policies", "--once", "--plan"],
    "serve --admission": ["serve", "--admission", "--env", "prod", "--policy", "policies", "--addr", "127.0.0.1:0"],
}  # fmt: skip


@pytest.mark.parametrize("command", list(JUDGING))
def test_the_stages_that_judge_by_the_log_refuse_a_missing_one_and_create_none(
    command: str, gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state" / "decisions.db"
    monkeypatch.setenv("GATE_DECISION_STORE", str(path))
    run = gate(*JUDGING[command])
    assert run.code == 2, run.out
    assert run.err.strip().splitlines()[-1] == f"gate: error: no decision log at {path}"
    assert not path.parent.exists()


@pytest.mark.parametrize("command", ["verify", "list", "export"])
def test_a_0_byte_sqlite_log_is_exit_2_and_stays_empty(
    command: str, gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "decisions.db"
    path.touch()
    monkeypatch.setenv("GATE_DECISION_STORE", f"sqlite://{path}")
    run = gate(*READ_ONLY[command])
    assert run.code == 2
    assert one_line(run) == f"gate: error: no decision log at {path}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions.db"] and path.stat().st_size == 0


def test_a_sqlite_file_that_is_no_decision_log_is_not_turned_into_one(
    gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "other.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("create table notes (text)")
        db.commit()
    monkeypatch.setenv("GATE_DECISION_STORE", str(path))
    assert "no decision log at" in one_line(gate("decisions", "verify"))
    with closing(sqlite3.connect(path)) as db:
        assert [r[0] for r in db.execute("select name from sqlite_master")] == ["notes"]


def test_a_postgresql_database_without_a_log_is_exit_2_and_gets_no_tables(
    gate: Callable[..., Run], pg_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATE_DECISION_STORE", pg_store_url)
    for command in ("verify", "list", "events"):
        run = gate(*READ_ONLY[command])
        assert run.code == 2
        assert one_line(run).startswith("gate: error: no decision log at postgresql://127.0.0.1:")
    assert raw(pg_store_url, "select count(*) from pg_tables where schemaname = 'public'") == [(0,)]


# --- item 8: one undecodable record is named, not a crash of the whole log --------------------------

#: a record that is not JSON, one of the wrong shape, and (SQLite only) a record that is not text at all
UNDECODABLE = {
    "bad json": ("'{\"decision_id\": 42, \"outcome\": '", "cannot be decoded"),
    "wrong type": ("replace(record, '\"outcome\":\"allow\"', '\"outcome\":42')", "cannot be decoded"),
    "not text": ("42", "cannot be decoded"),
}


def spoil(url: str, how: str, seq: int = 4) -> None:
    expression = UNDECODABLE[how][0]
    if how == "not text" and url.startswith("postgresql://"):
        expression = "'[]'"  # a text column: the nearest is JSON of the wrong kind
    raw(url, f"update decisions set record = {expression} where seq = ?", (seq,))


@pytest.mark.parametrize("how", list(UNDECODABLE))
def test_verify_names_an_undecodable_record_as_tampered(
    how: str, gate: Callable[..., Run], store_url: str, log: list[Decision]
) -> None:
    spoil(store_url, how)
    run = gate("decisions", "verify")
    assert run.code == 1
    assert run.out.startswith(f"verify failed at record seq 4 (decision {log[3].decision_id}): cannot be decoded")


@pytest.mark.parametrize("how", list(UNDECODABLE))
@pytest.mark.parametrize(
    "command",
    [["list"], ["list", "--format", "json"], ["list", "--format", "csv"], ["stats"], ["export"], ["export", "--format", "opa"]],
    ids=["list", "list-json", "list-csv", "stats", "export", "export-opa"],
)
def test_query_commands_skip_an_undecodable_record_and_name_it(
    how: str, command: list[str], gate: Callable[..., Run], store_url: str, log: list[Decision]
) -> None:
    spoil(store_url, how)
    run = gate("decisions", *command)
    assert run.code == 2
    assert one_line(run) == (
        f"gate: error: decision log {_shown(store_url)}: record seq 4 (decision {log[3].decision_id}) cannot be decoded and was left out;"
        " run `gate decisions verify`"
    )
    shown = [d.decision_id for d in log if d.decision_id in run.out]
    if command[0] == "stats":
        assert json.loads(gate("decisions", "stats", "--format", "json").out)["total"] == 4
    else:
        assert shown == [d.decision_id for i, d in enumerate(log) if i != 3]


@pytest.mark.parametrize("how", ["bad json", "wrong type"])
def test_show_names_an_undecodable_record(how: str, gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    spoil(store_url, how)
    run = gate("decisions", "show", log[3].decision_id)
    assert run.code == 2
    assert one_line(run).startswith(f"gate: error: decision log {_shown(store_url)}: record seq 4 (decision {log[3].decision_id}) cannot be decoded:")
    assert gate("decisions", "show", log[2].decision_id).code == 0


def _shown(url: str) -> str:
    """The log's location as messages name it."""
    store = open_store(url)
    try:
        return store.location
    finally:
        store.close()


def test_an_undecodable_event_is_named(gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    store = open_store(store_url)
    try:
        event = store.append_event(new_event(PROMOTION, "done", "prod", decision_ids=(log[0].decision_id,)), load_signer())
    finally:
        store.close()
    raw(store_url, "update events set record = ? where seq = 1", ('{"event_id": ',))
    run = gate("decisions", "events")
    assert run.code == 2
    assert f"event seq 1 (event {event.event_id}) cannot be decoded" in one_line(run)
    run = gate("decisions", "verify")
    assert run.code == 1
    assert f"events verify failed at event seq 1 (event {event.event_id}): cannot be decoded" in run.out


# --- item 8: a full disk is a clear one-line error ---------------------------------------------------


def test_a_full_database_is_a_one_line_store_error(tmp_path: Path) -> None:
    path = tmp_path / "decisions.db"
    store = open_store(str(path))
    try:
        store.append(make_decision())
        store._db.execute("pragma max_page_count = 8")  # type: ignore[attr-defined]  # SQLite's own size cap
        with pytest.raises(StoreError) as caught:
            store.append(make_decision(padding=100_000))
        assert str(caught.value) == f"decision log {path}: cannot append: database or disk is full"
        assert [e.seq for e in store.chain()] == [1]
    finally:
        store.close()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 512 KiB tmpfs (mounting needs root, which the CI container has)."""
    mount = tmp_path / f"full-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_appending_on_a_full_filesystem_is_a_one_line_error_and_the_log_still_verifies(
    full_disk: Path, gate: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = full_disk / "decisions.db"
    monkeypatch.setenv("GATE_DECISION_STORE", str(path))
    store = open_store(str(path))
    try:
        first = store.append(make_decision(), load_signer())
        with pytest.raises(StoreError) as caught:
            for _ in range(100):  # until the filesystem is full
                store.append(make_decision(padding=20_000), load_signer())
        assert str(caught.value) == f"decision log {path}: cannot append: database or disk is full"
    finally:
        store.close()

    verified = gate("decisions", "verify", "--expect-head", first.hash)
    assert verified.code == 0, verified.out


def test_gate_evaluate_on_a_full_filesystem_exits_2_with_one_line(
    full_disk: Path, gate: Callable[..., Run], data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = full_disk / "decisions.db"
    monkeypatch.setenv("GATE_DECISION_STORE", str(path))
    open_store(str(path)).close()
    filler = full_disk / "filler"
    with open(filler, "wb", buffering=0) as f, suppress(OSError):  # fill the filesystem to the last byte
        while True:
            f.write(b"\0" * 512)
    run = gate(
        "evaluate", "--report", f"auto={data / 'trivy/trivy-image-alpine-310.json'}",
        "--report", f"auto={data / 'coverage/cobertura-java-cobertura-1.9-maven-example.xml'}",
        "--policy", Path(__file__).parents[2] / "policies",
        "--image", f"registry.example.com/shop/cart:1@sha256:{'a1' * 32}", "--env", "prod",
    )
    assert run.code == 2, run.out
    line = one_line(run)
    # SQLite cannot even make its WAL index on a full filesystem: the open fails, named, in one line
    assert line.startswith(f"gate: error: decision log {path}: cannot ")
    assert "cannot rollback" not in line
