"""The JSON API of ``gate serve --ui`` (``/api/v1/...``): every payload the HTML pages are drawn from.

Each function here takes an open (read-only) store and the request's parameters and returns a
JSON-ready ``dict``; ``gate.ui.app`` serves it as JSON under ``/api/v1`` and hands the very same dict
to the page function of gate.ui.pages, so the API and the pages never disagree. Examples of every
payload, made from a real log, are in tests/ui/payloads/*.json (tests check they still match).

Shapes (``...`` = as the CLI prints it; keys are always present unless marked optional):

``GET /api/v1/decisions`` — :func:`decisions`, the filters of ``gate decisions list`` as parameters
(``env outcome image digest rule finding waiver since until policy_digest waived waiver_expired``, and
``triaged_by`` where ``gate decisions list --triaged-by`` exists),
plus ``sort`` (``newest`` | ``oldest``), ``limit`` (1–200, default 50), ``before``/``after`` (cursor)::

    {"decisions": [ENTRY, ...],          # ENTRY: exactly an entry of `gate decisions list --format json`
     "query": {"env": "prod", ...},      # the filters as given (strings, only those given)
     "sort": "newest", "sorts": ["newest", "oldest"], "limit": 50,
     "first_seq": 120, "last_seq": 71,   # chain positions of the first and last entry shown (null: none)
     "next": "/api/v1/decisions?env=prod&before=71" | null,   # the next page (API URL)
     "next_query": "env=prod&before=71" | null,                # the same page's query string (for /decisions?...)
     "downloads": {"csv": "/api/v1/decisions.csv?env=prod", "json": "/api/v1/decisions.json?env=prod"},
     "left_out": []}                     # records of this page that could not be decoded: ["record seq 4 (decision …)"]

``GET /api/v1/decisions.csv`` / ``.json``: the whole filtered set (no ``limit``/cursor), streamed,
as ``gate decisions list --format csv`` / ``--format json`` writes it (attachment).

``GET /api/v1/decisions/{id}`` — :func:`decision` (``q``: search the findings, case-insensitive)::

    {"decision": ENTRY,                  # the record as listed (stored form: inline input keys, no findings)
     "findings": [FINDING + {"triage": {"status": "denied" | "warned" | "waived" | "none",
                                        "rules": ["vulnerabilities.severity"],   # violations/warnings naming it
                                        "waivers": ["W-0042"]}}, ...],           # first 500 matching q
     "findings_total": 120, "findings_matched": 3, "findings_query": "cve-2022",
     "events": [EVENT, ...],             # `gate decisions events --decision ID --format json` entries, oldest first
     "chain": {"seq": 5, "prev_hash": "sha256:…", "hash": "sha256:…", "hash_ok": true, "problem": null,
               "head_seq": 9},           # hash_ok: the record's hash recomputed matches
     "signature": {"status": "trusted" | "untrusted" | "unsigned" | "invalid", "key_id": "…" | null,
                   "problem": "…" | null}}

  Unknown id: 404. FINDING is a finding of the input as `gate scan` prints it (id, scanner, kind,
  rule, severity, title, message, package?, location?, ...) without ``raw``, secrets redacted.

``GET /api/v1/events`` — :func:`events`, the filters of ``gate decisions events``
(``decision kind outcome env digest waived since until``), ``limit``, ``before``::

    {"events": [EVENT, ...], "query": {...}, "limit": 50, "next": URL | null, "next_query": "…" | null}

``GET /api/v1/stats`` — :func:`stats`, the decision filters plus ``top`` (default 10); without
``since`` the last 4 weeks (``query.since`` says so: ``"4w"``; every matching record is read, about
0.1-0.3 ms each: give ``since`` for longer trends on a large log)::

    {...`gate decisions stats --format json`...,       # now since until total outcomes environments
                                                        # blocking_rules blocking_findings waivers vex
                                                        # waivers_expiring period periods
     "weekly": [{"environment": "prod", "start": "2026-11-30", "allow": 3, "deny": 1, "error": 0, "total": 4}, ...],
     "query": {"since": "4w", ...}}

``GET /api/v1/waivers`` — :func:`waivers` (``since``: which decisions count as using a waiver, default 90d)::

    {"now": "…", "since": "90d",
     "in_use": [USE, ...],               # every waiver applied in the window, most applied first
     "expiring": [USE, ...],             # of those, the ones expiring within 14 days, soonest first
     "expired_referenced": [USE, ...]}   # of those, the ones expired, yet still applied by decisions in the window
    # USE: a `gate decisions stats` waiver ({id rule applied first_applied last_applied expires status})
    #      plus "allows": how many allow decisions applied it

``GET /api/v1/integrity`` — :func:`integrity` (``POST /api/v1/integrity/verify`` starts verify,
answering 202 with this payload; only one runs at a time)::

    {"state": "never" | "running" | "done" | "failed",
     "started_at": "…" | null, "finished_at": "…" | null, "seconds": 12.5 | null,
     "verify": {...`gate decisions verify --format json` of that run: ok count first_bad problem head_hash
                head head_seq anchors since_head...} | null,
     "error": "one line" | null,       # failed: verify itself could not run (store unavailable)
     "head": "sha256:…" | null,        # the log's chain head now
     "head_seq": 9,                    # its last issued seq now
     "trusted_keys": "1 trusted key(s) from GATE_TRUSTED_KEYS: …"}

Errors: ``{"code": "bad_request" | "not_found" | "unauthorized" | "method_not_allowed" |
"store_unavailable" | "internal_error", "message": "one line"}`` with 400, 404, 401, 405, 503, 500.
Nothing here writes: the store is opened read-only, and no function calls a writing method.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from gate import rfc3339
from gate.decisions.interface import DecisionStore, UndecodableRecord
from gate.redact import redact_value
from gate.ui import queries
from gate.ui.queries import BadRequest

__all__ = [
    "BadRequest", "Integrity", "NotFound", "decision", "decisions", "download", "events", "stats", "waivers",
]

API = "/api/v1"
#: findings listed on a decision page at most (the rest: narrow with ``q``)
MAX_FINDINGS = 500
#: the trends' default window, and how long a stats answer is reused
STATS_WINDOW = "4w"
WAIVERS_WINDOW = "90d"


class NotFound(BadRequest):
    """No such decision (HTTP 404)."""


def _plain(value: Any) -> Any:
    """``value`` as JSON's own types (lists, not tuples): what a client of the API decodes."""
    return msgspec.json.decode(msgspec.json.encode(value))


