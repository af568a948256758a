"""gate.decisions.trust: the one answer to "which decision counts, and can it be relied on", shared
by promote, reconcile and the admission webhook (issue 10, "decision trust"). Real SQLite logs,
records signed with the session key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gate import rfc3339
from gate.decisions.interface import DecisionStore
from gate.decisions.signing import load_signer, load_trusted_keys
from gate.decisions.store import open_store
from gate.decisions.trust import decision_trust
from tests.decisions.logcheck import DIGEST_A, DIGEST_B, make_decision, waiver

NOW = datetime(2027, 1, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Iterator[DecisionStore]:
    opened = open_store()
    yield opened
    opened.close()


def _at(delta: timedelta) -> str:
    return rfc3339.format(NOW - delta)


def test_the_newest_decision_for_digest_and_environment_counts(store: DecisionStore) -> None:
    signer = load_signer()
    store.append(make_decision(timestamp=_at(timedelta(hours=3))), signer)
    newest = store.append(make_decision(outcome="deny", timestamp=_at(timedelta(hours=2))), signer)
    store.append(make_decision(environment="staging", timestamp=_at(timedelta(hours=1))), signer)
    store.append(make_decision(digest=DIGEST_B, timestamp=_at(timedelta(hours=1))), signer)
    trust = decision_trust(store, DIGEST_A, "prod", load_trusted_keys(), NOW, timedelta(days=7), history=5)
    assert trust.decision is not None and trust.decision.decision_id == newest.decision_id
    assert trust.problems == (f"decision {newest.decision_id} is deny, not allow",) and not trust.trusted
    assert [c.decision.outcome.value for c in trust.checks] == ["deny", "allow"]


def test_a_trusted_fresh_allow_has_no_problems_and_every_problem_is_named(store: DecisionStore) -> None:
    signer = load_signer()
    good = store.append(make_decision(timestamp=_at(timedelta(hours=1))), signer)
    trust = decision_trust(store, DIGEST_A, "prod", load_trusted_keys(), NOW, timedelta(days=7))
    assert trust.trusted and trust.problems == () and trust.checks[0].age == timedelta(hours=1)
    old = store.append(make_decision(timestamp=_at(timedelta(days=9)),
                                     waivers=(waiver("W-1", "CVE-1", expires=_at(timedelta(days=1))),)))
    untrusted = decision_trust(store, DIGEST_A, "prod", load_trusted_keys(), NOW, timedelta(days=7))
    assert untrusted.decision == old and good.decision_id not in " ".join(untrusted.problems)
    assert untrusted.problems == (
        f"decision {old.decision_id}: unsigned: the record has no signature",
        f"decision {old.decision_id} is 9.0d old, older than the maximum age 7.0d: evaluate again",
        f"waiver W-1 (CVE-1) the decision relied on expired at {_at(timedelta(days=1))}",
    )


@pytest.mark.parametrize(
    ("timestamp", "expires", "problem"),
    [
        ("2027-01-20T11:00:00", "2027-02-01T00:00:00Z", "has no readable timestamp ('2027-01-20T11:00:00'): its age is unknown"),
        ("2027-01-20T11:00:00Z", "2027-02-01T00:00:00", "waiver W-1 (CVE-1) the decision relied on expired at 2027-02-01T00:00:00"),
        ("2027-01-20T11:00:00Z", "soon", "waiver W-1 (CVE-1) the decision relied on expired at soon"),
    ],
    ids=["zoneless-timestamp", "zoneless-expiry", "garbage-expiry"],
)
def test_a_time_that_cannot_be_read_is_a_problem_never_a_pass(
    store: DecisionStore, timestamp: str, expires: str, problem: str
) -> None:
    decision = store.append(make_decision(timestamp=timestamp, waivers=(waiver("W-1", "CVE-1", expires=expires),)), load_signer())
    trust = decision_trust(store, DIGEST_A, "prod", load_trusted_keys(), NOW, timedelta(days=7))
    assert trust.decision == decision and any(problem in p for p in trust.problems), trust.problems


def test_no_decision_is_a_problem(store: DecisionStore) -> None:
    trust = decision_trust(store, DIGEST_A, "prod", load_trusted_keys(), NOW)
    assert trust.decision is None and not trust.trusted
    assert trust.problems == (f"no decision for {DIGEST_A} in prod: it never passed the gate",)
