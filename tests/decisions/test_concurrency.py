"""Many writers, one chain: real `gate evaluate` processes at once (10 on SQLite, 20 on PostgreSQL),
store-level writers released together by a barrier, and writers SIGKILLed mid-append. Nothing is lost,
nothing forks, and whatever a killed writer left is either a whole record or nothing."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gate.decisions.store import open_store
from tests.conftest import DIGEST, ROOT
from tests.decisions.logcheck import assert_index_rows, assert_one_chain, raw

#: the venv's console script, as CI runs it
GATE = shutil.which("gate", path=str(Path(sys.executable).parent)) or shutil.which("gate") or "gate"
POLICIES = ROOT / "policies"
REF = f"registry.example.com/shop/cart:1.4.2@{DIGEST}"
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")


def child_env(url: str, tmp_path: Path) -> dict[str, str]:
    """The test's environment with the log under test, and state (e.g. a local signing key) kept in tmp_path."""
    env = dict(os.environ, GATE_DECISION_STORE=url, XDG_STATE_HOME=str(tmp_path / "state"), PYTHONPATH=str(ROOT))
    for var in ("GITHUB_SHA", "GITHUB_RUN_ID", "CI_COMMIT_SHA", "GIT_COMMIT", "BUILD_URL", "CI_PIPELINE_URL"):
        env.pop(var, None)
    return env


