"""What the web view asks the decision log: URL query parameters turned into the CLI's queries.

The filters are those of ``gate decisions list`` (``--policy-digest`` is ``policy_digest``: flag names
with ``-`` → ``_``) and mean exactly the same, through the same ``DecisionQuery`` and the same time
parsing (gate.decisions.timefilter). A parameter the view does not know, given twice or with a bad
value is a ``BadRequest`` naming it: a typo must not silently widen an auditor's question.

Pages are keyset-paginated on the chain position (``seq``), never by offset, so a page of a
million-record log costs the same as the first: newest first by default with the cursor
``before=<seq>`` (the records before that position), or ``sort=oldest`` with ``after=<seq>``.
Those are the only sort orders offered: the log's primary key orders them, whatever the filters; any
other column (image, outcome) would sort every match of the filters first — a million rows for a
broad filter — so filter by it instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from gate import rfc3339
from gate.decisions.interface import DecisionQuery
from gate.errors import GateError

#: ``--triaged-by`` (a waiver id, VEX statement id or VEX document digest) where the log's query has it
TRIAGED_BY = "triaged_by" in DecisionQuery.__dataclass_fields__
#: the filters of ``gate decisions list``, by URL parameter (the flag with ``-`` → ``_``)
DECISION_FILTERS: tuple[str, ...] = (
    "env", "outcome", "image", "digest", "rule", "finding", "waiver", *(("triaged_by",) if TRIAGED_BY else ()),
    "since", "until", "policy_digest", "waived", "waiver_expired",
)
#: the filters of ``gate decisions events``
EVENT_FILTERS: tuple[str, ...] = ("decision", "kind", "outcome", "env", "digest", "waived", "since", "until")
OUTCOMES = ("allow", "deny", "error")
SORTS = ("newest", "oldest")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class BadRequest(GateError):
    """A query parameter the view cannot honour (HTTP 400 with this one-line reason)."""


@dataclass(frozen=True)
class ListRequest:
    """A page of a listing: the store query (without paging), the filters as given, and the page."""

    query: Any
    #: the filters exactly as given in the URL (only the non-empty ones), in DECISION_FILTERS order
    filters: dict[str, str] = field(default_factory=dict)
    sort: str = "newest"
    limit: int = DEFAULT_LIMIT
    #: the cursor: records before (newest first) or after (oldest first) this seq
    cursor: int | None = None

    def as_params(self, **extra: str | int) -> dict[str, str]:
        """The filters, sort and limit as URL parameters (defaults left out), plus ``extra``."""
        params = dict(self.filters)
        if self.sort != "newest":
            params["sort"] = self.sort
        if self.limit != DEFAULT_LIMIT:
            params["limit"] = str(self.limit)
        params.update({k: str(v) for k, v in extra.items()})
        return params


def single(params: Mapping[str, list[str]], known: tuple[str, ...]) -> dict[str, str]:
    """Each parameter's one value; an unknown or repeated parameter is a BadRequest. Empty values
    (a filter form's blank fields) count as not given."""
    values: dict[str, str] = {}
    for name, given in params.items():
        if name not in known:
            raise BadRequest(f"unknown parameter {name!r}; known: {', '.join(known)}")
        if len(given) > 1:
            raise BadRequest(f"parameter {name!r} given {len(given)} times: give it once")
        if given[0].strip():
            values[name] = given[0].strip()
    return values


def flag(name: str, value: str | None) -> bool:
    """A yes/no parameter: 1, true, yes, on or 0, false, no, off (any case)."""
    if value is None or value.lower() in _FALSE:
        return False
    if value.lower() in _TRUE:
        return True
    raise BadRequest(f"{name} {value!r}: give 1 or 0")


def number(name: str, value: str | None, least: int, most: int | None = None) -> int | None:
    """A whole-number parameter within bounds, or None when not given."""
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadRequest(f"{name} {value!r}: give a whole number")
    n = int(value)
    if n < least or (most is not None and n > most):
        raise BadRequest(f"{name} {value}: give {least} to {most}" if most is not None else f"{name} {value}: give {least} or more")
    return n


def time_bounds(values: Mapping[str, str], now: datetime) -> tuple[str | None, str | None]:
    """``since`` and ``until`` as the log stores them (gate.decisions.timefilter, as the CLI parses them)."""
    from gate.decisions.timefilter import parse_time
    from gate.errors import UsageError

    try:
        since = parse_time(values["since"], "since", now) if "since" in values else None
        until = parse_time(values["until"], "until", now) if "until" in values else None
    except UsageError as e:
        raise BadRequest(str(e)) from None
    if since is not None and until is not None and since >= until:
        raise BadRequest(f"since {values['since']!r} is not before until {values['until']!r}: nothing can match")
    return since, until


def _page(values: dict[str, str]) -> tuple[str, int, int | None]:
    sort = values.pop("sort", "newest")
    if sort not in SORTS:
        raise BadRequest(f"sort {sort!r}: give {' or '.join(SORTS)} (the log is ordered by its chain; filter by a column instead)")
    limit = number("limit", values.pop("limit", None), 1, MAX_LIMIT) or DEFAULT_LIMIT
    before, after = number("before", values.pop("before", None), 1), number("after", values.pop("after", None), 0)
    if before is not None and after is not None:
        raise BadRequest("give before (newest first) or after (sort=oldest), not both")
    if (sort == "newest" and after is not None) or (sort == "oldest" and before is not None):
        raise BadRequest("before goes with newest first, after with sort=oldest")
    return sort, limit, before if before is not None else after


def decision_request(params: Mapping[str, list[str]], now: datetime | None = None, paged: bool = True) -> ListRequest:
    """``/api/v1/decisions?...`` (``paged`` False: a download of the whole filtered set)."""
    known = DECISION_FILTERS + (("sort", "limit", "before", "after") if paged else ("sort",))
    values = single(params, known)
    now = now or datetime.now(UTC)
    sort, limit, cursor = _page(values)
    outcome = values.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise BadRequest(f"outcome {outcome!r}: give {', '.join(OUTCOMES)}")
    since, until = time_bounds(values, now)
    extra: dict[str, Any] = {"triaged_by": values.get("triaged_by")} if TRIAGED_BY else {}
    query = DecisionQuery(
        **extra,
        digest=values.get("digest"),
        image=values.get("image"),
        environment=values.get("env"),
        outcome=outcome,
        rule=values.get("rule"),
        finding=values.get("finding"),
        waiver=values.get("waiver"),
        since=since,
        until=until,
        policy_digest=values.get("policy_digest"),
        waived=flag("waived", values.get("waived")),
        waiver_expired_before=rfc3339.format(now) if flag("waiver_expired", values.get("waiver_expired")) else None,
        oldest_first=sort == "oldest",
        with_input=False,
    )
    filters = {name: values[name] for name in DECISION_FILTERS if name in values}
    return ListRequest(query, filters, sort, limit, cursor)


def page_query(request: ListRequest) -> DecisionQuery:
    """The store query of one page: one record more than shown, to know whether there is a next page."""
    query: DecisionQuery = request.query
    if request.cursor is None:
        return replace(query, limit=request.limit + 1)
    if request.sort == "oldest":
        return replace(query, limit=request.limit + 1, after_seq=request.cursor)
    return replace(query, limit=request.limit + 1, through_seq=request.cursor - 1)


def bounded(store: Any, query: DecisionQuery) -> DecisionQuery | None:
    """``query`` with its time range (``since``, and ``until`` with it) also given as the exact range of
    seqs holding it (store.seq_range, from the timestamp index), or None when no record is in it.

    The results are the same; what changes is the plan: the log is walked in seq order over that range
    only, a page at a time, instead of sorting every record of the time range (a month of a
    million-record log) or walking back from the newest record to the range. It is fast where the log's
    timestamps follow its append order, as they do when each record is appended as it is decided; an
    out-of-order record only widens the range. ``until`` alone is left as it is: its range reaches
    back to the first record."""
    if query.since is None:
        return query
    found = store.seq_range(query.since, query.until)
    if found is None:
        return None
    low, high = found
    after = low - 1 if query.after_seq is None else max(query.after_seq, low - 1)
    through = high if query.through_seq is None else min(query.through_seq, high)
    if through <= after:
        return None
    return replace(query, after_seq=after, through_seq=through)


def event_request(params: Mapping[str, list[str]], now: datetime | None = None) -> ListRequest:
    """``/api/v1/events?...``: the filters of ``gate decisions events``, newest first, ``before=<seq>``."""
    from gate.decisions.events import OUTCOMES as EVENT_OUTCOMES
    from gate.decisions.events import EventQuery

    values = single(params, EVENT_FILTERS + ("limit", "before"))
    now = now or datetime.now(UTC)
    sort, limit, cursor = _page(values)
    kind, outcome = values.get("kind"), values.get("outcome")
    if kind is not None and kind not in EVENT_OUTCOMES:
        raise BadRequest(f"kind {kind!r}: give {' or '.join(EVENT_OUTCOMES)}")
    every = sorted({o for outcomes in EVENT_OUTCOMES.values() for o in outcomes})
    if outcome is not None and outcome not in (EVENT_OUTCOMES[kind] if kind else every):
        raise BadRequest(f"outcome {outcome!r}: give {', '.join(EVENT_OUTCOMES[kind] if kind else every)}")
    since, until = time_bounds(values, now)
    query = EventQuery(
        decision_id=values.get("decision"), type=kind, environment=values.get("env"), digest=values.get("digest"),
        since=since, until=until, outcome=outcome, waived=flag("waived", values.get("waived")),
    )
    filters = {name: values[name] for name in EVENT_FILTERS if name in values}
    return ListRequest(query, filters, sort, limit, cursor)


def next_link(base: str, request: ListRequest, cursor: int) -> tuple[str, str]:
    """(API URL, query string) of the page after the one ending at ``cursor``."""
    key = "after" if request.sort == "oldest" else "before"
    query = urlencode(request.as_params(**{key: cursor}))
    return f"{base}?{query}", query


def iterate(rows: Iterator[Any]) -> Iterator[Any]:
    """``rows``, closing the store cursor when the reader stops early."""
    try:
        yield from rows
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
