"""Shipping the decision log to a SIEM — `gate decisions export --follow / --url / --state` — end to end
through the `gate` console script, on both stores, against a real HTTP receiver standing in for the SIEM
(OPA's decision-log service API: POST, a gzip-compressed JSON array of events)."""

from __future__ import annotations

import gzip
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gate.decisions.export import LogMask
from gate.decisions.record import Decision
from gate.decisions.signing import load_signer
from gate.decisions.store import open_store
from gate.errors import UsageError
from tests.conftest import ROOT
from tests.decisions.logcheck import make_decision, violation, waiver

#: the venv's console script, as CI runs it
GATE = shutil.which("gate", path=str(Path(sys.executable).parent)) or shutil.which("gate") or "gate"
POLICIES = ROOT / "policies"
TOKEN = "Bearer siem-token-s3cr3t"
#: a guard against a hung child, never a timing assertion
PATIENCE = 120


class SiemStandIn:
    """The SIEM stand-in: a real HTTP server on 127.0.0.1 that accepts OPA decision-log uploads
    (POST /logs, gzip JSON array), answering the first ``fail_first`` POSTs with ``status``."""

    def __init__(self, fail_first: int = 0, status: int = 503) -> None:
        self.fail_first, self.status = fail_first, status
        self.posts: list[dict[str, Any]] = []  # every POST: headers, answer
        self.batches: list[list[dict[str, Any]]] = []  # the accepted ones, decoded
        self.failed_once = threading.Event()
        self.delivered = threading.Event()
        siem = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                post: dict[str, Any] = {"path": self.path, "headers": dict(self.headers)}
                siem.posts.append(post)
                if len(siem.posts) <= siem.fail_first:
                    post["answer"] = siem.status
                    self.send_response(siem.status)
                    self.end_headers()
                    siem.failed_once.set()
                    return
                assert self.headers["Content-Encoding"] == "gzip"
                siem.batches.append(json.loads(gzip.decompress(body)))
                post["answer"] = 204
                self.send_response(204)
                self.end_headers()
                siem.delivered.set()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the stand-in's requests are asserted on, not logged."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/logs"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        return [event for batch in self.batches for event in batch]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def siem() -> Iterator[Callable[..., SiemStandIn]]:
    started: list[SiemStandIn] = []

    def start(fail_first: int = 0, status: int = 503) -> SiemStandIn:
        started.append(SiemStandIn(fail_first, status))
        return started[-1]

    yield start
    for s in started:
        s.close()


def child_env(url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, GATE_DECISION_STORE=url, PYTHONPATH=str(ROOT))
    env.pop("GATE_EXPORT_AUTHORIZATION", None)
    env.update(extra)
    return env


