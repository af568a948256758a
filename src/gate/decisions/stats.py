"""``gate decisions stats``: what the log says in aggregate, over the decisions a query selects.

Counts by outcome (overall, per environment and per period), the policy rules that blocked most
often, the findings (CVE ids, check ids: the rules of the findings deny reasons name) that blocked
most often, and every waiver applied with how often and whether it has expired or expires within
14 days of ``now``.

The aggregate is computed in Python from ``DecisionStore.query()``, one record at a time: memory
stays bounded by the number of distinct rules, waivers and days, not by the number of decisions,
and both stores give identical numbers because they feed the same code. ``compute_from_store``
gives the same numbers faster on a SQL store: the counts by outcome, environment and day come from
one SQL aggregate over the columns, and only records with a violation, waiver or VEX statement
(an index row) are decoded; tests run both paths on the same logs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gate import rfc3339
from gate.decisions.interface import DecisionQuery, UndecodableRecord
from gate.decisions.record import Decision, Outcome

#: a waiver expiring this soon still waives, but is reported (as policies warn about it)
EXPIRING_WITHIN = timedelta(days=14)
#: ranges longer than this are bucketed by ISO week (Monday) instead of by day
DAILY_UP_TO = timedelta(days=62)
OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)


@dataclass
class WaiverUse:
    """One waiver as the selected decisions applied it."""

    id: str
    rule: str
    #: the expiry recorded by the newest decision that applied it (a renewed waiver counts as renewed)
    expires: str
    applied: int = 0
    first_applied: str = ""
    last_applied: str = ""
    #: active, expiring (within 14 days of now), expired, or unknown (unparseable expiry)
    status: str = "active"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id,
            "rule": self.rule,
            "applied": self.applied,
            "first_applied": self.first_applied,
            "last_applied": self.last_applied,
            "expires": self.expires,
            "status": self.status,
        }


@dataclass
class VexUse:
    """One VEX statement as the selected decisions applied it (its document's digest binds it)."""

    id: str
    rule: str
    document: str
    status: str
    applied: int = 0
    last_applied: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"id": self.id, "rule": self.rule, "document": self.document, "status": self.status,
                "applied": self.applied, "last_applied": self.last_applied}


