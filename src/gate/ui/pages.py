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
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gate import rfc3339
from gate.ui import charts, queries
from gate.ui.html import Child, Markup, el, escape, external_href, join, link, site_href, text, url

# the routes the pages link to (gate.ui.app serves them)
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
_TRIAGE = ("denied", "warned", "waived", "none")

#: the decision filters (same names as ``gate decisions list`` flags, ``-`` → ``_``): (name, label, hint)
DECISION_FILTERS: tuple[tuple[str, str, str], ...] = (
    ("env", "Environment", "prod"),
    ("image", "Image", "registry/app"),
    ("digest", "Digest", "sha256:…"),
    ("rule", "Rule / CVE", "CVE-2024-…"),
    ("finding", "Finding", "CVE or finding id"),
    ("waiver", "Waiver", "W-0042"),
    # where gate decisions list has --triaged-by (gate.ui.queries offers what the store can filter on)
    ("triaged_by", "Triaged by", "W-0042 or a VEX statement id"),
    ("policy_digest", "Policy digest", "sha256:…"),
    ("since", "Since", "7d or 2026-11-30T00:00:00Z"),
    ("until", "Until", "RFC 3339"),
)
#: the orders the decision list offers (``sort=``): chain order, the one a large log sorts by fast
SORTS: tuple[str, ...] = ("newest", "oldest")
DEFAULT_SORT = "newest"
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
    """A timestamp as ``<time>``: ``2026-12-07 09:36:45Z`` shown, the stored RFC 3339 value (UTC) in
    ``datetime`` and the title."""
    value = _str(timestamp)
    if not value:
        return Markup("")
    shown = f"{value[:10]} {value[11:19]}Z" if len(value) >= 20 and value[10] == "T" and value.endswith("Z") else value
    return el("time", {"datetime": value, "title": value}, shown)


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


def artifact_cell(artifact: Any) -> Markup:
    """``image:tag@sha256:0123456789ab…`` (the whole reference as the title), for table cells."""
    full = artifact_ref(artifact)
    art = _map(artifact)
    digest = _str(art.get("digest"))
    if not digest or len(digest) <= 20:
        return el("span", {"class": "mono"}, text(full))
    short = full[: len(full) - len(digest)] + digest[:19] + "…"
    return el("span", {"class": "mono", "title": text(full)}, text(short))


def decision_href(decision_id: Any) -> Markup:
    """The page of one decision."""
    return url(DECISIONS, None, _str(decision_id))


def decision_link(decision_id: Any, content: Child = None) -> Markup:
    """A link to one decision, showing its id (or ``content``)."""
    return link(decision_href(decision_id), el("span", {"class": "mono"}, text(decision_id)) if content is None else content)


def integrity_badge(status: Mapping[str, Any] | None, here: Markup | None = None) -> Markup:
    """The last verify result, the chain head, and the button (a POST form) that runs verify again.

    ``status`` is the ``/api/v1/integrity`` payload: ``{"state": "never" | "running" | "done" |
    "failed", "verify": {...gate decisions verify --format json...} | null, "error", "head",
    "head_seq", "finished_at", ...}``; None is shown as not verified yet. ``here``: the page to come
    back to after the button (the form's ``next``; the server accepts only a path of its own)."""
    status = _map(status)
    state = _str(status.get("state")) or "never"
    report = _map(status.get("verify"))
    if state == "running":
        badge, label = "running", "verifying…"
    elif state == "failed":
        badge, label = "error", "verify could not run"
    elif state == "done" and (report.get("ok") is False or _map(report.get("events")).get("ok") is False):
        badge, label = "tampered", "verify FAILED"
    elif state == "done" and report.get("ok") is True:
        badge, label = "intact", "log intact"
    else:
        badge, label = "unknown", "not verified yet"
    title_parts = [label]
    if _int(report.get("count")) is not None:
        title_parts.append(f"{report['count']} records checked")
    if status.get("finished_at"):
        title_parts.append(f"finished {_str(status.get('finished_at'))}")
    if report.get("problem"):
        title_parts.append(_str(report.get("problem")))
    if _map(report.get("events")).get("problem"):
        title_parts.append("events: " + _str(_map(report.get("events")).get("problem")))
    if status.get("error"):
        title_parts.append(_str(status.get("error")))
    head = status.get("head") or report.get("head_hash")
    seq = _int(status.get("head_seq"))
    return el(
        "div", {"class": "integrity", "id": "integrity"},
        el("span", {"class": f"badge badge-{badge}", "id": "integrity-state", "data-state": state,
                    "title": text("; ".join(title_parts))}, label),
        el("span", {"class": "head", "id": "integrity-head"}, "head ",
           f"#{seq} " if seq is not None else None, short_hash(head, 10)) if head else None,
        el("form", {"method": "post", "action": url(VERIFY)},
           el("input", {"type": "hidden", "name": "next", "value": here}) if here else None,
           el("button", {"type": "submit", "id": "verify-button", "disabled": state == "running"}, "Verify now")),
    )