def export(url: str, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`gate decisions export FLAGS` on the log at ``url``, run to its end."""
    return subprocess.run(
        [GATE, "decisions", "export", *flags], env=child_env(url, **env), cwd=ROOT,
        capture_output=True, text=True, timeout=PATIENCE,
    )


def append(url: str, count: int, **fields: Any) -> list[Decision]:
    """``count`` signed records appended to the log at ``url``."""
    store = open_store(url)
    signer = load_signer()
    try:
        return [store.append(make_decision(**fields), signer) for _ in range(count)]
    finally:
        store.close()


def ids(records: list[Decision]) -> list[str]:
    return [r.decision_id for r in records]


def state_seq(path: Path) -> int:
    seq: int = json.loads(path.read_text())["seq"]
    return seq


# --- HTTP shipping, retries, resuming ------------------------------------------------------------


def test_batches_reach_the_siem_through_503s_and_a_restart_ships_no_duplicates(
    store_url: str, siem: Callable[..., SiemStandIn], tmp_path: Path
) -> None:
    first = append(store_url, 5)
    receiver = siem(fail_first=2)
    state = tmp_path / "shipped.json"
    flags = ("--url", receiver.url, "--state", str(state), "--batch-size", "2")
    run = export(store_url, *flags, GATE_EXPORT_AUTHORIZATION=TOKEN)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("HTTP 503; retrying the batch of 2 events (seq 1-2)") == 2
    assert "s3cr3t" not in run.stderr + run.stdout and run.stdout == ""
    # every record once, in append order, in batches of two seq numbers
    assert [e["decision_id"] for e in receiver.events()] == ids(first)
    assert [len(b) for b in receiver.batches] == [2, 2, 1]
    assert [p["answer"] for p in receiver.posts] == [503, 503, 204, 204, 204]
    for post in receiver.posts:
        assert post["path"] == "/logs"
        assert post["headers"]["Content-Encoding"] == "gzip"
        assert post["headers"]["Content-Type"] == "application/json"
        assert post["headers"]["Authorization"] == TOKEN
    assert state_seq(state) == 5
    event = receiver.events()[0]
    assert {"decision_id", "path", "input", "result", "bundles", "timestamp", "labels"} <= set(event)
    assert event["input"] == first[0].input and "erased" not in event

    # a restart (same state file) ships only what was appended since
    later = append(store_url, 2)
    again = export(store_url, *flags)
    assert again.returncode == 0, again.stderr
    assert [e["decision_id"] for e in receiver.events()] == ids(first + later)
    assert state_seq(state) == 7
    nothing_new = export(store_url, *flags)
    assert nothing_new.returncode == 0 and len(receiver.events()) == 7
    assert "shipped 0 events through seq 7" in nothing_new.stderr


def test_giving_up_exits_2_naming_the_batch_and_keeps_the_state_for_a_resend(
    store_url: str, siem: Callable[..., SiemStandIn], tmp_path: Path
) -> None:
    records = append(store_url, 3)
    state = tmp_path / "shipped.json"
    down = siem(fail_first=1000, status=500)
    run = export(store_url, "--url", down.url, "--state", str(state), "--batch-size", "2", "--retry-for", "1")
    assert run.returncode == 2
    last = run.stderr.strip().splitlines()[-1]
    assert "batch of 2 events (seq 1-2) not delivered" in last and "HTTP 500" in last
    assert f"--state {state} holds seq 0: a restart resends from there" in last
    assert not state.exists() and down.batches == []

    refusing = siem(fail_first=1000, status=400)  # not worth retrying: given up at once
    run = export(store_url, "--url", refusing.url, "--since-seq", "1")
    assert run.returncode == 2 and len(refusing.posts) == 1
    assert "refused the batch of 2 events (seq 2-3) with HTTP 400; not resent" in run.stderr
    assert "rerun with --since-seq 1 to resend from there" in run.stderr

    up = siem()
    run = export(store_url, "--url", up.url, "--state", str(state))
    assert run.returncode == 0, run.stderr
    assert [e["decision_id"] for e in up.events()] == ids(records) and state_seq(state) == 3


def test_connection_refused_is_retried_then_given_up(store_url: str, tmp_path: Path) -> None:
    append(store_url, 1)
    gone = SiemStandIn()
    url = gone.url
    gone.close()  # nothing listens there any more
    run = export(store_url, "--url", url, "--retry-for", "1")
    assert run.returncode == 2
    assert "ConnectError" in run.stderr and "retrying the batch of 1 event (seq 1-1)" in run.stderr
    assert "rerun with --since-seq 0" in run.stderr


# --- masking -------------------------------------------------------------------------------------


def masking_bundle(tmp_path: Path, mask: Any) -> Path:
    """A copy of the shipped policies whose data.gate.config.log.mask is ``mask``."""
    bundle = tmp_path / "policies"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(POLICIES, bundle)
    config = bundle / "gate" / "config" / "data.json"
    data = json.loads(config.read_text())
    data["log"] = {"mask": mask}
    config.write_text(json.dumps(data))
    return bundle


def test_masked_fields_are_absent_and_listed_in_erased(store_url: str, tmp_path: Path) -> None:
    records = append(
        store_url, 2, outcome="deny", violations=(violation("vulnerabilities.severity", "CVE-1"),),
        waivers=(waiver("W-1", "CVE-2"),),
    )
    bundle = masking_bundle(tmp_path, ["/input/artifact/digest", "/input/not/there"])
    extra = tmp_path / "mask.json"
    extra.write_text(json.dumps({"log": {"mask": ["/result/waivers", "/input/metrics", "/input/artifact/digest"]}}))
    unmasked = export(store_url, "--format", "opa")  # a one-off export without --policy: the full events
    assert unmasked.returncode == 0 and "erased" not in unmasked.stdout and '"metrics"' in unmasked.stdout
    for flags in (("--since-seq", "0"), ("--format", "opa")):  # shipping to stdout, and a one-off export
        run = export(store_url, *flags, "--policy", str(bundle), "--data", str(extra))
        assert run.returncode == 0, run.stderr
        events = [json.loads(line) for line in run.stdout.splitlines()]
        assert [e["decision_id"] for e in events] == ids(records)
        for event, record in zip(events, records):
            # the bundle's pointers first, then the --data ones; one naming nothing is not listed
            assert event["erased"] == ["/input/artifact/digest", "/result/waivers", "/input/metrics"]
            assert event["input"]["artifact"] == {"image": record.input["artifact"]["image"]}
            assert "metrics" not in event["input"] and "waivers" not in event["result"]
            assert event["input"]["findings"] == record.input["findings"]
            assert event["result"]["violations"][0]["rule"] == "vulnerabilities.severity"
            assert event["requested_by"] == "tests"  # the actor was not masked


def test_masking_the_actor_also_drops_requested_by(tmp_path: Path, data: Path) -> None:
    """A real `gate evaluate` records the CI actor in input.context and the event's requested_by."""
    url = f"sqlite://{tmp_path / 'decisions.db'}"
    env = child_env(url, GATE_CONTEXT_ACTOR="alice@example.com")
    reports = ["--report", f"auto={data / 'trivy/trivy-image-alpine-310.json'}",
               "--report", f"auto={data / 'coverage/cobertura-java-cobertura-1.9-maven-example.xml'}"]
    made = subprocess.run(
        [GATE, "evaluate", *reports, "--policy", str(POLICIES), "--env", "prod",
         "--image", "registry.example.com/shop/cart:1@sha256:" + "ab" * 32],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=PATIENCE,
    )
    assert made.returncode == 0, made.stderr
    plain = json.loads(export(url, "--format", "opa").stdout)
    assert plain["requested_by"] == plain["input"]["context"]["actor"] == "alice@example.com"
    run = export(url, "--format", "opa", "--policy", str(masking_bundle(tmp_path, ["/input/context/actor"])))
    assert run.returncode == 0, run.stderr
    event = json.loads(run.stdout)
    assert "alice" not in run.stdout and "requested_by" not in event
    assert event["erased"] == ["/input/context/actor"] and "actor" not in event["input"]["context"]
    assert event["input"]["artifact"] == plain["input"]["artifact"]
    upsert = {"op": "upsert", "path": "/input/context/actor", "value": "redacted"}
    run = export(url, "--since-seq", "0", "--policy", str(masking_bundle(tmp_path / "upsert", [upsert])))
    assert run.returncode == 0, run.stderr
    event = json.loads(run.stdout)
    assert "alice" not in run.stdout and "requested_by" not in event and "erased" not in event
    assert event["masked"] == ["/input/context/actor"] and event["input"]["context"]["actor"] == "redacted"


@pytest.mark.parametrize(
    ("mask", "problem"),
    [
        (["input/context/actor"], "data.gate.config.log.mask[0]: 'input/context/actor' is not a JSON pointer"),
        (["/input/ok", "/labels/id"], "data.gate.config.log.mask[1]: '/labels/id': a mask may only erase fields under /input or /result"),
        (["/input/a~2b"], "data.gate.config.log.mask[0]: '/input/a~2b': ~ must be written ~0"),
        ([7], "data.gate.config.log.mask[0]: a mask entry is a JSON pointer string or an {op, path, value} object, not int"),
        ("/input/context/actor", "data.gate.config.log.mask: give a list of JSON pointers"),
    ],
    ids=["no-slash", "labels", "bad-escape", "not-a-string", "not-a-list"],
)
def test_a_bad_mask_is_exit_2_before_anything_is_shipped(tmp_path: Path, mask: Any, problem: str) -> None:
    url = f"sqlite://{tmp_path / 'decisions.db'}"
    append(url, 1)
    state = tmp_path / "shipped.json"
    run = export(url, "--state", str(state), "--policy", str(masking_bundle(tmp_path, mask)))
    assert run.returncode == 2 and run.stdout == "" and not state.exists()
    assert problem in run.stderr and len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_masking_copies_the_event_walks_lists_and_upserts_as_opa_does() -> None:
    event = {"input": {"a/b": {"~k": 1, "keep": 2}, "list": [{"x": 1, "y": 2}]}, "result": {"r": 1}, "requested_by": "me"}
    original = json.loads(json.dumps(event))
    mask = LogMask.from_data({"log": {"mask": [
        "/input/a~1b/~0k",  # escaped key names
        "/input/list/0/x",  # a list position on the way
        "/input/list/0",  # the last token must name an object key: undefined, ignored
        "/input/a~1b/keep/deeper",  # through a number: undefined
        {"op": "upsert", "path": "/input/context/actor", "value": "redacted"},  # made where missing
        {"op": "remove", "path": "/result/r"},
        "/input/a~1b/~0k",  # listed twice: applied once
    ]}})
    masked = mask.apply(event)
    assert masked == {
        "input": {"a/b": {"keep": 2}, "list": [{"y": 2}], "context": {"actor": "redacted"}},
        "result": {},
        "erased": ["/input/a~1b/~0k", "/input/list/0/x", "/result/r"],
        "masked": ["/input/context/actor"],
    }  # requested_by repeats the actor: masking the actor drops it
    assert event == original  # the record the event came from is untouched


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("/", "a mask may only erase fields under /input or /result"),
        ("/input/a~~01", "~ must be written ~0"),
        ({"op": "replace", "path": "/input/x"}, "op 'replace': give \"remove\" or \"upsert\""),
        ({"op": "upsert", "path": "/input/x"}, "an upsert needs a value"),
        ({"op": "remove", "path": "/labels"}, "a mask may only erase fields under /input or /result"),
        ({"op": "remove", "path": "/input/x", "when": True}, "unknown key 'when'"),
        (None, "a mask entry is a JSON pointer string or an {op, path, value} object, not NoneType"),
    ],
)
def test_a_bad_mask_entry_names_itself(entry: Any, problem: str) -> None:
    with pytest.raises(UsageError) as raised:
        LogMask.from_data({"gate": {"config": {"log": {"mask": ["/input/fine", entry]}}}})
    assert str(raised.value).startswith("data.gate.config.log.mask[1]: ") and problem in str(raised.value)


