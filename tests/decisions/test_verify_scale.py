"""`gate decisions verify` at scale, on both stores (SQLite, real PostgreSQL 15):

- the walk split between processes (seq ranges, each worker on its own connection) reports exactly
  what one walk reports — a problem inside a later range, at a range's first record (its place is
  checked by the parent), across a boundary, in the tail;
- signed checkpoints (`--checkpoint`): a later verify still re-hashes and re-links every record but
  skips the Ed25519 check of signatures up to the checkpoint; a forged, untrusted, stale, deleted or
  out-of-date checkpoint never lets through what a full verify refuses;
- `--since-head H`: only the records after H, the documents they reference, and the events.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gate.decisions.checkpoints import Checkpoints, assess, make_checkpoint
from gate.decisions.record import Decision, record_hash
from gate.decisions.signing import generate_keypair, load_signer, load_trusted_keys
from gate.decisions.store import open_store
from gate.decisions.verify import verify_log
from tests.conftest import Run
from tests.decisions.logcheck import make_decision, raw, violation
from tests.decisions.test_signing_verify import put_record, record_of

#: 3 processes over 30 records: ranges 1-10, 11-20, 21-30
RECORDS = 30


def build(url: str, n: int = RECORDS, start: int = 0) -> list[Decision]:
    """``n`` signed records, each with findings of its own (so its own findings document)."""
    signer = load_signer()
    store = open_store(url)
    try:
        records = []
        for i in range(start, start + n):
            findings = ({"scanner": "trivy", "rule": f"CVE-2026-{i:04d}", "id": f"CVE-2026-{i:04d}", "severity": "high"},)
            outcome = "deny" if i % 3 == 0 else "allow"
            violations = (violation("vulnerabilities.severity", f"CVE-2026-{i:04d}"),) if outcome == "deny" else ()
            records.append(store.append(make_decision(outcome=outcome, violations=violations, findings=findings), signer))
        return records
    finally:
        store.close()


@pytest.fixture
def log(store_url: str) -> list[Decision]:
    return build(store_url)


def report(url: str, processes: int, **options: Any) -> dict[str, Any]:
    store = open_store(url, create=False)
    try:
        return verify_log(store, load_trusted_keys(), processes=processes, **options).as_dict()
    finally:
        store.close()


def _edit_in_second_range(url: str, log: list[Decision]) -> None:
    record = record_of(url, 15)
    put_record(url, 15, {**record, "outcome": "deny" if record["outcome"] == "allow" else "allow"})


def _edit_boundary_record(url: str, log: list[Decision]) -> None:
    record = record_of(url, 11)  # the first record of the second range
    put_record(url, 11, {**record, "environment": "dev"})


def _delete_boundary_record(url: str, log: list[Decision]) -> None:
    raw(url, "delete from decisions where seq = 11")


def _swap_across_boundary(url: str, log: list[Decision]) -> None:
    """Records 10 and 11 trade places, with their index rows: only the chain shows it."""
    for table in ("decisions", "decision_rules", "decision_waivers", "decision_documents"):
        raw(url, f"update {table} set seq = -1 where seq = 10")
        raw(url, f"update {table} set seq = 10 where seq = 11")
        raw(url, f"update {table} set seq = 11 where seq = -1")


def _boundary_signature(url: str, log: list[Decision]) -> None:
    record = record_of(url, 21)
    put_record(url, 21, {**record, "signature": log[0].signature})


def _two_problems(url: str, log: list[Decision]) -> None:
    """A bad signature in the third range and an edit in the second: the second's comes first."""
    _boundary_signature(url, log)
    raw(url, "update decisions set hash = ? where seq = 17", ("sha256:" + "1" * 64,))


def _undecodable_boundary(url: str, log: list[Decision]) -> None:
    raw(url, "update decisions set record = ? where seq = 21", ('{"decision_id": 42',))


def _delete_tail(url: str, log: list[Decision]) -> None:
    raw(url, "delete from decisions where seq > 27")


