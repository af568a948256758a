"""`--finding ID`: decisions whose input holds a finding with that rule (CVE id, check id) or id, whatever
the policy made of it — denied, warned, waived or below the threshold — in any case, on both stores;
through both query plans (a rare finding collected from the index, a common one probed record by record
in seq order), which must select the same records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from gate.decisions.interface import DecisionQuery
from gate.decisions.sql import SqlStore
from gate.decisions.store import open_store
from tests.conftest import Run
from tests.decisions.logcheck import make_decision, violation, waiver

RECORDS = 60


def finding(rule: str, fid: str, severity: str = "high") -> dict[str, Any]:
    return {"id": fid, "scanner": "trivy", "kind": "vulnerability", "rule": rule, "severity": severity, "title": rule}


def _decision(i: int) -> Any:
    """Record i (1-based): every one holds CVE-2023-0001 (a common finding); some hold a rare one, each
    in a different role; the rules are stored in mixed case, as scanners write them."""
    findings = [finding("CVE-2023-0001", f"common-{i}")]
    violations, warnings, waivers = (), (), ()
    if i == 7:  # denied
        findings.append(finding("Cve-2024-Rare", "Deny-7"))
        violations = (violation("vulnerabilities.severity", "Deny-7"),)
    if i == 20:  # warned
        findings.append(finding("GHSA-abcd-efgh-ijkl", "warn-20", severity="medium"))
        warnings = (violation("vulnerabilities.severity_warning", "warn-20"),)
    if i == 33:  # waived
        findings.append(finding("CVE-2024-RARE", "waived-33", severity="critical"))
        waivers = (waiver("W-33", "CVE-2024-RARE"),)
    if i == 45:  # below the threshold: present, and nothing made of it
        findings.append(finding("cve-2024-rare", "low-45", severity="low"))
    decision = make_decision(
        outcome="deny" if violations else "allow", findings=tuple(findings), violations=violations, waivers=waivers,
        environment="staging" if i % 2 else "prod",
    )
    return msgspec.structs.replace(decision, warnings=warnings)


@pytest.fixture
def findings_log(store_url: str) -> list[str]:
    """RECORDS decisions; returns their ids in append order."""
    from gate.decisions.signing import load_signer

    signer = load_signer()
    store = open_store(store_url)
    try:
        return [store.append(_decision(i), signer).decision_id for i in range(1, RECORDS + 1)]
    finally:
        store.close()


def seqs(ids: list[str], found: Iterator[Any]) -> list[int]:
    position = {decision_id: n for n, decision_id in enumerate(ids, start=1)}
    return [position[d.decision_id] for d in found]


QUERIES: list[tuple[dict[str, Any], list[int]]] = [
    ({"finding": "cve-2024-rare"}, [45, 33, 7]),
    ({"finding": "CVE-2024-RARE", "limit": 2}, [45, 33]),
    ({"finding": "CVE-2024-RARE", "oldest_first": True, "limit": 2}, [7, 33]),
    ({"finding": "cve-2024-rare", "waived": True}, [33]),
    ({"finding": "cve-2024-rare", "outcome": "deny"}, [7]),
    ({"finding": "ghsa-ABCD-efgh-ijkl"}, [20]),
    ({"finding": "WAIVED-33"}, [33]),
    ({"finding": "CVE-2023-0001", "limit": 3}, [60, 59, 58]),
    ({"finding": "cve-2023-0001", "limit": 2, "environment": "staging"}, [59, 57]),
    ({"finding": "cve-2023-0001", "limit": 2, "oldest_first": True}, [1, 2]),
    ({"finding": "cve-2023-0001", "rule": "VULNERABILITIES.SEVERITY"}, [7]),
    ({"finding": "cve-2023-0001", "waiver": "W-33", "limit": 5}, [33]),
    ({"finding": "cve-2023-0001"}, list(range(RECORDS, 0, -1))),
    ({"finding": "cve-2099-0000", "limit": 5}, []),
]


@pytest.mark.parametrize("plan", ["chosen", "collect", "walk"])
def test_both_plans_select_the_same_records(
    store_url: str, findings_log: list[str], plan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if plan != "chosen":
        monkeypatch.setattr(SqlStore, "_walk_findings", lambda self, query: plan == "walk")
    store = open_store(store_url)
    try:
        for fields, expected in QUERIES:
            assert seqs(findings_log, store.query(DecisionQuery(**fields))) == expected, fields
    finally:
        store.close()


def test_the_plan_follows_how_common_the_finding_is(
    store_url: str, findings_log: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(store_url)
    try:
        assert isinstance(store, SqlStore)
        assert store._walk_findings(DecisionQuery(finding="CVE-2023-0001", limit=2)) is False  # 60 records: collected
        monkeypatch.setattr(SqlStore, "finding_sample", 10)
        # in all of the 10 newest records: 2 matches are met within 2 probes
        assert store._walk_findings(DecisionQuery(finding="cve-2023-0001", limit=2)) is True
        assert store._walk_findings(DecisionQuery(finding="cve-2023-0001", limit=2, oldest_first=True)) is True
        assert store._walk_findings(DecisionQuery(finding="CVE-2024-RARE", limit=2)) is False  # none of the 10
        assert store._walk_findings(DecisionQuery(finding="CVE-2024-RARE", limit=2, oldest_first=True)) is False
        assert store._walk_findings(DecisionQuery(finding="CVE-2023-0001")) is False  # no limit: collect them all
        assert seqs(findings_log, store.query(DecisionQuery(finding="CVE-2023-0001", limit=2))) == [60, 59]
    finally:
        store.close()


def test_list_finding_through_the_cli(gate: Callable[..., Run], findings_log: list[str]) -> None:
    def listed(*flags: str) -> list[int]:
        run = gate("decisions", "list", "--format", "json", *flags)
        assert run.code == 0, run.err
        return [findings_log.index(d["decision_id"]) + 1 for d in run.json()["decisions"]]

    assert listed("--finding", "Cve-2024-rare") == [45, 33, 7]
    assert listed("--finding", "cve-2024-RARE", "--limit", "1") == [45]
    assert listed("--finding", "cve-2024-rare", "--waived") == [33]
    assert listed("--rule", "cve-2024-rare") == [7]  # --rule: a deny reason names it; waived and low ones are not
    assert listed("--rule", "Vulnerabilities.Severity") == [7]
    text = gate("decisions", "list", "--finding", "ghsa-abcd-efgh-ijkl")
    assert text.code == 0 and findings_log[19] in text.out and findings_log[6] not in text.out
    csv_out = gate("decisions", "list", "--finding", "WARN-20", "--format", "csv")
    assert csv_out.code == 0 and len(csv_out.out.splitlines()) == 2 and findings_log[19] in csv_out.out


# --- a log written before documents (schema 3): migrated on open, then searched --------------------


def _legacy_log(url: str, decisions: list[Any]) -> list[Any]:
    """A schema-3 log as gate wrote it before migration 4: the whole input inline in each record
    (hashed the legacy way), rules indexed as spelled. Written behind the store's back."""
    from gate.decisions import postgres, sqlite
    from gate.decisions.record import record_hash
    from gate.decisions.signing import load_signer
    from gate.decisions.sql import COLUMNS, column_values
    from tests.decisions.logcheck import raw

    pg = url.startswith("postgresql://")
    migrations = postgres.MIGRATIONS[:3] if pg else sqlite.MIGRATIONS[:3]
    for step in migrations:
        assert isinstance(step, str)
        for statement in filter(str.strip, step.split(";")):
            raw(url, statement)
    if pg:
        raw(url, "create table gate_schema (version int primary key, applied_at timestamptz not null default now())")
        raw(url, "insert into gate_schema (version) values (1), (2), (3)")
    else:
        raw(url, "pragma user_version = 3")
    signer = load_signer()
    stored, prev = [], None
    for seq, decision in enumerate(decisions, start=1):
        linked = msgspec.structs.replace(decision, prev_hash=prev, signing_key=signer.key_id)
        digest = record_hash(linked)  # input_parts None: the legacy hash, input left out
        chained = msgspec.structs.replace(linked, hash=digest, signature=signer.sign(digest))
        marks = ", ".join("?" * (len(COLUMNS) + 1))
        record = msgspec.json.encode(chained).decode()
        raw(url, f"insert into decisions (seq, {', '.join(COLUMNS)}) values ({marks})", (seq, *column_values(chained), record))
        named = {i for v in chained.violations for i in v.finding_ids}
        rules = {v.rule for v in chained.violations} | {f["rule"] for f in chained.input["findings"] if f["id"] in named}
        for rule in rules:
            raw(url, "insert into decision_rules (seq, rule) values (?, ?)", (seq, rule))
        for w in chained.waivers:
            raw(url, "insert into decision_waivers (seq, waiver_id, rule, expires) values (?, ?, ?, ?)", (seq, w.id, w.rule, w.expires))
        stored.append(chained)
        prev = digest
    if pg:  # SQLite's sqlite_sequence follows the inserted seqs by itself
        raw(url, "update decision_log_head set last_seq = ?", (len(decisions),))
    return stored