def _entry(decision: Any) -> dict[str, Any]:
    from gate.output.decisions_json import entry

    record: dict[str, Any] = _plain(entry(decision))
    if record.get("context"):
        record["context"] = redact_value(record["context"])
    return record


def decisions(store: DecisionStore, params: Mapping[str, list[str]]) -> dict[str, Any]:
    """``/api/v1/decisions``: one page of the filtered decisions (see the module docstring)."""
    request = queries.decision_request(params)
    left_out: list[UndecodableRecord] = []
    query = queries.bounded(store, queries.page_query(request))
    found = [] if query is None else list(queries.iterate(store.query(query, on_undecodable=left_out.append)))
    shown = found[: request.limit]
    first = store.seq_of_decision(shown[0].decision_id) if shown else None
    last = store.seq_of_decision(shown[-1].decision_id) if shown else None
    nxt, nxt_query = (None, None)
    if len(found) > request.limit and last is not None:
        nxt, nxt_query = queries.next_link(f"{API}/decisions", request, last)
    from urllib.parse import urlencode

    filters = urlencode({**request.filters, **({"sort": request.sort} if request.sort != "newest" else {})})
    suffix = f"?{filters}" if filters else ""
    return {
        "decisions": [_entry(d) for d in shown],
        "query": dict(request.filters),
        "sort": request.sort,
        "sorts": list(queries.SORTS),
        "limit": request.limit,
        "first_seq": first,
        "last_seq": last,
        "next": nxt,
        "next_query": nxt_query,
        "downloads": {"csv": f"{API}/decisions.csv{suffix}", "json": f"{API}/decisions.json{suffix}"},
        "left_out": [e.describe() for e in left_out],
    }