#: tampering → (first bad seq, words of the problem)
TAMPERING: dict[str, tuple[Callable[[str, list[Decision]], None], int, str]] = {
    "edit in the second range": (_edit_in_second_range, 15, "edited: its contents hash to"),
    "edit of a range's first record": (_edit_boundary_record, 11, "edited"),
    "a range's first record deleted": (_delete_boundary_record, 12, "missing before it: seq 11 deleted"),
    "records swapped across a boundary": (_swap_across_boundary, 10, "chain broken"),
    "bad signature on a range's first record": (_boundary_signature, 21, "bad signature"),
    "two problems in two ranges": (_two_problems, 17, "hash column edited"),
    "undecodable first record": (_undecodable_boundary, 21, "cannot be decoded"),
    "tail cut": (_delete_tail, 28, "deleted from the end of the log"),
}


def test_parallel_verify_of_an_intact_log_is_the_one_walk(store_url: str, log: list[Decision]) -> None:
    one = report(store_url, processes=1)
    assert one["ok"] and one["count"] == RECORDS and one["head"] == log[-1].hash and one["head_seq"] == RECORDS
    assert report(store_url, processes=3) == one
    assert report(store_url, processes=RECORDS + 5) == one  # more processes than records: ranges of one


@pytest.mark.parametrize("case", list(TAMPERING))
def test_parallel_verify_names_the_same_first_problem_as_one_walk(case: str, store_url: str, log: list[Decision]) -> None:
    tamper, seq, words = TAMPERING[case]
    tamper(store_url, log)
    one = report(store_url, processes=1)
    assert one["ok"] is False and one["first_bad"]["seq"] == seq and words in one["problem"], one
    assert report(store_url, processes=3) == one
    assert report(store_url, processes=2) == one


def test_cli_parallel_verify_names_a_tampered_record_in_the_second_range_and_at_the_boundary(
    gate: Callable[..., Run], store_url: str, log: list[Decision]
) -> None:
    assert gate("decisions", "verify", "--processes", "3").out.startswith(f"{RECORDS} records intact")
    _edit_in_second_range(store_url, log)
    run = gate("decisions", "verify", "--processes", "3")
    assert run.code == 1
    assert run.out.startswith(f"verify failed at record seq 15 (decision {log[14].decision_id}): edited")
    assert run.out.splitlines()[0].endswith("; 14 intact before it")

    _edit_boundary_record(store_url, log)
    run = gate("decisions", "verify", "--processes", "3", "--format", "json")
    assert run.code == 1
    body = run.json()
    assert body["first_bad"] == {"seq": 11, "decision_id": log[10].decision_id}
    assert body["count"] == 10 and body["head_hash"] == log[9].hash


