"""Helpers for decision-log tests: decisions to append, one-chain checks, raw SQL on either store."""

from __future__ import annotations

import os

import sqlite3
from contextlib import closing
from typing import Any

from gate.decisions.index import index_rows
from gate.decisions.record import AppliedWaiver, Decision, Outcome, PolicyInfo, Violation, new_decision_id, sha256_digest
from gate.decisions.interface import ChainEntry, DecisionStore

IMAGE_A = "registry.example.com/shop/cart"
IMAGE_B = "registry.example.com/shop/checkout"
DIGEST_A = "sha256:" + "a1" * 32
DIGEST_B = "sha256:" + "b2" * 32
DIGEST_C = "sha256:" + "c3" * 32
POLICY_1 = "sha256:" + "01" * 32
POLICY_2 = "sha256:" + "02" * 32


def make_decision(
    *,
    outcome: str = "allow",
    environment: str = "prod",
    image: str = IMAGE_A,
    digest: str = DIGEST_A,
    timestamp: str = "2026-01-01T10:00:00.000000Z",
    policy_digest: str = POLICY_1,
    violations: tuple[Violation, ...] = (),
    waivers: tuple[AppliedWaiver, ...] = (),
    findings: tuple[dict[str, Any], ...] = (),
    padding: int = 0,
) -> Decision:
    """A decision as ``gate evaluate`` would build it; ``padding`` bytes of input make a bigger record
    (random hex: the log compresses input documents, and a run of one letter would shrink to nothing)."""
    policy_input: dict[str, Any] = {
        "artifact": {"image": image, "digest": digest},
        "environment": environment,
        "findings": list(findings),
        "metrics": {},
    }
    if padding:
        policy_input["padding"] = os.urandom(padding // 2 + 1).hex()[:padding]
    return Decision(
        decision_id=new_decision_id(),
        timestamp=timestamp,
        outcome=Outcome(outcome),
        environment=environment,
        artifact={"image": image, "digest": digest},
        violations=violations,
        warnings=(),
        waivers=waivers,
        summary={},
        policy=PolicyInfo(digest=policy_digest, engine="embedded", engine_version="test", revision="r1"),
        input_digest=sha256_digest(policy_input),
        input=policy_input,
        scanners=(),
        context={"actor": "tests"},
        error="engine failed" if outcome == "error" else None,
    )


def waiver(waiver_id: str, rule: str, expires: str = "2027-01-31T00:00:00.000000Z") -> AppliedWaiver:
    return AppliedWaiver(id=waiver_id, rule=rule, expires=expires, approved_by="secops@example.com", reason="test")


def violation(rule: str, *finding_ids: str) -> Violation:
    return Violation(rule=rule, message=f"{rule} failed", severity="high", finding_ids=finding_ids)


def append_five(url: str) -> list[Decision]:
    """Five signed records on the store at ``url``: allow, deny, deny, allow, deny."""
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store

    signer = load_signer()
    store = open_store(url)
    try:
        records = []
        for i, outcome in enumerate(["allow", "deny", "deny", "allow", "deny"], start=1):
            violations = (violation("vulnerabilities.severity", f"f{i}"),) if outcome == "deny" else ()
            records.append(store.append(make_decision(outcome=outcome, violations=violations), signer))
        return records
    finally:
        store.close()


def assert_one_chain(store: DecisionStore, expected: int | None = None) -> list[ChainEntry]:
    """Every record re-hashes to its stored hash and links to the one before it: one chain, no fork, no gap."""
    from gate.decisions.record import record_hash

    entries = list(store.chain())
    previous: str | None = None
    linked_from: set[str | None] = set()
    for position, entry in enumerate(entries, start=1):
        d = entry.decision
        assert entry.seq == position, f"seq {entry.seq} at position {position}: a record is missing"
        assert record_hash(d) == entry.stored_hash == d.hash, f"seq {entry.seq}: hash does not match the record"
        assert d.prev_hash == previous, f"seq {entry.seq}: prev_hash {d.prev_hash} != previous hash {previous}"
        assert d.prev_hash not in linked_from, f"seq {entry.seq}: fork, prev_hash {d.prev_hash} used twice"
        linked_from.add(d.prev_hash)
        previous = entry.stored_hash
    assert store.last_seq() == len(entries), f"last_seq {store.last_seq()} but {len(entries)} records"
    if expected is not None:
        assert len(entries) == expected, f"{len(entries)} records, expected {expected}"
    return entries


def raw(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run ``sql`` (``?`` placeholders) on the log at ``url`` behind the store's back, committed."""
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
    with closing(sqlite3.connect(url.removeprefix("sqlite://"))) as db:
        rows = db.execute(sql, params).fetchall()
        db.commit()
        return rows


def assert_index_rows(url: str, entries: list[ChainEntry]) -> None:
    """The rule, waiver and document index rows are exactly those of the records (in full form, read
    back with their documents): no orphans, none missing."""
    from gate.decisions.documents import references
    from gate.decisions.store import open_store

    store = open_store(url)
    try:
        full = [(e.seq, store.get(e.decision.decision_id)) for e in entries]
    finally:
        store.close()
    rules = sorted(raw(url, "select seq, rule from decision_rules"))
    waivers = sorted(raw(url, "select seq, waiver_id, rule, expires from decision_waivers"))
    expected_rules = sorted((seq, r) for seq, d in full if d for r in index_rows(d).rules)
    expected_waivers = sorted((seq, *w) for seq, d in full if d for w in index_rows(d).waivers)
    assert rules == expected_rules
    assert waivers == expected_waivers
    documents = sorted(raw(url, "select seq, digest from decision_documents"))
    assert documents == sorted((e.seq, digest) for e in entries for digest in references(e.decision))
