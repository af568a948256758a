"""The auditor-facing queries of the decision log — `gate decisions list`, `show`, `export`, `stats` —
on both stores (SQLite and a real PostgreSQL 15), over a log of real decisions made by `gate evaluate`
on the shipped policies and real reports, re-dated so time filters have something to tell apart."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gate import __version__ as GATE_VERSION
from gate import rfc3339
from gate.decisions.record import Decision, Outcome, record_hash, sha256_digest
from gate.decisions.interface import DecisionQuery
from gate.decisions.store import open_store
from gate.decisions.timefilter import parse_time
from gate.errors import UsageError
from gate.output.decisions_csv import COLUMNS
from tests.conftest import DATA, ROOT, Run

POLICIES = ROOT / "policies"
REVISION = "gate-policies-0.2.0"
CART = "registry.example.com/shop/cart"
PAYMENTS = "registry.example.com/shop/payments"
JUICE_IMAGE = "registry.example.com/shop/juice"
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
JUICE = (
    "trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json",
    "coverage/cobertura-coveragepy-6.3.2-multi-package.xml",
    "sonarqube/sonarqube-api-qualitygates-project_status-example.json",
)
#: the log, in append order: (name, reports, image, digest byte, env, waiver (id, days to expiry), actor, age)
PLAN: tuple[tuple[str, tuple[str, ...], str, str, str, tuple[str, int] | None, str, timedelta], ...] = (
    # an allow in prod that relied on W-OLD, which has expired since (rewritten below)
    ("old", ONE_CRITICAL, CART, "99", "prod", ("W-OLD", 90), "carol", timedelta(days=100)),
    ("deny_cve", ONE_CRITICAL, CART, "aa", "prod", None, "alice", timedelta(days=40)),
    ("waived", ONE_CRITICAL, CART, "bb", "prod", ("W-0042", 90), "bob", timedelta(days=20)),
    ("juice", JUICE, JUICE_IMAGE, "ee", "prod", None, "alice", timedelta(days=10)),
    ("staging", CLEAN, CART, "dd", "staging", None, "bob", timedelta(days=2)),
    ("soon", ONE_CRITICAL, PAYMENTS, "cc", "prod", ("W-SOON", 5), "carol", timedelta(hours=1)),
    # the policy bundle does not compile: recorded as an error decision; an actor a spreadsheet would run
    ("error", CLEAN, CART, "ff", "prod", None, "=1+1", timedelta(minutes=30)),
)
NEWEST_FIRST = [name for name, *_ in reversed(PLAN)]


def digest(byte: str) -> str:
    return "sha256:" + byte * 32


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, signing_key: tuple[Path, Path]) -> dict[str, Decision]:
    """Real decisions, made once through `gate evaluate` into a scratch log, then re-dated.

    Each test appends them (re-chained) to its own log on each store; re-dating and rewriting the
    old waiver's expiry happen before the append, so every stored record is hashed as it is.
    (Module-scoped: it runs before the per-test fixtures that isolate the state folder and the
    signing key, so it sets them itself.)"""
    from gate.cli import main

    scratch = tmp_path_factory.mktemp("recorded")
    broken = scratch / "broken"
    broken.mkdir()
    (broken / "promotion.rego").write_text("package gate.promotion\n\ndeny contains msg if {\n")
    now = datetime.now(UTC)
    made: dict[str, Decision] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", str(scratch / "state"))
        mp.setenv("GATE_SIGNING_KEY", str(signing_key[0]))
        for var in ("GITHUB_SHA", "GITHUB_RUN_ID", "CI_COMMIT_SHA", "GIT_COMMIT", "BUILD_URL", "CI_PIPELINE_URL",
                    "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER_ID"):
            mp.delenv(var, raising=False)
        for name, reports, image, byte, env, waiver, actor, age in PLAN:
            store = scratch / f"{name}.db"
            mp.setenv("GATE_DECISION_STORE", str(store))
            mp.setenv("GATE_CONTEXT_ACTOR", actor)
            mp.setenv("GATE_CONTEXT_PIPELINE_URL", f"https://ci.example.com/{name}")
            mp.setenv("GATE_CONTEXT_COMMIT", byte * 20)
            argv = ["evaluate", "--policy", str(broken if name == "error" else POLICIES), "--env", env]
            argv += ["--image", f"{image}:1.0@{digest(byte)}"]
            for report in reports:
                argv += ["--report", f"auto={DATA / report}"]
            if waiver:
                expires = rfc3339.format(now + timedelta(days=waiver[1]))
                data = scratch / f"{name}-waivers.json"
                data.write_text(json.dumps({"waivers": [{
                    "id": waiver[0], "rule": "CVE-2022-22965", "reason": "not reachable",
                    "approved_by": "secops@example.com", "expires": expires,
                }]}))
                argv += ["--data", str(data)]
            code = main(argv)
            assert code == {"error": 2}.get(name, code) and code in (0, 1, 2), (name, code)
            log = open_store(str(store))
            try:
                [stored] = list(log.query(DecisionQuery()))  # the full form: input and data whole
            finally:
                log.close()
            decision = msgspec.structs.replace(stored, timestamp=rfc3339.format(now - age))
            if name == "old":
                # expired an hour ago, written with an offset that sorts after "now" as text
                plus5 = (now - timedelta(hours=1)).astimezone(timezone(timedelta(hours=5)))
                waivers = tuple(
                    msgspec.structs.replace(w, expires=plus5.isoformat(timespec="seconds")) for w in decision.waivers
                )
                decision = msgspec.structs.replace(decision, waivers=waivers)
            made[name] = decision
    return made


@pytest.fixture
def log(store_url: str, recorded: dict[str, Decision]) -> dict[str, Decision]:
    """The recorded decisions appended, oldest first, to this test's log (on each store), signed with the session key."""
    from gate.decisions.signing import load_signer

    signer = load_signer()
    store = open_store(store_url)
    try:
        return {name: store.append(recorded[name], signer) for name, *_ in PLAN}
    finally:
        store.close()


