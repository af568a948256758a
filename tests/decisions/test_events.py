"""Events (promotions, syncs) in the decision log: appended in their own signed chain, found by the
decisions they relate to, and verified like decisions — on both stores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gate.decisions.events import PROMOTION, SYNC, EventQuery, event_hash, new_event
from gate.decisions.signing import generate_keypair, load_signer
from gate.decisions.store import open_store
from tests.conftest import Run
from tests.decisions.logcheck import DIGEST_A, DIGEST_B, make_decision, raw


def _log(url: str) -> tuple[list, list]:
    """Two decisions and four events: two promotions of the first, a refused one of the second, a sync of both."""
    store = open_store(url)
    signer = load_signer()
    try:
        first = store.append(make_decision(digest=DIGEST_A), signer)
        second = store.append(make_decision(digest=DIGEST_B, outcome="deny"), signer)
        events = [
            store.append_event(new_event(PROMOTION, "done", "prod", decision_ids=(first.decision_id,),
                                         artifact={"digest": DIGEST_A, "target": "r/app:1"}, details={"commit": "ab" * 20}), signer),
            store.append_event(new_event(PROMOTION, "noop", "prod", decision_ids=(first.decision_id,),
                                         artifact={"digest": DIGEST_A}), signer),
            store.append_event(new_event(PROMOTION, "refused", "prod", decision_ids=(second.decision_id,),
                                         artifact={"digest": DIGEST_B}, details={"reasons": ["the decision is deny"]}), signer),
            store.append_event(new_event(SYNC, "blocked", "prod", decision_ids=(first.decision_id, second.decision_id),
                                         details={"applied": ["Deployment/a"], "blocked": ["Deployment/b"]}), signer),
        ]
    finally:
        store.close()
    return [first, second], events


def test_events_chain_and_are_found_by_decision_type_and_digest(store_url: str) -> None:
    (first, second), events = _log(store_url)
    assert [e.prev_hash for e in events] == [None, *(e.hash for e in events[:-1])]
    assert all(event_hash(e) == e.hash and e.signature for e in events)
    store = open_store(store_url)
    try:
        about_first = [e.event_id for e in store.events(EventQuery(decision_id=first.decision_id, oldest_first=True))]
        assert about_first == [events[0].event_id, events[1].event_id, events[3].event_id]
        assert [e.outcome for e in store.events(EventQuery(decision_id=second.decision_id))] == ["blocked", "refused"]
        assert [e.type for e in store.events(EventQuery(type=SYNC))] == [SYNC]
        assert [e.outcome for e in store.events(EventQuery(digest=DIGEST_A))] == ["noop", "done"]
        assert len(list(store.events(EventQuery(limit=2)))) == 2
    finally:
        store.close()


def test_cli_lists_events_and_show_tells_what_happened_after_a_decision(
    gate: Callable[..., Run], store_url: str
) -> None:
    (first, _), events = _log(store_url)
    listed = gate("decisions", "events", "--decision", first.decision_id, "--format", "json")
    assert listed.code == 0
    assert [e["outcome"] for e in listed.json()["events"]] == ["blocked", "noop", "done"]
    text = gate("decisions", "events", "--type", "promotion")
    assert text.code == 0 and "refused" in text.out and "the decision is deny" in text.out
    shown = gate("decisions", "show", first.decision_id)
    assert shown.code == 0
    tail = shown.out.split("\nEvents:\n")[1]
    assert "r/app:1" in tail and "commit abababababab" in tail and "1 applied, 1 blocked" in tail
    assert gate("decisions", "verify").out.endswith("2 records intact; chain head " + _head(store_url) + "\n4 events intact\n")


def _head(url: str) -> str:
    return raw(url, "select hash from decisions order by seq desc limit 1")[0][0]


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        ("update events set record = replace(record, '\"refused\"', '\"done\"') where seq = 3", "event seq 3"),
        ("delete from events where seq = 2", "seq 2 deleted"),
        ("update events set hash = 'sha256:00' where seq = 1", "event seq 1"),
    ],
)
def test_verify_finds_an_edited_or_deleted_event(gate: Callable[..., Run], store_url: str, tamper: str, words: str) -> None:
    _log(store_url)
    raw(store_url, tamper)
    run = gate("decisions", "verify")
    assert run.code == 1
    assert "events verify failed at" in run.out and words in run.out
    body = gate("decisions", "verify", "--format", "json").json()
    assert body["ok"] is True and body["events"]["ok"] is False


def test_an_event_signed_by_an_untrusted_key_fails_verify(
    gate: Callable[..., Run], store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    signing_key: tuple[Path, Path],
) -> None:
    _log(store_url)
    rogue, _ = generate_keypair(tmp_path / "rogue")
    monkeypatch.setenv("GATE_SIGNING_KEY", str(rogue))
    store = open_store(store_url)
    try:
        store.append_event(new_event(PROMOTION, "done", "prod"), load_signer())
    finally:
        store.close()
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(signing_key[1]))
    run = gate("decisions", "verify")
    assert run.code == 1 and "event seq 5" in run.out and "not a trusted key" in run.out
