"""Content-addressed input and data documents in the decision log (issue 11): each distinct document
stored once, zstd-compressed; records reference them by digest (format v2); earlier logs migrate on
open; show/export/replay return the full input; verify names an edited, swapped or deleted document
and a redirected reference; decision trust catches a tampered document. Both stores throughout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zstandard

from gate.decisions import postgres as pg_store
from gate.decisions import sqlite as sqlite_store
from gate.decisions.documents import compress, split
from gate.decisions.index import index_rows
from gate.decisions.interface import DecisionQuery, UndecodableRecord
from gate.decisions.record import Decision, canonical_json, record_hash, sha256_digest
from gate.decisions.signing import load_signer, load_trusted_keys
from gate.decisions.sql import column_values
from gate.decisions.store import open_store
from gate.decisions.trust import check_decision
from tests.conftest import DATA, DIGEST, ROOT, Run
from tests.decisions.logcheck import make_decision, raw, violation, waiver

POLICIES = ROOT / "policies"
REF = f"registry.example.com/shop/cart:1.4.2@{DIGEST}"
SPRING = DATA / "trivy" / "trivy-image-spring4shell-jre11-jar.json"
FINDINGS_1 = ({"id": "f1", "rule": "CVE-2024-1111", "severity": "high"}, {"id": "f2", "rule": "CVE-2024-2222", "severity": "low"})
FINDINGS_2 = ({"id": "g1", "rule": "CKV_K8S_8", "severity": "medium"},)


def evaluate(gate: Callable[..., Run], *extra: Any) -> dict[str, Any]:
    run = gate("evaluate", "--report", f"auto={SPRING}", "--policy", POLICIES, "--image", REF, "--env", "prod",
               "--format", "json", *extra)
    assert run.code in (0, 1), run.err
    return run.json()


def documents(url: str) -> dict[str, bytes]:
    return {str(d): bytes(b) for d, b in raw(url, "select digest, body from documents")}


def stored_record(url: str, seq: int) -> dict[str, Any]:
    (row,) = raw(url, "select record from decisions where seq = ?", (seq,))
    return json.loads(row[0].decode() if isinstance(row[0], bytes) else row[0])


# --- the record format --------------------------------------------------------------------------


def test_both_forms_of_a_record_hash_the_same_and_a_record_from_before_v2_as_before() -> None:
    decision = make_decision(findings=FINDINGS_1, violations=(violation("r", "f1"),))
    decision = msgspec.structs.replace(decision, data={"waivers": [{"id": "W-1"}]})
    parts = split(decision)
    assert set(parts.full.input_parts or {}) == {"findings"} and "findings" not in parts.stored.input
    assert parts.stored.data is None and parts.full.data_digest == sha256_digest(decision.data)
    assert record_hash(parts.full) == record_hash(parts.stored)
    # a changed findings document changes the full form's hash: trust, which checks the full form, sees it
    edited = msgspec.structs.replace(parts.full, input={**parts.full.input, "findings": list(FINDINGS_2)})
    assert record_hash(edited) != record_hash(parts.full)
    # before v2 (no input_parts) the hash leaves the whole input out, exactly as it always did
    body = msgspec.structs.replace(decision, input={})
    assert record_hash(decision) == sha256_digest(body) and "input_parts" not in msgspec.json.decode(msgspec.json.encode(decision))


# --- round trip and dedup -----------------------------------------------------------------------


def test_show_export_and_replay_return_the_full_input_and_one_report_is_stored_once(
    gate: Callable[..., Run], store_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "thresholds.json"
    data.write_text(json.dumps({"gate": {"thresholds": {"prod": {"max_severity": "critical"}}}}))
    first = evaluate(gate, "--data", data)
    second = evaluate(gate, "--data", data)
    assert first["input_parts"] == second["input_parts"] and first["data_digest"] == second["data_digest"]
    # the findings and the data: stored once for both decisions, referenced by both
    stored = documents(store_url)
    assert set(stored) == {first["input_parts"]["findings"], first["data_digest"]}
    assert sorted(raw(store_url, "select seq, digest from decision_documents")) == sorted(
        (seq, d) for seq in (1, 2) for d in (first["input_parts"]["findings"], first["data_digest"])
    )
    row = stored_record(store_url, 2)
    assert "findings" not in row["input"] and "data" not in row and row["data_digest"] == first["data_digest"]
    body = zstandard.ZstdDecompressor().decompress(stored[first["input_parts"]["findings"]])
    assert body == canonical_json(second["input"]["findings"])
    # show and export give the whole input (and data) back, hashing to its input_digest
    shown = gate("decisions", "show", second["decision_id"], "--format", "json").json()
    assert shown["input"] == second["input"] and shown["data"] == second["data"]
    assert sha256_digest(shown["input"]) == shown["input_digest"]
    exported = [json.loads(line) for line in gate("decisions", "export").out.splitlines()]
    assert [(e["input"], e["data"]) for e in exported] == [(first["input"], first["data"]), (second["input"], second["data"])]
    replayed = gate("decisions", "replay", "--policy", POLICIES, "--format", "json")
    assert replayed.code == 0, replayed.out + replayed.err
    assert (replayed.json()["replayed"], replayed.json()["unchanged"], replayed.json()["errors"]) == (2, 2, 0)
    # a listing does not read documents, and each entry still verifies
    listed = gate("decisions", "list", "--format", "json").json()["decisions"]
    assert all("findings" not in e["input"] for e in listed)
    assert all(record_hash(msgspec.convert(e, Decision)) == e["hash"] for e in listed)
    assert gate("decisions", "verify").code == 0


def test_finding_index_rows_are_lowercased_once_per_document(store_url: str) -> None:
    store = open_store(store_url)
    try:
        for _ in range(3):
            store.append(make_decision(findings=FINDINGS_1, violations=(violation("Vulnerabilities.Severity", "f1"),)))
    finally:
        store.close()
    terms = sorted(raw(store_url, "select finding from document_findings"))
    assert terms == [("cve-2024-1111",), ("cve-2024-2222",), ("f1",), ("f2",)]
    assert sorted(set(raw(store_url, "select rule from decision_rules"))) == [("cve-2024-1111",), ("vulnerabilities.severity",)]


def test_a_record_read_without_input_touches_no_document(store_url: str) -> None:
    store = open_store(store_url)
    try:
        appended = store.append(make_decision(findings=FINDINGS_1))
        raw(store_url, "delete from documents")
        (listed,) = store.query(DecisionQuery(with_input=False))
        assert listed.input_parts == appended.input_parts and "findings" not in listed.input
        with pytest.raises(UndecodableRecord) as caught:
            store.get(appended.decision_id)
        assert f"record seq 1 (decision {appended.decision_id})" in str(caught.value)
        assert f"document {appended.input_parts['findings']} is missing: run gate decisions verify" in str(caught.value)  # type: ignore[index]
    finally:
        store.close()


# --- migration of a schema-3 log ------------------------------------------------------------------


def _legacy_log(url: str, decisions: list[Decision], *, tamper_input_of: int | None = None) -> list[Decision]:
    """A log as gate wrote it before format v2: schema 3, whole inputs in the records, hashed with the
    input left out and signed; ``tamper_input_of`` (a seq) has its input edited afterwards."""
    postgres = url.startswith("postgresql://")
    migrations = pg_store.MIGRATIONS[:3] if postgres else sqlite_store.MIGRATIONS[:3]
    statements = [s for step in migrations for s in str(step).split(";") if s.strip()]
    if postgres:
        statements += ["create table gate_schema (version int primary key, applied_at timestamptz not null default now())",
                       "insert into gate_schema (version) values (1), (2), (3)"]
    for statement in statements:
        raw(url, statement)
    if not postgres:
        raw(url, "pragma user_version = 3")
    signer = load_signer()
    chained: list[Decision] = []
    prev: str | None = None
    for seq, decision in enumerate(decisions, start=1):
        linked = msgspec.structs.replace(decision, prev_hash=prev, signing_key=signer.key_id)
        digest = record_hash(linked)
        assert digest == sha256_digest(msgspec.structs.replace(linked, input={}))  # the hash before v2
        linked = msgspec.structs.replace(linked, hash=digest, signature=signer.sign(digest))
        record = msgspec.to_builtins(linked)
        if seq == tamper_input_of:
            record["input"]["environment"] = "dev"
        text = json.dumps(record)
        raw(url, "insert into decisions (seq, decision_id, timestamp, outcome, environment, image, digest, policy_digest,"
            " policy_revision, prev_hash, hash, record) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, *column_values(linked), text if postgres else text.encode()))
        rules = {v.rule for v in linked.violations} | {
            f["rule"] for f in linked.input["findings"] if f["id"] in {i for v in linked.violations for i in v.finding_ids}
        }
        for rule in rules:  # as written then: in the case of the report
            raw(url, "insert into decision_rules (seq, rule) values (?, ?)", (seq, rule))
        for row in index_rows(linked).waivers:
            raw(url, "insert into decision_waivers (seq, waiver_id, rule, expires) values (?, ?, ?, ?)", (seq, *row))
        chained.append(linked)
        prev = digest
    if postgres:
        raw(url, "update decision_log_head set last_seq = ?", (len(decisions),))
    return chained


def _legacy_decisions() -> list[Decision]:
    return [
        make_decision(findings=FINDINGS_1, violations=(violation("vulnerabilities.severity", "f2"),), outcome="deny"),
        make_decision(findings=FINDINGS_2, waivers=(waiver("W-1", "CKV_K8S_8"),)),
        make_decision(findings=FINDINGS_1, violations=(violation("vulnerabilities.severity", "f2"),), outcome="deny"),
    ]


def test_a_schema_3_log_migrates_on_open_and_its_records_still_verify(gate: Callable[..., Run], store_url: str) -> None:
    legacy = _legacy_log(store_url, _legacy_decisions())
    assert gate("decisions", "verify").code == 0  # opening migrates: inputs move out, hashes unchanged
    assert all(stored_record(store_url, seq)["input"] == {} for seq in (1, 2, 3))
    assert set(documents(store_url)) == {legacy[0].input_digest, legacy[1].input_digest}  # 1 and 3: one input
    shown = gate("decisions", "show", legacy[1].decision_id, "--format", "json").json()
    assert shown["input"] == legacy[1].input and shown["hash"] == legacy[1].hash
    found = gate("decisions", "list", "--finding", "cve-2024-1111", "--format", "json").json()["decisions"]
    assert [d["decision_id"] for d in found] == [legacy[2].decision_id, legacy[0].decision_id]
    ruled = gate("decisions", "list", "--rule", "cve-2024-2222", "--format", "json").json()["decisions"]
    assert [d["decision_id"] for d in ruled] == [legacy[2].decision_id, legacy[0].decision_id]
    # new records go on the same chain in format v2
    store = open_store(store_url)
    try:
        new = store.append(make_decision(findings=FINDINGS_1), load_signer())
    finally:
        store.close()
    assert new.prev_hash == legacy[2].hash and new.input_parts is not None
    assert gate("decisions", "verify").code == 0


def test_a_legacy_input_edited_before_the_migration_is_named_after_it(gate: Callable[..., Run], store_url: str) -> None:
    legacy = _legacy_log(store_url, _legacy_decisions(), tamper_input_of=2)
    run = gate("decisions", "verify")
    assert run.code == 1
    assert f"record seq 2 (decision {legacy[1].decision_id})" in run.out
    assert f"document {legacy[1].input_digest} missing" in run.out


# --- tampering with the documents -----------------------------------------------------------------


@pytest.fixture
def signed_log(store_url: str) -> list[Decision]:
    """Four signed records: two on findings document 1, two on findings document 2."""
    signer = load_signer()
    store = open_store(store_url)
    try:
        return [
            store.append(make_decision(findings=findings, timestamp=f"2026-01-0{i}T10:00:00Z"), signer)
            for i, findings in enumerate((FINDINGS_1, FINDINGS_2, FINDINGS_1, FINDINGS_2), start=1)
        ]
    finally:
        store.close()


def _findings_digest(decision: Decision) -> str:
    assert decision.input_parts is not None
    return decision.input_parts["findings"]


def _put_body(url: str, digest: str, body: bytes) -> None:
    raw(url, "update documents set body = ? where digest = ?", (body, digest))


def _edit(url: str, log: list[Decision]) -> tuple[int, str]:
    target = _findings_digest(log[1])
    edited = [dict(f, severity="info") for f in FINDINGS_2]
    _put_body(url, target, compress(canonical_json(edited)))
    return 2, target


def _swap(url: str, log: list[Decision]) -> tuple[int, str]:
    one, two = _findings_digest(log[0]), _findings_digest(log[1])
    bodies = documents(url)
    _put_body(url, one, bodies[two])
    _put_body(url, two, bodies[one])
    return 1, one


def _delete(url: str, log: list[Decision]) -> tuple[int, str]:
    target = _findings_digest(log[1])
    raw(url, "delete from documents where digest = ?", (target,))
    return 2, target


def _redirect(url: str, log: list[Decision]) -> tuple[int, str]:
    """Record 3's indexed reference pointed at another existing document."""
    raw(url, "update decision_documents set digest = ? where seq = 3", (_findings_digest(log[1]),))
    return 3, _findings_digest(log[0])