def layout(title: str, body: Child, *, integrity: Mapping[str, Any] | None = None, active: str | None = None,
           here: Markup | None = None) -> str:
    """The whole document: header (navigation and integrity badge), ``body`` in ``<main>``; ``here``
    is this page's own URL (the verify button comes back to it)."""
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
           # no script: while verify runs, the page reloads itself until the badge has the result
           el("meta", {"http-equiv": "refresh", "content": "3"}) if _map(integrity).get("state") == "running" else None,
           el("title", None, text(title), " · gate"),
           el("link", {"rel": "stylesheet", "href": url(STYLESHEET)})),
        el("body", None,
           el("header", {"class": "site-header"},
              el("a", {"class": "brand", "href": url(DECISIONS)}, "gate · decision log"),
              el("nav", {"aria-label": "pages"}, nav),
              integrity_badge(integrity, here)),
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
           empty: str = "nothing to show", caption: str | None = None, class_: str | None = None) -> Markup:
    if not rows:
        return el("p", {"class": "muted empty", "id": id_}, empty)
    head = el("thead", None, el("tr", None, [h if isinstance(h, Markup) and h.startswith("<th") else
                                             el("th", {"scope": "col"}, h) for h in headers]))
    return el("table", {"id": id_, "class": class_}, el("caption", None, caption) if caption else None, head, el("tbody", None, rows))


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


def _next_link(payload: Mapping[str, Any], page: str, label: str = "Older →") -> Markup | None:
    """The next page's link: the payload's ``next_query`` (or the query of its ``next`` API URL) on this
    page's path, rebuilt parameter by parameter (never a payload string reused raw)."""
    raw = payload.get("next_query")
    if not isinstance(raw, str) or not raw:
        nxt = payload.get("next")
        raw = urlsplit(nxt).query if isinstance(nxt, str) and nxt else ""
    if not raw:
        return None
    return el("a", {"href": url(page, parse_qsl(raw)), "rel": "next", "id": "next-page"}, label)


def _download(payload: Mapping[str, Any], form: str, fallback: Markup, name: str) -> Markup:
    """A download link: the payload's ``downloads[form]`` (a same-site API path, rebuilt), else ``fallback``."""
    href = site_href(_map(payload.get("downloads")).get(form), ("/api/",)) or fallback
    return el("a", {"href": href, "id": f"download-{form}", "download": name}, form.upper())


def _left_out(payload: Mapping[str, Any]) -> Markup | None:
    """The notice for records of this page that could not be read (they are never silently dropped)."""
    left = [_str(x) for x in _list(payload.get("left_out"))]
    if not left:
        return None
    return el("div", {"class": "error-box", "id": "left-out"},
              f"{len(left)} record(s) of this page could not be read and are not shown: ",
              join([el("code", None, text(x)) for x in left[:10]], ", "),
              " — run gate decisions verify.")


# ------------------------------------------------------------------ decisions list