# --- following -----------------------------------------------------------------------------------


class Follower:
    """`gate decisions export --follow ...` running in the background, its output read by threads."""

    def __init__(self, url: str, *flags: str) -> None:
        self.proc = subprocess.Popen(
            [GATE, "decisions", "export", "--follow", "--interval", "0.1", *flags],
            env=child_env(url), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.readers = [
            threading.Thread(target=lambda s=stream, q=into: [q.put(line) for line in s], daemon=True)
            for stream, into in ((self.proc.stdout, self.lines), (self.proc.stderr, self.err))
        ]
        for reader in self.readers:
            reader.start()

    def wait_for_stderr(self, text: str) -> str:
        while True:
            line = self.err.get(timeout=PATIENCE)
            self.stderr.append(line)
            if text in line:
                return line

    def events(self, count: int) -> list[dict[str, Any]]:
        return [json.loads(self.lines.get(timeout=PATIENCE)) for _ in range(count)]

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=PATIENCE)
        for reader in self.readers:  # everything it wrote is queued
            reader.join(timeout=PATIENCE)
        while not self.err.empty():
            self.stderr.append(self.err.get())
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def follow() -> Iterator[Callable[..., Follower]]:
    started: list[Follower] = []

    def start(url: str, *flags: str) -> Follower:
        started.append(Follower(url, *flags))
        return started[-1]

    yield start
    for f in started:
        f.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_follow_ships_records_appended_after_it_started_and_stops_cleanly(
    store_url: str, follow: Callable[..., Follower], tmp_path: Path, signum: int
) -> None:
    before = append(store_url, 2)
    state = tmp_path / "shipped.json"
    follower = follow(store_url, "--state", str(state), "--batch-size", "2")
    follower.wait_for_stderr("after seq 2")  # from the newest: what was there before is not shipped
    appended = append(store_url, 3)
    assert [e["decision_id"] for e in follower.events(3)] == ids(appended)
    assert follower.stop(signum) == 0, follower.stderr
    assert state_seq(state) == 5
    assert any("shipped 3 events through seq 5" in line for line in follower.stderr)
    assert follower.lines.empty() and ids(before)[0] not in json.dumps(follower.stderr)

    # resumed from the state file: only what was appended while it was down
    later = append(store_url, 1)
    resumed = follow(store_url, "--state", str(state))
    resumed.wait_for_stderr("after seq 5")
    assert [e["decision_id"] for e in resumed.events(1)] == ids(later)
    assert resumed.stop() == 0 and state_seq(state) == 6 and resumed.lines.empty()


