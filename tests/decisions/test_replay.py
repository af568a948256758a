"""`gate decisions replay`: a log made by `gate evaluate` on the shipped policies and real reports,
replayed under modified copies of the shipped bundle — what flips, what the filters select, stored
time used for waivers, per-record errors, a bundle that does not compile, and nothing written."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gate import rfc3339
from gate.decisions.interface import DecisionQuery
from gate.decisions.store import open_store
from tests.conftest import DIGEST, ROOT, Run

POLICIES = ROOT / "policies"
IMAGE = "registry.example.com/shop/cart"
REF = f"{IMAGE}:1.4.2@{DIGEST}"

CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
MIDDLING = ("trivy/trivy-image-alpine-310.json", "coverage/coveragepy-7.8.0-branch.json")  # 71 % lines

#: every test runs on both stores (tests/conftest.py: SQLite file, throwaway PostgreSQL database)
pytestmark = pytest.mark.usefixtures("store_url")


def evaluate(gate: Callable[..., Run], data: Path, names: tuple[str, ...], env: str, *extra: Any) -> dict[str, Any]:
    args: list[Any] = []
    for name in names:
        args += ["--report", f"auto={data / name}"]
    run = gate("evaluate", *args, "--policy", POLICIES, "--image", REF, "--env", env, "--format", "json", *extra)
    assert run.code in (0, 1), run.err
    decision: dict[str, Any] = run.json()
    return decision


@pytest.fixture
def log(gate: Callable[..., Run], data: Path) -> dict[str, dict[str, Any]]:
    """Four decisions: clean allow (prod), critical deny (prod), 71 % coverage deny (prod) and allow (staging)."""
    made = {
        "clean": evaluate(gate, data, CLEAN, "prod"),
        "critical": evaluate(gate, data, ONE_CRITICAL, "prod"),
        "middling": evaluate(gate, data, MIDDLING, "prod"),
        "middling-staging": evaluate(gate, data, MIDDLING, "staging"),
    }
    assert [d["outcome"] for d in made.values()] == ["allow", "deny", "deny", "allow"]
    return made


def bundle(tmp_path: Path, thresholds: dict[str, Any] | None = None, **rego: str) -> Path:
    """A copy of the shipped bundle, with prod thresholds changed and extra promotion policies added."""
    root = tmp_path / "candidate"
    shutil.copytree(POLICIES, root)
    if thresholds:
        config = root / "gate" / "config" / "data.json"
        document = json.loads(config.read_text())
        document["thresholds"]["prod"].update(thresholds)
        config.write_text(json.dumps(document))
    for name, text in rego.items():
        (root / "gate" / "promotion" / f"{name}.rego").write_text(text)
    return root


NO_MEDIUM = """
package gate.promotion.no_medium

import rego.v1

deny contains {"msg": sprintf("medium vulnerability %s", [f.rule]), "rule": "no_medium.vulnerability", "severity": "medium"} if {
	input.environment == "prod"
	some f in input.findings
	f.kind == "vulnerability"
	f.severity == "medium"
}
"""

#: A rule whose results have the wrong shape in staging: evaluating a staging input fails.
BROKEN_IN_STAGING = """
package gate.promotion.broken

import rego.v1