def download(store: DecisionStore, params: Mapping[str, list[str]], form: str) -> Iterator[bytes]:
    """``/api/v1/decisions.csv`` / ``.json``: the whole filtered set as ``gate decisions list`` writes
    it, streamed. A record that cannot be decoded ends the stream with UndecodableRecord (the server
    then breaks the transfer, so a download is never silently short)."""
    request = queries.decision_request(params, paged=False)
    query = queries.bounded(store, request.query)
    rows = queries.iterate(store.query(query) if query is not None else iter(()))
    if form == "csv":
        from gate.output import decisions_csv

        return (line.encode() for line in decisions_csv.render_list(rows))
    from gate.output import decisions_json

    return decisions_json.render_list(rows)


def _triage(decision: Any) -> dict[str, tuple[str, list[str], list[str]]]:
    """finding id → (status, rules, waivers) from the record's violations, warnings and waivers."""
    triage: dict[str, tuple[str, list[str], list[str]]] = {}

    def mark(fid: str, status: str, rule: str | None = None, waiver: str | None = None) -> None:
        current = triage.get(fid, ("none", [], []))
        # waived outranks warned: the warning a waived finding carries is about its waiver (waivers.expiring)
        order = ("none", "warned", "waived", "denied")
        best = status if order.index(status) > order.index(current[0]) else current[0]
        rules = current[1] + ([rule] if rule and rule not in current[1] else [])
        waivers = current[2] + ([waiver] if waiver and waiver not in current[2] else [])
        triage[fid] = (best, rules, waivers)

    for v in decision.violations:
        for fid in v.finding_ids:
            mark(fid, "denied", rule=v.rule)
    for w in decision.warnings:
        for fid in w.finding_ids:
            mark(fid, "warned", rule=w.rule)
    for waiver in decision.waivers:
        for fid in waiver.finding_ids:
            mark(fid, "waived", waiver=waiver.id)
    return triage


_FINDINGS_CACHE: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
_FINDINGS_LOCK = threading.Lock()
#: findings documents kept redacted (content-addressed: a rebuild's decisions share one)
FINDINGS_CACHED = 32


def _findings(record: Any) -> list[dict[str, Any]]:
    """The input's findings without ``raw`` (the tool's own object: `gate decisions show ID --format json`
    has it), every string redacted; kept per findings document, which never changes."""
    digest = (record.input_parts or {}).get("findings")
    if digest is not None:
        with _FINDINGS_LOCK:
            cached = _FINDINGS_CACHE.get(digest)
            if cached is not None:
                _FINDINGS_CACHE.move_to_end(digest)
                return cached
    listed: list[dict[str, Any]] = redact_value(
        [{k: v for k, v in f.items() if k != "raw"} for f in record.input.get("findings") or () if isinstance(f, dict)]
    )
    if digest is not None:
        with _FINDINGS_LOCK:
            _FINDINGS_CACHE[digest] = listed
            while len(_FINDINGS_CACHE) > FINDINGS_CACHED:
                _FINDINGS_CACHE.popitem(last=False)
    return listed


_SEARCHED = ("id", "rule", "title", "severity", "kind", "scanner", "message")


def _matches(finding: dict[str, Any], needle: str) -> bool:
    texts = [str(finding.get(k) or "") for k in _SEARCHED]
    package, where = finding.get("package"), finding.get("location")
    if isinstance(package, dict):
        texts += [str(package.get("name") or ""), str(package.get("version") or ""), str(package.get("purl") or "")]
    if isinstance(where, dict):
        texts.append(str(where.get("path") or ""))
    return any(needle in t.lower() for t in texts)