def decisions_page(payload: Mapping[str, Any], query: Mapping[str, Any], *,
                   integrity: Mapping[str, Any] | None = None) -> str:
    """The filtered, sorted, paginated table of decisions (payload: ``/api/v1/decisions``; ``query``:
    this page's own query parameters, to fill the form)."""
    filters = _filters_of(query)
    sort = _str(payload.get("sort")) or filters.get("sort") or DEFAULT_SORT
    form = el(
        "form", {"method": "get", "action": url(DECISIONS), "class": "filters", "id": "filters"},
        _input("env", "Environment", filters.get("env", ""), hint="prod"),
        _select("outcome", "Outcome", OUTCOMES, filters.get("outcome", "")),
        [_input(name, label, filters.get(name, ""), hint=hint) for name, label, hint in DECISION_FILTERS[1:]
         if name in queries.DECISION_FILTERS],
        _checkbox("waived", "with a waiver", _truthy(filters.get("waived", ""))),
        _checkbox("waiver_expired", "waiver now expired", _truthy(filters.get("waiver_expired", ""))),
        el("input", {"type": "hidden", "name": "sort", "value": sort}) if sort != DEFAULT_SORT else None,
        el("input", {"type": "hidden", "name": "limit", "value": filters["limit"]}) if "limit" in filters else None,
        el("button", {"type": "submit", "id": "filter-button"}, "Filter"),
        el("a", {"href": url(DECISIONS), "id": "clear-filters"}, "clear"),
    )
    plain = _filters_of(query, drop=(*_CURSOR_KEYS, "limit", "sort"))
    downloads = el(
        "div", {"class": "actions"},
        el("span", {"class": "muted"}, "Download the filtered set:"),
        _download(payload, "csv", url(API_DECISIONS + ".csv", plain), "decisions.csv"),
        _download(payload, "json", url(API_DECISIONS + ".json", plain), "decisions.json"),
        el("a", {"href": url(API_DECISIONS, _filters_of(query, drop=())), "id": "api-link"}, "this page as JSON"),
    )
    sorts = [_str(x) for x in _list(payload.get("sorts"))] or list(SORTS)
    headers: list[Child] = [_sort_header(sort, sorts, _filters_of(query, drop=(*_CURSOR_KEYS, "sort")))]
    headers += ["Outcome", "Environment", "Image", "Reasons", "Waivers", "Policy", "Decision"]
    rows = [_decision_row(d) for d in _list(payload.get("decisions")) if isinstance(d, Mapping)]
    newest = _filters_of(query, drop=_CURSOR_KEYS)
    pager = el("nav", {"class": "pager", "aria-label": "pages"},
               el("a", {"href": url(DECISIONS, newest), "id": "first-page"},
                  "← Oldest" if sort == "oldest" else "← Newest")
               if any(k in query for k in _CURSOR_KEYS) else None,
               _next_link(payload, DECISIONS, "Newer →" if sort == "oldest" else "Older →"))
    shown = len(rows)
    body = [
        el("h1", None, "Decisions"),
        form,
        downloads,
        _left_out(payload),
        el("p", {"class": "muted", "id": "count"}, f"{shown} decision{'s' if shown != 1 else ''} on this page",
           f" (at most {payload['limit']})" if _int(payload.get("limit")) is not None else None,
           "; oldest first" if sort == "oldest" else "; newest first"),
        _table(headers, rows, id_="decisions", empty="No decision matches these filters."),
        pager,
    ]
    return layout("Decisions", body, integrity=integrity, active=DECISIONS, here=url(DECISIONS, filters))


def _sort_header(current: str, sorts: Sequence[str], filters: Mapping[str, str]) -> Markup:
    """The time column's header: a link to the list in the other order (chain order: the one order
    the log sorts a million decisions by without reading them all)."""
    oldest = current == "oldest"
    target = "newest" if oldest else "oldest"
    params = {**filters, "sort": target} if target != DEFAULT_SORT else dict(filters)
    content = el("a", {"href": url(DECISIONS, params), "id": "sort-time", "title": f"{target} first"},
                 "Time", " ↑" if oldest else " ↓") if target in sorts else Markup("Time")
    return el("th", {"scope": "col", "aria-sort": "ascending" if oldest else "descending"}, content)


def _triage_label(entry: Mapping[str, Any]) -> Markup:
    """A triage entry in a list: the waiver id, or ``VEX`` and the statement, linked to its decisions."""
    target = _triage_filter(entry)
    shown: Child = (["VEX ", text(entry.get("statement") or entry.get("id"))] if entry.get("kind") == "vex"
                    else text(entry.get("id")))
    return link(url(DECISIONS, target) if target else None, shown)


def _decision_row(d: Mapping[str, Any]) -> Markup:
    violations = _list(d.get("violations"))
    warnings = _list(d.get("warnings"))
    waivers = [w for w in _list(d.get("waivers")) if isinstance(w, Mapping)]
    rules = sorted({_str(_map(v).get("rule")) for v in violations if _map(v).get("rule")})
    reasons: list[Child] = []
    if violations:
        reasons.append(f"{len(violations)} deny: ")
        messages: dict[str, str] = {}
        for v in (_map(x) for x in violations):
            messages.setdefault(_str(v.get("rule")), _str(v.get("message")))
        reasons.append(join([el("code", {"title": text(messages.get(r))}, text(r)) for r in rules[:3]], ", "))
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
        el("td", None, artifact_cell(d.get("artifact"))),
        el("td", None, reasons),
        el("td", None, join([_triage_label(w) for w in waivers], ", ")),
        el("td", {"class": "nowrap"}, short_hash(policy.get("digest"), 8),
           el("div", {"class": "muted"}, text(policy.get("revision"))) if policy.get("revision") else None),
        el("td", None, decision_link(d.get("decision_id"))),
    )


# ------------------------------------------------------------------ one decision


