"""The HTML pages of ``gate serve --ui``: pure functions of the JSON payloads the API returns.

Each page is ``page(payload, query) -> str``: the payload is exactly what the matching
``/api/v1/...`` endpoint returns (so the page and the API cannot disagree), the query is the page's
own URL query (the filters, the sort, the cursor), used to fill the filter form and build links. A
page reads nothing else — no store, no clock — so it is tested on payload documents alone.

Every value goes through gate.ui.html (escaped, log text redacted; links built with ``url``), the
markup uses only classes styled by ``static/gate.css``, and no page has a script: filters and the
findings search are GET forms answered by the server, sorting and paging are links, the verify
button is a POST form. A payload of the wrong shape (a missing key, a string where a list was due)
renders as empty rather than failing: the page shows what it can read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gate.ui import charts
from gate.ui.html import Child, Markup, el, escape, external_href, join, link, text, url

# the routes the pages link to (gate.ui.app serves them)
HOME = "/"
DECISIONS = "/decisions"
EVENTS = "/events"
WAIVERS = "/waivers"
TRENDS = "/trends"
VERIFY = "/integrity/verify"
STYLESHEET = "/static/gate.css"
API_DECISIONS = "/api/v1/decisions"
API_EVENTS = "/api/v1/events"

NAV: tuple[tuple[str, str], ...] = (
    (DECISIONS, "Decisions"), (EVENTS, "Promotions & syncs"), (WAIVERS, "Waivers"), (TRENDS, "Trends"),
)
OUTCOMES: tuple[str, ...] = ("allow", "deny", "error")
EVENT_KINDS: tuple[str, ...] = ("promotion", "sync")
EVENT_OUTCOMES: tuple[str, ...] = ("done", "noop", "refused", "error", "synced", "blocked")
SIGNATURE_STATUSES = ("trusted", "untrusted", "unsigned", "invalid")
_WAIVER_STATUSES = ("active", "expiring", "expired", "unknown")

#: the decision filters (same names as ``gate decisions list`` flags, ``-`` → ``_``): (name, label, hint)
DECISION_FILTERS: tuple[tuple[str, str, str], ...] = (
    ("env", "Environment", "prod"),
    ("image", "Image", "registry/app"),
    ("digest", "Digest", "sha256:…"),
    ("rule", "Rule / CVE", "CVE-2024-…"),
    ("finding", "Finding", "CVE or finding id"),
    ("waiver", "Waiver", "W-0042"),
    ("policy_digest", "Policy digest", "sha256:…"),
    ("since", "Since", "7d or 2026-11-30T00:00:00Z"),
    ("until", "Until", "RFC 3339"),
)
#: the columns the decision list can be sorted on (``sort=NAME`` ascending, ``sort=-NAME`` descending)
SORTABLE: dict[str, str] = {"time": "Time"}
DEFAULT_SORT = "-time"
#: query keys a filter form or a sort link carries over (never the cursor: a new filter starts at page one)
_CURSOR_KEYS = ("before", "after")


# ------------------------------------------------------------------ small readers for payload values


def _str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _query_value(query: Mapping[str, Any], key: str) -> str:
    value = query.get(key)
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    return _str(value)


def _filters_of(query: Mapping[str, Any], drop: Sequence[str] = _CURSOR_KEYS) -> dict[str, str]:
    """The query's parameters, one value each, without the cursor and empty ones."""
    return {k: _query_value(query, k) for k in query if k not in drop and _query_value(query, k)}


# ------------------------------------------------------------------ shared pieces


def outcome_label(outcome: Any) -> Markup:
    """``allow``/``deny``/``error`` as a coloured label (an unknown value is shown uncoloured)."""
    value = _str(outcome)
    cls = f"outcome outcome-{value}" if value in OUTCOMES else "outcome"
    return el("span", {"class": cls}, text(value or "?"))


def status_label(status: Any) -> Markup:
    """An event outcome or a waiver status as a label."""
    value = _str(status)
    known = set(EVENT_OUTCOMES) | set(_WAIVER_STATUSES)
    return el("span", {"class": f"status status-{value}" if value in known else "status"}, text(value or "?"))


def time_el(timestamp: Any) -> Markup:
    """A timestamp as ``<time>`` (shown as stored: RFC 3339, UTC)."""
    value = _str(timestamp)
    if not value:
        return Markup("")
    return el("time", {"datetime": value}, value)


def short_hash(value: Any, length: int = 12) -> Markup:
    """``sha256:0123456789ab…`` with the whole value as its title."""
    full = _str(value)
    if not full:
        return Markup("")
    algo, sep, hexpart = full.partition(":")
    shown = f"{algo}:{hexpart[:length]}…" if sep and len(hexpart) > length else full
    return el("span", {"class": "mono", "title": full}, shown)