def decision(store: DecisionStore, decision_id: str, params: Mapping[str, list[str]], trusted: dict[str, Any]) -> dict[str, Any]:
    """``/api/v1/decisions/{id}``: the record, its findings (searched with ``q``), events, chain position
    and signature status."""
    from gate.decisions.events import EventQuery
    from gate.decisions.signing import verify_signature
    from gate.decisions.verify import hash_problem

    values = queries.single(params, ("q",))
    needle = values.get("q", "").lower()
    record = store.get(decision_id)
    if record is None:
        raise NotFound(f"no decision {decision_id!r} in the decision log")
    triage = _triage(record)
    findings = _findings(record)
    matched = [f for f in findings if _matches(f, needle)] if needle else findings
    listed = []
    for finding in matched[:MAX_FINDINGS]:
        status, rules, applied = triage.get(str(finding.get("id")), ("none", [], []))
        listed.append({**finding, "triage": {"status": status, "rules": rules, "waivers": applied}})
    problem = hash_problem(record)
    signature_problem = verify_signature(record, trusted)
    if not record.signature or not record.signing_key:
        status = "unsigned"
    elif record.signing_key not in trusted:
        status = "untrusted"
    else:
        status = "trusted" if signature_problem is None else "invalid"
    event_list = list(store.events(EventQuery(decision_id=decision_id, oldest_first=True)))
    return {
        "decision": _entry(record),
        "findings": listed,
        "findings_total": len(findings),
        "findings_matched": len(matched),
        "findings_query": values.get("q", ""),
        "events": [_plain(e) for e in event_list],
        "chain": {
            "seq": store.seq_of_decision(decision_id),
            "prev_hash": record.prev_hash,
            "hash": record.hash,
            "hash_ok": problem is None,
            "problem": problem,
            "head_seq": store.last_seq(),
        },
        "signature": {"status": status, "key_id": record.signing_key, "problem": signature_problem},
    }


def events(store: DecisionStore, params: Mapping[str, list[str]]) -> dict[str, Any]:
    """``/api/v1/events``: one page of events, newest first."""
    from dataclasses import replace

    request = queries.event_request(params)
    query = replace(request.query, limit=request.limit + 1,
                    through_seq=request.cursor - 1 if request.cursor is not None else None)
    found = list(queries.iterate(store.events(query)))
    shown = found[: request.limit]
    nxt, nxt_query = (None, None)
    if len(found) > request.limit:
        last = store.seq_of_event(shown[-1].event_id)
        if last is not None:
            nxt, nxt_query = queries.next_link(f"{API}/events", request, last)
    return {
        "events": [_plain(e) for e in shown],
        "query": dict(request.filters),
        "limit": request.limit,
        "next": nxt,
        "next_query": nxt_query,
    }


def _monday(day: str) -> str:
    return rfc3339.week_start(rfc3339.parse_date(day)).isoformat()


#: aggregates (stats, waivers) read every matching record: one answer is reused this long (seconds)
AGGREGATE_TTL = 60.0
_AGGREGATES: OrderedDict[tuple[Any, ...], tuple[float, dict[str, Any]]] = OrderedDict()
_AGGREGATES_LOCK = threading.Lock()


def _aggregate(name: str, store: DecisionStore, params: Mapping[str, list[str]], compute: Any) -> dict[str, Any]:
    """``compute(store, params)``, or its answer to the same question on the same log within AGGREGATE_TTL."""
    key = (name, store.location, store.last_seq(), tuple(sorted((k, tuple(v)) for k, v in params.items())))
    now = time.monotonic()
    with _AGGREGATES_LOCK:
        hit = _AGGREGATES.get(key)
        if hit is not None and now - hit[0] < AGGREGATE_TTL:
            return hit[1]
    document: dict[str, Any] = compute(store, params)
    with _AGGREGATES_LOCK:
        _AGGREGATES[key] = (now, document)
        while len(_AGGREGATES) > 16:
            _AGGREGATES.popitem(last=False)
    return document


