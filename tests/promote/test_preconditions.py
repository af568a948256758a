"""`gate promote` refuses, changing nothing, unless the decision lets this image through:
each precondition through the CLI (the refusal happens before any registry or git access, so
the target and repository here do not exist), and the refusal is recorded as an event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from gate import rfc3339
from gate.decisions.events import EventQuery
from gate.decisions.record import Decision
from gate.decisions.signing import generate_keypair, load_signer
from gate.decisions.store import open_store
from gate.promote.preconditions import Expectation, refusals
from tests.conftest import Run
from tests.decisions.logcheck import DIGEST_A, DIGEST_B, IMAGE_A, make_decision, waiver

TARGET = "127.0.0.1:9/release/cart:1.0"  # port 9 (discard): any attempt to use it would fail loudly
REPO = "file:///nonexistent/gitops.git"


def _append(decision: Decision, url: str | None = None) -> Decision:
    store = open_store(url)
    try:
        return store.append(decision, load_signer())
    finally:
        store.close()


def _promote(gate: Callable[..., Run], decision_id: str, *extra: str) -> Run:
    return gate("promote", "--decision", decision_id, "--target", TARGET,
                "--gitops-repo", REPO, "--gitops-path", "apps/cart.yaml", *extra)


def _recorded(decision_id: str) -> list[str]:
    store = open_store()
    try:
        return [e.outcome for e in store.events(EventQuery(decision_id=decision_id))]
    finally:
        store.close()


def _now_minus(delta: timedelta) -> str:
    return rfc3339.format(datetime.now(UTC) - delta)


@pytest.mark.parametrize(
    ("make", "extra", "words"),
    [
        (lambda: make_decision(outcome="deny", timestamp=_now_minus(timedelta(minutes=1))), (), "is deny, not allow"),
        (lambda: make_decision(outcome="error", timestamp=_now_minus(timedelta(minutes=1))), (), "is error, not allow"),
        (lambda: make_decision(environment="staging", timestamp=_now_minus(timedelta(minutes=1))), ("--env", "prod"),
         "is for environment staging, not prod"),
        (lambda: make_decision(timestamp=_now_minus(timedelta(days=8))), (), "older than the maximum age 7.0d"),
        (lambda: make_decision(timestamp=_now_minus(timedelta(hours=3))), ("--max-age", "2h"), "older than the maximum age 2.0h"),
        (lambda: make_decision(timestamp=_now_minus(timedelta(minutes=1))), ("--source", f"{IMAGE_A}@{DIGEST_B}"),
         f"is about {DIGEST_A}, not {DIGEST_B}"),
        (lambda: make_decision(timestamp=_now_minus(timedelta(days=2)),
                               waivers=(waiver("W-1", "CVE-2023-1", expires=_now_minus(timedelta(hours=1))),)),
         (), "waiver W-1 (CVE-2023-1) the decision relied on expired"),
    ],
    ids=["deny", "error", "other-env", "too-old", "max-age-flag", "other-digest", "waiver-expired"],
)
def test_each_precondition_refuses_with_its_reason_and_is_recorded(
    gate: Callable[..., Run], make: Callable[[], Decision], extra: tuple[str, ...], words: str
) -> None:
    decision = _append(make())
    run = _promote(gate, decision.decision_id, *extra)
    assert run.code == 1, run.err
    assert run.out.startswith(f"REFUSED {TARGET}")
    assert words in run.out
    assert _recorded(decision.decision_id) == ["refused"]


def test_an_unknown_decision_is_refused(gate: Callable[..., Run]) -> None:
    run = _promote(gate, "0193aaaa-0000-7000-8000-000000000000", "--format", "json")
    assert run.code == 1
    body = run.json()
    assert body["outcome"] == "refused" and body["reasons"] == ["no decision 0193aaaa-0000-7000-8000-000000000000 in the decision log"]
    assert body["registry"] == {} and body["gitops"] == {}


def test_a_decision_signed_by_an_untrusted_key_is_refused(
    gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signing_key: tuple[Path, Path]
) -> None:
    rogue, _ = generate_keypair(tmp_path / "rogue")
    monkeypatch.setenv("GATE_SIGNING_KEY", str(rogue))
    decision = _append(make_decision(timestamp=_now_minus(timedelta(minutes=1))))
    monkeypatch.setenv("GATE_SIGNING_KEY", str(signing_key[0]))
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(signing_key[1]))
    run = _promote(gate, decision.decision_id)
    assert run.code == 1 and "not a trusted key" in run.out


def test_a_forged_record_is_refused(gate: Callable[..., Run], decision_store: Path) -> None:
    """A deny turned into an allow behind the log's back no longer hashes to its hash."""
    import sqlite3

    decision = _append(make_decision(outcome="deny", timestamp=_now_minus(timedelta(minutes=1))))
    forged = msgspec.json.encode(msgspec.structs.replace(decision, outcome="allow"))
    with sqlite3.connect(decision_store) as db:
        db.execute("update decisions set record = ?, outcome = 'allow' where decision_id = ?", (forged, decision.decision_id))
    run = _promote(gate, decision.decision_id)
    assert run.code == 1
    assert "does not hash to its recorded hash: the record was altered" in run.out