def artifact_ref(artifact: Any) -> str:
    """``image[:tag]@digest`` from a record's artifact, ``(no artifact)`` without one."""
    art = _map(artifact)
    image = _str(art.get("image"))
    if not image:
        return "(no artifact)"
    tag = f":{art['tag']}" if art.get("tag") else ""
    digest = f"@{art['digest']}" if art.get("digest") else ""
    return f"{image}{tag}{digest}"


def decision_href(decision_id: Any) -> Markup:
    """The page of one decision."""
    return url(DECISIONS, None, _str(decision_id))


def decision_link(decision_id: Any, content: Child = None) -> Markup:
    """A link to one decision, showing its id (or ``content``)."""
    return link(decision_href(decision_id), el("span", {"class": "mono"}, text(decision_id)) if content is None else content)


def integrity_badge(status: Mapping[str, Any] | None) -> Markup:
    """The last verify result, the head hash, and the button (a POST form) that runs verify again.

    ``status`` is the ``/api/v1/integrity`` payload: ``{"ok": bool|None, "head": ..., "count": ...,
    "problem": ..., "checked_at": ...}``; None or ``ok`` None means not verified yet."""
    status = _map(status)
    ok = status.get("ok")
    if ok is True:
        state, label = "intact", "log intact"
    elif ok is False:
        state, label = "tampered", "verify FAILED"
    elif status.get("error"):
        state, label = "error", "verify error"
    else:
        state, label = "unknown", "not verified yet"
    details = []
    if ok is True and status.get("head"):
        details.append(el("span", {"class": "head"}, "head ", short_hash(status.get("head"), 10)))
    checked = _str(status.get("checked_at"))
    title_parts = [label]
    if _int(status.get("count")) is not None:
        title_parts.append(f"{status['count']} records")
    if checked:
        title_parts.append(f"checked {checked}")
    if status.get("problem"):
        title_parts.append(_str(status.get("problem")))
    if status.get("error"):
        title_parts.append(_str(status.get("error")))
    return el(
        "div", {"class": "integrity", "id": "integrity"},
        el("span", {"class": f"badge badge-{state}", "title": text("; ".join(title_parts))}, label),
        details,
        el("form", {"method": "post", "action": url(VERIFY)},
           el("button", {"type": "submit", "id": "verify-button"}, "Verify now")),
    )


def layout(title: str, body: Child, *, integrity: Mapping[str, Any] | None = None, active: str | None = None) -> str:
    """The whole document: header (navigation and integrity badge), ``body`` in ``<main>``."""
    nav = [
        el("a", {"href": url(path), "aria-current": "page" if path == active else None}, label)
        for path, label in NAV
    ]
    return Markup("<!DOCTYPE html>\n") + el(
        "html", {"lang": "en"},
        el("head", None,
           el("meta", {"charset": "utf-8"}),
           el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
           el("meta", {"name": "referrer", "content": "no-referrer"}),
           el("title", None, text(title), " · gate"),
           el("link", {"rel": "stylesheet", "href": url(STYLESHEET)})),
        el("body", None,
           el("header", {"class": "site-header"},
              el("a", {"class": "brand", "href": url(HOME)}, "gate · decision log"),
              el("nav", {"aria-label": "pages"}, nav),
              integrity_badge(integrity)),
           el("main", None, body)),
    ) + "\n"


def error_page(status: int, message: str, *, integrity: Mapping[str, Any] | None = None) -> str:
    """A page for a bad filter (400), an unknown decision (404) or a store failure (503): the one-line reason."""
    titles = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 503: "Log unavailable"}
    title = titles.get(status, "Error")
    return layout(title, [el("h1", None, title),
                          el("p", {"class": "error-box", "id": "error"}, text(message)),
                          el("p", None, link(url(DECISIONS), "Back to the decisions"))], integrity=integrity)


def _table(headers: Sequence[Child], rows: Sequence[Markup], *, id_: str | None = None,
           empty: str = "nothing to show", caption: str | None = None) -> Markup:
    if not rows:
        return el("p", {"class": "muted empty", "id": id_}, empty)
    head = el("thead", None, el("tr", None, [h if isinstance(h, Markup) and h.startswith("<th") else
                                             el("th", {"scope": "col"}, h) for h in headers]))
    return el("table", {"id": id_}, el("caption", None, caption) if caption else None, head, el("tbody", None, rows))


def _input(name: str, label: str, value: str, *, hint: str = "", type_: str = "text") -> Markup:
    return el("label", None, label,
              el("input", {"type": type_, "name": name, "value": value, "placeholder": hint or None, "id": f"f-{name}"}))