def _redirect_in_record(url: str, log: list[Decision]) -> tuple[int, str]:
    """Record 3's own reference (and its index row) pointed at another existing document."""
    record = stored_record(url, 3)
    record["input_parts"]["findings"] = _findings_digest(log[1])
    raw(url, "update decisions set record = ? where seq = 3", (json.dumps(record),))
    raw(url, "update decision_documents set digest = ? where seq = 3", (_findings_digest(log[1]),))
    return 3, "edited: its contents hash to"


def _findings_rows(url: str, log: list[Decision]) -> tuple[int, str]:
    """Hide record 2 from `decisions list --finding CKV_K8S_8`."""
    raw(url, "delete from document_findings where finding = 'ckv_k8s_8'")
    return 2, _findings_digest(log[1])


TAMPERING: dict[str, tuple[Callable[[str, list[Decision]], tuple[int, str]], str]] = {
    "edited document": (_edit, "edited: its contents hash to"),
    "swapped documents": (_swap, "edited: its contents hash to"),
    "deleted document": (_delete, "missing: deleted from the log"),
    "redirected reference": (_redirect, "document references edited"),
    "redirected in the record": (_redirect_in_record, "edited: its contents hash to"),
    "findings rows deleted": (_findings_rows, "findings index edited"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_verify_names_the_record_and_the_tampered_document(
    case: str, gate: Callable[..., Run], store_url: str, signed_log: list[Decision]
) -> None:
    assert gate("decisions", "verify").code == 0
    tamper, words = TAMPERING[case]
    seq, named = tamper(store_url, signed_log)
    run = gate("decisions", "verify")
    assert run.code == 1, run.out
    assert f"record seq {seq} (decision {signed_log[seq - 1].decision_id})" in run.out, run.out
    assert named in run.out and words in run.out, run.out


@pytest.mark.parametrize("case", ["edited document", "swapped documents"])
def test_a_tampered_document_is_never_served_and_trust_catches_it_in_a_full_record(
    case: str, gate: Callable[..., Run], store_url: str, signed_log: list[Decision]
) -> None:
    """Reads re-hash every document: show, export and replay fail closed instead of using an edited input;
    and the trust check alone still catches a full record whose input is not what was hashed."""
    from datetime import UTC, datetime

    import msgspec.structs

    seq, digest = TAMPERING[case][0](store_url, signed_log)
    wanted = signed_log[seq - 1]
    show = gate("decisions", "show", wanted.decision_id)
    assert show.code == 2 and "Traceback" not in show.err, show.err
    assert f"document {digest} edited: its contents hash to" in show.err, show.err
    export = gate("decisions", "export")  # the intact records are written, the tampered one named
    assert export.code == 2 and f"record seq {seq} (decision {wanted.decision_id})" in export.err, export.err
    assert wanted.decision_id not in export.out
    if case == "edited document":  # records on the other, intact document are still exported
        assert signed_log[0].decision_id in export.out and signed_log[2].decision_id in export.out
    store = open_store(store_url)
    try:
        with pytest.raises(UndecodableRecord, match="edited: its contents hash to"):
            store.get(wanted.decision_id)
    finally:
        store.close()
    other = signed_log[1 if seq == 1 else 0]  # a full record carrying the other findings
    tampered = msgspec.structs.replace(wanted, input={**wanted.input, "findings": other.input["findings"]})
    check = check_decision(tampered, load_trusted_keys(), datetime(2026, 1, 9, tzinfo=UTC))
    assert check.integrity_problem is not None and check.integrity_problem.startswith("edited: its contents hash to")
    assert any("the record was altered" in p for p in check.problems)


def test_a_deleted_document_fails_show_closed(gate: Callable[..., Run], store_url: str, signed_log: list[Decision]) -> None:
    _delete(store_url, signed_log)
    run = gate("decisions", "show", signed_log[1].decision_id)
    assert run.code == 2 and "Traceback" not in run.err
    assert f"document {_findings_digest(signed_log[1])} is missing: run gate decisions verify" in run.err


def _deny_with_many_reasons(timestamp: str) -> Decision:
    findings = tuple({"id": f"f{i}", "rule": f"CVE-2024-{i:04d}"} for i in range(40))
    reasons = tuple(violation("vulnerabilities.severity", f"f{i}") for i in range(40))
    return make_decision(outcome="deny", findings=findings, violations=reasons, timestamp=timestamp)


def test_large_results_are_one_document_shared_by_re_evaluations(gate: Callable[..., Run], store_url: str) -> None:
    """Violations and warnings of 1 KiB or more are kept once, like the input: the record holds their digest."""
    signer = load_signer()
    store = open_store(store_url)
    try:
        first, again = (store.append(_deny_with_many_reasons(f"2026-01-0{i}T10:00:00Z"), signer) for i in (1, 2))
    finally:
        store.close()
    assert first.results_digest is not None and first.results_digest == again.results_digest
    assert len(first.violations) == 40  # the full form carries them
    assert stored_record(store_url, 2)["violations"] == [] and stored_record(store_url, 2)["results_digest"] == first.results_digest
    assert first.results_digest in documents(store_url)
    shown = gate("decisions", "show", again.decision_id, "--format", "json")
    assert shown.code == 0 and len(shown.json()["violations"]) == 40
    listed = gate("decisions", "list", "--format", "json").json()["decisions"]
    assert [len(d["violations"]) for d in listed] == [40, 40]
    for entry in listed:  # an entry of the listing still verifies on its own
        assert record_hash(msgspec.convert(entry, Decision)) == entry["hash"]
    assert gate("decisions", "list", "--rule", "cve-2024-0007", "--format", "json").json()["decisions"]
    assert gate("decisions", "verify").code == 0


def test_violations_written_beside_a_results_digest_are_named_and_never_served(
    gate: Callable[..., Run], store_url: str
) -> None:
    signer = load_signer()
    store = open_store(store_url)
    try:
        deny = store.append(_deny_with_many_reasons("2026-01-01T10:00:00Z"), signer)
    finally:
        store.close()
    record = stored_record(store_url, 1)
    record["violations"] = [{"rule": "nothing.to.see", "message": "all fine", "severity": "low"}]
    raw(store_url, "update decisions set record = ? where seq = 1", (json.dumps(record, sort_keys=True),))
    run = gate("decisions", "verify")
    assert run.code == 1 and "record seq 1" in run.out and "written beside its results_digest" in run.out, run.out
    shown = gate("decisions", "show", deny.decision_id, "--format", "json")
    assert [v["rule"] for v in shown.json()["violations"]] == ["vulnerabilities.severity"] * 40


def test_an_edited_results_document_is_named_by_verify_and_not_served(gate: Callable[..., Run], store_url: str) -> None:
    signer = load_signer()
    store = open_store(store_url)
    try:
        deny = store.append(_deny_with_many_reasons("2026-01-01T10:00:00Z"), signer)
    finally:
        store.close()
    assert deny.results_digest is not None
    _put_body(store_url, deny.results_digest, compress(canonical_json({"violations": [], "warnings": []})))
    run = gate("decisions", "verify")
    assert run.code == 1 and deny.results_digest in run.out and "edited: its contents hash to" in run.out, run.out
    shown = gate("decisions", "show", deny.decision_id)
    assert shown.code == 2 and f"document {deny.results_digest} edited" in shown.err