@pytest.mark.parametrize("tamper", ["edited", "deleted"])
def test_a_tampered_input_document_is_refused(gate: Callable[..., Run], decision_store: Path, tamper: str) -> None:
    """The findings the decision was made on live in a document the record names by digest."""
    import sqlite3

    from gate.decisions.documents import compress

    decision = _append(make_decision(timestamp=_now_minus(timedelta(minutes=1)), findings=({"id": "f1", "rule": "CVE-1"},)))
    assert decision.input_parts is not None
    findings = decision.input_parts["findings"]
    with sqlite3.connect(decision_store) as db:
        if tamper == "edited":  # the finding that was there is gone
            db.execute("update documents set body = ? where digest = ?", (compress(b"[]"), findings))
        else:
            db.execute("delete from documents where digest = ?", (findings,))
    run = _promote(gate, decision.decision_id)
    # reads re-hash every document: the decision cannot be read, and nothing is promoted
    assert run.code == 2 and "Traceback" not in run.err, run.err
    problem = "edited: its contents hash to" if tamper == "edited" else "is missing: run gate decisions verify"
    assert f"document {findings} {problem}" in run.err, run.err


def test_an_unsigned_decision_is_refused() -> None:
    store = open_store()
    try:
        unsigned = store.append(make_decision(timestamp=_now_minus(timedelta(minutes=1))))
    finally:
        store.close()
    expect = Expectation(environment=None, digest=DIGEST_A, max_age=timedelta(days=7), now=datetime.now(UTC))
    store = open_store()
    try:
        assert any("unsigned" in r for r in refusals(unsigned, unsigned.decision_id, expect, {}, store))
    finally:
        store.close()


def test_every_reason_is_reported_not_only_the_first() -> None:
    decision = _append(make_decision(outcome="deny", environment="dev", timestamp=_now_minus(timedelta(days=30))))
    expect = Expectation(environment="prod", digest=DIGEST_A, max_age=timedelta(days=7), now=datetime.now(UTC))
    from gate.decisions.signing import load_trusted_keys

    store = open_store()
    try:
        reasons = refusals(decision, decision.decision_id, expect, load_trusted_keys(), store)
    finally:
        store.close()
    assert len(reasons) == 3 and "deny" in reasons[0] and "environment dev" in reasons[1] and "maximum age" in reasons[2]


def test_a_superseded_allow_is_refused_naming_the_newer_decision(gate: Callable[..., Run]) -> None:
    """Issue 10 item 2: the newest decision for (digest, environment) is the one that counts."""
    allowed = _append(make_decision(timestamp=_now_minus(timedelta(minutes=2))))
    denied = _append(make_decision(outcome="deny", timestamp=_now_minus(timedelta(minutes=1))))
    run = _promote(gate, allowed.decision_id)
    assert run.code == 1, run.err
    assert f"superseded by the newer decision {denied.decision_id} (deny" in run.out
    assert _recorded(allowed.decision_id) == ["refused"]


def test_refusals_judge_by_the_newest_decision_and_name_it() -> None:
    from gate.decisions.signing import load_trusted_keys

    allowed = _append(make_decision(timestamp=_now_minus(timedelta(minutes=3))))
    expect = Expectation(environment="prod", digest=DIGEST_A, max_age=timedelta(days=7), now=datetime.now(UTC))
    store = open_store()
    try:
        assert refusals(allowed, allowed.decision_id, expect, load_trusted_keys(), store) == []
        newer = _append(make_decision(timestamp=_now_minus(timedelta(minutes=2))))  # even a newer allow supersedes
        assert refusals(allowed, allowed.decision_id, expect, load_trusted_keys(), store) == [
            f"decision {allowed.decision_id} is superseded by the newer decision {newer.decision_id} "
            f"(allow, {newer.timestamp}) for {DIGEST_A} in prod: the newest decision counts"
        ]
        assert refusals(newer, newer.decision_id, expect, load_trusted_keys(), store) == []
    finally:
        store.close()


def test_a_newer_decision_of_another_environment_or_digest_does_not_supersede(gate: Callable[..., Run]) -> None:
    allowed = _append(make_decision(timestamp=_now_minus(timedelta(minutes=3))))
    _append(make_decision(outcome="deny", environment="staging", timestamp=_now_minus(timedelta(minutes=2))))
    _append(make_decision(outcome="deny", digest=DIGEST_B, timestamp=_now_minus(timedelta(minutes=1))))
    run = _promote(gate, allowed.decision_id)
    assert "superseded" not in run.out + run.err
    assert run.code == 2 and "gitops.git: reaching the repository failed" in run.err, run.err  # past the preconditions
    assert _recorded(allowed.decision_id) == ["error"]


def test_usage_errors_are_exit_2(gate: Callable[..., Run]) -> None:
    decision = _append(make_decision(timestamp=_now_minus(timedelta(minutes=1))))
    lonely = gate("promote", "--decision", decision.decision_id, "--target", TARGET, "--gitops-repo", REPO)
    assert lonely.code == 2 and "--gitops-repo and --gitops-path go together" in lonely.err
    bad_age = _promote(gate, decision.decision_id, "--max-age", "soon")
    assert bad_age.code == 2 and "--max-age 'soon': not a duration" in bad_age.err
    bad_author = _promote(gate, decision.decision_id, "--author", "nobody")
    assert bad_author.code == 2 and "give 'NAME <EMAIL>'" in bad_author.err
