"""Both decision-log stores (SQLite file, real PostgreSQL 15) behind one interface: same appends, same
chain, same answers to every query; versioned migrations; clear errors; `gate evaluate` recording
into either, and failing closed (exit 2) when the log cannot be reached."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from gate.decisions.documents import stored_form
from gate.decisions.record import Decision, record_hash
from gate.decisions.interface import DecisionQuery, StoreError
from gate.decisions.sql import record_json
from gate.decisions.store import open_store
from tests.conftest import DIGEST, ROOT, Run
from tests.decisions.logcheck import (
    DIGEST_A,
    DIGEST_B,
    DIGEST_C,
    IMAGE_A,
    IMAGE_B,
    POLICY_1,
    POLICY_2,
    assert_index_rows,
    assert_one_chain,
    make_decision,
    raw,
    violation,
    waiver,
)
from tests.pg import free_port

POLICIES = ROOT / "policies"
REF = f"registry.example.com/shop/cart:1.4.2@{DIGEST}"
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")


def corpus() -> list[Decision]:
    """Five decisions, in append order, that every filter can tell apart."""
    return [
        make_decision(  # 1: an allow in prod that relied on waiver W-1
            timestamp="2026-01-01T10:00:00.000000Z", waivers=(waiver("W-1", "CVE-2023-0001"),)
        ),
        make_decision(  # 2: a deny in prod: a policy rule naming one of two findings
            outcome="deny",
            digest=DIGEST_B,
            timestamp="2026-01-02T10:00:00.000000Z",
            violations=(violation("vulnerabilities.severity", "f1"),),
            findings=({"id": "f1", "rule": "CVE-2024-1111"}, {"id": "f2", "rule": "CVE-2024-2222"}),
        ),
        make_decision(  # 3: a deny in staging under another policy
            outcome="deny",
            environment="staging",
            image=IMAGE_B,
            digest=DIGEST_C,
            timestamp="2026-01-03T10:00:00.000000Z",
            policy_digest=POLICY_2,
            violations=(violation("coverage.line_rate"),),
        ),
        make_decision(  # 4: an allow in staging with two waivers
            environment="staging",
            image=IMAGE_B,
            digest=DIGEST_C,
            timestamp="2026-01-04T10:00:00.000000Z",
            policy_digest=POLICY_2,
            waivers=(waiver("W-1", "CVE-2023-0001"), waiver("W-2", "CVE-2023-0002", "2026-02-01T00:00:00.000000Z")),
        ),
        make_decision(outcome="error", timestamp="2026-01-05T10:00:00.000000Z"),  # 5: no decision possible
    ]


#: (query, the corpus positions (1-based) it must return, in order)
QUERIES: list[tuple[DecisionQuery, list[int]]] = [
    (DecisionQuery(), [5, 4, 3, 2, 1]),
    (DecisionQuery(digest=DIGEST_A), [5, 1]),
    (DecisionQuery(digest="sha256:" + "ff" * 32), []),
    (DecisionQuery(image=IMAGE_A), [5, 2, 1]),
    (DecisionQuery(image=IMAGE_B), [4, 3]),
    (DecisionQuery(environment="staging"), [4, 3]),
    (DecisionQuery(outcome="deny"), [3, 2]),
    (DecisionQuery(outcome="error"), [5]),
    (DecisionQuery(rule="vulnerabilities.severity"), [2]),
    (DecisionQuery(rule="coverage.line_rate"), [3]),
    (DecisionQuery(rule="CVE-2024-1111"), [2]),  # a CVE the violation names through its finding ids
    (DecisionQuery(rule="CVE-2024-2222"), []),  # found, but named by no violation
    (DecisionQuery(waiver="W-1"), [4, 1]),
    (DecisionQuery(waiver="W-2"), [4]),
    (DecisionQuery(since="2026-01-03"), [5, 4, 3]),
    (DecisionQuery(since="2026-01-02T10:00:00.000000Z"), [5, 4, 3, 2]),  # inclusive
    (DecisionQuery(until="2026-01-02T10:00:00.000000Z"), [1]),  # exclusive
    (DecisionQuery(since="2026-01-02T00:00:00Z", until="2026-01-04T00:00:00Z"), [3, 2]),
    (DecisionQuery(policy_digest=POLICY_2), [4, 3]),
    (DecisionQuery(policy_digest=POLICY_1, outcome="deny"), [2]),
    (DecisionQuery(limit=2), [5, 4]),
    (DecisionQuery(limit=0), []),
    (DecisionQuery(digest=DIGEST_A, environment="prod", limit=1), [5]),
    # "every allow in prod that relied on a waiver"
    (DecisionQuery(environment="prod", outcome="allow", waiver="W-1"), [1]),
]


def fill(url: str) -> list[Decision]:
    store = open_store(url)
    try:
        return [store.append(d) for d in corpus()]
    finally:
        store.close()


def test_append_sets_chain_fields_and_get_returns_the_record(store_url: str) -> None:
    store = open_store(store_url)
    try:
        first, second = store.append(make_decision()), store.append(make_decision(outcome="deny"))
        assert first.prev_hash is None and first.hash == record_hash(first)
        assert second.prev_hash == first.hash and second.hash == record_hash(second)
        assert first.signature is None and first.signing_key is None
        assert store.get(second.decision_id) == second
        assert store.get(first.decision_id) == first
        assert store.get("no-such-id") is None
    finally:
        store.close()
    # the record column holds exactly the JSON gate wrote of the stored form (text on PostgreSQL, not jsonb)
    (stored,) = raw(store_url, "select record from decisions where decision_id = ?", (second.decision_id,))
    text = stored[0].decode() if isinstance(stored[0], bytes) else stored[0]
    assert text == record_json(stored_form(second)).decode()


class StandInSigner:
    """Stands in for gate.decisions.signing (its own tests check Ed25519): is it called, and with what."""

    key_id = "0123456789abcdef"

    def __init__(self) -> None:
        self.signed: list[str] = []

    def sign(self, record_hash: str) -> str:
        self.signed.append(record_hash)
        return f"sig({record_hash})"


def test_append_signs_the_hash_which_covers_the_key_id(store_url: str) -> None:
    signer = StandInSigner()
    store = open_store(store_url)
    try:
        first = store.append(make_decision(), signer)
        second = store.append(make_decision(), signer)
        assert signer.signed == [first.hash, second.hash]
        assert (second.signing_key, second.signature) == (signer.key_id, f"sig({second.hash})")
        assert second.prev_hash == first.hash and second.hash == record_hash(second)
        assert [e.decision for e in assert_one_chain(store, expected=2)] == [stored_form(first), stored_form(second)]
    finally:
        store.close()


def test_every_filter_gives_the_expected_records(store_url: str) -> None:
    stored = fill(store_url)
    store = open_store(store_url)
    try:
        for query, positions in QUERIES:
            got = [d.decision_id for d in store.query(query)]
            assert got == [stored[p - 1].decision_id for p in positions], query
        assert list(store.query(DecisionQuery(environment="prod"))) == [stored[4], stored[1], stored[0]]
    finally:
        store.close()


def test_sqlite_and_postgres_answer_identically(tmp_path: Path, pg_store_url: str) -> None:
    """The same decisions appended to both stores: same chain, same records for every query."""
    stores = [open_store(f"sqlite://{tmp_path / 'decisions.db'}"), open_store(pg_store_url)]
    try:
        for decision in corpus():
            appended = [store.append(decision) for store in stores]
            assert appended[0] == appended[1]  # same prev_hash and hash: the chains are identical
        for query, _ in QUERIES:
            sqlite_answer, pg_answer = (list(store.query(query)) for store in stores)
            assert sqlite_answer == pg_answer, query
        assert list(stores[0].chain()) == list(stores[1].chain())
        assert stores[0].last_seq() == stores[1].last_seq() == 5
    finally:
        for store in stores:
            store.close()


def test_chain_is_in_append_order_with_prev_hash_links(store_url: str) -> None:
    stored = fill(store_url)
    store = open_store(store_url)
    try:
        entries = assert_one_chain(store, expected=5)
        assert [e.decision for e in entries] == [stored_form(d) for d in stored]
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    finally:
        store.close()
    assert_index_rows(store_url, entries)


def test_last_seq_still_counts_a_deleted_tail(store_url: str) -> None:
    fill(store_url)
    raw(store_url, "delete from decisions where seq = 5")
    store = open_store(store_url)
    try:
        assert [e.seq for e in store.chain()] == [1, 2, 3, 4]
        assert store.last_seq() == 5
    finally:
        store.close()


def schema_version(url: str) -> int:
    if url.startswith("postgresql://"):
        return int(raw(url, "select max(version) from gate_schema")[0][0])
    return int(raw(url, "pragma user_version")[0][0])


def test_reopening_a_log_keeps_it_and_records_the_schema_version(store_url: str) -> None:
    from gate.decisions import postgres, sqlite

    stored = fill(store_url)
    for _ in range(2):
        store = open_store(store_url)
        try:
            assert [e.decision for e in store.chain()] == [stored_form(d) for d in stored]
        finally:
            store.close()
    module = postgres if store_url.startswith("postgresql://") else sqlite
    assert schema_version(store_url) == module.SCHEMA_VERSION == len(module.MIGRATIONS)
    if store_url.startswith("postgresql://"):  # one row per migration applied, each once
        assert [r[0] for r in raw(store_url, "select version from gate_schema order by version")] == list(
            range(1, postgres.SCHEMA_VERSION + 1)
        )


def test_a_log_written_by_a_newer_gate_is_refused(store_url: str) -> None:
    fill(store_url)
    if store_url.startswith("postgresql://"):
        raw(store_url, "insert into gate_schema (version) values (99)")
    else:
        raw(store_url, "pragma user_version = 99")
    with pytest.raises(StoreError) as caught:
        open_store(store_url)
    message = caught.value.diagnostics()
    assert "schema version 99" in message and "upgrade gate" in message
    assert "\n" not in message


def test_unreachable_postgresql_is_a_one_line_store_error_without_the_password() -> None:
    port = free_port()  # nobody listens there
    with pytest.raises(StoreError) as caught:
        open_store(f"postgresql://auditor:s3cr%40t-pw@127.0.0.1:{port}/gatelog?sslmode=disable")
    message = caught.value.diagnostics()
    assert message.startswith(f"decision log postgresql://127.0.0.1:{port}/gatelog: cannot connect: ")
    assert "s3cr" not in message and "auditor" not in message
    assert "\n" not in message


def test_location_never_carries_credentials(pg_store_url: str) -> None:
    port = pg_store_url.split(":")[-1].split("/")[0]
    url = pg_store_url.replace("postgres@", "postgres:not-needed-pw@")  # trust auth ignores the password
    store = open_store(url)
    try:
        assert store.location == f"postgresql://127.0.0.1:{port}/{pg_store_url.rsplit('/', 1)[1]}"
    finally:
        store.close()


def evaluate(gate: Callable[..., Run], data: Path, names: tuple[str, ...], *extra: str) -> Run:
    reports = [arg for name in names for arg in ("--report", f"auto={data / name}")]
    return gate("evaluate", *reports, "--policy", POLICIES, "--image", REF, "--env", "prod", *extra)


def test_gate_evaluate_records_into_either_store(gate: Callable[..., Run], data: Path, store_url: str) -> None:
    """store_url also sets GATE_DECISION_STORE, so the CLI writes there."""
    allowed = evaluate(gate, data, CLEAN, "--format", "json")
    denied = evaluate(gate, data, ONE_CRITICAL, "--format", "json")
    assert (allowed.code, denied.code) == (0, 1), allowed.err + denied.err
    store = open_store(store_url)
    try:
        entries = assert_one_chain(store, expected=2)
        assert [e.decision.decision_id for e in entries] == [allowed.json()["decision_id"], denied.json()["decision_id"]]
        assert [d.outcome.value for d in store.query(DecisionQuery(digest=DIGEST))] == ["deny", "allow"]
        assert [d.decision_id for d in store.query(DecisionQuery(rule="CVE-2022-22965"))] == [denied.json()["decision_id"]]
    finally:
        store.close()
    assert_index_rows(store_url, entries)


def test_gate_evaluate_exits_2_when_postgresql_is_unreachable(
    gate: Callable[..., Run], data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("GATE_DECISION_STORE", f"postgresql://ci:hunter2-secret@127.0.0.1:{port}/gate")
    run = evaluate(gate, data, CLEAN)
    assert run.code == 2
    assert f"decision log postgresql://127.0.0.1:{port}/gate: cannot connect" in run.err
    assert "hunter2" not in run.err + run.out
    assert "Traceback" not in run.err
    assert run.out == ""  # nothing that could be read as an allow


def test_psycopg_is_imported_only_for_postgresql_logs(tmp_path: Path, data: Path) -> None:
    probe = (
        "import sys\n"
        "from gate.cli import main\n"
        "main(['--version'])\n"
        f"assert main(['scan', '--report', 'auto={data / CLEAN[0]}']) == 0\n"
        "from gate.decisions.store import open_store\n"
        f"open_store({str(tmp_path / 'd.db')!r}).close()\n"
        "assert 'psycopg' not in sys.modules, 'psycopg imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
