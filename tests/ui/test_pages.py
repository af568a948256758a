"""gate.ui.pages and gate.ui.charts: every page drawn from the API's payload examples (tests/ui/payloads,
made from a real log seeded through the CLI, hostile strings included), then from the same payloads
with every string poisoned and every value of the wrong type.

Each page is read back with an HTML parser (tests/ui/htmlcheck.py): no script, style, event handler
or foreign link may appear, whatever the payload holds, and each hostile value must be shown as text.
"""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gate.ui import charts, pages
from tests.ui.htmlcheck import EVIL, audit

PAYLOADS = Path(__file__).resolve().parent / "payloads"
CSS = Path(pages.__file__).resolve().parent / "static" / "gate.css"
#: the seed's hostile strings (tests/ui/seed.py)
HOSTILE = '<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">'
HOSTILE_IMAGE = 'registry.example.com/shop/<script>window.__xss=3</script>" onmouseover="window.__xss=4'


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def render_all(poison: Callable[[Any], Any] = lambda x: x) -> Iterator[tuple[str, str]]:
    """(name, html) for every page, from the payload examples passed through ``poison``."""
    integrity = poison(payload("integrity"))
    yield "decisions", pages.decisions_page(poison(payload("decisions")), poison({"env": "prod", "before": "9"}),
                                            integrity=integrity)
    yield "decisions-filtered", pages.decisions_page(poison(payload("decisions-filtered")),
                                                     poison({"env": "prod", "outcome": "deny"}), integrity=integrity)
    yield "decision", pages.decision_page(poison(payload("decision")), poison({"q": "cve"}), integrity=integrity)
    yield "events", pages.events_page(poison(payload("events")), poison({"kind": "promotion"}), integrity=integrity)
    yield "waivers", pages.waivers_page(poison(payload("waivers")), poison({"since": "90d"}), integrity=integrity)
    yield "trends", pages.trends_page(poison(payload("stats")), poison({"since": "12w"}), integrity=integrity)
    yield "never-verified", pages.decisions_page({"decisions": []}, {}, integrity=poison(payload("integrity-never")))
    yield "error", pages.error_page(400, poison("--since: not a time"), integrity=integrity)


@pytest.mark.parametrize(("name", "html"), list(render_all()), ids=[n for n, _ in render_all()])
def test_every_page_renders_from_its_payload_with_nothing_that_could_run(name: str, html: str) -> None:
    assert html.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    page = audit(html)
    (stylesheet,) = [a for t, a in page.tags if t == "link"]
    assert stylesheet == {"rel": "stylesheet", "href": "/static/gate.css"}
    assert page.by_id("verify-button")[1]["type"] == "submit"
    (form,) = [a for t, a in page.tags if t == "form" and a.get("method") == "post"]
    assert form["action"] == "/integrity/verify"  # the only POST: it runs verify, which writes nothing


def test_hostile_values_of_the_seeded_log_are_shown_as_text() -> None:
    shown = {name: audit(html).text() for name, html in render_all()}
    assert HOSTILE_IMAGE in shown["decisions"]  # the image name, as text, character for character
    assert "not reachable " + HOSTILE in shown["decision"]  # the waiver reason
    hostile_rule = [d for d in payload("decisions")["decisions"] if d["environment"] == "staging"]
    assert hostile_rule[0]["violations"][0]["message"] == HOSTILE and "hostile.rule" in shown["decisions"]
    titles = audit(pages.decisions_page(payload("decisions"), {})).attrs("title")
    assert HOSTILE in titles  # the list shows a reason's message on its rule, as an attribute


def test_a_hostile_rule_message_is_text_on_the_decision_page() -> None:
    decision = payload("decision")
    decision["decision"]["violations"] = [{"rule": "hostile.rule", "message": HOSTILE, "severity": "low",
                                           "solution": HOSTILE, "finding_ids": [HOSTILE]}]
    page = audit(pages.decision_page(decision))
    assert page.text().count(HOSTILE) >= 3


def _poison_strings(value: Any) -> Any:
    """Every string (values, not keys) prefixed with EVIL."""
    if isinstance(value, str):
        return EVIL + value
    if isinstance(value, dict):
        return {k: _poison_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_poison_strings(v) for v in value]
    return value


