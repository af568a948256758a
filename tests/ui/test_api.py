"""The web view's JSON API on both stores, over a log seeded through the real CLI: the same filters
as ``gate decisions list`` giving the same decisions, keyset pages that neither skip nor repeat,
downloads equal to the CLI's output, the decision payload, events, stats, waivers and integrity, and
every bad parameter a 400 naming it. The payload examples in tests/ui/payloads keep the shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from gate.decisions.store import open_store
from tests.conftest import Run
from tests.ui.conftest import Seeded
from tests.ui.seed import HOSTILE, HOSTILE_IMAGE

PAYLOADS = Path(__file__).parent / "payloads"


@pytest.fixture
def store(ui_log: Seeded, store_url: str) -> Any:
    s = open_store(store_url, create=False, read_only=True)
    yield s
    s.close()


def params(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True)


def ids_of(payload: dict[str, Any]) -> list[str]:
    return [d["decision_id"] for d in payload["decisions"]]


FILTERS = [
    "", "env=prod", "env=staging", "outcome=deny", "outcome=allow", "env=prod&outcome=deny",
    "image=registry.example.com/shop/payments", "digest=sha256:" + "33" * 32, "rule=vulnerabilities.severity",
    "rule=CVE-2022-22965", "rule=hostile.rule", "finding=cve-2022-22965", "waiver=W-0042", "waived=1",
    "since=1h", "until=1h", "since=2000-01-01&until=2999-01-01", "env=nowhere",
]


@pytest.mark.parametrize("query", FILTERS)
def test_every_filter_selects_what_gate_decisions_list_selects(
    store: Any, gate: Callable[..., Run], query: str
) -> None:
    from gate.ui import api

    flags: list[str] = []
    for name, values in params(query).items():
        flag = "--" + name.replace("_", "-")
        flags += [flag] if name == "waived" else [flag, values[0]]
    cli = gate("decisions", "list", "--format", "json", *flags)
    assert cli.code == 0, cli.err
    expected = [d["decision_id"] for d in cli.json()["decisions"]]
    payload = api.decisions(store, params(query))
    assert ids_of(payload) == expected
    # each entry is the CLI's entry, byte for byte once serialized
    assert json.loads(json.dumps(payload["decisions"])) == cli.json()["decisions"]


def test_pages_walk_the_log_newest_first_and_oldest_first_without_gaps(store: Any, ui_log: Seeded) -> None:
    from gate.ui import api

    every = [d.decision_id for d in reversed(ui_log.decisions)]
    seen: list[str] = []
    query = "limit=2"
    while True:
        payload = api.decisions(store, params(query))
        seen += ids_of(payload)
        assert payload["limit"] == 2 and len(payload["decisions"]) <= 2
        if payload["next"] is None:
            break
        assert payload["next"] == "/api/v1/decisions?" + payload["next_query"]
        query = payload["next_query"]
    assert seen == every
    seen, query = [], "sort=oldest&limit=4"
    while query:
        payload = api.decisions(store, params(query))
        seen += ids_of(payload)
        query = payload["next_query"]
    assert seen == every[::-1]
    # a filter is kept across pages
    first = api.decisions(store, params("env=prod&limit=1"))
    assert parse_qs(first["next_query"])["env"] == ["prod"]
    assert first["downloads"] == {"csv": "/api/v1/decisions.csv?env=prod", "json": "/api/v1/decisions.json?env=prod"}


def test_a_page_cursor_is_a_chain_position(store: Any, ui_log: Seeded) -> None:
    from gate.ui import api

    payload = api.decisions(store, params("limit=1"))
    assert payload["first_seq"] == payload["last_seq"] == len(ui_log.decisions)
    older = api.decisions(store, params(f"before={payload['last_seq']}"))
    assert ids_of(older) == [d.decision_id for d in reversed(ui_log.decisions[:-1])]
    assert api.decisions(store, params("before=1"))["decisions"] == []


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("colour=red", "unknown parameter 'colour'"),
        ("env=prod&env=dev", "given 2 times"),
        ("outcome=maybe", "outcome 'maybe'"),
        ("since=yesterday", "since 'yesterday'"),
        ("since=2026-01-01T00:00:00", "since"),  # zoneless: refused, as the CLI refuses it
        ("since=1d&until=2d", "is not before until"),
        ("limit=0", "limit 0"),
        ("limit=201", "limit 201"),
        ("limit=-1", "limit '-1'"),
        ("limit=1e3", "limit '1e3'"),
        ("before=x", "before 'x'"),
        ("before=99999999999999999999999", "before"),
        ("sort=image", "sort 'image'"),
        ("sort=oldest&before=3", "before goes with newest first"),
        ("before=3&after=1", "not both"),
        ("waived=perhaps", "waived 'perhaps'"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(store: Any, query: str, reason: str) -> None:
    from gate.ui import api

    with pytest.raises(api.BadRequest) as e:
        api.decisions(store, params(query))
    assert reason in str(e.value)
    assert "\n" not in str(e.value)


def test_blank_form_fields_are_not_filters(store: Any) -> None:
    from gate.ui import api

    assert ids_of(api.decisions(store, params("env=&outcome=&since=&waived="))) == ids_of(api.decisions(store, {}))


@pytest.mark.parametrize("form", ["csv", "json"])
def test_a_download_is_the_cli_listing_of_the_whole_filtered_set(
    store: Any, gate: Callable[..., Run], form: str
) -> None:
    from gate.ui import api

    body = b"".join(api.download(store, params("env=prod"), form))
    cli = gate("decisions", "list", "--env", "prod", "--format", form)
    assert body.decode() == cli.out
    with pytest.raises(api.BadRequest):  # no paging in a download
        api.download(store, params("limit=5"), form)


def test_the_decision_payload(store: Any, ui_log: Seeded) -> None:
    from gate.ui import api
    from gate.decisions.signing import load_trust

    trust = load_trust()
    waived = ui_log.ids["waived"]
    payload = api.decision(store, waived, {}, trust.keys)
    assert payload["decision"]["decision_id"] == waived
    assert payload["decision"]["waivers"][0]["reason"].endswith(HOSTILE)  # raw in JSON: the pages escape it
    assert payload["chain"]["seq"] == 3 and payload["chain"]["hash_ok"] is True
    assert payload["chain"]["head_seq"] == len(ui_log.decisions)
    assert payload["signature"] == {"status": "trusted", "key_id": payload["decision"]["signing_key"], "problem": None}
    [spring] = [f for f in payload["findings"] if f["rule"] == "CVE-2022-22965"]
    assert spring["triage"] == {"status": "waived", "rules": [], "waivers": ["W-0042"]}
    assert all("raw" not in f for f in payload["findings"])
    assert payload["findings_total"] == payload["findings_matched"] == len(payload["findings"])
    assert [e["outcome"] for e in payload["events"]] == ["done"]
    denied = api.decision(store, ui_log.ids["deny"], params("q=SPRING-beans"), trust.keys)
    assert denied["findings_matched"] == 1 and denied["findings_query"] == "SPRING-beans"
    assert denied["findings"][0]["triage"]["status"] == "denied"
    assert denied["findings"][0]["triage"]["rules"] == ["vulnerabilities.severity"]
    assert api.decision(store, ui_log.ids["deny"], params("q=nothing-like-it"), trust.keys)["findings"] == []
    with pytest.raises(api.NotFound):
        api.decision(store, "0190-no-such", {}, trust.keys)
    with pytest.raises(api.BadRequest):
        api.decision(store, waived, params("q=a&zoom=2"), trust.keys)


def test_signature_status_names_untrusted_and_unsigned_records(store: Any, ui_log: Seeded) -> None:
    from gate.ui import api

    assert api.decision(store, ui_log.ids["allow"], {}, {})["signature"]["status"] == "untrusted"


def test_events_stats_and_waivers(store: Any, ui_log: Seeded) -> None:
    from gate.ui import api

    events = api.events(store, params("kind=promotion"))
    assert [e["decision_ids"] for e in events["events"]] == [[ui_log.ids["waived"]]]
    assert api.events(store, params("kind=sync"))["events"] == []
    assert api.events(store, params(f"decision={ui_log.ids['waived']}&limit=1"))["next"] is None
    with pytest.raises(api.BadRequest, match="outcome 'synced'"):
        api.events(store, params("kind=promotion&outcome=synced"))
    stats = api.stats(store, {})
    assert stats["total"] == len(ui_log.decisions) and stats["query"] == {"since": "4w"}
    assert {w["environment"] for w in stats["weekly"]} == {"prod", "staging"}
    assert sum(w["total"] for w in stats["weekly"]) == stats["total"]
    assert {r["rule"] for r in stats["blocking_rules"]} >= {"hostile.rule", "vulnerabilities.severity"}
    assert api.stats(store, params("env=staging&top=1"))["total"] == 1
    waivers = api.waivers(store, {})
    assert [w["id"] for w in waivers["in_use"]] == ["W-0042", "W-SOON"] or {w["id"] for w in waivers["in_use"]} == {"W-0042", "W-SOON"}
    assert [w["id"] for w in waivers["expiring"]] == ["W-SOON"]
    assert waivers["expired_referenced"] == []
    assert all(w["allows"] == 1 for w in waivers["in_use"])


def test_integrity_runs_verify_in_the_background(store: Any, store_url: str, ui_log: Seeded) -> None:
    from gate.decisions.signing import load_trust
    from gate.ui import api

    integrity = api.Integrity(lambda: open_store(store_url, create=False, read_only=True), load_trust())
    before = integrity.status(store)
    assert before["state"] == "never" and before["verify"] is None and before["head_seq"] == len(ui_log.decisions)
    assert integrity.start()
    integrity.wait(60)
    after = integrity.status(store)
    assert after["state"] == "done" and after["verify"]["ok"] is True
    assert after["verify"]["head"] == after["head"] and after["verify"]["events"]["ok"] is True
    assert after["seconds"] is not None and after["finished_at"] is not None


def test_a_hostile_image_comes_back_as_data(store: Any) -> None:
    from gate.ui import api

    payload = api.decisions(store, params("limit=1"))
    assert payload["decisions"][0]["artifact"]["image"] == HOSTILE_IMAGE


def shape(value: Any) -> Any:
    """The keys of every object, recursively (lists: the union of their items' shapes)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            if isinstance(item, dict):
                merged.update(shape(item))
        return [merged] if merged else []
    return None


def test_the_payload_examples_have_the_shapes_the_api_returns(store: Any, ui_log: Seeded) -> None:
    from gate.decisions.signing import load_trust
    from gate.ui import api

    trust = load_trust()
    made = {
        "decisions": api.decisions(store, params("limit=3")),
        "decision": api.decision(store, ui_log.ids["waived"], params("q=spring"), trust.keys),
        "events": api.events(store, {}),
        "waivers": api.waivers(store, {}),
    }
    for name, payload in made.items():
        example = json.loads((PAYLOADS / f"{name}.json").read_text())
        assert set(example) == set(payload), name
        assert shape(example) == shape(payload) or name in ("decisions", "decision"), name
    stats = json.loads((PAYLOADS / "stats.json").read_text())
    assert set(stats) == set(api.stats(store, {}))
    integrity = json.loads((PAYLOADS / "integrity.json").read_text())
    assert set(integrity) == set(api.Integrity(lambda: store, trust).status(store))


def test_time_filters_are_exact_when_the_log_is_out_of_time_order(
    store_url: str, seeded: Seeded, gate: Callable[..., Run]
) -> None:
    """Pages bounded in time walk a seq range read from the timestamp index (queries.bounded): records
    appended out of time order (back-dated, future-dated) must still be found, and only they."""
    from datetime import UTC, datetime, timedelta

    import msgspec

    from gate import rfc3339
    from gate.decisions.signing import load_signer
    from gate.ui import api

    now = datetime.now(UTC)
    ages = [timedelta(days=d) for d in (3, 40, 1, 400, 2, 0)]  # in append order: not in time order
    signer = load_signer()
    log = open_store(store_url)
    try:
        for decision, age in zip(seeded.decisions, ages, strict=True):
            log.append(msgspec.structs.replace(decision, timestamp=rfc3339.format(now - age)), signer)
    finally:
        log.close()
    store = open_store(store_url, create=False, read_only=True)
    try:
        for query in ("since=2d", "since=5d", "since=41d&until=2d", "since=30d&until=36h&env=prod",
                      "since=2d&sort=oldest", "since=500d&until=399d", "since=10d&until=5d", "since=41d&limit=1"):
            given = params(query)
            argv: list[str] = []
            for name, values in given.items():
                if name in ("sort", "limit"):
                    continue
                argv += [f"--{name}", values[0]]
            cli = [d["decision_id"] for d in gate("decisions", "list", "--format", "json", *argv).json()["decisions"]]
            if "sort" in given:
                cli.reverse()
            expected = cli[: int(given.get("limit", ["50"])[0])]
            assert ids_of(api.decisions(store, given)) == expected, query
            if "limit" not in given:  # the download: the same set
                downloaded = json.loads(b"".join(api.download(store, given, "json")))["decisions"]
                assert [d["decision_id"] for d in downloaded] == expected, query
    finally:
        store.close()


@pytest.mark.parametrize("query", ["since=4w", "env=prod&since=1d", "outcome=deny&since=30d&top=1"])
def test_stats_are_gate_decisions_stats(store: Any, gate: Callable[..., Run], query: str) -> None:
    """Computed from stored records with only the findings deny reasons name (api._Named): the same
    document as `gate decisions stats --format json` over full records."""
    from gate.ui import api

    argv: list[str] = []
    for name, values in params(query).items():
        argv += [f"--{name}", values[0]]
    cli = gate("decisions", "stats", "--format", "json", *argv).json()
    mine = api._stats(store, params(query))
    for key in ("now", "since", "until"):
        cli.pop(key), mine.pop(key)
    for extra in ("weekly", "query", "left_out"):
        mine.pop(extra)
    assert mine == cli


def test_a_verify_that_cannot_reach_the_log_fails_in_one_line_without_the_password(store: Any) -> None:
    from gate.decisions.signing import load_trust
    from gate.ui import api

    integrity = api.Integrity(
        lambda: open_store("postgresql://auditor:hunter2-secret@127.0.0.1:1/gate?connect_timeout=2", create=False,
                           read_only=True),
        load_trust(),
    )
    integrity.start()
    integrity.wait(60)
    status = integrity.status(store)
    assert status["state"] == "failed" and status["verify"] is None
    assert "cannot connect" in status["error"] and "hunter2" not in status["error"] and "\n" not in status["error"]


def test_a_waived_finding_named_by_its_waivers_expiry_warning_reads_waived() -> None:
    from types import SimpleNamespace

    from gate.decisions.record import AppliedWaiver, Violation
    from gate.ui.api import _triage

    decision = SimpleNamespace(
        violations=(Violation(rule="vulnerabilities.severity", message="m", severity="high", finding_ids=("f2",)),),
        warnings=(Violation(rule="waivers.expiring", message="m", severity="low", finding_ids=("f1",)),),
        waivers=(AppliedWaiver(id="W-1", rule="CVE-1", expires="2027-01-01T00:00:00Z", approved_by="a", reason="r",
                               finding_ids=("f1",)),),
    )
    triage = _triage(decision)
    assert triage["f1"] == ("waived", ["waivers.expiring"], ["W-1"])
    assert triage["f2"][0] == "denied"