def decision_page(payload: Mapping[str, Any], query: Mapping[str, Any] | None = None, *,
                  integrity: Mapping[str, Any] | None = None) -> str:
    """One decision (payload: ``/api/v1/decisions/{id}``): outcome, reasons with solutions, triage,
    the input's findings (searchable: the API answers ``?q=``), policy, scanners, chain position,
    signature, and the promotions and syncs that used it."""
    d = _map(payload.get("decision"))
    decision_id = _str(d.get("decision_id"))
    artifact = artifact_ref(d.get("artifact"))
    art = _map(d.get("artifact"))
    heading = _str(art.get("image")) + (f":{art['tag']}" if art.get("tag") else "") if art.get("image") else artifact
    violations, warnings = _list(d.get("violations")), _list(d.get("warnings"))
    facts = el(
        "dl", {"class": "facts", "id": "facts"},
        el("dt", None, "Outcome"), el("dd", None, outcome_label(d.get("outcome"))),
        el("dt", None, "Environment"), el("dd", None, text(d.get("environment"))),
        el("dt", None, "Image"), el("dd", {"class": "mono"}, text(artifact)),
        el("dt", None, "Time"), el("dd", None, time_el(d.get("timestamp"))),
        el("dt", None, "Decision id"), el("dd", {"class": "mono"}, text(decision_id)),
        el("dt", None, "Findings"), el("dd", None, text(_summary(_map(d.get("summary"))))),
        _context_facts(_map(d.get("context"))),
        [el("dt", None, "Error"), el("dd", None, text(d.get("error")))] if d.get("error") else None,
    )
    body: list[Child] = [
        el("h1", None, outcome_label(d.get("outcome")), " ", text(heading), " ",
           el("span", {"class": "muted"}, "in ", text(d.get("environment")))),
        _distrust_notice(_map(payload.get("chain")), _map(payload.get("signature"))),
        facts,
        el("h2", None, "Deny reasons ", el("span", {"class": "muted"}, f"({len(violations)})")),
        _violations(violations, "violations", "No deny reason."),
        el("h2", None, "Warnings ", el("span", {"class": "muted"}, f"({len(warnings)})")),
        _violations(warnings, "warnings", "No warning."),
        el("h2", None, "Triage: waivers and VEX"),
        _triage(d, payload),
        el("h2", None, "Findings in the input"),
        _findings(payload, decision_id),
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
    return layout(f"Decision {decision_id}", body, integrity=integrity, active=DECISIONS,
                  here=url(DECISIONS, {"q": _str(payload.get("findings_query"))}, decision_id))


def _summary(summary: Mapping[str, Any]) -> str:
    """A record's ``summary`` as ``trivy 1 critical, 2 high; coverage none`` (severities worst first)."""
    order = ("critical", "high", "medium", "low", "info", "unknown")
    parts = []
    for scanner in sorted(summary):
        counts = _map(summary[scanner])
        named = [f"{counts[s]} {s}" for s in order if _int(counts.get(s))]
        named += [f"{n} {s}" for s, n in sorted(counts.items()) if s not in order and _int(n)]
        parts.append(f"{scanner} {', '.join(named) if named else 'none'}")
    return "; ".join(parts) or "none"


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


_SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")


def _severity(value: Any) -> Markup:
    sev = _str(value)
    return el("span", {"class": f"sev-{sev}" if sev in _SEVERITIES else None}, escape(sev))


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


def _triage_filter(entry: Mapping[str, Any]) -> dict[str, str]:
    """The decisions list filter naming this triage entry: ``waiver`` for a waiver, ``triaged_by``
    (the document digest) for a VEX statement where the log has that filter; none otherwise."""
    if entry.get("kind") != "vex":
        return {"waiver": _str(entry.get("id"))}
    return {"triaged_by": _str(entry.get("document"))} if "triaged_by" in queries.DECISION_FILTERS else {}


def _triage(d: Mapping[str, Any], payload: Mapping[str, Any]) -> Markup:
    """The decision's triage: the waivers it applied and the VEX statements (``waivers`` entries of
    ``kind`` "vex": document digest, statement, status, justification, author), each with the scope
    it matched and the findings it covers."""
    rows = []
    for w in (_map(i) for i in _list(d.get("waivers"))):
        scope = _map(w.get("scope"))
        vex = w.get("kind") == "vex"
        target = _triage_filter(w)
        if vex:
            source: Child = ["VEX ", text(w.get("format"))]
            name: Child = [short_hash(w.get("document")), " ", el("span", {"class": "mono"}, text(w.get("statement")))]
            why: Child = [el("span", {"class": "status"}, text(w.get("status"))), " ", text(w.get("justification")),
                          [" ", text(w.get("reason"))] if w.get("reason") else None]
            who, expires = w.get("author"), None
        else:
            source, name = "waiver", text(w.get("id"))
            why, who, expires = text(w.get("reason")), w.get("approved_by"), w.get("expires")
        covers = len(_list(w.get("finding_ids")))
        rows.append(el(
            "tr", None,
            el("td", {"class": "nowrap"}, source),
            el("td", {"class": "nowrap"}, link(url(DECISIONS, target) if target else None, name)),
            el("td", {"class": "nowrap"}, el("code", None, text(w.get("rule"))),
               [el("div", {"class": "muted"}, text(", ".join(f"{k}={v}" for k, v in sorted(scope.items()))))]
               if scope else None),
            el("td", None, why),
            el("td", None, text(who)),
            el("td", None, time_el(expires) if expires else "—"),
            el("td", {"class": "num"}, covers),
        ))
    stale = [_str(s) for s in _list(d.get("stale_waivers"))]
    note = el("p", {"class": "notice"}, "Waivers in the policy data that matched nothing: ",
              join([el("code", None, text(s)) for s in stale], ", ")) if stale else None
    return join([_table(["Source", "Id", "Rule", "Reason", "By", "Expires", "Findings"], rows, id_="triage",
                        empty="No waiver or VEX statement applied."), note])


def _findings(payload: Mapping[str, Any], decision_id: str) -> Markup:
    """The input's findings as the API selected them (``q`` searches them server-side: a GET form,
    no script), each with its triage: denied, warned, waived (by which waiver) or none."""
    findings = [_map(i) for i in _list(payload.get("findings"))]
    q = _str(payload.get("findings_query"))
    total = _int(payload.get("findings_total"))
    matched = _int(payload.get("findings_matched"))
    rows = []
    for f in findings:
        pkg = _map(f.get("package"))
        loc = _map(f.get("location"))
        where = " ".join(_str(x) for x in (pkg.get("name"), pkg.get("version")) if x) or _str(loc.get("path"))
        if loc.get("start_line") and not pkg:
            where += f":{loc.get('start_line')}"
        triage = _map(f.get("triage"))
        status = _str(triage.get("status"))
        waivers = [_str(w) for w in _list(triage.get("waivers"))]
        rows.append(el(
            "tr", None,
            el("td", None, _severity(f.get("severity"))),
            el("td", {"class": "nowrap"}, _reference_link(f, el("code", None, escape(f.get("rule"))))),
            el("td", None, escape(f.get("kind"))),
            el("td", None, text(f.get("title") or f.get("message"))),
            el("td", {"class": "mono"}, text(where)),
            el("td", None, escape(pkg.get("fixed_version"))),
            el("td", None, el("span", {"class": f"triage triage-{status}" if status in _TRIAGE else "triage"},
                              escape(status or "—")),
               [" ", join([link(url(DECISIONS, {"waiver": w}), escape(w)) for w in waivers], ", ")] if waivers else None),
            el("td", None, escape(f.get("scanner"))),
        ))
    count = f"{matched if matched is not None else len(findings)} of {total if total is not None else len(findings)} findings"
    if matched is not None and matched > len(findings):
        count += f" (first {len(findings)} shown: narrow the search)"
    form = el(
        "form", {"method": "get", "action": url(DECISIONS, None, decision_id), "class": "filters", "id": "findings-search"},
        _input("q", "Search findings", q, hint="CVE, package, path, severity"),
        el("button", {"type": "submit", "id": "findings-search-button"}, "Search"),
        el("a", {"href": url(DECISIONS, None, decision_id), "id": "findings-clear"}, "clear") if q else None,
        el("span", {"class": "muted", "id": "findings-count"}, count),
    )
    empty = "No finding matches." if q else "The input has no findings."
    return join([form, _table(["Severity", "Rule", "Kind", "Title", "Package / path", "Fixed in", "Triage", "Scanner"],
                              rows, id_="findings", empty=empty)])


def _reference_link(finding: Mapping[str, Any], content: Markup) -> Markup:
    """``content`` linked to the finding's first http(s) reference (the advisory), when it has one."""
    for reference in _list(finding.get("references"))[:5]:
        href = external_href(reference)
        if href is not None:
            return link(href, content, {"rel": "noreferrer noopener", "title": text(reference)})
    return content


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


def _distrust_notice(chain: Mapping[str, Any], signature: Mapping[str, Any]) -> Markup | None:
    """Above everything else when the record cannot be relied on: an edited record still shows the
    outcome it claims, so the page says at once that the claim is not verified."""
    problems = []
    if chain.get("hash_ok") is False:
        problems.append("its hash does NOT match its content (the record was changed after it was written)")
    status = _str(signature.get("status"))
    if status and status != "trusted":
        problems.append(f"its signature is {status}")
    if not problems:
        return None
    return el("p", {"class": "notice", "id": "record-distrust"},
              el("strong", None, "Do not rely on this record: "), "; ".join(problems),
              ". The outcome shown is only what the record claims.")


def _chain(chain: Mapping[str, Any], signature: Mapping[str, Any], d: Mapping[str, Any]) -> Markup:
    status = _str(signature.get("status"))
    sig_cls = f"sig sig-{status}" if status in SIGNATURE_STATUSES else "sig"
    seq, head = _int(chain.get("seq")), _int(chain.get("head_seq"))
    hash_ok = chain.get("hash_ok")
    return el(
        "dl", {"class": "facts", "id": "chain"},
        el("dt", None, "Position"),
        el("dd", None, f"record {seq}" if seq is not None else "—", f" of {head}" if head is not None else None),
        el("dt", None, "Hash"),
        el("dd", None, el("span", {"class": "mono"}, text(chain.get("hash") or d.get("hash"))),
           " ", el("span", {"class": "sig sig-trusted" if hash_ok else "sig sig-invalid", "id": "hash-status"},
                   "matches the record" if hash_ok else "does NOT match the record")
           if hash_ok is not None else None,
           [" ", el("span", {"class": "muted"}, text(chain.get("problem")))] if chain.get("problem") else None),
        el("dt", None, "Previous hash"),
        el("dd", {"class": "mono"}, text(chain.get("prev_hash") or d.get("prev_hash") or "— (first record)")),
        el("dt", None, "Signature"),
        el("dd", None, el("span", {"class": sig_cls, "id": "signature-status"}, text(status or "unknown")),
           [" key ", el("span", {"class": "mono"}, text(signature.get("key_id")))] if signature.get("key_id") else None,
           [" ", el("span", {"class": "muted"}, text(signature.get("problem")))] if signature.get("problem") else None),
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
        _input("digest", "Digest", filters.get("digest", ""), hint="sha256:…"),
        _input("decision", "Decision id", filters.get("decision", ""), hint="01…"),
        _checkbox("waived", "on a waiver", _truthy(filters.get("waived", ""))),
        el("input", {"type": "hidden", "name": "limit", "value": filters["limit"]}) if "limit" in filters else None,
        el("button", {"type": "submit", "id": "filter-button"}, "Filter"),
        el("a", {"href": url(EVENTS)}, "clear"),
    )
    events = [e for e in _list(payload.get("events")) if isinstance(e, Mapping)]
    body = [
        el("h1", None, "Promotions and syncs"),
        form,
        el("div", {"class": "actions"},
           el("a", {"href": url(API_EVENTS, _filters_of(query, drop=())), "id": "api-link"}, "this page as JSON"),
           el("span", {"class": "muted"}, "every event as CSV: ", el("code", None, "gate decisions events --format csv"))),
        _events_table(events, empty="No promotion or sync matches these filters."),
        el("nav", {"class": "pager", "aria-label": "pages"}, _next_link(payload, EVENTS, "Older →")),
    ]
    return layout("Promotions and syncs", body, integrity=integrity, active=EVENTS, here=url(EVENTS, filters))


#: decisions listed per event at most (a sync names every decision it applied)
_EVENT_DECISIONS = 10


def _events_table(events: Sequence[Mapping[str, Any]], *, current: str | None = None, empty: str) -> Markup:
    rows = []
    for e in events:
        artifact = _map(e.get("artifact"))
        details = _map(e.get("details"))
        context = _map(e.get("context"))
        ids = _list(e.get("decision_ids"))
        decisions: list[Child] = [
            el("span", {"class": "mono"}, "this decision") if _str(i) == current else decision_link(i)
            for i in ids[:_EVENT_DECISIONS]
        ]
        if len(ids) > _EVENT_DECISIONS:
            decisions.append(el("span", {"class": "muted"}, f"+{len(ids) - _EVENT_DECISIONS} more"))
        if details.get("unknown_decision_id"):
            decisions.append(el("span", {"class": "muted", "title": "not in this log"},
                                text(details.get("unknown_decision_id")), " (unknown)"))
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
            el("td", None, text(context.get("actor"))),
        ))
    return _table(["Time", "Kind", "Outcome", "Environment", "Image", "Decisions", "GitOps commit", "Details", "By"],
                  rows, id_="events", empty=empty)