deny contains 42 if input.environment == "staging"
"""


def replay(gate: Callable[..., Run], policy: Path, *extra: Any) -> Run:
    return gate("decisions", "replay", "--policy", policy, *extra)


def replay_json(gate: Callable[..., Run], policy: Path, *extra: Any) -> dict[str, Any]:
    run = replay(gate, policy, "--format", "json", *extra)
    assert run.code == 0, run.err
    report: dict[str, Any] = run.json()
    return report


def flipped(report: dict[str, Any], kind: str) -> list[str]:
    before, after = kind.split("→")
    return [f["decision_id"] for f in report["flips"] if f["before"] == before and f["after"] == after]


def snapshot() -> tuple[int, int, list[str]]:
    """Count, last sequence number and every hash of the log (GATE_DECISION_STORE)."""
    store = open_store()
    try:
        hashes = [entry.stored_hash for entry in store.chain()]
        return len(hashes), store.last_seq(), hashes
    finally:
        store.close()


# --- flips ------------------------------------------------------------------------------------


def test_same_bundle_flips_nothing(gate: Callable[..., Run], log: dict[str, dict[str, Any]]) -> None:
    report = replay_json(gate, POLICIES)
    assert report["replayed"] == 4 and report["unchanged"] == 4
    assert report["flips"] == [] and report["errors"] == 0 and report["reasons_changed"] == 0
    assert report["now"] == "stored"


def test_lower_coverage_threshold_flips_deny_to_allow(
    gate: Callable[..., Run], log: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    report = replay_json(gate, bundle(tmp_path, {"min_line_coverage": 0.7}))
    assert report["replayed"] == 4
    assert flipped(report, "deny→allow") == [log["middling"]["decision_id"]]
    assert report["allow_to_deny"] == 0 and report["deny_to_allow"] == 1 and report["unchanged"] == 3
    [flip] = report["flips"]
    assert flip["environment"] == "prod" and flip["image"] == IMAGE and flip["digest"] == DIGEST
    assert flip["timestamp"] == log["middling"]["timestamp"]
    assert flip["appeared"] == []
    [gone] = flip["disappeared"]
    assert gone["rule"] == "coverage.line_rate" and "71.09%" in gone["message"]
    assert report["policy"]["digest"] != log["middling"]["policy"]["digest"]


def test_new_rule_flips_allow_to_deny_and_text_names_it(
    gate: Callable[..., Run], log: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    candidate = bundle(tmp_path, no_medium=NO_MEDIUM)
    report = replay_json(gate, candidate)
    assert flipped(report, "allow→deny") == [log["clean"]["decision_id"]]
    [flip] = report["flips"]
    assert {v["rule"] for v in flip["appeared"]} == {"no_medium.vulnerability"}
    assert {v["message"] for v in flip["appeared"]} == {"medium vulnerability CVE-2019-1549", "medium vulnerability CVE-2019-1551"}
    assert flip["disappeared"] == []
    # the 71 % prod decision already denied (coverage); now it also denies for its medium CVEs
    assert report["reasons_changed"] == 1 and report["unchanged"] == 3

    run = replay(gate, candidate)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == "4 decisions replayed: 1 allow→deny, 0 deny→allow, 3 unchanged, 0 errors"
    assert "Allow → deny (1):" in lines
    header = lines[lines.index("Allow → deny (1):") + 1]
    assert log["clean"]["decision_id"] in header and "prod" in header and f"{IMAGE}:1.4.2@{DIGEST}" in header
    assert "    + MEDIUM no_medium.vulnerability: medium vulnerability CVE-2019-1549" in lines


def test_both_directions_at_once(gate: Callable[..., Run], log: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    report = replay_json(gate, bundle(tmp_path, {"min_line_coverage": 0.7}, no_medium=NO_MEDIUM))
    # 71 % in prod: coverage no longer denies, but the new rule does -> still a deny, other reasons
    assert flipped(report, "allow→deny") == [log["clean"]["decision_id"]]
    assert flipped(report, "deny→allow") == []
    assert report["reasons_changed"] == 1


# --- filters ----------------------------------------------------------------------------------


def test_filters_select_what_is_replayed(
    gate: Callable[..., Run], log: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    candidate = bundle(tmp_path, {"min_line_coverage": 0.7}, no_medium=NO_MEDIUM)
    staging = replay_json(gate, candidate, "--env", "staging")
    assert staging["replayed"] == 1 and staging["flips"] == [] and staging["unchanged"] == 1

    allows = replay_json(gate, candidate, "--env", "prod", "--outcome", "allow")
    assert allows["replayed"] == 1 and flipped(allows, "allow→deny") == [log["clean"]["decision_id"]]

    by_rule = replay_json(gate, candidate, "--rule", "coverage.line_rate")
    assert by_rule["replayed"] == 1 and by_rule["unchanged"] == 1

    # --since is inclusive: from the third decision on
    since = replay_json(gate, candidate, "--since", log["middling"]["timestamp"])
    assert since["replayed"] == 2 and since["flips"] == []
    assert replay_json(gate, candidate, "--since", "1h")["replayed"] == 4
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert replay_json(gate, candidate, "--since", future)["replayed"] == 0
    assert replay_json(gate, candidate, "--until", log["critical"]["timestamp"])["replayed"] == 1

    run = replay(gate, candidate, "--since", "last tuesday")
    assert run.code == 2 and "--since" in run.err


def test_empty_log_replays_nothing(gate: Callable[..., Run]) -> None:
    open_store().close()  # created (as the first `gate evaluate` does), still empty; a missing log is exit 2
    run = replay(gate, POLICIES)
    assert run.code == 0, run.err
    assert run.out.splitlines()[0] == "0 decisions replayed: 0 allow→deny, 0 deny→allow, 0 unchanged, 0 errors"


# --- time, waivers, errors ----------------------------------------------------------------------


def test_waivers_are_judged_at_the_stored_time(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    from gate.replay import replay as replay_log

    expires = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n  - id: W-1\n    rule: CVE-2022-22965\n    reason: not reachable\n"
        f"    approved_by: secops@example.com\n    expires: {expires}\n"
    )
    waived = evaluate(gate, data, ONE_CRITICAL, "prod", "--data", waivers)
    assert waived["outcome"] == "allow" and [w["id"] for w in waived["waivers"]] == ["W-1"]

    # the record keeps the --data it was decided with: replay uses it unless --data replaces it
    assert waived["data"]["waivers"][0]["id"] == "W-1"
    assert replay_json(gate, POLICIES)["unchanged"] == 1
    empty = tmp_path / "no-waivers.yaml"
    empty.write_text("waivers: []\n")
    assert flipped(replay_json(gate, POLICIES, "--data", empty), "allow→deny") == [waived["decision_id"]]

    # judged as at today + 60 days the waiver has expired and the CVE blocks again
    at = datetime.now(UTC) + timedelta(days=60)
    store = open_store()
    try:
        later = replay_log(store, DecisionQuery(), POLICIES, [str(waivers)], now=at)
    finally:
        store.close()
    assert [f.decision.decision_id for f in later.allow_to_deny] == [waived["decision_id"]]
    assert later.now == rfc3339.format(at)


def test_a_record_that_fails_to_evaluate_is_reported_and_the_run_goes_on(
    gate: Callable[..., Run], log: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    candidate = bundle(tmp_path, {"min_line_coverage": 0.7}, broken=BROKEN_IN_STAGING)
    report = replay_json(gate, candidate)
    assert report["replayed"] == 4 and report["errors"] == 1
    [failure] = report["failures"]
    assert failure["decision_id"] == log["middling-staging"]["decision_id"] and failure["environment"] == "staging"
    assert "data.gate.promotion.broken.deny" in failure["error"]
    assert flipped(report, "deny→allow") == [log["middling"]["decision_id"]]

    run = replay(gate, candidate)
    assert run.code == 0
    assert run.out.splitlines()[0] == "4 decisions replayed: 0 allow→deny, 1 deny→allow, 2 unchanged, 1 errors"
    assert "Could not replay (1):" in run.out

    # nothing at all could be replayed: exit 2
    only_staging = replay(gate, candidate, "--env", "staging")
    assert only_staging.code == 2 and "none of the 1 decision(s) could be replayed" in only_staging.err


#: Loops long on the spring4shell report's record only (9 million elements: many seconds in regorus).
RUNAWAY_ON_SPRING4SHELL = """
package gate.promotion.runaway