def test_processes_must_be_positive(gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    run = gate("decisions", "verify", "--processes", "0")
    assert run.code == 2 and "--processes 0" in run.err


# --- signed checkpoints -------------------------------------------------------------------------


def _corrupt_signature(url: str, seq: int) -> None:
    """Signature bytes changed, still 64 bytes of base64: only an Ed25519 check can tell."""
    record = record_of(url, seq)
    raw_signature = bytearray(base64.b64decode(record["signature"]))
    raw_signature[5] ^= 0xFF
    put_record(url, seq, {**record, "signature": base64.b64encode(bytes(raw_signature)).decode()})


def test_a_checkpoint_vouches_for_signatures_up_to_its_seq_and_nothing_else(
    gate: Callable[..., Run], store_url: str, log: list[Decision]
) -> None:
    run = gate("decisions", "verify", "--checkpoint", "--format", "json")
    assert run.code == 0, run.out + run.err
    written = run.json()["checkpoint"]["written"]
    assert (written["seq"], written["hash"], written["count"]) == (RECORDS, log[-1].hash, RECORDS)
    assert written["signing_key"] == load_signer().key_id
    assert run.json()["checkpoint"]["used"] is None

    # a signature corrupted before the checkpoint: the checkpoint vouches it verified; --full checks it
    _corrupt_signature(store_url, 4)
    run = gate("decisions", "verify", "--format", "json")
    assert run.code == 0, run.out
    assert run.json()["checkpoint"]["used"]["seq"] == RECORDS and run.json()["count"] == RECORDS
    run = gate("decisions", "verify")
    assert f"signatures up to seq {RECORDS} vouched for by the checkpoint at seq {RECORDS}" in run.out
    run = gate("decisions", "verify", "--full")
    assert run.code == 1 and run.out.startswith("verify failed at record seq 4 ") and "bad signature" in run.out

    # after the checkpoint every signature is checked
    (newer,) = build(store_url, 1, start=100)
    _corrupt_signature(store_url, RECORDS + 1)
    run = gate("decisions", "verify")
    assert run.code == 1 and f"record seq {RECORDS + 1} (decision {newer.decision_id}): bad signature" in run.out

    # and every record before it is still re-hashed and re-linked
    raw(store_url, "delete from decisions where seq = ?", (RECORDS + 1,))
    _edit_in_second_range(store_url, log)
    run = gate("decisions", "verify")
    assert run.code == 1 and run.out.startswith("verify failed at record seq 15 ") and "edited" in run.out


def test_checkpoints_are_used_by_the_parallel_walk_too(
    gate: Callable[..., Run], store_url: str, log: list[Decision]
) -> None:
    assert gate("decisions", "verify", "--checkpoint").code == 0
    _corrupt_signature(store_url, 25)
    assert gate("decisions", "verify", "--processes", "3").code == 0
    run = gate("decisions", "verify", "--processes", "3", "--full")
    assert run.code == 1 and "record seq 25 " in run.out and "bad signature" in run.out


def test_a_record_rewritten_under_a_checkpoint_is_caught_by_its_hash(
    gate: Callable[..., Run], store_url: str, log: list[Decision]
) -> None:
    """An editor without the key re-hashes the checkpointed head record: its own signature is not
    checked any more, but the checkpoint's hash is the chain's no longer."""
    assert gate("decisions", "verify", "--checkpoint").code == 0
    import msgspec

    record = record_of(store_url, RECORDS)
    record["context"] = {"actor": "someone else"}
    digest = record_hash(msgspec.json.decode(json.dumps(record), type=Decision))
    put_record(store_url, RECORDS, {**record, "hash": digest})
    raw(store_url, "update decisions set hash = ? where seq = ?", (digest, RECORDS))
    run = gate("decisions", "verify")
    assert run.code == 1
    assert f"record seq {RECORDS} " in run.out and f"not the record the checkpoint at seq {RECORDS}" in run.out
    assert "the log was rewritten after that verify" in run.out


def test_a_checkpoint_beyond_a_cut_tail_fails_verify(gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    assert gate("decisions", "verify", "--checkpoint").code == 0
    raw(store_url, "delete from decisions where seq > 20")
    if store_url.startswith("sqlite"):
        raw(store_url, "update sqlite_sequence set seq = 20 where name = 'decisions'")
    else:
        raw(store_url, "update decision_log_head set last_seq = 20")
    run = gate("decisions", "verify")
    assert run.code == 1
    assert f"the checkpoint at seq {RECORDS}" in run.out and "is beyond the chain: it ends at seq 20" in run.out


def _insert(url: str, stored: Any) -> None:
    raw(
        url, "insert into checkpoints (seq, hash, count, timestamp, signing_key, signature, keys, record) values (?, ?, ?, ?, ?, ?, ?, ?)",
        (stored.seq, stored.hash, stored.count, stored.timestamp, stored.signing_key, stored.signature, stored.keys, stored.record),
    )


def test_a_forged_checkpoint_is_reported_and_never_used(gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    assert gate("decisions", "verify", "--checkpoint").code == 0
    _corrupt_signature(store_url, 4)
    assert gate("decisions", "verify").code == 0
    # the editor moves the checkpoint's claim without the key: the body no longer matches its signature
    (body,) = raw(store_url, "select record from checkpoints")
    forged = json.loads(body[0])
    raw(store_url, "update checkpoints set record = ?", (json.dumps({**forged, "count": forged["count"] + 1}),))
    run = gate("decisions", "verify")
    assert run.code == 1
    assert run.out.startswith("verify failed at record seq 4 ") and "bad signature" in run.out  # checked again
    raw(store_url, "update checkpoints set record = ?", (body[0],))
    raw(store_url, "update checkpoints set signature = ?", (log[0].signature,))
    _corrupt_signature(store_url, 4)  # twice: back to the valid signature
    run = gate("decisions", "verify", "--format", "json")
    assert run.code == 1
    assert run.json()["first_bad"] is None and run.json()["count"] == RECORDS
    assert f"checkpoint at seq {RECORDS}" in run.json()["problem"] and "bad signature; forged or edited" in run.json()["problem"]


def test_an_untrusted_or_stale_checkpoint_is_ignored_with_a_note(
    gate: Callable[..., Run], store_url: str, log: list[Decision], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    signing_key: tuple[Path, Path],
) -> None:
    other_private, other_public = generate_keypair(tmp_path / "other")
    monkeypatch.setenv("GATE_SIGNING_KEY", str(other_private))
    other = load_signer()
    monkeypatch.setenv("GATE_SIGNING_KEY", str(signing_key[0]))
    _insert(store_url, make_checkpoint(RECORDS, log[-1].hash, RECORDS, "2026-12-07T00:00:00.000000Z", [load_signer().key_id], other))
    _corrupt_signature(store_url, 4)
    run = gate("decisions", "verify", "--format", "json")
    assert run.code == 1 and run.json()["first_bad"]["seq"] == 4  # not used: every signature checked
    assert f"checkpoint at seq {RECORDS}: signed by key {other.key_id}, which is not a trusted key" in run.err
    assert run.json()["checkpoint"]["used"] is None and len(run.json()["checkpoint"]["ignored"]) == 1

    # trusted signer, but it covers records of a key no longer trusted: stale, not used
    monkeypatch.setenv("GATE_TRUSTED_KEYS", f"{signing_key[1]},{other_public}")
    raw(store_url, "delete from checkpoints")
    _insert(store_url, make_checkpoint(RECORDS, log[-1].hash, RECORDS, "2026-12-07T00:00:00.000000Z", ["0123456789abcdef"], other))
    run = gate("decisions", "verify", "--format", "json")
    assert run.code == 1 and run.json()["first_bad"]["seq"] == 4
    assert "covers records signed by key 0123456789abcdef, which is no longer trusted" in run.err


def test_a_deleted_checkpoint_only_makes_verify_check_every_signature(
    gate: Callable[..., Run], store_url: str, log: list[Decision]
) -> None:
    assert gate("decisions", "verify", "--checkpoint").code == 0
    _corrupt_signature(store_url, 9)
    assert gate("decisions", "verify").code == 0
    raw(store_url, "delete from checkpoints")
    run = gate("decisions", "verify")
    assert run.code == 1 and "record seq 9 " in run.out and "bad signature" in run.out


def test_the_newest_usable_checkpoint_is_used_and_older_ones_are_still_checked(store_url: str, log: list[Decision]) -> None:
    signer = load_signer()
    trusted = load_trusted_keys()
    store = open_store(store_url, create=False)
    try:
        store.add_checkpoint(make_checkpoint(10, log[9].hash, 10, "2026-12-01T00:00:00.000000Z", [signer.key_id], signer))
        store.add_checkpoint(make_checkpoint(20, log[19].hash, 20, "2026-12-02T00:00:00.000000Z", [signer.key_id], signer))
        checkpoints = assess(store.checkpoints(), trusted)
        assert checkpoints.used is not None and checkpoints.used.body.seq == 20 and set(checkpoints.pins) == {10, 20}
        assert verify_log(store, trusted, checkpoints=checkpoints).checkpoint == checkpoints.used
        # an older checkpoint whose hash the chain no longer holds fails verify though the newer one is used
        store.add_checkpoint(make_checkpoint(5, log[5].hash, 5, "2026-11-30T00:00:00.000000Z", [signer.key_id], signer))
        bad = verify_log(store, trusted, checkpoints=assess(store.checkpoints(), trusted), processes=3)
        assert not bad.ok and bad.first_bad is not None and bad.first_bad.seq == 5
        assert bad.problem and "not the record the checkpoint at seq 5" in bad.problem
        assert verify_log(store, trusted, checkpoints=Checkpoints()).ok  # without checkpoints: intact
    finally:
        store.close()


def test_checkpoint_needs_a_trusted_gate_signing_key_and_the_whole_log(
    gate: Callable[..., Run], store_url: str, log: list[Decision], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    signing_key: tuple[Path, Path],
) -> None:
    run = gate("decisions", "verify", "--checkpoint", "--since-head", log[3].hash)
    assert run.code == 2 and "cannot follow a --since-head verify" in run.err
    other_private, _ = generate_keypair(tmp_path / "other")
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(signing_key[1]))
    monkeypatch.setenv("GATE_SIGNING_KEY", str(other_private))
    run = gate("decisions", "verify", "--checkpoint")
    assert run.code == 2 and "is not trusted" in run.err and "a checkpoint it signs would be ignored" in run.err
    monkeypatch.delenv("GATE_SIGNING_KEY")
    run = gate("decisions", "verify", "--checkpoint")
    assert run.code == 2 and "--checkpoint signs with GATE_SIGNING_KEY" in run.err
    assert raw(store_url, "select count(*) from checkpoints") == [(0,)]


# --- --since-head -------------------------------------------------------------------------------


def test_since_head_verifies_only_what_is_new(gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    head = gate("decisions", "verify", "--format", "json").json()["head"]
    newer = build(store_url, 3, start=100)
    run = gate("decisions", "verify", "--since-head", head)
    assert run.code == 0
    assert run.out.startswith(f"3 records after seq {RECORDS} intact; chain head {newer[-1].hash}")
    body = gate("decisions", "verify", "--since-head", head, "--format", "json").json()
    assert body["since_head"] == {"seq": RECORDS, "hash": head} and body["count"] == 3 and body["head"] == newer[-1].hash

    _edit_in_second_range(store_url, log)  # before the head: not walked again
    assert gate("decisions", "verify", "--since-head", head).code == 0
    assert gate("decisions", "verify").code == 1

    record = record_of(store_url, RECORDS + 2)
    put_record(store_url, RECORDS + 2, {**record, "outcome": "deny"})
    run = gate("decisions", "verify", "--since-head", head)
    assert run.code == 1
    assert run.out.startswith(f"verify failed at record seq {RECORDS + 2} (decision {newer[1].decision_id}): edited")
    assert run.out.splitlines()[0].endswith("; 1 intact before it")


def test_since_head_checks_the_documents_of_new_records_only(
    gate: Callable[..., Run], store_url: str, log: list[Decision]
) -> None:
    newer = build(store_url, 2, start=100)
    old_document, new_document = (
        raw(store_url, "select digest from decision_documents where seq = ? order by digest", (seq,))[0][0]
        for seq in (3, RECORDS + 2)
    )
    (old_body,), (new_body,) = (raw(store_url, "select body from documents where digest = ?", (d,))[0] for d in (old_document, new_document))
    raw(store_url, "update documents set body = ? where digest = ?", (new_body, old_document))  # swapped in
    assert gate("decisions", "verify", "--since-head", log[-1].hash).code == 0
    assert gate("decisions", "verify").code == 1
    raw(store_url, "update documents set body = ? where digest = ?", (old_body, new_document))
    run = gate("decisions", "verify", "--since-head", log[-1].hash)
    assert run.code == 1
    assert f"record seq {RECORDS + 2} (decision {newer[1].decision_id})" in run.out and new_document in run.out


def test_since_head_missing_from_the_chain_is_exit_1(gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    unknown = "sha256:" + "ab" * 32
    run = gate("decisions", "verify", "--since-head", unknown)
    assert run.code == 1
    assert run.out.startswith(f"verify failed: --since-head {unknown} is not in the chain")
    run = gate("decisions", "verify", "--since-head", "not-a-hash")
    assert run.code == 2 and "--since-head 'not-a-hash'" in run.err


def test_since_head_at_the_head_is_nothing_new(gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    run = gate("decisions", "verify", "--since-head", log[-1].hash)
    assert run.code == 0 and run.out.startswith(f"0 records after seq {RECORDS} intact; chain head {log[-1].hash}")


# --- the quick hash (records stored canonical: hashed without decoding their bulk) -----------------


def test_quick_decode_confirms_exactly_the_records_the_full_hash_confirms(store_url: str, log: list[Decision]) -> None:
    from gate.decisions.quickhash import quick_decode
    from gate.decisions.record import canonical_json

    import msgspec

    (stored,) = raw(store_url, "select record from decisions where seq = 4")  # a deny
    data = stored[0].encode() if isinstance(stored[0], str) else bytes(stored[0])
    assert data == canonical_json(msgspec.json.decode(data, type=Decision))  # the stores write records canonical
    quick = quick_decode(data)
    assert quick is not None and quick[1] == log[3].hash == record_hash(log[3])
    assert [v.rule for v in quick[0].violations] == [v.rule for v in log[3].violations] != []

    edited = data.replace(b"vulnerabilities.severity failed", b"vulnerabilities.severity passed")
    assert edited != data and quick_decode(edited) is None  # not confirmed: verify decodes it fully
    assert quick_decode(json.dumps(json.loads(data)).encode()) is None  # not canonical: decoded fully
    # a second "hash" member with the same value: which one is the record's is not guessed
    twice = data.replace(b'"context":{', b'"context":{"hash":"' + log[3].hash.encode() + b'",', 1)
    assert quick_decode(twice) is None
    assert quick_decode(b'{"decision_id": 42') is None


def test_a_canonical_edit_is_named_as_before(gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    """An edit that keeps the stored bytes canonical fails the quick hash and is named by the full check."""
    (stored,) = raw(store_url, "select record from decisions where seq = 19")  # a deny, in the second range
    text = stored[0].decode() if isinstance(stored[0], bytes) else stored[0]
    edited = text.replace("vulnerabilities.severity failed", "nothing to see here")
    assert edited != text
    raw(store_url, "update decisions set record = ? where seq = 19", (edited,))
    run = gate("decisions", "verify", "--processes", "2")
    assert run.code == 1
    assert run.out.startswith(f"verify failed at record seq 19 (decision {log[18].decision_id}): edited: its contents hash to")


def test_stored_terms_reads_only_rule_and_id_and_means_the_same() -> None:
    from gate.decisions.documents import finding_terms, stored_terms

    def whole(canonical: bytes) -> tuple[str, ...]:
        value = json.loads(canonical)
        if isinstance(value, dict):
            return finding_terms(value.get("findings"))
        if isinstance(value, list) and all(isinstance(f, dict) and "rule" in f and "id" in f for f in value):
            return finding_terms(value)
        return ()

    for document in (
        b'[{"id":"CVE-1","rule":"CVE-1","severity":"high"},{"id":"x","rule":"Sonar:S1"}]', b"[]",
        b'[{"id":"a","rule":"B"},{"rule":"C"}]', b'[{"id":"a","rule":"B"},3]', b'{"findings":[{"id":"Z","rule":"Q"}]}',
        b'[{"id":null,"rule":"A","x":[1]}]', b'"text"', b'[{"id":"B","rule":"A","rule":"C"}]', b'[{"id":{"a":1},"rule":["x"]}]',
        b'[{"id":"ABC","rule":""}]',
    ):
        assert stored_terms(document) == whole(document), document