def _gitops(details: Mapping[str, Any]) -> Markup:
    """The GitOps commit an event recorded (a promotion's write-back, the commit a sync applied): its
    sha, the repository (linked when it is a web URL) and path, and a pull request when one is named."""
    gitops = _map(details.get("gitops"))
    sha = _str(gitops.get("commit") or details.get("commit"))
    repo = gitops.get("repo") or details.get("repo")
    path = gitops.get("path") or details.get("path")
    parts: list[Child] = []
    if sha:
        parts.append(el("span", {"class": "mono", "title": sha}, text(sha[:12])))
    if repo:
        parts += [" ", link(external_href(repo), el("span", {"class": "muted"}, text(repo)))]
    if path:
        parts += [" ", el("span", {"class": "muted"}, text(path))]
    if gitops.get("branch") and gitops.get("status") == "branch":
        parts += [" branch ", text(gitops.get("branch"))]
    pr = gitops.get("pull_request") or details.get("pull_request")
    pr_url = _map(pr).get("url") if isinstance(pr, Mapping) else pr
    if external_href(pr_url) is not None:
        parts += [" ", link(external_href(pr_url), "pull request")]
    return join(parts)


def _event_summary(details: Mapping[str, Any]) -> Markup:
    """What an event did: a promotion's reasons (why refused), a sync's applied, blocked (with the
    first reason of each of the first few objects), drifted and pruned objects, an error."""
    parts: list[Child] = [el("div", None, text(r)) for r in [_str(r) for r in _list(details.get("reasons"))][:3]]
    counts = [f"{len(_list(details.get(k)))} {k}" for k in ("applied", "drift", "pruned") if _list(details.get(k))]
    if _int(details.get("unchanged")):
        counts.append(f"{details['unchanged']} unchanged")
    if counts:
        parts.append(el("div", {"class": "muted"}, ", ".join(counts)))
    blocked = [_map(b) for b in _list(details.get("blocked"))]
    if blocked:
        parts.append(el("div", None, f"{len(blocked)} blocked:"))
        for item in blocked[:3]:
            reasons = _list(item.get("reasons"))
            parts.append(el("div", None, el("span", {"class": "mono"}, text(item.get("object"))),
                            [": ", text(reasons[0])] if reasons else None))
    if details.get("error"):
        parts.append(el("div", {"class": "error-text"}, text(details.get("error"))))
    return join(parts)


