"""Signed decision records and `gate decisions verify`, on both stores (SQLite, real PostgreSQL 15).

Keys: `gate keys generate`, GATE_SIGNING_KEY and the local key, GATE_TRUSTED_KEYS, and every way a
key file can be wrong (one line, exit 2, no key material). `gate evaluate` signs every decision it
records. Verify: an intact log exits 0 with its count and chain head; each kind of tampering done
behind the store's back with raw SQL — an edited field, an edited hash column, a deleted middle or
last record, two records swapped, a replaced signature, an untrusted or missing signature, an
undecodable record — exits 1 naming the first bad record and what is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.decisions.record import Decision, record_hash
from gate.decisions.signing import (
    Ed25519Signer,
    SigningError,
    generate_keypair,
    key_id,
    load_public_key,
    load_signer,
    load_trusted_keys,
    local_key_path,
    verify_signature,
)
from gate.decisions.interface import DecisionStore
from gate.decisions.store import open_store
from gate.decisions.verify import verify_log
from tests.conftest import DIGEST, ROOT, SCHEMAS, Run
from tests.decisions.logcheck import append_five, make_decision, raw

POLICIES = ROOT / "policies"
REF = f"registry.example.com/shop/cart:1.4.2@{DIGEST}"
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")


def evaluate(gate: Callable[..., Run], data: Path, names: tuple[str, ...]) -> Run:
    args: list[Any] = []
    for name in names:
        args += ["--report", f"auto={data / name}"]
    return gate("evaluate", *args, "--policy", POLICIES, "--image", REF, "--env", "prod", "--format", "json")


def one_line(run: Run) -> str:
    """The single line a failing command prints on stderr."""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert "Traceback" not in run.err
    return lines[0]


# --- keys ------------------------------------------------------------------------------------------


def test_key_id_is_16_hex_of_the_raw_public_key_sha256() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    raw_bytes = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(key) == hashlib.sha256(raw_bytes).hexdigest()[:16]


def test_keys_generate_writes_a_private_0600_and_a_public_pem_and_refuses_to_overwrite(
    gate: Callable[..., Run], tmp_path: Path
) -> None:
    out = tmp_path / "new" / "keys"
    run = gate("keys", "generate", "--out", out)
    assert run.code == 0, run.err
    private, public = out / "gate-signing.pem", out / "gate-signing.pub.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    kid = key_id(load_public_key(public))
    assert str(private) in run.out and str(public) in run.out and kid in run.out
    before = private.read_bytes()

    again = gate("keys", "generate", "--out", out)
    assert again.code == 2
    assert "already exists" in one_line(again)
    assert private.read_bytes() == before
    # Half a pair in the folder is refused too, and nothing is written.
    other = tmp_path / "other"
    other.mkdir()
    (other / "gate-signing.pub.pem").write_bytes(public.read_bytes())
    with pytest.raises(SigningError, match="already exists"):
        generate_keypair(other)
    assert not (other / "gate-signing.pem").exists()


def test_keys_public_prints_what_verifiers_trust(
    gate: Callable[..., Run], signing_key: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = gate("keys", "public")
    assert run.code == 0, run.err
    assert run.out.encode() == signing_key[1].read_bytes()  # the public half of GATE_SIGNING_KEY
    assert key_id(load_public_key(signing_key[1])) in run.err
    assert "PRIVATE" not in run.out + run.err
    # a verifier that trusts exactly what was printed accepts what that key signs
    exported = tmp_path / "exported.pub.pem"
    exported.write_text(run.out)
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(exported))
    assert set(load_trusted_keys()) == {key_id(load_public_key(signing_key[1]))}


def test_gate_signing_key_signs_with_that_key(signing_key: tuple[Path, Path]) -> None:
    signer = load_signer()
    assert signer.key_id == key_id(load_public_key(signing_key[1]))
    assert not signer.created
    signature = base64.b64decode(signer.sign("sha256:" + "00" * 32))
    load_public_key(signing_key[1]).verify(signature, b"sha256:" + b"00" * 32)


def _pem(key: Any, password: bytes | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


BAD_KEYS: dict[str, tuple[Callable[[Path], Any], str]] = {
    "missing": (lambda p: None, "cannot read: No such file"),
    "folder": (lambda p: p.mkdir(), "is a folder"),
    "empty": (lambda p: p.write_bytes(b""), "is empty"),
    "garbage": (lambda p: p.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n"), "not a PEM private key"),
    "public": (lambda p: p.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)), "that is a public key"),
    "ec": (lambda p: p.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1()))), "is an EC key; gate signs with Ed25519"),
    "ed448": (lambda p: p.write_bytes(_pem(ed448.Ed448PrivateKey.generate())), "is an Ed448 key"),
    "encrypted": (lambda p: p.write_bytes(_pem(Ed25519PrivateKey.generate(), b"secret")), "encrypted with a passphrase"),
    "huge": (lambda p: p.write_bytes(b"x" * 200_000), "not a key file"),
}


@pytest.mark.parametrize("case", sorted(BAD_KEYS))
def test_an_unusable_signing_key_is_one_line_exit_2_and_nothing_recorded(
    case: str, gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    decision_store: Path,
) -> None:
    make, expected = BAD_KEYS[case]
    path = tmp_path / "key.pem"
    make(path)
    monkeypatch.setenv("GATE_SIGNING_KEY", str(path))
    with pytest.raises(SigningError, match=expected):
        load_signer()

    run = evaluate(gate, data, CLEAN)
    assert run.code == 2
    line = one_line(run)
    assert line.startswith(f"gate: error: GATE_SIGNING_KEY {path}: ")
    assert expected in line
    assert "BEGIN" not in line and "KEY-----" not in line  # never key material
    assert run.out == ""
    assert not decision_store.exists() or raw(f"sqlite://{decision_store}", "select count(*) from decisions") == [(0,)]


def test_an_empty_gate_signing_key_is_an_error_not_a_silent_local_key(
    gate: Callable[..., Run], data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATE_SIGNING_KEY", "")
    run = evaluate(gate, data, CLEAN)
    assert run.code == 2
    assert "GATE_SIGNING_KEY is set but empty" in one_line(run)
    assert not local_key_path().exists()


def test_without_gate_signing_key_a_local_key_is_created_once_and_announced(
    gate: Callable[..., Run], data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATE_SIGNING_KEY")
    path = local_key_path()
    assert not path.exists()

    first = evaluate(gate, data, CLEAN)
    assert first.code == 0, first.err
    assert f"gate: created a local signing key at {path}" in first.err
    assert "set GATE_SIGNING_KEY" in first.err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    local_id = load_signer().key_id
    assert first.json()["signing_key"] == local_id

    second = evaluate(gate, data, ONE_CRITICAL)
    assert second.code == 1
    assert "created a local signing key" not in second.err
    assert second.json()["signing_key"] == local_id

    # GATE_TRUSTED_KEYS unset: only this machine's own key is trusted, and verify says so.
    run = gate("decisions", "verify")
    assert run.code == 0, run.out
    assert run.out.startswith("2 records intact; chain head ")
    assert f"GATE_TRUSTED_KEYS is unset: trusting only this machine's signing key, the local key {local_id}" in run.err


def test_first_use_from_many_threads_at_once_makes_one_local_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATE_SIGNING_KEY")
    barrier = threading.Barrier(8)
    signers: list[Ed25519Signer] = []

    def first_use() -> None:
        barrier.wait()
        signers.append(load_signer())

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({s.key_id for s in signers}) == 1
    assert sum(s.created for s in signers) == 1
    assert [p.name for p in local_key_path().parent.iterdir()] == ["signing-key.pem"]  # no temp files left


def test_trusted_keys_from_files_and_folders_by_comma_or_pathsep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signing_key: tuple[Path, Path]
) -> None:
    a, b = generate_keypair(tmp_path / "a"), generate_keypair(tmp_path / "b")
    ids = {key_id(load_public_key(p)) for p in (a[1], b[1], signing_key[1])}
    # A folder may hold the private key beside the public one (as `keys generate` writes them): skipped.
    monkeypatch.setenv("GATE_TRUSTED_KEYS", f"{tmp_path / 'a'},{b[1]}:{signing_key[1]}")
    assert set(load_trusted_keys()) == ids


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("missing.pem", "no such file or folder"),
        ("private.pem", "is a private key; list public keys only"),
        ("ec.pem", "is an EC key"),
        ("junk.pem", "not a PEM public key"),
        ("emptydir", "holds no public-key *.pem file"),
        (" , ", "names no file"),
    ],
)
def test_unusable_trusted_keys_are_one_line_exit_2(
    entry: str, expected: str, gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "private.pem").write_bytes(_pem(Ed25519PrivateKey.generate()))
    (tmp_path / "ec.pem").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (tmp_path / "junk.pem").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    (tmp_path / "emptydir").mkdir()
    value = entry if entry.strip(" ,") == "" else str(tmp_path / entry)
    monkeypatch.setenv("GATE_TRUSTED_KEYS", value)
    with pytest.raises(SigningError, match=expected.replace("*", r"\*")):
        load_trusted_keys()
    run = gate("decisions", "verify")
    assert run.code == 2
    assert expected in one_line(run)
    assert "BEGIN" not in run.err


def test_verify_signature_names_each_problem(signing_key: tuple[Path, Path], tmp_path: Path) -> None:
    signer = load_signer()
    trusted = {signer.key_id: signer.public_key()}
    decision = _signed(make_decision(), signer)
    assert verify_signature(decision, trusted) is None
    import msgspec

    unsigned = msgspec.structs.replace(decision, signature=None)
    assert verify_signature(unsigned, trusted) == "unsigned: the record has no signature"
    assert "not a trusted key" in (verify_signature(decision, {}) or "")
    other = _signed(make_decision(), signer)
    swapped = msgspec.structs.replace(decision, signature=other.signature)
    assert (verify_signature(swapped, trusted) or "").startswith("bad signature")
    assert (verify_signature(msgspec.structs.replace(decision, signature="!!"), trusted) or "").startswith("bad signature")


def _signed(decision: Decision, signer: Ed25519Signer, prev_hash: str | None = None) -> Decision:
    import msgspec

    chained = msgspec.structs.replace(decision, prev_hash=prev_hash, signing_key=signer.key_id)
    digest = record_hash(chained)
    return msgspec.structs.replace(chained, hash=digest, signature=signer.sign(digest))


# --- evaluate signs; verify on both stores -------------------------------------------------------


def test_evaluate_records_signed_decisions_that_verify(
    gate: Callable[..., Run], data: Path, store_url: str, signing_key: tuple[Path, Path]
) -> None:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads((SCHEMAS / "decision.schema.json").read_text()))
    public = load_public_key(signing_key[1])
    allow, deny = evaluate(gate, data, CLEAN), evaluate(gate, data, ONE_CRITICAL)
    assert (allow.code, deny.code) == (0, 1), allow.err + deny.err
    for run in (allow, deny):
        record = run.json()
        assert not list(validator.iter_errors(record))
        assert record["signing_key"] == key_id(public)
        public.verify(base64.b64decode(record["signature"]), record["hash"].encode("ascii"))

    run = gate("decisions", "verify")
    assert run.code == 0, run.out
    assert run.out == f"2 records intact; chain head {deny.json()['hash']}\n"
    assert "GATE_TRUSTED_KEYS is unset" in run.err  # trusting GATE_SIGNING_KEY's own key

    as_json = gate("decisions", "verify", "--format", "json").json()
    assert as_json["ok"] is True and as_json["count"] == 2 and as_json["first_bad"] is None
    assert as_json["head_hash"] == deny.json()["hash"]

    # An auditor who has only the public key gets the same answer.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GATE_TRUSTED_KEYS", str(signing_key[1]))
        mp.setenv("GATE_SIGNING_KEY", "/nonexistent/not-needed-to-verify.pem")
        run = gate("decisions", "verify")
        assert run.code == 0, run.out + run.err
        assert run.err == ""


def test_an_error_decision_is_signed_too(
    gate: Callable[..., Run], data: Path, store_url: str, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "broken.rego").write_text("package gate.promotion.broken\n\ndeny contains msg if {\n")
    report = data / CLEAN[0]
    run = gate("evaluate", "--report", f"auto={report}", "--policy", bundle, "--image", REF, "--env", "prod")
    assert run.code == 2
    assert "recorded as error decision" in run.err
    store = open_store(store_url)
    try:
        (entry,) = list(store.chain())
        assert entry.decision.outcome == "error"
        assert entry.decision.signing_key == load_signer().key_id
        assert verify_log(store, load_trusted_keys()).ok
    finally:
        store.close()


@pytest.fixture
def log(store_url: str) -> list[Decision]:
    """Five signed records on the store under test: allow, deny, deny, allow, deny."""
    return append_five(store_url)


def record_of(url: str, seq: int) -> dict[str, Any]:
    (row,) = raw(url, "select record from decisions where seq = ?", (seq,))
    text = row[0].decode() if isinstance(row[0], bytes) else row[0]
    return json.loads(text)


def put_record(url: str, seq: int, record: dict[str, Any]) -> None:
    raw(url, "update decisions set record = ? where seq = ?", (json.dumps(record), seq))


def _flip_outcome(url: str, log: list[Decision]) -> None:
    record = record_of(url, 2)
    assert record["outcome"] == "deny"
    put_record(url, 2, {**record, "outcome": "allow"})


def _edit_message(url: str, log: list[Decision]) -> None:
    record = record_of(url, 3)
    record["violations"][0]["message"] = "nothing to see here"
    put_record(url, 3, record)


def _edit_input(url: str, log: list[Decision]) -> None:
    record = record_of(url, 2)
    record["input"]["environment"] = "dev"
    put_record(url, 2, record)


def _edit_and_rehash(url: str, log: list[Decision]) -> None:
    """An editor who knows the hashing but not the key: record, columns and index rows agree, the signature does not."""
    import msgspec

    record = record_of(url, 2)
    record["outcome"] = "allow"
    record["violations"] = []
    edited = msgspec.json.decode(json.dumps(record), type=Decision)
    digest = record_hash(edited)
    put_record(url, 2, {**record, "hash": digest})
    raw(url, "update decisions set hash = ?, outcome = 'allow' where seq = 2", (digest,))
    raw(url, "delete from decision_rules where seq = 2")


def _edit_outcome_column(url: str, log: list[Decision]) -> None:
    """Hide a deny from `decisions list --outcome deny` without touching the record."""
    raw(url, "update decisions set outcome = 'allow' where seq = 2")


def _delete_index_row(url: str, log: list[Decision]) -> None:
    """Hide a decision from `decisions list --rule ...`."""
    raw(url, "delete from decision_rules where seq = 2")


def _edit_hash_column(url: str, log: list[Decision]) -> None:
    raw(url, "update decisions set hash = ? where seq = 3", ("sha256:" + "0" * 64,))


def _delete_middle(url: str, log: list[Decision]) -> None:
    raw(url, "delete from decisions where seq = 3")


def _delete_last(url: str, log: list[Decision]) -> None:
    raw(url, "delete from decisions where seq = 5")


def _swap(url: str, log: list[Decision]) -> None:
    raw(url, "update decisions set seq = -1 where seq = 2")
    raw(url, "update decisions set seq = 2 where seq = 3")
    raw(url, "update decisions set seq = 3 where seq = -1")


def _replace_signature(url: str, log: list[Decision]) -> None:
    record = record_of(url, 3)
    record["signature"] = log[1].signature  # a valid signature, of another record
    put_record(url, 3, record)


def _undecodable(url: str, log: list[Decision]) -> None:
    raw(url, "update decisions set record = ? where seq = 4", ('{"decision_id": 42, "outcome": ',))


def _not_a_decision(url: str, log: list[Decision]) -> None:
    raw(url, "update decisions set record = ? where seq = 4", ('{"outcome": "allow"}',))


#: tampering → (the first bad seq, whether its decision id is known, words of the problem)
TAMPERING: dict[str, tuple[Callable[[str, list[Decision]], None], int, bool, str]] = {
    "outcome deny->allow": (_flip_outcome, 2, True, "edited: its contents hash to"),
    "violation message": (_edit_message, 3, True, "edited: its contents hash to"),
    "input": (_edit_input, 2, True, "edited: its contents hash to"),  # v2: the inline input is in the hash
    "edited and re-hashed": (_edit_and_rehash, 2, True, "bad signature"),
    "hash column": (_edit_hash_column, 3, True, "hash column edited"),
    "outcome column": (_edit_outcome_column, 2, True, "outcome column edited"),
    "index row deleted": (_delete_index_row, 2, True, "index rows edited"),
    "delete middle": (_delete_middle, 4, True, "missing before it: seq 3 deleted"),
    "delete last": (_delete_last, 5, False, "deleted from the end of the log"),
    "swap two": (_swap, 2, True, "chain broken"),
    "replaced signature": (_replace_signature, 3, True, "bad signature"),
    "undecodable": (_undecodable, 4, True, "cannot be decoded"),
    "not a decision": (_not_a_decision, 4, True, "cannot be decoded"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_verify_names_the_first_tampered_record(
    case: str, gate: Callable[..., Run], store_url: str, log: list[Decision]
) -> None:
    assert gate("decisions", "verify").code == 0
    tamper, seq, known_id, words = TAMPERING[case]
    tamper(store_url, log)

    run = gate("decisions", "verify")
    assert run.code == 1, run.out
    lines = run.out.splitlines()
    assert len(lines) == 1
    assert f"record seq {seq}" in lines[0] and words in lines[0]
    if known_id:
        # after a swap, seq 2 holds the record that was third
        expected_id = log[2].decision_id if case == "swap two" else log[seq - 1].decision_id
        assert f"(decision {expected_id})" in lines[0]
    intact = seq - 2 if case == "delete middle" else seq - 1  # records before the first bad one

    report = gate("decisions", "verify", "--format", "json")
    assert report.code == 1
    body = report.json()
    assert body["ok"] is False and body["first_bad"]["seq"] == seq and words in body["problem"]
    assert body["count"] == intact
    assert body["head_hash"] == log[intact - 1].hash
    assert lines[0].endswith(f"; {intact} intact before it")


def test_a_record_signed_by_an_untrusted_key_fails_until_that_key_is_trusted(
    gate: Callable[..., Run], store_url: str, log: list[Decision], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, signing_key: tuple[Path, Path],
) -> None:
    rogue_private, rogue_public = generate_keypair(tmp_path / "rogue")
    monkeypatch.setenv("GATE_SIGNING_KEY", str(rogue_private))
    store = open_store(store_url)
    try:
        intruder = store.append(make_decision(outcome="allow"), load_signer())  # chained correctly: only the key is wrong
    finally:
        store.close()

    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(signing_key[1]))
    run = gate("decisions", "verify")
    assert run.code == 1
    rogue_id = key_id(load_public_key(rogue_public))
    assert run.out.startswith(f"verify failed at record seq 6 (decision {intruder.decision_id}): signed by key {rogue_id}")
    assert "not a trusted key" in run.out

    monkeypatch.setenv("GATE_TRUSTED_KEYS", f"{signing_key[1]},{rogue_public}")
    assert gate("decisions", "verify").code == 0


def test_an_unsigned_record_fails(gate: Callable[..., Run], store_url: str, log: list[Decision]) -> None:
    store = open_store(store_url)
    try:
        unsigned = store.append(make_decision())
    finally:
        store.close()
    run = gate("decisions", "verify")
    assert run.code == 1
    assert f"record seq 6 (decision {unsigned.decision_id}): unsigned" in run.out


def test_an_empty_log_is_intact(gate: Callable[..., Run], store_url: str) -> None:
    open_store(store_url).close()  # created (as the first `gate evaluate` does), still empty; a missing log is exit 2
    run = gate("decisions", "verify")
    assert run.code == 0
    assert run.out == "0 records intact; chain head none (the log is empty)\n"


def test_a_log_that_cannot_be_opened_is_exit_2(gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_DECISION_STORE", str(tmp_path))  # a folder, not a database
    run = gate("decisions", "verify")
    assert run.code == 2
    assert "decision log" in one_line(run)


# --- the parallel signature check reports the same first problem as the serial walk ---------------


def _build(store: DecisionStore, n: int, signer: Ed25519Signer) -> list[Decision]:
    return [store.append(make_decision(), signer) for _ in range(n)]


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_parallel_signature_checks_report_the_earliest_problem(
    workers: int, store_url: str, tmp_path: Path
) -> None:
    signer = load_signer()
    trusted = {signer.key_id: signer.public_key()}
    store = open_store(store_url)
    try:
        records = _build(store, 24, signer)
        report = verify_log(store, trusted, workers=workers, batch_size=4)
        assert report.ok and report.count == 24 and report.head_hash == records[-1].hash

        # a bad signature at seq 7, then an edited hash column at seq 19: seq 7 comes first
        bad = record_of(store_url, 7)
        bad["signature"] = records[0].signature
        put_record(store_url, 7, bad)
        raw(store_url, "update decisions set hash = ? where seq = 19", ("sha256:" + "1" * 64,))
        report = verify_log(store, trusted, workers=workers, batch_size=4)
        assert (report.ok, report.first_bad and report.first_bad.seq, report.count) == (False, 7, 6)
        assert report.problem and report.problem.startswith("bad signature")
        assert report.head_hash == records[5].hash

        # and an edit before it (seq 3) wins over both
        raw(store_url, "update decisions set hash = ? where seq = 3", ("sha256:" + "2" * 64,))
        report = verify_log(store, trusted, workers=workers, batch_size=4)
        assert report.first_bad is not None and report.first_bad.seq == 3
        assert report.problem and "hash column edited" in report.problem
    finally:
        store.close()


class _AppendsDuringTheWalk:
    """A store whose chain, once read to the end, gets one more record from another writer: a live log."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.inner = open_store(url)

    def chain(self, *args: Any, **kwargs: Any) -> Any:
        yield from self.inner.chain(*args, **kwargs)
        other = open_store(self.url)
        try:
            other.append(make_decision(), load_signer())
        finally:
            other.close()

    def last_seq(self) -> int:
        return self.inner.last_seq()

    def __getattr__(self, name: str) -> Any:  # the documents check reads the real store
        return getattr(self.inner, name)


def test_records_appended_while_verifying_are_not_a_deleted_tail(store_url: str, log: list[Decision]) -> None:
    store = _AppendsDuringTheWalk(store_url)
    try:
        report = verify_log(store, load_trusted_keys())  # type: ignore[arg-type]
        assert report.ok, report.problem
        assert report.count == 5
        assert verify_log(store.inner, load_trusted_keys()).count == 6
    finally:
        store.inner.close()