def evaluate_at_once(url: str, processes: int, tmp_path: Path, data: Path) -> None:
    """``processes`` real `gate evaluate` runs started together, alternately allowed and denied."""
    env = child_env(url, tmp_path)
    runs = []
    for i in range(processes):
        names = CLEAN if i % 2 == 0 else ONE_CRITICAL
        reports = [arg for name in names for arg in ("--report", f"auto={data / name}")]
        argv = [str(GATE), "evaluate", *reports, "--policy", str(POLICIES), "--image", REF, "--env", "prod", "--format", "json"]
        runs.append((i, subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    outcomes = {}
    for i, proc in runs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == (0 if i % 2 == 0 else 1), f"process {i} exited {proc.returncode}: {err}"
        outcomes[json.loads(out)["decision_id"]] = "allow" if i % 2 == 0 else "deny"
    store = open_store(url)
    try:
        entries = assert_one_chain(store, expected=processes)
    finally:
        store.close()
    assert {e.decision.decision_id: e.decision.outcome.value for e in entries} == outcomes
    # one key signed them all (or none did): processes racing to create the local key must agree on one
    assert len({e.decision.signing_key for e in entries}) == 1
    assert_index_rows(url, entries)


def test_ten_gate_evaluate_processes_at_once_on_sqlite(tmp_path: Path, data: Path) -> None:
    evaluate_at_once(f"sqlite://{tmp_path / 'decisions.db'}", 10, tmp_path, data)


def test_twenty_gate_evaluate_processes_at_once_on_postgresql(pg_store_url: str, tmp_path: Path, data: Path) -> None:
    """The database is new: all twenty also race to create the schema (the migration lock)."""
    evaluate_at_once(pg_store_url, 20, tmp_path, data)


#: A writer: waits for the barrier file, then appends ``count`` decisions (forever when 0), printing how many
#: after each append returned; with ``hold`` it stalls inside its first append transaction.
WRITER = """
import sys, time
from pathlib import Path
from gate.decisions.store import open_store
from tests.decisions.logcheck import make_decision, violation, waiver
url, barrier, count, padding = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
hold = sys.argv[5:] == ["hold"]

class HoldingSigner:  # signs inside the append transaction: stalls there, holding the write lock, until killed
    key_id = "0123456789abcdef"
    def sign(self, record_hash):
        print("holding", flush=True)
        time.sleep(600)

store = open_store(url)
while not barrier.exists():
    time.sleep(0.005)
n = 0
while count == 0 or n < count:
    n += 1
    d = make_decision(
        outcome="deny", padding=padding,
        violations=(violation("vulnerabilities.severity", "f1"), violation("secrets.any")),
        waivers=(waiver("W-%d" % n, "CVE-2024-%d" % n),),
        findings=({"id": "f1", "rule": "CVE-2024-%d" % n},),
    )
    store.append(d, HoldingSigner() if hold else None)
    print(n, flush=True)
store.close()
"""


Writers = Callable[..., tuple[Path, list["subprocess.Popen[str]"]]]


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[Writers]:
    """``writers(url, n, count, padding=0, *extra)`` starts n WRITER processes waiting at a new barrier file;
    returns (barrier, processes). Any still running at teardown is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(url: str, n: int, count: int, padding: int = 0, *extra: str) -> tuple[Path, list[subprocess.Popen[str]]]:
        barrier = tmp_path / f"go-{len(started)}"
        procs = []
        for i in range(n):
            with open(tmp_path / f"{barrier.name}-{i}.err", "w") as stderr:  # a file: stdout is read line by line
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", WRITER, url, str(barrier), str(count), str(padding), *extra],
                        env=child_env(url, tmp_path), stdout=subprocess.PIPE, stderr=stderr, text=True,
                    )
                )
        started.extend(procs)
        return barrier, procs

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def errors(tmp_path: Path) -> str:
    """What the writers wrote on stderr."""
    return "\n".join(p.read_text() for p in sorted(tmp_path.glob("go-*.err")))


def test_writers_released_together_keep_one_chain(store_url: str, tmp_path: Path, writers: Writers) -> None:
    """8 processes x 40 appends, all released at the same instant."""
    processes, appends = 8, 40
    open_store(store_url).close()  # the schema exists before the race: this test is about appends
    barrier, procs = writers(store_url, processes, appends)
    time.sleep(0.5)  # let every writer connect and wait at the barrier
    barrier.touch()
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0, errors(tmp_path)
    store = open_store(store_url)
    try:
        entries = assert_one_chain(store, expected=processes * appends)
    finally:
        store.close()
    assert_index_rows(store_url, entries)


def test_a_writer_killed_mid_append_leaves_a_verifiable_log(store_url: str, tmp_path: Path, writers: Writers) -> None:
    """SIGKILL appending writers at random moments, several times: each record landed whole or not at all,
    the chain holds, last_seq counts exactly the records, and the next writer is not blocked."""
    open_store(store_url).close()
    rng = random.Random(4)
    acknowledged = 0
    for _ in range(4):
        barrier, procs = writers(store_url, 2, 0, 200_000)  # ~200 KB records: slower writes
        barrier.touch()
        for proc in procs:  # wait until each has appended a few, then kill it at a random moment
            assert proc.stdout is not None
            for _ in range(3):
                assert proc.stdout.readline(), errors(tmp_path)
        time.sleep(rng.uniform(0, 0.05))
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        for proc in procs:
            assert proc.stdout is not None
            reported = proc.stdout.read().split()  # the rest, up to the kill: each line follows a committed append
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL
            acknowledged += 3 + len(reported)
        store = open_store(store_url)
        try:
            entries = assert_one_chain(store)
            # every append a writer reported is there; at most one unreported one per writer landed too
            assert acknowledged <= len(entries) <= acknowledged + 2
            acknowledged = len(entries)
        finally:
            store.close()
        assert_index_rows(store_url, entries)
    # a writer killed for sure inside its append transaction, holding the write lock (it stalls in sign())
    barrier, (holder,) = writers(store_url, 1, 1, 0, "hold")
    barrier.touch()
    assert holder.stdout is not None
    assert holder.stdout.readline() == "holding\n", errors(tmp_path)
    holder.kill()
    holder.wait(timeout=30)
    if store_url.startswith("sqlite://"):
        assert raw(store_url, "pragma integrity_check") == [("ok",)]
    # the lock died with the writers: a new append goes straight through and extends the chain
    started = time.monotonic()
    barrier, (proc,) = writers(store_url, 1, 1)
    barrier.touch()
    proc.communicate(timeout=30)
    assert proc.returncode == 0, errors(tmp_path)
    assert time.monotonic() - started < 10
    store = open_store(store_url)
    try:
        assert_one_chain(store, expected=acknowledged + 1)
    finally:
        store.close()