import rego.v1

deny contains "never" if {
	some f in input.findings
	f.rule == "CVE-2022-22965"
	count([x | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); x := i * j]) < 0
}
"""


def test_a_runaway_record_times_out_alone_and_the_others_are_replayed(
    gate: Callable[..., Run], log: dict[str, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time limit holds per record, in the middle of a batch: the runaway record is an error, the
    records before and after it (same batch, both children) are replayed as without it."""
    monkeypatch.setenv("GATE_POLICY_TIMEOUT", "1")
    candidate = bundle(tmp_path, {"min_line_coverage": 0.7}, runaway=RUNAWAY_ON_SPRING4SHELL)
    report = replay_json(gate, candidate)
    assert report["replayed"] == 4 and report["errors"] == 1
    [failure] = report["failures"]
    assert failure["decision_id"] == log["critical"]["decision_id"]
    assert failure["error"] == "policy evaluation timed out after 1 s (GATE_POLICY_TIMEOUT)"
    assert flipped(report, "deny→allow") == [log["middling"]["decision_id"]]
    assert report["unchanged"] == 2 and report["allow_to_deny"] == 0

    run = replay(gate, candidate)
    assert run.code == 0, run.err
    assert run.out.splitlines()[0] == "4 decisions replayed: 0 allow→deny, 1 deny→allow, 2 unchanged, 1 errors"
    assert "Could not replay (1):" in run.out and "timed out after 1 s (GATE_POLICY_TIMEOUT)" in run.out