def _select(name: str, label: str, options: Sequence[str], value: str) -> Markup:
    choices = [el("option", {"value": ""}, "any")]
    choices += [el("option", {"value": o, "selected": o == value}, o) for o in options]
    if value and value not in options:  # keep an unknown value visible (the server said why it is bad)
        choices.append(el("option", {"value": value, "selected": True}, value))
    return el("label", None, label, el("select", {"name": name, "id": f"f-{name}"}, choices))


def _checkbox(name: str, label: str, checked: bool) -> Markup:
    return el("label", {"class": "check"},
              el("input", {"type": "checkbox", "name": name, "value": "1", "checked": checked, "id": f"f-{name}"}),
              label)


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def _next_link(payload: Mapping[str, Any], page: str, query: Mapping[str, Any], label: str = "Older →") -> Markup | None:
    """The next page's link: the cursor of the payload's ``next`` (an API URL) on this page's path,
    with the current filters (what the API's cursor URL carries is read as parameters, never reused raw)."""
    nxt = payload.get("next")
    if not isinstance(nxt, str) or not nxt:
        return None
    params = dict(parse_qsl(urlsplit(nxt).query, keep_blank_values=False))
    merged = {**_filters_of(query), **params}
    return el("a", {"href": url(page, merged), "rel": "next", "id": "next-page"}, label)


# ------------------------------------------------------------------ decisions list


def decisions_page(payload: Mapping[str, Any], query: Mapping[str, Any], *,
                   integrity: Mapping[str, Any] | None = None) -> str:
    """The filtered, sorted, paginated table of decisions (payload: ``/api/v1/decisions``)."""
    filters = _filters_of(query)
    form = el(
        "form", {"method": "get", "action": url(DECISIONS), "class": "filters", "id": "filters"},
        _input("env", "Environment", filters.get("env", ""), hint="prod"),
        _select("outcome", "Outcome", OUTCOMES, filters.get("outcome", "")),
        [_input(name, label, filters.get(name, ""), hint=hint) for name, label, hint in DECISION_FILTERS[1:]],
        _checkbox("waived", "with a waiver", _truthy(filters.get("waived", ""))),
        el("input", {"type": "hidden", "name": "sort", "value": filters["sort"]}) if "sort" in filters else None,
        el("input", {"type": "hidden", "name": "limit", "value": filters["limit"]}) if "limit" in filters else None,
        el("button", {"type": "submit"}, "Filter"),
        el("a", {"href": url(DECISIONS)}, "clear"),
    )
    downloads = el(
        "div", {"class": "actions"},
        el("span", {"class": "muted"}, "Download the filtered set:"),
        el("a", {"href": url(API_DECISIONS, {**_filters_of(query, drop=(*_CURSOR_KEYS, "limit")), "format": "csv"}),
                 "id": "download-csv", "download": "decisions.csv"}, "CSV"),
        el("a", {"href": url(API_DECISIONS, {**_filters_of(query, drop=(*_CURSOR_KEYS, "limit")), "format": "json"}),
                 "id": "download-json", "download": "decisions.json"}, "JSON"),
    )
    sort = filters.get("sort", DEFAULT_SORT)
    headers: list[Child] = [_sort_header(name, label, sort, filters) for name, label in SORTABLE.items()]
    headers += ["Outcome", "Environment", "Image", "Reasons", "Waivers", "Policy", "Decision"]
    rows = [_decision_row(d) for d in _list(payload.get("decisions")) if isinstance(d, Mapping)]
    pager = el("nav", {"class": "pager", "aria-label": "pages"},
               el("a", {"href": url(DECISIONS, filters), "id": "first-page"}, "← Newest")
               if any(k in query for k in _CURSOR_KEYS) else None,
               _next_link(payload, DECISIONS, query))
    body = [
        el("h1", None, "Decisions"),
        form,
        downloads,
        _table(headers, rows, id_="decisions", empty="No decision matches these filters."),
        pager,
    ]
    return layout("Decisions", body, integrity=integrity, active=DECISIONS)


def _sort_header(name: str, label: str, current: str, filters: Mapping[str, str]) -> Markup:
    """A column header linking to the list sorted on it (toggling the direction when it is the current one)."""
    descending = current == f"-{name}"
    ascending = current == name
    target = name if descending else f"-{name}"
    arrow = " ↓" if descending else " ↑" if ascending else ""
    aria = "descending" if descending else "ascending" if ascending else "none"
    return el("th", {"scope": "col", "aria-sort": aria},
              el("a", {"href": url(DECISIONS, {**filters, "sort": target}), "id": f"sort-{name}"}, label, arrow))