def names(log: dict[str, Decision], ids: list[str]) -> list[str]:
    by_id = {d.decision_id: name for name, d in log.items()}
    return [by_id[i] for i in ids]


def listed(gate: Callable[..., Run], log: dict[str, Decision], *flags: str) -> list[str]:
    run = gate("decisions", "list", "--format", "json", *flags)
    assert run.code == 0, run.err
    return names(log, [d["decision_id"] for d in run.json()["decisions"]])


def day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


# --- list: filters ------------------------------------------------------------------------------


def test_the_recorded_decisions_are_what_the_plan_says(recorded: dict[str, Decision]) -> None:
    assert {n: d.outcome for n, d in recorded.items()} == {
        "old": Outcome.ALLOW, "deny_cve": Outcome.DENY, "waived": Outcome.ALLOW, "juice": Outcome.DENY,
        "staging": Outcome.ALLOW, "soon": Outcome.ALLOW, "error": Outcome.ERROR,
    }
    assert [w.id for w in recorded["waived"].waivers] == ["W-0042"]
    assert recorded["error"].policy.digest == "unknown" and recorded["error"].error


def test_list_is_newest_first_and_each_filter_selects(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    assert listed(gate, log) == NEWEST_FIRST
    assert listed(gate, log, "--env", "staging") == ["staging"]
    assert listed(gate, log, "--outcome", "deny") == ["juice", "deny_cve"]
    assert listed(gate, log, "--outcome", "error") == ["error"]
    assert listed(gate, log, "--digest", digest("bb")) == ["waived"]
    assert listed(gate, log, "--image", PAYMENTS) == ["soon"]
    assert listed(gate, log, "--rule", "vulnerabilities.severity") == ["juice", "deny_cve"]
    assert listed(gate, log, "--rule", "CVE-2022-22965") == ["deny_cve"]  # a finding rule a violation names
    assert listed(gate, log, "--rule", "CVE-2022-37434") == ["juice"]
    assert listed(gate, log, "--waiver", "W-0042") == ["waived"]
    assert listed(gate, log, "--waived") == ["soon", "waived", "old"]
    assert listed(gate, log, "--policy-digest", log["waived"].policy.digest) == [n for n in NEWEST_FIRST if n != "error"]
    assert listed(gate, log, "--limit", "2") == ["error", "soon"]
    assert listed(gate, log, "--limit", "0") == []
    assert listed(gate, log, "--env", "prod", "--outcome", "allow", "--waived", "--since", "30d") == ["soon", "waived"]
    assert listed(gate, log, "--env", "nowhere") == []


def test_finding_selects_every_decision_whose_input_holds_it_in_any_case(
    gate: Callable[..., Run], log: dict[str, Decision]
) -> None:
    # Spring4Shell: denied once, waived three times (W-OLD, W-0042, W-SOON)
    for spelling in ("CVE-2022-22965", "cve-2022-22965", "Cve-2022-22965"):
        assert listed(gate, log, "--finding", spelling) == ["soon", "waived", "deny_cve", "old"]
        assert listed(gate, log, "--rule", spelling) == ["deny_cve"]  # --rule: only where a deny reason names it
    assert listed(gate, log, "--finding", "cve-2022-22965", "--waived") == ["soon", "waived", "old"]  # only waived
    assert listed(gate, log, "--finding", "CVE-2022-22965", "--env", "prod", "--limit", "2") == ["soon", "waived"]
    # alpine's medium CVE: below staging's threshold, never a violation; also in the error decision's input
    assert listed(gate, log, "--finding", "cve-2019-1549") == ["error", "staging"]
    assert listed(gate, log, "--rule", "CVE-2019-1549") == []
    # a policy rule id is not a finding; a finding's own id (its fingerprint) is, in any case
    assert listed(gate, log, "--finding", "vulnerabilities.severity") == []
    fingerprint = log["juice"].input["findings"][0]["id"]
    assert listed(gate, log, "--finding", fingerprint.upper()) == ["juice"]
    assert listed(gate, log, "--finding", "CVE-1999-0001") == []
    # the other commands taking the filters
    assert gate("decisions", "stats", "--finding", "cve-2022-22965", "--format", "json").json()["total"] == 4
    exported = gate("decisions", "export", "--finding", "CVE-2019-1549").out.splitlines()
    assert [json.loads(line)["decision_id"] for line in exported] == [log["staging"].decision_id, log["error"].decision_id]


def test_waiver_expired_compares_times_not_text(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    # W-OLD's expiry reads later than now as text (+05:00) but passed an hour ago
    assert log["old"].waivers[0].expires.endswith("+05:00")
    assert listed(gate, log, "--waiver-expired") == ["old"]
    assert listed(gate, log, "--waiver", "W-OLD", "--waiver-expired") == ["old"]
    assert listed(gate, log, "--waiver", "W-0042", "--waiver-expired") == []


def test_time_filters_take_durations_dates_and_rfc3339(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    now = datetime.now(UTC)
    assert listed(gate, log, "--since", "30d") == ["error", "soon", "staging", "juice", "waived"]
    assert listed(gate, log, "--since", "4w", "--until", "5d") == ["juice", "waived"]
    assert listed(gate, log, "--since", "90m") == ["error", "soon"]
    assert listed(gate, log, "--until", "1d12h") == ["staging", "juice", "waived", "deny_cve", "old"]
    assert listed(gate, log, "--since", day(now - timedelta(days=50))) == NEWEST_FIRST[:-1]
    assert listed(gate, log, "--until", day(now - timedelta(days=30))) == ["deny_cve", "old"]
    plus2 = (now - timedelta(days=15)).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert listed(gate, log, "--since", plus2) == ["error", "soon", "staging", "juice"]
    zulu = rfc3339.format(now - timedelta(days=15))
    assert listed(gate, log, "--since", zulu) == listed(gate, log, "--since", plus2)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--since", "yesterday"], "--since 'yesterday'"),
        (["--until", "2026-10-01T12:00:00"], "--until '2026-10-01T12:00:00' has no time zone"),
        (["--since", "2026-02-30"], "--since '2026-02-30'"),
        (["--since", "1d", "--until", "2d"], "is not before --until"),
        (["--limit", "-1"], "--limit -1"),
    ],
)
def test_bad_filters_are_usage_errors_naming_the_flag(gate: Callable[..., Run], flags: list[str], named: str) -> None:
    run = gate("decisions", "list", *flags)
    assert run.code == 2 and run.out == ""
    assert run.err.count("\n") == 1 and named in run.err, run.err


def test_parse_time_forms() -> None:
    now = datetime(2026, 11, 26, 18, 57, 8, 471657, tzinfo=UTC)
    assert parse_time("30d", "--since", now) == "2026-10-27T18:57:08.471657Z"
    assert parse_time("12h", "--since", now) == "2026-11-26T06:57:08.471657Z"
    assert parse_time("90m", "--since", now) == "2026-11-26T17:27:08.471657Z"
    assert parse_time("2w", "--since", now) == "2026-11-12T18:57:08.471657Z"
    assert parse_time("2026-10-01", "--since", now) == "2026-10-01T00:00:00.000000Z"
    assert parse_time("2026-10-01T02:30:00+02:00", "--until", now) == "2026-10-01T00:30:00.000000Z"
    assert parse_time("2026-10-01t00:00:00.5z", "--until", now) == "2026-10-01T00:00:00.500000Z"
    # the stored format compares lexically with record timestamps
    assert parse_time("2026-11-26", "--since", now) < "2026-11-26T18:57:08.471657Z" < parse_time("1s", "--until", now + timedelta(seconds=2))
    for bad in ("", "30", "30y", "-1d", "0999-01-01", "10000000000w", "2026-10-01T00:00"):
        with pytest.raises(UsageError, match="--since"):
            parse_time(bad, "--since", now)


# --- list: formats ------------------------------------------------------------------------------


def test_list_text_is_a_table_newest_first(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    run = gate("decisions", "list")
    assert run.code == 0, run.err
    header, *rows, total = run.out.splitlines()
    assert header.split() == ["TIME", "OUTCOME", "ENV", "IMAGE@DIGEST", "VIOLATIONS", "TRIAGE", "DECISION", "ID"]
    assert total == "7 decision(s)"
    assert [row.split()[-1] for row in rows] == [log[n].decision_id for n in NEWEST_FIRST]
    waived = rows[NEWEST_FIRST.index("waived")].split()
    assert waived[1:6] == ["ALLOW", "prod", f"{CART}@sha256:{'bb' * 6}", "0", "W-0042"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", waived[0])
    assert gate("decisions", "list", "--env", "nowhere").out == "No decisions match.\n"


def test_list_json_is_one_document_of_stored_records_that_verify(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    run = gate("decisions", "list", "--format", "json")
    document = run.json()
    assert list(document) == ["decisions"] and len(document["decisions"]) == 7
    for entry in document["decisions"]:
        # the stored form: the findings are a document named by its digest, not repeated in the listing
        assert "findings" not in entry.get("input", {}) and entry["input_parts"]["findings"].startswith("sha256:")
        assert entry["input_digest"].startswith("sha256:")
        # and the record hash covers the stored form as it is, so an entry verifies on its own
        assert record_hash(msgspec.convert(entry, Decision)) == entry["hash"]
    first = document["decisions"][0]
    assert first["decision_id"] == log["error"].decision_id and first["outcome"] == "error"
    assert gate("decisions", "list", "--format", "json", "--env", "nowhere").json() == {"decisions": []}


def test_list_csv_parses_with_fixed_columns(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    run = gate("decisions", "list", "--format", "csv")
    assert run.code == 0, run.err
    reader = csv.DictReader(io.StringIO(run.out, newline=""))
    rows = list(reader)
    assert tuple(reader.fieldnames or ()) == COLUMNS
    assert [r["decision_id"] for r in rows] == [log[n].decision_id for n in NEWEST_FIRST]
    by_name = dict(zip(NEWEST_FIRST, rows))
    waived = by_name["waived"]
    assert (waived["outcome"], waived["environment"], waived["image"], waived["tag"], waived["digest"]) == (
        "allow", "prod", CART, "1.0", digest("bb")
    )
    assert (waived["waivers"], waived["actor"], waived["policy_revision"]) == ("W-0042", "bob", REVISION)
    assert waived["pipeline_url"] == "https://ci.example.com/waived" and waived["hash"] == log["waived"].hash
    juice = by_name["juice"]
    assert int(juice["violations"]) == len(log["juice"].violations) > 100
    assert "vulnerabilities.severity" in juice["violation_rules"].split(";")
    assert by_name["error"]["actor"] == "'=1+1"  # neutralized: a spreadsheet would run it
    assert gate("decisions", "list", "--format", "csv", "--env", "nowhere").out.strip() == ",".join(COLUMNS)


# --- show ---------------------------------------------------------------------------------------


def test_show_text_has_the_whole_record(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    decision = log["waived"]
    run = gate("decisions", "show", decision.decision_id)
    assert run.code == 0, run.err
    out = run.out
    for expected in (
        f"Decision:     {decision.decision_id}",
        "Outcome:      ALLOW",
        f"Artifact:     {CART}:1.0@{digest('bb')}",
        f"Policy:       {decision.policy.digest} revision {REVISION}",
        "Waivers applied (1):",
        "W-0042",
        "CVE-2022-22965",
        "secops@example.com",
        "Scanners:",
        *(s["report_sha256"] for s in decision.scanners),
        "actor:",
        "bob",
        "https://ci.example.com/waived",
        f"input_digest:  {decision.input_digest}",
        f"hash:          {decision.hash}",
        f"prev_hash:     {log['deny_cve'].hash}",
        f"signing_key:   {decision.signing_key}",
        "signature:     present",
    ):
        assert expected in out, expected
    denied = gate("decisions", "show", log["deny_cve"].decision_id).out
    assert "Deny reasons (1):" in denied and "finding: CVE-2022-22965 in org.springframework:spring-beans" in denied
    soon = gate("decisions", "show", log["soon"].decision_id).out
    assert "Warnings (1):" in soon and "waivers.expiring" in soon
    error = gate("decisions", "show", log["error"].decision_id).out
    assert "Outcome:      ERROR" in error and "Error:" in error


def test_show_json_is_the_full_record(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    decision = log["juice"]
    run = gate("decisions", "show", decision.decision_id, "--format", "json")
    assert run.code == 0, run.err
    record = run.json()
    assert record == json.loads(msgspec.json.encode(decision))
    assert record["input_digest"] == sha256_digest(record["input"]) and len(record["input"]["findings"]) > 100


def test_show_unknown_id_exits_2_with_one_line(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    run = gate("decisions", "show", "01234567-89ab-7def-8123-456789abcdef")
    assert run.code == 2 and run.out == ""
    assert run.err.count("\n") == 1 and "no decision '01234567-89ab-7def-8123-456789abcdef'" in run.err


# --- export -------------------------------------------------------------------------------------


def test_export_jsonl_is_the_chain_oldest_first_and_verifies(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    run = gate("decisions", "export")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    decisions = [msgspec.json.decode(line, type=Decision) for line in lines]
    assert [d.decision_id for d in decisions] == [log[n].decision_id for n, *_ in PLAN]
    previous = None
    for decision in decisions:
        assert record_hash(decision) == decision.hash
        assert sha256_digest(decision.input) == decision.input_digest
        assert decision.prev_hash == previous
        previous = decision.hash
    assert decisions == [log[n] for n, *_ in PLAN]


def test_export_applies_filters_and_writes_a_file(gate: Callable[..., Run], log: dict[str, Decision], tmp_path: Path) -> None:
    target = tmp_path / "out" / "prod.jsonl"
    target.parent.mkdir()
    run = gate("decisions", "export", "--env", "prod", "--since", "30d", "--output", target)
    assert run.code == 0 and run.out == "" and f"wrote {target}" in run.err
    ids = [json.loads(line)["decision_id"] for line in target.read_text().splitlines()]
    assert names(log, ids) == ["waived", "juice", "soon", "error"]
    assert [p.name for p in target.parent.iterdir()] == ["prod.jsonl"]  # no temporary file left behind
    empty = gate("decisions", "export", "--env", "nowhere")
    assert empty.code == 0 and empty.out == ""


def test_export_opa_events_have_opas_decision_log_shape(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    run = gate("decisions", "export", "--format", "opa")
    assert run.code == 0, run.err
    events = [json.loads(line) for line in run.out.splitlines()]
    assert [e["decision_id"] for e in events] == [log[n].decision_id for n, *_ in PLAN]
    by_name = dict(zip([n for n, *_ in PLAN], events))
    for name, event in by_name.items():
        decision = log[name]
        assert event["path"] == "gate/promotion"
        assert event["timestamp"] == decision.timestamp
        assert event["input"] == decision.input
        assert set(event["result"]) == {"outcome", "violations", "warnings", "waivers"}
        assert event["result"]["outcome"] == decision.outcome.value
        assert event["labels"]["version"] == GATE_VERSION
        assert event["labels"]["environment"] == decision.environment
        assert event["labels"]["policy_digest"] == decision.policy.digest
        assert event["labels"]["id"] == decision.signing_key
        assert all(isinstance(v, str) for v in event["labels"].values())
        assert event["requested_by"] == decision.context["actor"]
    assert by_name["waived"]["bundles"] == {"policies": {"revision": REVISION}}
    assert [w["id"] for w in by_name["waived"]["result"]["waivers"]] == ["W-0042"]
    juice = by_name["juice"]["result"]["violations"]
    assert len(juice) == len(log["juice"].violations) and {"rule", "message", "severity"} <= set(juice[0])
    error = by_name["error"]
    assert error["bundles"] == {"gate": {"revision": ""}}  # the bundle never loaded: no directory recorded
    assert error["error"]["code"] == "evaluation_error" and error["error"]["message"] == log["error"].error
    assert "error" not in by_name["waived"]


# --- stats --------------------------------------------------------------------------------------


def stats(gate: Callable[..., Run], *flags: str) -> dict[str, Any]:
    run = gate("decisions", "stats", "--format", "json", *flags)
    assert run.code == 0, run.err
    result: dict[str, Any] = run.json()
    return result


def test_stats_counts(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    result = stats(gate)
    assert result["total"] == 7
    assert result["outcomes"] == {"allow": 4, "deny": 2, "error": 1, "total": 7}
    assert result["environments"] == [
        {"environment": "prod", "allow": 3, "deny": 2, "error": 1, "total": 6},
        {"environment": "staging", "allow": 1, "deny": 0, "error": 0, "total": 1},
    ]
    top = result["blocking_rules"][0]
    severity_violations = sum(v.rule == "vulnerabilities.severity" for n in ("deny_cve", "juice") for v in log[n].violations)
    assert top == {"rule": "vulnerabilities.severity", "decisions": 2, "violations": severity_violations}
    assert {r["rule"] for r in result["blocking_rules"]} >= {"coverage.line_rate", "quality_gate.status"}
    assert len(result["blocking_findings"]) == 10  # --top default
    assert all(f["kind"] for f in result["blocking_findings"])
    waivers = {w["id"]: w for w in result["waivers"]}
    assert {i: (w["applied"], w["status"], w["rule"]) for i, w in waivers.items()} == {
        "W-OLD": (1, "expired", "CVE-2022-22965"),
        "W-0042": (1, "active", "CVE-2022-22965"),
        "W-SOON": (1, "expiring", "CVE-2022-22965"),
    }
    assert waivers["W-0042"]["last_applied"] == log["waived"].timestamp
    assert [w["id"] for w in result["waivers_expiring"]] == ["W-OLD", "W-SOON"]
    # 100 days of decisions: weekly buckets, Mondays, gaps filled with zeros
    assert result["period"] == "week"
    starts = [datetime.fromisoformat(p["start"]) for p in result["periods"]]
    assert all(s.weekday() == 0 for s in starts) and all(b - a == timedelta(weeks=1) for a, b in zip(starts, starts[1:]))
    assert sum(p["total"] for p in result["periods"]) == 7 and any(p["total"] == 0 for p in result["periods"])


def test_stats_agree_with_list_for_every_rule_and_finding(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    result = stats(gate, "--top", "1000")
    for entry in result["blocking_rules"] + result["blocking_findings"]:
        assert len(listed(gate, log, "--rule", entry["rule"])) == entry["decisions"], entry
    assert {f["rule"] for f in result["blocking_findings"]} >= {"CVE-2022-22965", "CVE-2022-37434"}
    cve = next(f for f in result["blocking_findings"] if f["rule"] == "CVE-2022-22965")
    assert cve == {"rule": "CVE-2022-22965", "kind": "vulnerability", "decisions": 1}


def test_stats_filters_and_daily_periods(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    recent = stats(gate, "--since", "30d")
    assert recent["total"] == 5 and recent["period"] == "day"
    assert recent["since"] and recent["until"] is None
    days = [p["start"] for p in recent["periods"]]
    assert days[0] == log["waived"].timestamp[:10] and days[-1] == log["error"].timestamp[:10]
    assert len(days) == len(set(days)) >= 20  # one row per day from the first to the last, zeros included
    staging = stats(gate, "--env", "staging")
    assert staging["outcomes"] == {"allow": 1, "deny": 0, "error": 0, "total": 1}
    assert staging["blocking_rules"] == [] and staging["waivers"] == []
    expired = stats(gate, "--waiver-expired")
    assert expired["total"] == 1 and [w["id"] for w in expired["waivers"]] == ["W-OLD"]
    empty = stats(gate, "--env", "nowhere")
    assert (empty["total"], empty["environments"], empty["periods"], empty["waivers"]) == (0, [], [], [])


@pytest.mark.parametrize("query", [
    DecisionQuery(), DecisionQuery(environment="prod"), DecisionQuery(outcome="allow"), DecisionQuery(waived=True),
    DecisionQuery(rule="vulnerabilities.severity"), DecisionQuery(finding="cve-2022-22965"),
    DecisionQuery(since=rfc3339.format(datetime.now(UTC) - timedelta(days=30))),
    DecisionQuery(until=rfc3339.format(datetime.now(UTC) - timedelta(days=5)), with_input=False),
])
def test_stats_from_sql_are_the_stats_of_every_record(store_url: str, log: dict[str, Decision], query: DecisionQuery) -> None:
    """compute_from_store (counts in SQL, only records with an index row decoded, blocking findings found
    once per findings document) gives the document compute gives over every record, on both stores —
    with the juice and spring4shell decisions in again (the same documents, other decisions)."""
    from gate.decisions.stats import compute, compute_from_store

    now = datetime.now(UTC)
    store = open_store(store_url)
    try:
        for name in ("juice", "deny_cve", "waived", "staging"):
            again = msgspec.structs.replace(log[name], decision_id=f"{log[name].decision_id[:-4]}beef")
            store.append(again)
        everything = compute(store.query(query), now, query.since, query.until, top=1000).as_dict()
        fast = compute_from_store(store, query, now, top=1000)
        assert fast.as_dict() == everything
        assert fast.total == len(list(store.query(query)))
        # each decision on its own (no document digests: nothing shared between decisions is reused)
        alone = [msgspec.structs.replace(d, results_digest=None, input_parts=None) for d in store.query(query)]
        assert compute(alone, now, query.since, query.until, top=1000).as_dict() == everything
    finally:
        store.close()


def test_stats_text_has_every_section(gate: Callable[..., Run], log: dict[str, Decision]) -> None:
    run = gate("decisions", "stats")
    assert run.code == 0, run.err
    for heading in (
        "Decisions: 7 (allow 4, deny 2, error 1)",
        "By environment:",
        "Top blocking policy rules:",
        "Top blocking findings (CVEs and other finding rules):",
        "Waivers applied (3):",
        "Expired or expiring within 14 days",
        "Per week:",
    ):
        assert heading in run.out, heading
    assert "W-OLD (expired" in run.out and "W-SOON (expiring" in run.out
    assert gate("decisions", "stats", "--env", "nowhere").out == "Decisions: 0 (allow 0, deny 0, error 0)\n"


# --- evaluate into each store, then ask --------------------------------------------------------


def test_a_decision_made_now_is_found(gate: Callable[..., Run], store_url: str) -> None:
    argv = ["evaluate", "--policy", POLICIES, "--env", "prod", "--image", f"{CART}:2.0@{digest('12')}"]
    for report in ONE_CRITICAL:
        argv += ["--report", f"auto={DATA / report}"]
    assert gate(*argv).code == 1
    [entry] = gate("decisions", "list", "--format", "json", "--rule", "CVE-2022-22965", "--since", "5m").json()["decisions"]
    assert entry["artifact"]["digest"] == digest("12")
    assert gate("decisions", "show", entry["decision_id"]).code == 0


# --- docs/audit.md -----------------------------------------------------------------------------


def audit_commands() -> Iterator[list[str]]:
    """Every `gate ...` command line in the sh blocks of docs/audit.md (up to a pipe or a comment)."""
    text = (ROOT / "docs" / "audit.md").read_text()
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("gate "):
                lexer = shlex.shlex(line.strip(), posix=True, punctuation_chars="|")
                lexer.whitespace_split, lexer.commenters = True, "#"
                words = list(lexer)
                yield words[1 : words.index("|") if "|" in words else len(words)]


def test_every_command_in_the_audit_guide_runs(
    gate: Callable[..., Run], log: dict[str, Decision], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gate.cli import build_parser

    monkeypatch.chdir(tmp_path)  # export -o writes here
    head = gate("decisions", "verify", "--format", "json").json()["head"]
    commands = list(audit_commands())
    assert len(commands) >= 10
    seen = set()
    for argv in commands:
        build_parser().parse_args(argv)  # parses (a usage error would SystemExit)
        if argv[0] == "reconcile":  # run end to end in tests/reconcile/test_audit_plan.py
            assert "--plan" in argv, argv  # the guide only ever judges: an auditor changes no cluster
            seen.add("reconcile")
            continue
        assert argv[0] == "decisions", argv
        seen.add(argv[1])
        if argv[1] == "show":  # the guide's example id is not in this log
            argv = ["decisions", "show", log["waived"].decision_id, *argv[3:]]
        if argv[1] == "events" and "--decision" in argv:
            argv[argv.index("--decision") + 1] = log["waived"].decision_id
        for anchor in ("--expect-head", "--since-head"):
            if anchor in argv:  # the guide's head is not this log's
                argv[argv.index(anchor) + 1] = head
        if "--gitops-repo" in argv:  # a real repository whose history anchors this log's head
            argv[argv.index("--gitops-repo") + 1] = _anchoring_repo(tmp_path, head)
            seen.add("--gitops-repo")
        run = gate(*argv)
        assert run.code == 0, (argv, run.err)
        assert "no Gate-Log-Head" not in run.err  # the anchor was read, and found in the chain
    assert seen >= {"list", "show", "export", "stats", "verify", "events", "--gitops-repo", "reconcile"}


def _anchoring_repo(root: Path, head: str) -> str:
    """A bare repository whose one commit carries ``Gate-Log-Head: head``, as a promotion's does."""
    import subprocess

    bare, seed = root / "gitops.git", root / "seed"
    env = {"GIT_AUTHOR_NAME": "gate", "GIT_AUTHOR_EMAIL": "gate@localhost",
           "GIT_COMMITTER_NAME": "gate", "GIT_COMMITTER_EMAIL": "gate@localhost", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q", "--bare", "--initial-branch=main", str(bare)],
                 ["init", "-q", "--initial-branch=main", str(seed)],
                 ["-C", str(seed), "commit", "-q", "--allow-empty", "-m", f"promote\n\nGate-Log-Head: {head}"],
                 ["-C", str(seed), "push", "-q", bare.as_uri(), "HEAD:refs/heads/main"]):
        subprocess.run(["git", *args], env=env, check=True, capture_output=True)
    return bare.as_uri()