# ------------------------------------------------------------------ waivers


def waivers_page(payload: Mapping[str, Any], query: Mapping[str, Any] | None = None, *,
                 integrity: Mapping[str, Any] | None = None) -> str:
    """Waivers in use, expiring within the warning window, and expired but still referenced
    (payload: ``/api/v1/waivers``: ``{"now", "since", "in_use", "expiring", "expired_referenced"}``,
    each waiver as ``gate decisions stats`` lists it, plus ``allows``)."""
    query = query or {}
    since = _str(payload.get("since")) or _query_value(query, "since")
    form = el(
        "form", {"method": "get", "action": url(WAIVERS), "class": "filters", "id": "filters"},
        _input("since", "Decisions since", _query_value(query, "since"), hint=since or "90d"),
        el("button", {"type": "submit", "id": "filter-button"}, "Show"),
    )
    sections = (
        ("expiring", "Expiring within the warning window", "expiring",
         "No waiver in use expires within the warning window."),
        ("expired_referenced", "Expired but still referenced", "expired",
         "No expired waiver was applied by a decision in this window."),
        ("in_use", "In use", "in-use", "No decision in this window applied a waiver."),
    )
    body: list[Child] = [
        el("h1", None, "Waivers"),
        form,
        el("p", {"class": "muted"}, "Waivers applied by decisions", f" in the last {since}" if since else None,
           "; as of ", time_el(payload.get("now")), ". The policy data's own list: ",
           el("code", None, "gate decisions waivers --expiring 14d"), "."),
    ]
    for key, title, id_, empty in sections:
        uses = [_map(w) for w in _list(payload.get(key))]
        extra = [k for k in ("reason", "approved_by") if any(u.get(k) for u in uses)]
        headers = ["Waiver", "Rule", "Status", "Expires", "Decisions", "Allows", "First applied", "Last applied",
                   *[{"reason": "Reason", "approved_by": "Approved by"}[k] for k in extra]]
        rows = [_waiver_row(u, extra) for u in uses]
        body += [el("h2", None, title, " ", el("span", {"class": "muted"}, f"({len(rows)})")),
                 _table(headers, rows, id_=f"waivers-{id_}", empty=empty)]
    return layout("Waivers", body, integrity=integrity, active=WAIVERS, here=url(WAIVERS, _filters_of(query)))