def _decision_row(d: Mapping[str, Any]) -> Markup:
    violations = _list(d.get("violations"))
    warnings = _list(d.get("warnings"))
    waivers = [w for w in _list(d.get("waivers")) if isinstance(w, Mapping)]
    rules = sorted({_str(_map(v).get("rule")) for v in violations if _map(v).get("rule")})
    reasons: list[Child] = []
    if violations:
        reasons.append(f"{len(violations)} deny: ")
        reasons.append(join([el("code", None, text(r)) for r in rules[:3]], ", "))
        if len(rules) > 3:
            reasons.append(f" +{len(rules) - 3}")
    if warnings:
        reasons.append(el("span", {"class": "muted"}, f" {len(warnings)} warn"))
    if d.get("error"):
        reasons.append(text(d.get("error")))
    policy = _map(d.get("policy"))
    return el(
        "tr", None,
        el("td", None, time_el(d.get("timestamp"))),
        el("td", None, outcome_label(d.get("outcome"))),
        el("td", None, link(url(DECISIONS, {"env": _str(d.get("environment"))}), text(d.get("environment")))),
        el("td", {"class": "mono"}, text(artifact_ref(d.get("artifact")))),
        el("td", None, reasons),
        el("td", None, join([link(url(DECISIONS, {"waiver": _str(w.get("id"))}), text(w.get("id"))) for w in waivers],
                            ", ")),
        el("td", None, short_hash(policy.get("digest"), 8),
           [" ", el("span", {"class": "muted"}, text(policy.get("revision")))] if policy.get("revision") else None),
        el("td", None, decision_link(d.get("decision_id"))),
    )


# ------------------------------------------------------------------ one decision


def decision_page(payload: Mapping[str, Any], query: Mapping[str, Any] | None = None, *,
                  integrity: Mapping[str, Any] | None = None) -> str:
    """One decision (payload: ``/api/v1/decisions/{id}``): outcome, reasons with solutions, triage,
    the input's findings (searchable: ``?q=`` filters them here, server-side), policy, scanners,
    chain position, signature, and the promotions and syncs that used it."""
    query = query or {}
    d = payload.get("decision") if isinstance(payload.get("decision"), Mapping) else payload
    d = _map(d)
    decision_id = _str(d.get("decision_id"))
    artifact = artifact_ref(d.get("artifact"))
    facts = el(
        "dl", {"class": "facts", "id": "facts"},
        el("dt", None, "Outcome"), el("dd", None, outcome_label(d.get("outcome"))),
        el("dt", None, "Environment"), el("dd", None, text(d.get("environment"))),
        el("dt", None, "Image"), el("dd", {"class": "mono"}, text(artifact)),
        el("dt", None, "Time"), el("dd", None, time_el(d.get("timestamp"))),
        el("dt", None, "Decision id"), el("dd", {"class": "mono"}, text(decision_id)),
        _context_facts(_map(d.get("context"))),
        [el("dt", None, "Error"), el("dd", None, text(d.get("error")))] if d.get("error") else None,
    )
    body: list[Child] = [
        el("h1", None, outcome_label(d.get("outcome")), " ", text(artifact)),
        facts,
        el("h2", None, "Deny reasons"),
        _violations(_list(d.get("violations")), "violations", "No deny reason."),
        el("h2", None, "Warnings"),
        _violations(_list(d.get("warnings")), "warnings", "No warning."),
        el("h2", None, "Triage: waivers and VEX"),
        _triage(d, payload),
        el("h2", None, "Findings in the input"),
        _findings(_list(payload.get("findings")), decision_id, query),
        el("h2", None, "Policy"),
        _policy(_map(d.get("policy"))),
        el("h2", None, "Scanners and reports"),
        _scanners(_list(d.get("scanners")), d.get("input_digest")),
        el("h2", None, "Chain and signature"),
        _chain(_map(payload.get("chain")), _map(payload.get("signature")), d),
        el("h2", None, "Promotions and syncs"),
        _events_table([e for e in _list(payload.get("events")) if isinstance(e, Mapping)], current=decision_id,
                      empty="No promotion or sync used this decision."),
        el("p", None, link(url(API_DECISIONS, None, decision_id), "this decision as JSON", {"id": "decision-json"})),
    ]
    return layout(f"Decision {decision_id}", body, integrity=integrity, active=DECISIONS)


def _context_facts(context: Mapping[str, Any]) -> list[Markup]:
    out: list[Markup] = []
    labels = (("actor", "Actor"), ("git_commit", "Git commit"), ("pipeline_url", "Pipeline"), ("repository", "Repository"))
    for key, label in labels:
        value = context.get(key)
        if not value:
            continue
        shown: Markup = link(external_href(value), text(value)) if key == "pipeline_url" else text(value)
        out += [el("dt", None, label), el("dd", {"class": "mono" if key == "git_commit" else None}, shown)]
    return out


def _severity(value: Any) -> Markup:
    sev = _str(value)
    return el("span", {"class": f"sev-{sev}" if sev.isalpha() else None}, text(sev))