class _Named:
    """What stats.compute reads of a decision's input — the findings its deny reasons name (for the
    CVEs that blocked most) — added to a record read in stored form, from each findings document's
    (id → finding) table, built once per document (content-addressed: a rebuild's decisions share
    one). The same counts as computing over full records, without decoding every input."""

    def __init__(self, store: DecisionStore) -> None:
        self._store = store
        self._tables: OrderedDict[str, dict[str, tuple[int, dict[str, Any]]]] = OrderedDict()
        #: (document digest, finding ids named) -> those findings in document order (one list, shared)
        self._chosen: OrderedDict[tuple[str, frozenset[str]], list[dict[str, Any]]] = OrderedDict()

    def slim(self, decision: Any) -> Any:
        named = {i for v in decision.violations for i in v.finding_ids}
        if not named:
            return decision
        digest = (decision.input_parts or {}).get("findings")
        table = self._tables.get(digest) if digest is not None else None
        if table is None:
            full = self._store.get(decision.decision_id)
            findings = (full.input.get("findings") if full is not None else None) or ()
            table = {
                str(f.get("id")): (n, {"id": f.get("id"), "rule": f.get("rule"), "kind": f.get("kind")})
                for n, f in enumerate(findings) if isinstance(f, dict)
            }
            if digest is not None:
                self._tables[digest] = table
                while len(self._tables) > 256:
                    self._tables.popitem(last=False)
        key = (str(digest), frozenset(named)) if digest is not None else None
        chosen = self._chosen.get(key) if key is not None else None
        if chosen is None:
            chosen = [f for _, f in sorted((table[i] for i in named if i in table), key=lambda pair: pair[0])]
            if key is not None:
                self._chosen[key] = chosen
                while len(self._chosen) > 4096:
                    self._chosen.popitem(last=False)
        return msgspec.structs.replace(decision, input={**decision.input, "findings": chosen})


def stats(store: DecisionStore, params: Mapping[str, list[str]]) -> dict[str, Any]:
    """``/api/v1/stats``: `gate decisions stats --format json` over the filtered decisions (the last
    4 weeks unless ``since`` is given), plus outcomes per environment per week. The same question on
    the same log (no record added) within a minute is answered from the last answer."""
    return _aggregate("stats", store, params, _stats)


def _stats(store: DecisionStore, params: Mapping[str, list[str]]) -> dict[str, Any]:
    from collections import Counter

    from gate.decisions.stats import OUTCOMES, compute, compute_from_store

    given = {name: list(v) for name, v in params.items()}
    top_values = given.pop("top", None)
    top = queries.number("top", top_values[-1] if top_values else None, 0, 100)
    if not any(v and v[0].strip() for v in given.get("since", [])):
        given["since"] = [STATS_WINDOW]
    request = queries.decision_request(given, paged=False)
    query = request.query  # stored form: the findings the deny reasons name are added by _Named
    left_out: list[UndecodableRecord] = []
    walked = queries.bounded(store, query)
    now, top = datetime.now(UTC), 10 if top is None else top
    if walked is None:
        result = compute(iter(()), now, query.since, query.until, top=top)
    else:
        result = compute_from_store(store, walked, now, top, on_undecodable=left_out.append, prepare=_Named(store).slim)
    weekly: dict[tuple[str, str], Counter[str]] = {}
    for (env, day), counts in result.env_days.items():
        weekly.setdefault((env, _monday(day)), Counter()).update(counts)
    document = result.as_dict()
    document["weekly"] = [
        {"environment": env, "start": start, **{o: counts.get(o, 0) for o in OUTCOMES}, "total": sum(counts.values())}
        for (env, start), counts in sorted(weekly.items())
    ]
    document["query"] = dict(request.filters)
    document["left_out"] = [e.describe() for e in left_out]
    return document


def waivers(store: DecisionStore, params: Mapping[str, list[str]]) -> dict[str, Any]:
    """``/api/v1/waivers``: the waivers decisions applied in a window (default 90 days): in use,
    expiring within 14 days, expired yet still applied (reused as ``stats``)."""
    return _aggregate("waivers", store, params, _waivers)