def test_with_every_string_of_every_payload_hostile_nothing_can_run() -> None:
    for name, html in render_all(_poison_strings):
        page = audit(html)
        assert EVIL in page.text(), name
        # hostile strings never reach a URL unencoded, nor become a class
        for href in page.attrs("href") + page.attrs("action"):
            assert "<" not in href and '"' not in href and " " not in href, (name, href)
        for cls in page.attrs("class"):
            assert re.fullmatch(r"[a-z0-9 -]+", cls), (name, cls)


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 3) -> Iterator[tuple[Any, ...]]:
    """Paths to every dict value and list item, at most ``depth`` deep (one list item of each list)."""
    if depth == 0:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key), depth - 1)
    elif isinstance(value, list) and value:
        yield (*prefix, 0)
        yield from _paths(value[0], (*prefix, 0), depth - 1)


def _set(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


WRONG: tuple[Any, ...] = (None, 7, -1, True, "x", [], {}, [None], {"x": [1]}, 10**30, 1.5)
PAGES: dict[str, tuple[str, Callable[..., str]]] = {
    "decisions": ("decisions", lambda p: pages.decisions_page(p, {"env": "prod"})),
    "decision": ("decision", lambda p: pages.decision_page(p)),
    "events": ("events", lambda p: pages.events_page(p, {})),
    "waivers": ("waivers", lambda p: pages.waivers_page(p)),
    "trends": ("stats", lambda p: pages.trends_page(p)),
    "integrity": ("integrity", lambda p: pages.layout("x", "body", integrity=p)),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_a_payload_of_the_wrong_shape_anywhere_still_renders(name: str) -> None:
    """A missing key, or a value of the wrong type at any place (up to three levels deep), never
    breaks a page: it shows what it can read."""
    source, render = PAGES[name]
    document = payload(source)
    audit(render({}))
    for wrong in (None, [], "x", 3):
        audit(render(wrong if isinstance(wrong, dict) else {"decisions": wrong, "events": wrong, "decision": wrong}))
    count = 0
    for path in _paths(document):
        for wrong in WRONG:
            audit(render(_set(document, path, wrong)))
            count += 1
    assert count > 50


# ------------------------------------------------------------------ the decisions list


def test_the_filter_form_keeps_the_filters_and_downloads_carry_them() -> None:
    html = pages.decisions_page(payload("decisions-filtered"), {"env": "prod", "outcome": "deny", "waived": "1",
                                                                "before": "40", "limit": "20"})
    page = audit(html)
    assert page.by_id("f-env")[1]["value"] == "prod"
    assert ("option", {"value": "deny", "selected": None}) in page.tags
    assert "checked" in page.by_id("f-waived")[1]
    assert page.by_id("download-csv")[1]["href"] == "/api/v1/decisions.csv?env=prod&outcome=deny"
    assert page.by_id("download-json")[1]["href"] == "/api/v1/decisions.json?env=prod&outcome=deny"
    # the cursor is not a filter: a new filter, the sort and "newest" start at page one
    assert page.by_id("first-page")[1]["href"] == "/decisions?env=prod&outcome=deny&waived=1&limit=20"
    assert "before" not in page.by_id("sort-time")[1]["href"]
    form_fields = {a.get("name") for t, a in page.tags if t in ("input", "select") and a.get("name")}
    assert "before" not in form_fields and "limit" in form_fields


def test_the_filter_form_offers_every_filter_the_api_takes_and_no_other() -> None:
    from gate.ui.queries import DECISION_FILTERS, EVENT_FILTERS

    def fields(html: str) -> set[str]:
        page = audit(html)
        return {a["name"] or "" for t, a in page.tags if t in ("input", "select") and a.get("name")
                and a.get("form") is None and a.get("type") != "hidden"} - {"next"}

    assert fields(pages.decisions_page(payload("decisions"), {})) == set(DECISION_FILTERS)
    assert fields(pages.events_page(payload("events"), {})) == set(EVENT_FILTERS)


def test_downloads_without_the_payloads_links_are_built_from_the_filters() -> None:
    page = audit(pages.decisions_page({"decisions": [], "downloads": {"csv": "https://evil.example/x.csv",
                                                                      "json": "//evil.example/x"}},
                                      {"image": "registry.example.com/a b", "before": "3"}))
    assert page.by_id("download-csv")[1]["href"] == "/api/v1/decisions.csv?image=registry.example.com%2Fa+b"
    assert page.by_id("download-json")[1]["href"] == "/api/v1/decisions.json?image=registry.example.com%2Fa+b"


def test_the_next_page_link_is_the_payloads_cursor_on_the_page_path() -> None:
    document = payload("decisions") | {"next": "/api/v1/decisions?env=prod&before=71", "next_query": "env=prod&before=71"}
    page = audit(pages.decisions_page(document, {"env": "prod"}))
    assert page.by_id("next-page")[1]["href"] == "/decisions?env=prod&before=71"
    assert not [t for t in page.tags if t[1].get("id") == "first-page"]
    # only the API URL: its query is read, its path and host are not
    document = payload("decisions") | {"next": "https://evil.example/api/v1/decisions?before=5", "next_query": None}
    assert audit(pages.decisions_page(document, {})).by_id("next-page")[1]["href"] == "/decisions?before=5"
    assert "next-page" not in pages.decisions_page(payload("decisions-filtered"), {})


def test_sorting_is_chain_order_both_ways() -> None:
    page = audit(pages.decisions_page(payload("decisions"), {"env": "prod"}))
    assert page.by_id("sort-time")[1]["href"] == "/decisions?env=prod&sort=oldest"
    oldest = payload("decisions") | {"sort": "oldest"}
    page = audit(pages.decisions_page(oldest, {"env": "prod", "sort": "oldest", "after": "3"}))
    assert page.by_id("sort-time")[1]["href"] == "/decisions?env=prod"
    assert ("th", {"scope": "col", "aria-sort": "ascending"}) in page.tags
    assert page.by_id("first-page")[1]["href"] == "/decisions?env=prod&sort=oldest"
    no_other = payload("decisions") | {"sorts": ["newest"]}
    assert "sort-time" not in pages.decisions_page(no_other, {})


def test_each_row_links_to_its_decision_and_to_filtered_lists() -> None:
    document = payload("decisions")
    page = audit(pages.decisions_page(document, {}))
    hrefs = page.attrs("href")
    for d in document["decisions"]:
        assert f"/decisions/{d['decision_id']}" in hrefs
    assert "/decisions?waiver=W-SOON" in hrefs and "/decisions?env=staging" in hrefs
    assert len([1 for t, a in page.tags if t == "tr"]) == len(document["decisions"]) + 1


def test_records_left_out_are_said_not_hidden() -> None:
    page = audit(pages.decisions_page({"decisions": [], "left_out": ["record seq 4 (decision x)"]}, {}))
    assert "record seq 4 (decision x)" in page.text() and page.by_id("left-out")
    assert "left-out" not in pages.decisions_page(payload("decisions"), {})


def test_an_empty_list_says_so() -> None:
    page = audit(pages.decisions_page({"decisions": [], "sort": "newest"}, {"env": "nowhere"}))
    assert "No decision matches these filters." in page.text()


# ------------------------------------------------------------------ one decision


def test_the_decision_page_shows_reasons_triage_findings_policy_chain_signature_and_events() -> None:
    document = payload("decision")
    d = document["decision"]
    page = audit(pages.decision_page(document))
    shown = page.text()
    assert d["decision_id"] in shown and d["policy"]["digest"] in shown and d["policy"]["revision"] in shown
    for scanner in d["scanners"]:
        assert scanner["report_sha256"] in shown
    assert page.by_id("signature-status")[1]["class"] == "sig sig-trusted"
    assert f"key {document['signature']['key_id']}" in shown.replace("\xa0", " ")
    assert page.by_id("hash-status")[1]["class"] == "sig sig-trusted"
    assert f"record {document['chain']['seq']} of {document['chain']['head_seq']}" in shown
    assert "W-0042" in shown and "secops@example.com" in shown
    finding = document["findings"][0]
    assert finding["rule"] in shown and "waived" in shown
    assert f"1 of {document['findings_total']} findings" in shown
    (event,) = document["events"]
    assert event["details"]["gitops"]["commit"][:12] in shown and "apps/cart" in shown
    assert page.by_id("findings-search")[1]["action"] == f"/decisions/{d['decision_id']}"
    assert page.by_id("decision-json")[1]["href"] == f"/api/v1/decisions/{d['decision_id']}"


VEX_ENTRY = {"id": "https://openvex.dev/docs/example/vex-9fb3463de1b5#0", "rule": "CVE-2022-22965", "kind": "vex",
             "document": "sha256:" + "47d47474a64c" * 5 + "abcd", "statement": "#0", "format": "openvex",
             "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
             "author": HOSTILE, "finding_ids": ["056595233b93ec27e20e073326566851"], "reason": HOSTILE}


def test_a_vex_statement_is_triage_beside_the_waivers() -> None:
    document = payload("decision")
    document["decision"]["waivers"].append(VEX_ENTRY)
    page = audit(pages.decision_page(document))
    triage = page.text()
    assert "VEX openvex" in triage and "not_affected" in triage and "vulnerable_code_not_in_execute_path" in triage
    assert triage.count(HOSTILE) >= 3  # the waiver's reason, the statement's reason and its author
    assert VEX_ENTRY["document"] in page.attrs("title")
    listing = payload("decisions")
    listing["decisions"][0]["waivers"] = [VEX_ENTRY]
    assert "VEX #0" in audit(pages.decisions_page(listing, {})).text()


def test_a_searched_decision_keeps_the_search_and_counts_matches() -> None:
    document = payload("decision") | {"findings": [], "findings_matched": 0, "findings_query": "<nothing>"}
    page = audit(pages.decision_page(document))
    assert page.by_id("f-q")[1]["value"] == "<nothing>"
    assert "No finding matches." in page.text() and "0 of 1 findings" in page.text()
    more = payload("decision") | {"findings_matched": 900}
    assert "first 1 shown" in audit(pages.decision_page(more)).text()


@pytest.mark.parametrize(("status", "shown"), [
    ({"status": "invalid", "key_id": "k1", "problem": "signature does not verify"}, "sig sig-invalid"),
    ({"status": "untrusted", "key_id": "k2"}, "sig sig-untrusted"),
    ({"status": "unsigned", "key_id": None}, "sig sig-unsigned"),
    ({"status": "<b>"}, "sig"),
])
def test_signature_status_is_shown_as_the_api_says(status: dict[str, Any], shown: str) -> None:
    page = audit(pages.decision_page(payload("decision") | {"signature": status}))
    assert page.by_id("signature-status")[1]["class"] == shown
    assert (status.get("problem") or "") in page.text()


def test_a_record_whose_hash_does_not_match_says_so() -> None:
    document = payload("decision")
    document["chain"] |= {"hash_ok": False, "problem": "hash mismatch: the record was edited"}
    page = audit(pages.decision_page(document))
    assert page.by_id("hash-status")[1]["class"] == "sig sig-invalid"
    assert "does NOT match" in page.text() and "the record was edited" in page.text()
    # said at the top too: an edited record still shows the outcome it claims
    assert page.by_id("record-distrust")[1]["class"] == "notice" and "Do not rely on this record" in page.text()


def test_a_trusted_intact_record_has_no_distrust_notice_and_an_unsigned_one_has() -> None:
    assert "record-distrust" not in pages.decision_page(payload("decision"))
    page = audit(pages.decision_page(payload("decision") | {"signature": {"status": "unsigned", "key_id": None}}))
    assert page.by_id("record-distrust") and "its signature is unsigned" in page.text()


def test_only_http_links_from_the_record_become_links() -> None:
    document = payload("decision")
    document["decision"]["context"] = {"pipeline_url": "javascript:window.__xss=1", "actor": "mallory"}
    page = audit(pages.decision_page(document))
    assert "javascript:window.__xss=1" in page.text()
    assert not [h for h in page.attrs("href") if "javascript" in h]
    document["decision"]["context"] = {"pipeline_url": "https://ci.example.com/run/7?token=abcdef123456"}
    page = audit(pages.decision_page(document))
    assert [h for h in page.attrs("href") if h.startswith("https://ci.example.com/run/7")]
    assert "abcdef123456" not in pages.decision_page(document)  # redacted, in the link and in the text


# ------------------------------------------------------------------ events, waivers, trends, integrity


def test_events_link_to_their_decisions_and_show_the_gitops_commit() -> None:
    document = payload("events")
    page = audit(pages.events_page(document, {"kind": "promotion", "before": "3"}))
    (event,) = document["events"]
    assert f"/decisions/{event['decision_ids'][0]}" in page.attrs("href")
    assert event["details"]["commit"][:12] in page.text()
    assert page.by_id("api-link")[1]["href"] == "/api/v1/events?kind=promotion&before=3"
    assert ("option", {"value": "promotion", "selected": None}) in page.tags


def test_a_sync_event_shows_its_repository_what_it_applied_and_blocked() -> None:
    sync = {"event_id": "e2", "timestamp": "2026-12-07T10:00:00Z", "type": "sync", "outcome": "blocked",
            "environment": "prod", "decision_ids": [f"d{i}" for i in range(12)], "context": {"actor": "reconciler@prod"},
            "details": {"commit": "c0ffee" * 6, "repo": "https://git.example.com/org/gitops.git", "path": "apps/prod",
                        "applied": ["Deployment/shop/api", "Service/shop/api"], "unchanged": 3,
                        "blocked": [{"object": "Deployment/shop/cart", "reasons": [HOSTILE]}]}}
    page = audit(pages.events_page({"events": [sync]}, {}))
    shown = page.text()
    assert "https://git.example.com/org/gitops.git" in page.attrs("href") and "c0ffeec0ffee" in shown
    assert "2 applied, 3 unchanged" in shown and "1 blocked:" in shown and f"Deployment/shop/cart: {HOSTILE}" in shown
    assert "/decisions/d9" in page.attrs("href") and "/decisions/d10" not in page.attrs("href") and "+2 more" in shown
    assert "reconciler@prod" in shown


def test_a_refused_promotion_of_an_unknown_decision_names_it() -> None:
    refused = {"event_id": "e3", "timestamp": "2026-12-07T10:00:00Z", "type": "promotion", "outcome": "refused",
               "environment": "prod", "decision_ids": [],
               "details": {"reasons": ["no decision 0190-x in the log"], "unknown_decision_id": "0190-x"}}
    shown = audit(pages.events_page({"events": [refused]}, {})).text()
    assert "0190-x (unknown)" in shown and "no decision 0190-x in the log" in shown


def test_waivers_page_lists_expiring_expired_and_in_use() -> None:
    document = payload("waivers")
    expired = dict(document["in_use"][0], id="W-OLD", status="expired", expires="2026-01-01T00:00:00Z")
    document["expired_referenced"] = [expired]
    page = audit(pages.waivers_page(document, {}))
    assert "W-SOON" in audit(pages.waivers_page(payload("waivers"))).text()
    for section, wid in (("waivers-expiring", "W-SOON"), ("waivers-expired", "W-OLD"), ("waivers-in-use", "W-0042")):
        assert page.by_id(section)
    hrefs = page.attrs("href")
    assert "/decisions?waiver=W-OLD" in hrefs and "/decisions?waiver=W-0042&outcome=allow" in hrefs
    assert "last 90d" in page.text()


def test_trends_draw_one_chart_per_environment_and_the_top_blockers() -> None:
    document = payload("stats")
    page = audit(pages.trends_page(document, {}))
    for env in {row["environment"] for row in document["weekly"]}:
        assert page.by_id(f"weekly-{env}")
    assert [t for t, _ in page.tags].count("svg") == len({r["environment"] for r in document["weekly"]}) + 2
    for rule in document["blocking_rules"]:
        assert f"/decisions?rule={rule['rule']}" in page.attrs("href")


def test_quiet_weeks_of_the_range_are_drawn_as_zero() -> None:
    weekly = [
        {"environment": "prod", "start": "2026-11-02", "allow": 2, "deny": 1, "error": 0, "total": 3},
        {"environment": "prod", "start": "2026-11-23", "allow": 1, "deny": 0, "error": 0, "total": 1},
    ]
    document = payload("stats") | {"weekly": weekly, "since": "2026-10-28T10:00:00Z", "until": "2026-12-01T00:00:00Z"}
    page = audit(pages.trends_page(document))
    starts = [t for t in page.texts if re.fullmatch(r"2026-1\d-\d\d", t)]
    assert starts == ["2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30"]
    # without bounds: from the first to the last week with decisions; a start that is no Monday: as given
    document |= {"since": None, "until": None, "now": None}
    starts = [t for t in audit(pages.trends_page(document)).texts if re.fullmatch(r"2026-1\d-\d\d", t)]
    assert starts == ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]
    document["weekly"] = [dict(weekly[1], start="2026-11-25"), weekly[0]]
    starts = [t for t in audit(pages.trends_page(document)).texts if re.fullmatch(r"2026-1\d-\d\d", t)]
    assert starts == ["2026-11-02", "2026-11-25"]


@pytest.mark.parametrize(("state", "badge"), [
    ({"state": "never"}, "not verified yet"),
    ({"state": "running"}, "verifying…"),
    ({"state": "failed", "error": "store unavailable: sqlite:///x"}, "verify could not run"),
    ({"state": "done", "verify": {"ok": True, "count": 3}, "head": "sha256:" + "a" * 64, "head_seq": 3}, "log intact"),
    ({"state": "done", "verify": {"ok": False, "problem": "seq 2: hash mismatch"}}, "verify FAILED"),
    ({"state": "done", "verify": {"ok": True, "events": {"ok": False, "problem": "event 1"}}}, "verify FAILED"),
    (None, "not verified yet"),
])
def test_the_integrity_badge_says_what_the_last_verify_found(state: dict[str, Any] | None, badge: str) -> None:
    html = pages.layout("t", "b", integrity=state)
    page = audit(html)
    assert page.by_id("integrity-state")[0] == "span" and badge in page.text()
    refresh = [a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "refresh"]
    assert bool(refresh) == (state == {"state": "running"})  # no script: the page reloads while verify runs
    assert ("disabled" in page.by_id("verify-button")[1]) == (state == {"state": "running"})
    if state and state.get("head"):
        assert "#3" in page.text() and state["head"] in page.attrs("title")


def test_the_error_page_shows_the_one_line_reason() -> None:
    page = audit(pages.error_page(503, "decision log postgresql://u:s3cretpw@db/x unavailable"))
    assert "s3cretpw" not in page.text() and "Log unavailable" in page.text()


# ------------------------------------------------------------------ charts


def _svg(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # the chart is well-formed XML (our own output)


def test_stacked_columns_scale_to_the_largest_period_and_label_safely() -> None:
    rows = [{"start": "2026-11-02", "allow": 5, "deny": 5, "error": 0}, {"start": HOSTILE, "allow": 2, "deny": "x"}]
    svg = _svg(charts.stacked_columns(HOSTILE, rows))
    ns = "{http://www.w3.org/2000/svg}"
    rects = svg.findall(f"{ns}rect")
    heights = {r.get("class"): [] for r in rects}
    for r in rects:
        heights[r.get("class")].append(int(r.get("height") or 0))
    # 10 is the axis maximum: the first column's two halves fill it, 2 of 10 for the second
    assert heights["c-allow"][:2] == [84, 34] and heights["c-deny"][0] == 84
    assert svg.find(f"{ns}title").text == HOSTILE
    assert any(t.text == HOSTILE for t in svg.iter(f"{ns}title"))
    audit(str(charts.stacked_columns(HOSTILE, rows)))


def test_horizontal_bars_link_labels_and_escape_them() -> None:
    rows = [{"rule": "CVE-1", "decisions": 4}, {"rule": HOSTILE, "decisions": 1}, {"rule": "x", "decisions": -3}]
    markup = charts.horizontal_bars("t", rows, "rule", "decisions", "/decisions", "finding")
    svg = _svg(markup)
    ns = "{http://www.w3.org/2000/svg}"
    widths = [int(r.get("width") or 0) for r in svg.iter(f"{ns}rect")]
    assert widths[0] > widths[1] > 0 and widths[2] == 0
    links = [a.get("href") for a in svg.iter(f"{ns}a")]
    assert links[0] == "/decisions?finding=CVE-1" and links[1].startswith("/decisions?finding=%3Cscript%3E")
    audit(str(markup))


@pytest.mark.parametrize("rows", [[], [{}], [{"start": None, "allow": None}], "x"])
def test_charts_of_nothing_say_so(rows: Any) -> None:
    audit(str(charts.stacked_columns("t", rows if isinstance(rows, list) else [])))
    audit(str(charts.horizontal_bars("t", rows if isinstance(rows, list) else [], "rule", "decisions")))


# ------------------------------------------------------------------ the stylesheet


def test_the_stylesheet_loads_nothing_and_styles_the_classes_pages_use() -> None:
    css = CSS.read_text()
    assert "@import" not in css and "url(" not in css and "expression(" not in css
    used: set[str] = set()
    for _, html in render_all():
        for cls in audit(html).attrs("class"):
            used.update(cls.split())
    styled = set(re.findall(r"\.([a-z][a-z0-9-]*)", css))
    unstyled_on_purpose = {"chart-box", "empty", "label", "value", "legend", "brand", "triage"}
    assert used - styled - unstyled_on_purpose == set()