def test_sigterm_delivers_the_batch_in_hand_before_exiting(
    store_url: str, siem: Callable[..., SiemStandIn], follow: Callable[..., Follower], tmp_path: Path
) -> None:
    records = append(store_url, 2)
    receiver = siem(fail_first=2)
    state = tmp_path / "shipped.json"
    follower = follow(store_url, "--url", receiver.url, "--state", str(state), "--since-seq", "0")
    assert receiver.failed_once.wait(PATIENCE)
    code = follower.stop(signal.SIGTERM)  # while the batch is being retried
    assert code == 0, follower.stderr
    assert [e["decision_id"] for e in receiver.events()] == ids(records)
    assert [p["answer"] for p in receiver.posts] == [503, 503, 204] and state_seq(state) == 2


def test_follow_rides_out_a_broken_postgresql_connection(
    pg_store_url: str, follow: Callable[..., Follower], tmp_path: Path
) -> None:
    import psycopg

    append(pg_store_url, 1)
    follower = follow(pg_store_url, "--state", str(tmp_path / "shipped.json"))
    follower.wait_for_stderr("after seq 1")
    with psycopg.connect(pg_store_url, autocommit=True) as admin:  # the server drops the follower's session
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
        )
    follower.wait_for_stderr("unavailable")
    appended = append(pg_store_url, 2)
    follower.wait_for_stderr("readable again")
    assert [e["decision_id"] for e in follower.events(2)] == ids(appended)
    assert follower.stop() == 0