def _waivers(store: DecisionStore, params: Mapping[str, list[str]]) -> dict[str, Any]:
    from collections import Counter

    from gate.decisions.interface import DecisionQuery
    from gate.decisions.stats import compute

    values = queries.single(params, ("since",))
    now = datetime.now(UTC)
    window = values.get("since", WAIVERS_WINDOW)
    since, _ = queries.time_bounds({"since": window}, now)
    allows: Counter[str] = Counter()

    def tallied(rows: Iterator[Any]) -> Iterator[Any]:
        for d in rows:
            if d.outcome.value == "allow":
                allows.update({w.id for w in d.waivers})
            yield d

    walked = queries.bounded(store, DecisionQuery(waived=True, since=since, with_input=False))
    rows = queries.iterate(store.query(walked) if walked is not None else iter(()))
    uses = compute(tallied(rows), now, since).waivers.values()

    def use(w: Any) -> dict[str, Any]:
        return {**w.as_dict(), "allows": allows.get(w.id, 0)}

    return {
        "now": rfc3339.format(now, microseconds=False),
        "since": window,
        "in_use": [use(w) for w in sorted(uses, key=lambda w: (-w.applied, w.id))],
        "expiring": [use(w) for w in sorted(uses, key=lambda w: (w.expires, w.id)) if w.status == "expiring"],
        "expired_referenced": [use(w) for w in sorted(uses, key=lambda w: (w.expires, w.id)) if w.status == "expired"],
    }


class Integrity:
    """The last verify of the log and its time; ``start`` runs one in a thread (one at a time)."""

    def __init__(self, open_store: Any, trust: Any) -> None:
        """``open_store()``: a new read-only store for the verify run; ``trust``: signing.TrustedKeys."""
        self._open_store = open_store
        self._trust = trust
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {
            "state": "never", "started_at": None, "finished_at": None, "seconds": None, "verify": None, "error": None,
        }
        self._thread: threading.Thread | None = None

    def status(self, store: DecisionStore) -> dict[str, Any]:
        """``/api/v1/integrity``: the last run, and the chain head now."""
        with self._lock:
            state = dict(self._state)
        return {**state, "head": store.head(), "head_seq": store.last_seq(), "trusted_keys": self._trust.source}

    def start(self) -> bool:
        """Start a verify unless one is running; True when one was started."""
        with self._lock:
            if self._state["state"] == "running":
                return False
            self._state = {
                "state": "running", "started_at": rfc3339.format(datetime.now(UTC), microseconds=False),
                "finished_at": None, "seconds": None, "verify": self._state["verify"], "error": None,
            }
            self._thread = threading.Thread(target=self._run, name="gate-ui-verify", daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running verify (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        from gate.decisions.checkpoints import assess
        from gate.decisions.verify import verify_events, verify_log
        from gate.errors import GateError

        began = time.monotonic()
        result: dict[str, Any] = {}
        try:
            store = self._open_store()
            try:
                checkpoints = assess(store.checkpoints(), self._trust.keys)
                # one process: forking a threaded server is not safe; signatures still use worker threads
                report = verify_log(store, self._trust.keys, checkpoints=checkpoints, processes=1)
                verified = verify_events(store, self._trust.keys)
                import dataclasses

                result = {"state": "done", "verify": {**report.as_dict(), "events": dataclasses.asdict(verified)}}
            finally:
                store.close()
        except GateError as e:
            from gate.redact import redact

            result = {"state": "failed", "error": redact(str(e).splitlines()[0]) if str(e) else type(e).__name__}
        except Exception as e:  # a bug must not leave "running" for ever
            result = {"state": "failed", "error": f"verify failed: {type(e).__name__}"}
        with self._lock:
            self._state.update(result)
            self._state["finished_at"] = rfc3339.format(datetime.now(UTC), microseconds=False)
            self._state["seconds"] = round(time.monotonic() - began, 3)