def _waiver_row(w: Mapping[str, Any], extra: Sequence[str] = ()) -> Markup:
    wid = _str(w.get("id"))
    applied, allows = _int(w.get("applied")), _int(w.get("allows"))
    return el(
        "tr", None,
        el("td", None, link(url(DECISIONS, {"waiver": wid}), text(wid))),
        el("td", None, link(url(DECISIONS, {"finding": _str(w.get("rule"))}), el("code", None, text(w.get("rule"))))),
        el("td", None, status_label(w.get("status"))),
        el("td", None, time_el(w.get("expires")),
           [" ", el("span", {"class": "muted"}, f"({w['days_left']} days)")] if _int(w.get("days_left")) is not None else None),
        el("td", {"class": "num"}, applied if applied is not None else ""),
        el("td", {"class": "num"}, link(url(DECISIONS, {"waiver": wid, "outcome": "allow"}), allows)
           if allows else allows if allows is not None else ""),
        el("td", None, time_el(w.get("first_applied"))),
        el("td", None, time_el(w.get("last_applied"))),
        [el("td", None, text(w.get(k))) for k in extra],
    )


# ------------------------------------------------------------------ trends


def trends_page(payload: Mapping[str, Any], query: Mapping[str, Any] | None = None, *,
                integrity: Mapping[str, Any] | None = None) -> str:
    """Outcomes per environment per week and the rules and CVEs that blocked most (payload:
    ``/api/v1/stats``: ``gate decisions stats --format json`` plus ``weekly``, one row per environment
    and ISO week)."""
    query = query or {}
    filters = _filters_of(query)
    shown_query = _map(payload.get("query"))
    form = el(
        "form", {"method": "get", "action": url(TRENDS), "class": "filters", "id": "filters"},
        _input("env", "Environment", filters.get("env", ""), hint="prod"),
        _input("since", "Since", filters.get("since", ""), hint=_str(shown_query.get("since")) or "12w"),
        _input("until", "Until", filters.get("until", ""), hint="RFC 3339"),
        el("button", {"type": "submit", "id": "filter-button"}, "Show"),
    )
    weekly: dict[str, list[Mapping[str, Any]]] = {}
    for row in _list(payload.get("weekly")):
        if isinstance(row, Mapping):
            weekly.setdefault(_str(row.get("environment")), []).append(row)
    charts_: list[Markup] = []
    for env in sorted(weekly):
        periods = _fill_weeks(weekly[env], payload.get("since"), payload.get("until") or payload.get("now"))
        charts_.append(el("figure", {"class": "chart-box", "id": f"weekly-{env}"},
                          el("figcaption", None, link(url(DECISIONS, {"env": env}), text(env)), ": outcomes per week"),
                          charts.stacked_columns(f"{env}: outcomes per week", periods),
                          _period_table(f"{env}: outcomes per week", periods)))
    rules = [r for r in _list(payload.get("blocking_rules")) if isinstance(r, Mapping)]
    findings = [r for r in _list(payload.get("blocking_findings")) if isinstance(r, Mapping)]
    totals = _map(payload.get("outcomes"))
    env_rows = [_map(e) for e in _list(payload.get("environments"))]
    since = _str(shown_query.get("since")) or _str(payload.get("since"))
    body = [
        el("h1", None, "Trends"),
        form,
        _left_out(payload),
        el("p", {"id": "totals"}, f"{_int(payload.get('total')) or 0} decisions",
           f" since {since}" if since else None, ": ",
           join([join([outcome_label(o), " ", _int(totals.get(o)) or 0]) for o in OUTCOMES], " · ")),
        _table(["Environment", *OUTCOMES, "total"],
               [el("tr", None, el("td", None, link(url(DECISIONS, {"env": _str(e.get("environment"))}),
                                                   text(e.get("environment")))),
                   [el("td", {"class": "num"}, _int(e.get(k)) or 0) for k in (*OUTCOMES, "total")]) for e in env_rows],
               id_="environments", empty="No decisions in this range.", class_="compact"),
        el("h2", None, "Outcomes per environment per week"),
        el("div", {"class": "charts", "id": "outcome-charts"}, charts_) if charts_ else
        el("p", {"class": "muted"}, "No decisions in this range."),
        el("h2", None, "Policy rules that blocked most"),
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
    return layout("Trends", body, integrity=integrity, active=TRENDS, here=url(TRENDS, filters))


def _monday(value: Any) -> date | None:
    """The Monday of the week of an RFC 3339 time or date, None when it is neither."""
    try:
        day = rfc3339.parse_date(_str(value)[:10])
    except rfc3339.TimeFormatError:
        return None
    return rfc3339.week_start(day)


def _fill_weeks(rows: Sequence[Mapping[str, Any]], since: Any = None, until: Any = None) -> list[Mapping[str, Any]]:
    """One environment's weeks in order, every week of the range (the query's ``since``..``until``,
    else the first..last week with decisions) drawn, a week without decisions as zeros: a trend shows
    a quiet week as a gap, not by leaving it out. Rows whose start is no Monday are shown as given."""
    by_start: dict[date, Mapping[str, Any]] = {}
    for row in rows:
        start = _monday(row.get("start"))
        if start is None or start.isoformat() != _str(row.get("start")):
            return sorted(rows, key=lambda r: _str(r.get("start")))
        by_start[start] = row
    first, last = _monday(since), _monday(until)
    if by_start:
        first = min([first, *by_start]) if first else min(by_start)
        last = max([last, *by_start]) if last else max(by_start)
    if first is None or last is None or (last - first).days > 7 * 520:  # at most ten years of columns
        return [by_start[k] for k in sorted(by_start)]
    filled: list[Mapping[str, Any]] = []
    cursor = first
    while cursor <= last:
        filled.append(by_start.get(cursor) or {"start": cursor.isoformat(), "allow": 0, "deny": 0, "error": 0, "total": 0})
        cursor += timedelta(weeks=1)
    return filled


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