@dataclass
class Stats:
    """The aggregate; ``as_dict()`` is the JSON document of ``--format json``."""

    now: str
    since: str | None
    until: str | None
    total: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    environments: dict[str, Counter[str]] = field(default_factory=dict)
    #: policy rule id -> decisions it blocked, and its violations in them
    rule_decisions: Counter[str] = field(default_factory=Counter)
    rule_violations: Counter[str] = field(default_factory=Counter)
    #: finding rule (CVE id, check id) -> decisions it blocked; and the finding kind first seen for it
    finding_decisions: Counter[str] = field(default_factory=Counter)
    finding_kinds: dict[str, str] = field(default_factory=dict)
    waivers: dict[str, WaiverUse] = field(default_factory=dict)
    vex: dict[str, VexUse] = field(default_factory=dict)
    days: dict[str, Counter[str]] = field(default_factory=dict)
    first: str | None = None
    last: str | None = None
    top: int = 10

    #: (results digest or violations, findings digest) -> [shape, decisions with it not yet tallied] (add_details)
    _shapes: dict[tuple[Any, str | None], list[Any]] = field(default_factory=dict, repr=False)
    #: (environment, day) -> outcome counts: what the trends page charts per environment
    env_days: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)

    def add(self, decision: Decision) -> None:
        """Count one decision (any order)."""
        ts = decision.timestamp
        self.count(decision.environment, ts[:10], decision.outcome.value, 1, ts, ts)
        self.add_details(decision)

    def count(self, environment: str, day: str, outcome: str, n: int, first: str, last: str) -> None:
        """Count ``n`` decisions of one environment, day and outcome, whose timestamps span ``first``..``last``."""
        self.total += n
        self.outcomes[outcome] += n
        self.environments.setdefault(environment, Counter())[outcome] += n
        self.days.setdefault(day, Counter())[outcome] += n
        self.env_days.setdefault((environment, day), Counter())[outcome] += n
        if self.first is None or first < self.first:
            self.first = first
        if self.last is None or last > self.last:
            self.last = last

    def add_details(self, decision: Decision) -> None:
        """Count what ``decision``'s record says beyond its columns: violations, blocking findings, waivers, VEX."""
        # What the violations count for depends only on them and the findings they name: decisions with the same
        # ones (the same results document, or equal inline violations) and the same findings document have one
        # shape, found once, tallied by how many decisions have it (flush)
        findings = (decision.input_parts or {}).get("findings")
        key = (decision.results_digest or decision.violations, findings)
        if findings is None and any(v.finding_ids for v in decision.violations):
            self._tally(_Shape.of(decision), 1)  # findings inline: each decision's own
        elif key in self._shapes:
            self._shapes[key][1] += 1
        else:
            shape = _Shape.of(decision)
            for rule, kind in shape.blocking:  # the first kind seen for a finding rule, in decision order
                self.finding_kinds.setdefault(rule, kind)
            self._shapes[key] = [shape, 1]
        self._add_triage(decision)

    def _tally(self, shape: _Shape, n: int) -> None:
        for rule, violations in shape.rules:
            self.rule_decisions[rule] += n
            self.rule_violations[rule] += violations * n
        for rule, kind in shape.blocking:
            self.finding_kinds.setdefault(rule, kind)
            self.finding_decisions[rule] += n

    def flush(self) -> None:
        """Tally the shapes counted so far (compute and as_dict call it)."""
        for shape, n in self._shapes.values():
            self._tally(shape, n)
        self._shapes.clear()

    def _add_triage(self, decision: Decision) -> None:
        for waiver in {w.id: w for w in decision.waivers if w.expires is not None}.values():  # waivers, not VEX
            expires = waiver.expires or ""
            use = self.waivers.get(waiver.id)
            if use is None:
                use = self.waivers[waiver.id] = WaiverUse(waiver.id, waiver.rule, expires)
            use.applied += 1
            if not use.first_applied or decision.timestamp < use.first_applied:
                use.first_applied = decision.timestamp
            if decision.timestamp >= use.last_applied:
                use.last_applied, use.rule, use.expires = decision.timestamp, waiver.rule, expires
        for statement in {w.id: w for w in decision.waivers if w.is_vex}.values():
            vex = self.vex.get(statement.id)
            if vex is None:
                vex = self.vex[statement.id] = VexUse(
                    statement.id, statement.rule, statement.document or "", statement.status or ""
                )
            vex.applied += 1
            vex.last_applied = max(vex.last_applied, decision.timestamp)

    def period(self) -> str:
        """``day``, or ``week`` when the range (the filters' bounds, else the decisions') is long."""
        start, end = self.since or self.first, self.until or self.last
        if start is None or end is None:
            return "day"
        return "week" if rfc3339.parse(end) - rfc3339.parse(start) > DAILY_UP_TO else "day"

    def periods(self) -> list[dict[str, Any]]:
        """Outcome counts per day (or week, starting Monday), from the first to the last with decisions."""
        weekly = self.period() == "week"
        buckets: dict[date, Counter[str]] = {}
        for day, counts in self.days.items():
            start = rfc3339.parse_date(day)
            if weekly:
                start = rfc3339.week_start(start)
            buckets.setdefault(start, Counter()).update(counts)
        if not buckets:
            return []
        step = timedelta(weeks=1) if weekly else timedelta(days=1)
        rows: list[dict[str, Any]] = []
        cursor, end = min(buckets), max(buckets)
        while cursor <= end:
            rows.append({"start": cursor.isoformat(), **_outcome_counts(buckets.get(cursor, Counter()))})
            cursor += step
        return rows

    def as_dict(self) -> dict[str, Any]:
        """The JSON document: stable keys, lists ordered by count (then name)."""
        self.flush()
        return {
            "now": self.now,
            "since": self.since,
            "until": self.until,
            "total": self.total,
            "outcomes": _outcome_counts(self.outcomes),
            "environments": [
                {"environment": env, **_outcome_counts(counts)} for env, counts in sorted(self.environments.items())
            ],
            "blocking_rules": [
                {"rule": rule, "decisions": n, "violations": self.rule_violations[rule]}
                for rule, n in _top(self.rule_decisions, self.top)
            ],
            "blocking_findings": [
                {"rule": rule, "kind": self.finding_kinds.get(rule, ""), "decisions": n}
                for rule, n in _top(self.finding_decisions, self.top)
            ],
            "waivers": [w.as_dict() for w in sorted(self.waivers.values(), key=lambda w: (-w.applied, w.id))],
            "vex": [v.as_dict() for v in sorted(self.vex.values(), key=lambda v: (-v.applied, v.id))],
            "waivers_expiring": [
                w.as_dict() for w in sorted(self.waivers.values(), key=lambda w: (w.expires, w.id))
                if w.status in ("expired", "expiring")
            ],
            "period": self.period(),
            "periods": self.periods(),
        }