def _violations(items: Sequence[Any], id_: str, empty: str) -> Markup:
    rows = []
    for v in (_map(i) for i in items):
        solution = v.get("solution")
        rows.append(el(
            "tr", None,
            el("td", None, _severity(v.get("severity"))),
            el("td", None, link(url(DECISIONS, {"rule": _str(v.get("rule"))}), el("code", None, text(v.get("rule"))))),
            el("td", None, el("div", None, text(v.get("message"))),
               el("div", {"class": "solution"}, "solution: ", text(solution)) if solution else None),
            el("td", {"class": "mono"}, join([text(f) for f in _list(v.get("finding_ids"))[:5]], ", "),
               f" +{len(_list(v.get('finding_ids'))) - 5}" if len(_list(v.get("finding_ids"))) > 5 else None),
        ))
    return _table(["Severity", "Rule", "Message", "Findings"], rows, id_=id_, empty=empty)


def _triage(d: Mapping[str, Any], payload: Mapping[str, Any]) -> Markup:
    """Waivers applied, and VEX statements when the payload carries them (``triage`` or ``vex``)."""
    rows = []
    for w in (_map(i) for i in _list(d.get("waivers"))):
        scope = _map(w.get("scope"))
        rows.append(el(
            "tr", None,
            el("td", None, "waiver"),
            el("td", None, link(url(DECISIONS, {"waiver": _str(w.get("id"))}), text(w.get("id")))),
            el("td", None, el("code", None, text(w.get("rule"))),
               [el("div", {"class": "muted"}, text(", ".join(f"{k}={v}" for k, v in sorted(scope.items()))))]
               if scope else None),
            el("td", None, text(w.get("reason"))),
            el("td", None, text(w.get("approved_by"))),
            el("td", None, time_el(w.get("expires"))),
        ))
    for entry in (_map(i) for i in [*_list(payload.get("triage")), *_list(d.get("vex"))]):
        rows.append(el(
            "tr", None,
            el("td", None, text(entry.get("source") or "vex")),
            el("td", None, text(entry.get("id") or entry.get("statement_id") or "")),
            el("td", None, el("code", None, text(entry.get("rule") or entry.get("vulnerability")))),
            el("td", None, text(entry.get("reason") or entry.get("justification") or entry.get("status"))),
            el("td", None, text(entry.get("author") or entry.get("approved_by"))),
            el("td", None, time_el(entry.get("expires"))),
        ))
    stale = [_str(s) for s in _list(d.get("stale_waivers"))]
    note = el("p", {"class": "notice"}, "Waivers in the policy data that matched nothing: ",
              join([el("code", None, text(s)) for s in stale], ", ")) if stale else None
    return join([_table(["Source", "Id", "Rule", "Reason", "By", "Expires"], rows, id_="triage",
                        empty="No waiver or VEX statement applied."), note])


def _findings(findings: Sequence[Any], decision_id: str, query: Mapping[str, Any]) -> Markup:
    """The input's findings, filtered by ``q`` (case-insensitive, over rule, id, severity, title,
    package and path) — a GET form, answered here without script."""
    q = _query_value(query, "q").strip()
    needle = q.lower()
    rows = []
    matched = 0
    for f in (_map(i) for i in findings):
        pkg = _map(f.get("package"))
        loc = _map(f.get("location"))
        where = " ".join(_str(x) for x in (pkg.get("name"), pkg.get("version")) if x) or _str(loc.get("path"))
        if needle:
            hay = " ".join(_str(x) for x in (f.get("rule"), f.get("id"), f.get("severity"), f.get("title"),
                                             f.get("scanner"), f.get("kind"), where)).lower()
            if needle not in hay:
                continue
        matched += 1
        if matched > 1000:  # a page of findings; the JSON has them all
            continue
        fixed = pkg.get("fixed_version")
        rows.append(el(
            "tr", None,
            el("td", None, _severity(f.get("severity"))),
            el("td", None, el("code", None, text(f.get("rule")))),
            el("td", None, text(f.get("kind"))),
            el("td", None, text(f.get("title") or f.get("message"))),
            el("td", {"class": "mono"}, text(where)),
            el("td", None, text(fixed) if fixed else None),
            el("td", None, text(f.get("scanner"))),
        ))
    form = el(
        "form", {"method": "get", "action": url(DECISIONS, None, decision_id), "class": "filters", "id": "findings-search"},
        _input("q", "Search findings", q, hint="CVE, package, path, severity"),
        el("button", {"type": "submit"}, "Search"),
        el("a", {"href": url(DECISIONS, None, decision_id)}, "clear") if q else None,
        el("span", {"class": "muted"}, f"{matched} of {len(findings)} findings"
           + (" (first 1000 shown)" if matched > 1000 else "")),
    )
    return join([form, _table(["Severity", "Rule", "Kind", "Title", "Package / path", "Fixed in", "Scanner"], rows,
                              id_="findings", empty="No finding matches." if q else "The input has no findings.")])