def test_records_decided_with_other_data_are_judged_each_with_its_own_across_batches(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records are judged in batches, one engine run per set of recorded data: interleaved records with
    and without a waiver, over several batches, each keep their own data (a mix-up flips them)."""
    monkeypatch.setattr("gate.replay.BATCH_RECORDS", 2)
    expires = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n  - id: W-1\n    rule: CVE-2022-22965\n    reason: not reachable\n"
        f"    approved_by: secops@example.com\n    expires: {expires}\n"
    )
    outcomes = []
    for waived in (False, True, True, False, True):
        decision = evaluate(gate, data, ONE_CRITICAL, "prod", *(("--data", waivers) if waived else ()))
        outcomes.append(decision["outcome"])
    assert outcomes == ["deny", "allow", "allow", "deny", "allow"]
    report = replay_json(gate, POLICIES)
    assert report["replayed"] == 5 and report["unchanged"] == 5 and report["flips"] == [] and report["errors"] == 0
    assert report["reasons_changed"] == 0
    # today's --data for every record instead: the waiver applies to all of them
    everyone_waived = replay_json(gate, POLICIES, "--data", waivers)
    assert everyone_waived["deny_to_allow"] == 2 and everyone_waived["unchanged"] == 3


def test_stored_error_decisions_are_replayed_too(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    broken = bundle(tmp_path, broken="package gate.promotion.broken\n\ndeny contains x if {\n")
    args: list[Any] = []
    for name in CLEAN:
        args += ["--report", f"auto={data / name}"]
    run = gate("evaluate", *args, "--policy", broken, "--image", REF, "--env", "prod")
    assert run.code == 2
    report = replay_json(gate, POLICIES)
    assert report["replayed"] == 1 and report["error_to_allow"] == 1
    [flip] = report["flips"]
    assert (flip["before"], flip["after"]) == ("error", "allow")
    text = replay(gate, POLICIES)
    assert text.out.splitlines()[0] == "1 decision replayed: 0 allow→deny, 0 deny→allow, 1 error→allow, 0 unchanged, 0 errors"
    assert "Error → allow (1):" in text.out


def test_a_bundle_that_does_not_compile_is_an_error(
    gate: Callable[..., Run], log: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    broken = bundle(tmp_path, broken="package gate.promotion.broken\n\ndeny contains x if {\n")
    run = replay(gate, broken)
    assert run.code == 2 and run.out == ""
    assert "does not compile" in run.err and "broken.rego" in run.err
    missing = replay(gate, tmp_path / "nowhere")
    assert missing.code == 2 and run.out == ""


def test_a_record_that_cannot_be_read_stops_the_run(
    gate: Callable[..., Run], log: dict[str, dict[str, Any]], store_url: str
) -> None:
    sql = "update decisions set record = 'not a record' where decision_id = '%s'" % log["critical"]["decision_id"]
    if store_url.startswith("sqlite://"):
        import sqlite3

        with sqlite3.connect(store_url.removeprefix("sqlite://")) as db:
            db.execute(sql)
    else:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(sql)
    run = replay(gate, POLICIES)
    assert run.code == 2
    assert "cannot be read" in run.err and "gate decisions verify" in run.err and "Traceback" not in run.err


def test_a_record_that_cannot_be_read_mid_run_leaves_no_evaluator_behind(
    gate: Callable[..., Run], log: dict[str, dict[str, Any]], store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One record per batch: batches are judged while the next is read, so the unreadable record is met
    with a batch still being judged; the run stops (exit 2) and that batch's children are killed."""
    monkeypatch.setattr("gate.replay.BATCH_RECORDS", 1)
    assert replay_json(gate, POLICIES)["unchanged"] == 4  # one batch per record, each judged
    sql = "update decisions set record = 'not a record' where decision_id = '%s'" % log["clean"]["decision_id"]
    if store_url.startswith("sqlite://"):
        import sqlite3

        with sqlite3.connect(store_url.removeprefix("sqlite://")) as db:
            db.execute(sql)
    else:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(sql)
    before = _forked_children()
    run = replay(gate, POLICIES)
    assert run.code == 2 and "cannot be read" in run.err
    assert _forked_children() == before


def _forked_children() -> set[int]:
    """This process's children named as it is, running or not yet reaped (forked evaluators; not a
    PostgreSQL server)."""
    import os

    def name_and_parent(stat: str) -> tuple[str, int]:
        name, rest = stat.split(" (", 1)[1].rsplit(")", 1)
        return name, int(rest.split()[1])

    me = name_and_parent(Path("/proc/self/stat").read_text())[0]
    children = set()
    for entry in Path("/proc").iterdir():
        try:
            name, ppid = name_and_parent((entry / "stat").read_text()) if entry.name.isdigit() else ("", 0)
        except (OSError, ValueError, IndexError):  # ended meanwhile
            continue
        if ppid == os.getpid() and name == me:
            children.add(int(entry.name))
    return children


# --- nothing written --------------------------------------------------------------------------


def test_replay_writes_nothing(
    gate: Callable[..., Run], log: dict[str, dict[str, Any]], tmp_path: Path, store_url: str
) -> None:
    before = snapshot()
    sqlite_file = Path(store_url.removeprefix("sqlite://")) if store_url.startswith("sqlite://") else None
    files_before = _digest_files(sqlite_file) if sqlite_file else None
    candidate = bundle(tmp_path, {"min_line_coverage": 0.7}, no_medium=NO_MEDIUM)
    assert replay(gate, candidate).code == 0
    assert replay(gate, candidate, "--format", "json").code == 0
    assert snapshot() == before
    assert before[0] == 4
    if sqlite_file:
        assert _digest_files(sqlite_file) == files_before


def _digest_files(db: Path) -> dict[str, str]:
    """sha256 of the SQLite file (and its WAL, if any) after the last connection closed.

    Bytes 24-27 and 92-95 of the header (file change counter, version-valid-for) are masked:
    opening the store runs its migration check in a write transaction, which bumps them even
    when nothing changes.
    """
    digests = {}
    for p in sorted(db.parent.glob(db.name + "*")):
        if p.name.endswith("-shm"):
            continue
        raw = bytearray(p.read_bytes())
        if p == db:
            raw[24:28] = raw[92:96] = bytes(4)
        digests[p.name] = hashlib.sha256(raw).hexdigest()
    return digests