def compute(
    decisions: Iterable[Decision],
    now: datetime | None = None,
    since: str | None = None,
    until: str | None = None,
    top: int = 10,
) -> Stats:
    """Aggregate ``decisions`` (streamed); ``since``/``until`` are the query's bounds, for the period size."""
    now = now or datetime.now(UTC)
    stats = Stats(now=rfc3339.format(now), since=since, until=until, top=top)
    for decision in decisions:
        stats.add(decision)
    _set_statuses(stats, now)
    return stats


def compute_from_store(
    store: Any,
    query: DecisionQuery,
    now: datetime | None = None,
    top: int = 10,
    on_undecodable: Callable[[UndecodableRecord], None] | None = None,
    prepare: Callable[[Decision], Decision] | None = None,
) -> Stats:
    """``compute`` over ``store.query(query)``, the same numbers read faster from a SQL store: the counts by
    outcome, environment and day are aggregated in SQL from the columns (``outcome_counts``), and only the
    records with an index row — a violation, a waiver or VEX statement applied (``indexed``) — are decoded,
    for their rules, findings and waivers. A store without ``outcome_counts`` is read record by record.
    ``prepare``: applied to each record read (the UI adds the findings the deny reasons name to a stored
    form). An undecodable record is left out of the details but, not read, still counted by outcome."""
    now = now or datetime.now(UTC)
    counts = getattr(store, "outcome_counts", None)
    records = store.query(replace(query, indexed=counts is not None), on_undecodable=on_undecodable)
    if prepare is not None:
        records = map(prepare, records)
    if counts is None:
        return compute(records, now, query.since, query.until, top=top)
    stats = Stats(now=rfc3339.format(now), since=query.since, until=query.until, top=top)
    for row in counts(query):
        stats.count(*row)
    for decision in records:
        stats.add_details(decision)
    _set_statuses(stats, now)
    return stats


def _set_statuses(stats: Stats, now: datetime) -> None:
    stats.flush()
    for use in stats.waivers.values():
        use.status = waiver_status(use.expires, now)


def waiver_status(expires: str, now: datetime) -> str:
    """``expired``, ``expiring`` (within 14 days), ``active``; ``unknown`` when ``expires`` is not a time."""
    try:
        moment = rfc3339.parse(expires)
    except rfc3339.TimeFormatError:
        return "unknown"
    if moment <= now:
        return "expired"
    return "expiring" if moment - now <= EXPIRING_WITHIN else "active"


@dataclass(frozen=True)
class _Shape:
    """What one decision's violations count for: (policy rule, its violations), and the (rule, kind) of the
    findings they name (each finding rule once, with the kind first seen, in input order)."""

    rules: tuple[tuple[str, int], ...]
    blocking: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, decision: Decision) -> _Shape:
        """The shape of ``decision`` (its input's findings read when its violations name any)."""
        named = {i for v in decision.violations for i in v.finding_ids}
        pairs: dict[str, str] = {}
        for finding in (decision.input.get("findings") or ()) if named else ():
            if isinstance(finding, dict) and finding.get("id") in named and finding.get("rule"):
                pairs.setdefault(finding["rule"], str(finding.get("kind") or ""))
        return cls(tuple(Counter(v.rule for v in decision.violations).items()), tuple(pairs.items()))


def _outcome_counts(counts: Counter[str]) -> dict[str, int]:
    return {**{o: counts.get(o, 0) for o in OUTCOMES}, "total": sum(counts.values())}


def _top(counts: Counter[str], n: int) -> list[tuple[str, int]]:
    """The ``n`` largest counts; ties by name, so the cut is the same on every run and store."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