def test_a_migrated_log_is_searched_by_finding_and_rule_in_any_case(gate: Callable[..., Run], store_url: str) -> None:
    denied = make_decision(
        outcome="deny", findings=(finding("CVE-2022-22965", "Spring-1", "critical"),),
        violations=(violation("Vulnerabilities.Severity", "Spring-1"),),
    )
    waived = make_decision(
        findings=(finding("CVE-2022-22965", "spring-2", "critical"), finding("CVE-2019-1549", "ssl-2", "medium")),
        waivers=(waiver("W-1", "CVE-2022-22965"),),
    )
    low = make_decision(findings=(finding("cve-2019-1549", "ssl-3", "medium"),))
    legacy = _legacy_log(store_url, [denied, waived, low])

    def listed(*flags: str) -> list[int]:
        run = gate("decisions", "list", "--format", "json", *flags)
        assert run.code == 0, run.err
        ids = [d.decision_id for d in legacy]
        return [ids.index(d["decision_id"]) + 1 for d in run.json()["decisions"]]

    assert listed("--finding", "cve-2022-22965") == [2, 1]
    assert listed("--finding", "CVE-2019-1549") == [3, 2]  # below the threshold, in two spellings
    assert listed("--finding", "SSL-3") == [3]  # a finding id
    assert listed("--finding", "cve-2022-22965", "--limit", "1") == [2]
    assert listed("--rule", "cve-2022-22965") == [1]  # lowercased by the migration
    assert listed("--rule", "vulnerabilities.severity") == [1]
    assert listed("--rule", "CVE-2019-1549") == []
    verified = gate("decisions", "verify")
    assert verified.code == 0 and verified.out.startswith("3 records intact"), verified.out
    shown = gate("decisions", "show", legacy[1].decision_id, "--format", "json").json()
    assert shown["input"] == legacy[1].input  # the input moved to a document comes back whole