def _policy(policy: Mapping[str, Any]) -> Markup:
    layers = [_map(x) for x in _list(policy.get("layers"))]
    return el(
        "dl", {"class": "facts", "id": "policy"},
        el("dt", None, "Digest"),
        el("dd", {"class": "mono"}, link(url(DECISIONS, {"policy_digest": _str(policy.get("digest"))}),
                                         text(policy.get("digest")))),
        el("dt", None, "Revision"), el("dd", None, text(policy.get("revision") or "—")),
        el("dt", None, "Engine"), el("dd", None, text(policy.get("engine")), " ", text(policy.get("engine_version"))),
        [el("dt", None, "Bundle"), el("dd", {"class": "mono"}, text(policy.get("bundle")))] if policy.get("bundle") else None,
        [[el("dt", None, "Layer"), el("dd", {"class": "mono"}, text(layer.get("source")), " ", short_hash(layer.get("digest")),
                                      " ", text(layer.get("revision")))] for layer in layers],
    )


def _scanners(scanners: Sequence[Any], input_digest: Any) -> Markup:
    rows = [el("tr", None, el("td", None, text(s.get("name"))), el("td", None, text(s.get("version"))),
               el("td", {"class": "mono"}, text(s.get("report_sha256"))))
            for s in (_map(i) for i in scanners)]
    return join([_table(["Scanner", "Version", "Report sha256"], rows, id_="scanners", empty="No scanner report."),
                 el("p", None, "Input digest ", el("span", {"class": "mono"}, text(input_digest)))])


def _chain(chain: Mapping[str, Any], signature: Mapping[str, Any], d: Mapping[str, Any]) -> Markup:
    status = _str(signature.get("status"))
    sig_cls = f"sig sig-{status}" if status in SIGNATURE_STATUSES else "sig"
    return el(
        "dl", {"class": "facts", "id": "chain"},
        el("dt", None, "Position"), el("dd", None, text(chain.get("seq")) if chain.get("seq") is not None else "—"),
        el("dt", None, "Hash"), el("dd", {"class": "mono"}, text(chain.get("hash") or d.get("hash"))),
        el("dt", None, "Previous hash"), el("dd", {"class": "mono"}, text(chain.get("prev_hash") or d.get("prev_hash") or "—")),
        el("dt", None, "Signature"),
        el("dd", None, el("span", {"class": sig_cls, "id": "signature-status"}, text(status or "unknown")),
           [" key ", el("span", {"class": "mono"}, text(signature.get("key_id")))] if signature.get("key_id") else None,
           [" ", el("span", {"class": "muted"}, text(signature.get("reason")))] if signature.get("reason") else None),
    )


# ------------------------------------------------------------------ events


def events_page(payload: Mapping[str, Any], query: Mapping[str, Any], *,
                integrity: Mapping[str, Any] | None = None) -> str:
    """Promotions and syncs, newest first (payload: ``/api/v1/events``), each linking to its decisions
    and, when recorded, its GitOps commit."""
    filters = _filters_of(query)
    form = el(
        "form", {"method": "get", "action": url(EVENTS), "class": "filters", "id": "filters"},
        _select("kind", "Kind", EVENT_KINDS, filters.get("kind", "")),
        _input("env", "Environment", filters.get("env", ""), hint="prod"),
        _select("outcome", "Outcome", EVENT_OUTCOMES, filters.get("outcome", "")),
        _input("since", "Since", filters.get("since", ""), hint="7d or RFC 3339"),
        _input("until", "Until", filters.get("until", ""), hint="RFC 3339"),
        _checkbox("waived", "on a waiver", _truthy(filters.get("waived", ""))),
        el("button", {"type": "submit"}, "Filter"),
        el("a", {"href": url(EVENTS)}, "clear"),
    )
    events = [e for e in _list(payload.get("events")) if isinstance(e, Mapping)]
    body = [
        el("h1", None, "Promotions and syncs"),
        form,
        el("div", {"class": "actions"},
           el("span", {"class": "muted"}, "Download:"),
           el("a", {"href": url(API_EVENTS, {**_filters_of(query, drop=(*_CURSOR_KEYS, "limit")), "format": "csv"}),
                    "id": "download-csv", "download": "events.csv"}, "CSV"),
           el("a", {"href": url(API_EVENTS, _filters_of(query, drop=(*_CURSOR_KEYS, "limit"))),
                    "id": "download-json", "download": "events.json"}, "JSON")),
        _events_table(events, empty="No promotion or sync matches these filters."),
        el("nav", {"class": "pager", "aria-label": "pages"}, _next_link(payload, EVENTS, query)),
    ]
    return layout("Promotions and syncs", body, integrity=integrity, active=EVENTS)


