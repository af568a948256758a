"""`gate decisions events` as auditors ask it: by time, kind, outcome, environment and whether the
decisions an event relied on applied a waiver — each question one command, text, JSON or CSV, on
both stores (SQLite and a real PostgreSQL)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from gate import rfc3339
from gate.decisions.events import PROMOTION, SYNC, EventQuery, new_event
from gate.decisions.signing import load_signer
from gate.decisions.store import open_store
from gate.output.events_csv import COLUMNS
from tests.conftest import Run
from tests.decisions.logcheck import DIGEST_A, DIGEST_B, DIGEST_C, make_decision, waiver

#: the events, in append order: (name, kind, outcome, env, decisions named, age)
PLAN = (
    ("old_waived", PROMOTION, "done", "prod", ("waived",), timedelta(days=40)),
    ("waived", PROMOTION, "done", "prod", ("waived",), timedelta(days=10)),
    ("plain", PROMOTION, "done", "prod", ("plain",), timedelta(days=5)),
    ("staging_waived", PROMOTION, "done", "staging", ("staging_waived",), timedelta(days=3)),
    ("refused", PROMOTION, "refused", "prod", ("deny",), timedelta(days=2)),
    ("sync", SYNC, "synced", "prod", ("plain", "waived"), timedelta(days=1)),
    ("noop_waived", PROMOTION, "noop", "prod", ("waived",), timedelta(hours=1)),
    ("unknown", PROMOTION, "refused", "prod", (), timedelta(minutes=5)),
)


@pytest.fixture
def events_log(store_url: str) -> dict[str, str]:
    """Four decisions (two applied a waiver) and the PLAN's events about them, re-dated before they
    are chained; returns event id -> name."""
    now = datetime.now(UTC)
    signer = load_signer()
    store = open_store(store_url)
    try:
        decisions = {
            "waived": store.append(make_decision(digest=DIGEST_A, waivers=(waiver("W-0042", "CVE-2022-22965"),)), signer),
            "plain": store.append(make_decision(digest=DIGEST_B), signer),
            "staging_waived": store.append(
                make_decision(environment="staging", digest=DIGEST_C, waivers=(waiver("W-7", "CVE-2021-44228"),)), signer
            ),
            "deny": store.append(make_decision(outcome="deny", digest=DIGEST_B), signer),
        }
        names = {}
        for name, kind, outcome, env, named, age in PLAN:
            event = new_event(
                kind, outcome, env, decision_ids=tuple(decisions[n].decision_id for n in named),
                artifact={"source": "ci.example.com/app:1", "digest": DIGEST_A, "target": f"release.example.com/app:{name}"}
                if kind == PROMOTION else None,
                details={"reasons": ["the decision is deny"]} if outcome == "refused"
                else {"commit": "ab" * 20, "applied": ["Deployment/a"], "blocked": [{"object": "Deployment/b", "reasons": ["x"]}]}
                if kind == SYNC else {"commit": "cd" * 20},
                context={"actor": "=cmd|' /C calc'!A0" if name == "waived" else "alice"},
            )
            event = msgspec.structs.replace(event, timestamp=rfc3339.format(now - age))
            names[store.append_event(event, signer).event_id] = name
        return names
    finally:
        store.close()


def listed(gate: Callable[..., Run], names: dict[str, str], *flags: str) -> list[str]:
    run = gate("decisions", "events", "--format", "json", *flags)
    assert run.code == 0, run.err
    return [names[e["event_id"]] for e in run.json()["events"]]


def test_prod_promotions_in_the_last_30_days_that_relied_on_a_waiver_is_one_command(
    gate: Callable[..., Run], events_log: dict[str, str]
) -> None:
    flags = ("--kind", "promotion", "--env", "prod", "--since", "30d", "--waived")
    assert listed(gate, events_log, *flags) == ["noop_waived", "waived"]
    assert listed(gate, events_log, *flags, "--outcome", "done") == ["waived"]
    # each filter alone selects
    assert listed(gate, events_log, "--waived") == ["noop_waived", "sync", "staging_waived", "waived", "old_waived"]
    assert listed(gate, events_log, "--kind", "sync") == ["sync"]
    assert listed(gate, events_log, "--type", "sync") == ["sync"]  # the old spelling still works
    assert listed(gate, events_log, "--outcome", "refused") == ["unknown", "refused"]
    assert listed(gate, events_log, "--env", "staging") == ["staging_waived"]
    assert listed(gate, events_log, "--since", "30d", "--until", "2d12h") == ["staging_waived", "plain", "waived"]
    assert listed(gate, events_log, "--until", "30d") == ["old_waived"]
    assert listed(gate, events_log, "--waived", "--limit", "2") == ["noop_waived", "sync"]


def test_events_query_on_the_store(store_url: str, events_log: dict[str, str]) -> None:
    since = rfc3339.format(datetime.now(UTC) - timedelta(days=30))
    store = open_store(store_url)
    try:
        found = store.events(EventQuery(type=PROMOTION, environment="prod", since=since, waived=True, outcome="done"))
        assert [events_log[e.event_id] for e in found] == ["waived"]
        oldest = store.events(EventQuery(waived=True, oldest_first=True, until=since))
        assert [events_log[e.event_id] for e in oldest] == ["old_waived"]
    finally:
        store.close()


def test_events_csv_has_fixed_columns_and_defuses_formulas(gate: Callable[..., Run], events_log: dict[str, str]) -> None:
    run = gate("decisions", "events", "--format", "csv", "--waived", "--since", "30d")
    assert run.code == 0, run.err
    rows = list(csv.reader(io.StringIO(run.out)))
    assert tuple(rows[0]) == COLUMNS
    by_name = {events_log[r[0]]: dict(zip(COLUMNS, r, strict=True)) for r in rows[1:]}
    assert list(by_name) == ["noop_waived", "sync", "staging_waived", "waived"]
    waived, sync = by_name["waived"], by_name["sync"]
    assert (waived["kind"], waived["outcome"], waived["environment"]) == ("promotion", "done", "prod")
    assert waived["target"] == "release.example.com/app:waived" and waived["commit"] == "cd" * 20
    assert waived["actor"] == "'=cmd|' /C calc'!A0"  # a spreadsheet would run it
    assert waived["hash"].startswith("sha256:") and waived["signing_key"]
    assert len(sync["decision_ids"].split(";")) == 2
    assert (sync["applied"], sync["blocked"], sync["target"]) == ("1", "Deployment/b", "")
    refused = gate("decisions", "events", "--format", "csv", "--outcome", "refused", "--limit", "1").out
    assert list(csv.DictReader(io.StringIO(refused)))[0]["reasons"] == "the decision is deny"


def test_events_text_lists_what_was_done(gate: Callable[..., Run], events_log: dict[str, str]) -> None:
    run = gate("decisions", "events", "--kind", "promotion", "--env", "prod", "--since", "30d", "--waived")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].split()[:5] == ["TIME", "TYPE", "OUTCOME", "ENV", "DECISIONS"]
    assert [line.split()[2] for line in lines[1:]] == ["noop", "done"]
    assert "release.example.com/app:waived" in run.out
    none = gate("decisions", "events", "--kind", "sync", "--outcome", "blocked")
    assert none.code == 0 and none.out == "no events\n"


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--kind", "sync", "--outcome", "done"], "--outcome done is not an outcome of a sync: synced, blocked, error"),
        (["--kind", "promotion", "--outcome", "synced"], "--outcome synced is not an outcome of a promotion"),
        (["--since", "1d", "--until", "2d"], "nothing can match"),
        (["--since", "2026-10-01T00:00:00"], "--since"),
        (["--outcome", "passed"], "--outcome"),
        (["--limit", "-1"], "--limit"),
    ],
)
def test_bad_event_filters_are_usage_errors(
    gate: Callable[..., Run], events_log: dict[str, str], flags: list[str], named: str
) -> None:
    run = gate("decisions", "events", *flags)
    assert run.code == 2 and run.out == ""
    assert named in run.err and "Traceback" not in run.err