# --- what is refused -----------------------------------------------------------------------------


def test_refused_combinations_are_exit_2(store_url: str, tmp_path: Path) -> None:
    append(store_url, 2)
    state = tmp_path / "shipped.json"
    state.write_text('{"seq": 1}\n')
    for flags, problem in (
        (("--follow", "--format", "jsonl"), "drop --format jsonl"),
        (("--url", "http://127.0.0.1:1/logs", "--output", str(tmp_path / "x")), "--output is for one-off exports"),
        (("--url", "ftp://example.com/logs"), "--url: give an http:// or https:// URL"),
        (("--state", str(state), "--since-seq", "0"), f"--state {state} already holds seq 1"),
        (("--since-seq", "9"), "ends at seq 2, before seq 9"),
        (("--batch-size", "0", "--since-seq", "0"), "--batch-size 0: give 1 or more"),
    ):
        run = export(store_url, *flags)
        assert run.returncode == 2 and problem in run.stderr and run.stdout == "", (flags, run.stderr)
    state.write_text("[]")
    run = export(store_url, "--state", str(state))
    assert run.returncode == 2 and "not a gate export state file" in run.stderr
    missing = export(f"sqlite://{tmp_path / 'none.db'}", "--follow")
    assert missing.returncode == 2 and "no decision log" in missing.stderr