def _events_table(events: Sequence[Mapping[str, Any]], *, current: str | None = None, empty: str) -> Markup:
    rows = []
    for e in events:
        artifact = _map(e.get("artifact"))
        details = _map(e.get("details"))
        decisions = [
            el("span", {"class": "mono"}, "this decision") if _str(i) == current else decision_link(i)
            for i in _list(e.get("decision_ids"))
        ]
        rows.append(el(
            "tr", None,
            el("td", None, time_el(e.get("timestamp"))),
            el("td", None, text(e.get("type"))),
            el("td", None, status_label(e.get("outcome"))),
            el("td", None, text(e.get("environment"))),
            el("td", {"class": "mono"}, text(_str(artifact.get("target")) or artifact_ref(artifact) if artifact else "")),
            el("td", None, join(decisions, ", ")),
            el("td", None, _gitops(details)),
            el("td", None, _event_summary(details)),
        ))
    return _table(["Time", "Kind", "Outcome", "Environment", "Image", "Decisions", "GitOps commit", "Details"], rows,
                  id_="events", empty=empty)


def _gitops(details: Mapping[str, Any]) -> Markup:
    """The GitOps commit an event recorded: linked when a web URL is known, else its sha."""
    gitops = _map(details.get("gitops"))
    sha = _str(gitops.get("commit") or details.get("commit") or details.get("gitops_commit"))
    web = gitops.get("commit_url") or gitops.get("url") or details.get("commit_url")
    pr = gitops.get("pull_request") or details.get("pull_request")
    parts: list[Child] = []
    if sha:
        parts.append(link(external_href(web), el("span", {"class": "mono", "title": sha}, text(sha[:12]))))
    elif external_href(web) is not None:
        parts.append(link(external_href(web), "commit"))
    pr_url = _map(pr).get("url") if isinstance(pr, Mapping) else pr
    if external_href(pr_url) is not None:
        parts += [" ", link(external_href(pr_url), "pull request")]
    if gitops.get("path"):
        parts += [" ", el("span", {"class": "muted"}, text(gitops.get("path")))]
    return join(parts)


def _event_summary(details: Mapping[str, Any]) -> Markup:
    reasons = [_str(r) for r in _list(details.get("reasons"))][:3]
    blocked = _list(details.get("blocked"))
    parts: list[Child] = []
    if reasons:
        parts.append(join([el("div", None, text(r)) for r in reasons]))
    if blocked:
        parts.append(el("div", None, f"{len(blocked)} blocked"))
    if details.get("error"):
        parts.append(el("div", None, text(details.get("error"))))
    return join(parts)


# ------------------------------------------------------------------ waivers


def waivers_page(payload: Mapping[str, Any], query: Mapping[str, Any] | None = None, *,
                 integrity: Mapping[str, Any] | None = None) -> str:
    """Waivers in use, expiring within the warning window, and expired but still referenced
    (payload: ``/api/v1/waivers``: ``{"now", "window", "in_use": [...], "expiring": [...],
    "expired_referenced": [...]}``, each waiver as ``gate decisions stats`` lists it)."""
    sections = (
        ("expiring", "Expiring soon", "expiring", "No waiver in use expires within the warning window."),
        ("expired_referenced", "Expired but still referenced", "expired",
         "No expired waiver is named by a decision."),
        ("in_use", "In use", "in-use", "No decision applied a waiver."),
    )
    window = _str(payload.get("window"))
    body: list[Child] = [el("h1", None, "Waivers")]
    if window or payload.get("now"):
        body.append(el("p", {"class": "muted"}, "As of ", time_el(payload.get("now")),
                       f"; warning window {window}" if window else None))
    for key, title, id_, empty in sections:
        rows = [_waiver_row(_map(w)) for w in _list(payload.get(key))]
        body += [el("h2", None, title, " ", el("span", {"class": "muted"}, f"({len(rows)})")),
                 _table(["Waiver", "Rule", "Status", "Expires", "Applied", "First", "Last", "Reason", "Approved by"],
                        rows, id_=f"waivers-{id_}", empty=empty)]
    return layout("Waivers", body, integrity=integrity, active=WAIVERS)


def _waiver_row(w: Mapping[str, Any]) -> Markup:
    wid = _str(w.get("id"))
    applied = _int(w.get("applied"))
    return el(
        "tr", None,
        el("td", None, link(url(DECISIONS, {"waiver": wid}), text(wid))),
        el("td", None, link(url(DECISIONS, {"rule": _str(w.get("rule"))}), el("code", None, text(w.get("rule"))))),
        el("td", None, status_label(w.get("status"))),
        el("td", None, time_el(w.get("expires")),
           [" ", el("span", {"class": "muted"}, f"({w['days_left']} days)")] if _int(w.get("days_left")) is not None else None),
        el("td", {"class": "num"}, applied if applied is not None else ""),
        el("td", None, time_el(w.get("first_applied"))),
        el("td", None, time_el(w.get("last_applied"))),
        el("td", None, text(w.get("reason"))),
        el("td", None, text(w.get("approved_by"))),
    )


# ------------------------------------------------------------------ trends


def trends_page(payload: Mapping[str, Any], query: Mapping[str, Any] | None = None, *,
                integrity: Mapping[str, Any] | None = None) -> str:
    """Outcomes per environment per week and the rules and CVEs that blocked most (payload:
    ``/api/v1/stats``, ``gate decisions stats --format json`` plus ``periods_by_environment``)."""
    query = query or {}
    filters = _filters_of(query)
    form = el(
        "form", {"method": "get", "action": url(TRENDS), "class": "filters", "id": "filters"},
        _input("env", "Environment", filters.get("env", ""), hint="prod"),
        _input("since", "Since", filters.get("since", ""), hint="90d or RFC 3339"),
        _input("until", "Until", filters.get("until", ""), hint="RFC 3339"),
        el("button", {"type": "submit"}, "Show"),
    )
    period = _str(payload.get("period")) or "week"
    by_env = _map(payload.get("periods_by_environment"))
    charts_: list[Markup] = []
    if by_env:
        for env in sorted(by_env):
            periods = [p for p in _list(by_env[env]) if isinstance(p, Mapping)]
            charts_.append(el("figure", {"class": "chart-box"},
                              el("figcaption", None, text(env), f": outcomes per {period}"),
                              charts.stacked_columns(f"{env}: outcomes per {period}", periods),
                              _period_table(f"{env}: outcomes per {period}", periods)))
    else:
        periods = [p for p in _list(payload.get("periods")) if isinstance(p, Mapping)]
        charts_.append(el("figure", {"class": "chart-box"},
                          el("figcaption", None, f"All environments: outcomes per {period}"),
                          charts.stacked_columns(f"outcomes per {period}", periods),
                          _period_table(f"outcomes per {period}", periods)))
    rules = [r for r in _list(payload.get("blocking_rules")) if isinstance(r, Mapping)]
    findings = [r for r in _list(payload.get("blocking_findings")) if isinstance(r, Mapping)]
    totals = _map(payload.get("outcomes"))
    env_rows = [_map(e) for e in _list(payload.get("environments"))]
    body = [
        el("h1", None, "Trends"),
        form,
        el("p", None, f"{_int(payload.get('total')) or 0} decisions: ",
           join([join([outcome_label(o), " ", _int(totals.get(o)) or 0]) for o in OUTCOMES], " · "),
           " · from ", time_el(payload.get("since") or payload.get("first")),
           " to ", time_el(payload.get("until") or payload.get("now"))),
        _table(["Environment", *OUTCOMES, "total"],
               [el("tr", None, el("td", None, link(url(DECISIONS, {"env": _str(e.get("environment"))}),
                                                   text(e.get("environment")))),
                   [el("td", {"class": "num"}, _int(e.get(k)) or 0) for k in (*OUTCOMES, "total")]) for e in env_rows],
               id_="environments", empty="No decisions in this range."),
        el("h2", None, f"Outcomes per environment per {period}"),
        el("div", {"class": "charts", "id": "outcome-charts"}, charts_),
        el("h2", None, "Rules that blocked most"),
        el("figure", {"class": "chart-box", "id": "blocking-rules"},
           charts.horizontal_bars("policy rules by decisions blocked", rules, "rule", "decisions", DECISIONS, "rule"),
           charts.chart_table("policy rules by decisions blocked", ["rule", "decisions", "violations"],
                              [[_str(r.get("rule")), _int(r.get("decisions")) or 0, _int(r.get("violations")) or 0]
                               for r in rules], (DECISIONS, "rule"))),
        el("h2", None, "CVEs and checks that blocked most"),
        el("figure", {"class": "chart-box", "id": "blocking-findings"},
           charts.horizontal_bars("findings by decisions blocked", findings, "rule", "decisions", DECISIONS, "finding"),
           charts.chart_table("findings by decisions blocked", ["finding", "kind", "decisions"],
                              [[_str(r.get("rule")), _str(r.get("kind")), _int(r.get("decisions")) or 0]
                               for r in findings], (DECISIONS, "finding"))),
    ]
    return layout("Trends", body, integrity=integrity, active=TRENDS)


def _period_table(caption: str, periods: Sequence[Mapping[str, Any]]) -> Markup:
    return charts.chart_table(caption, ["start", *OUTCOMES, "total"],
                              [[_str(p.get("start")), *[_int(p.get(k)) or 0 for k in (*OUTCOMES, "total")]]
                               for p in periods])


__all__ = [
    "decision_page",
    "decisions_page",
    "error_page",
    "events_page",
    "integrity_badge",
    "layout",
    "trends_page",
    "waivers_page",
]
