"""What the SQL stores share: the columns, the chaining of a record, the query SQL, and reading.

SQLite and PostgreSQL run the same SQL (only the placeholder and the string-aggregate functions
differ), so both answer every query with the same records; each store adds how it connects,
migrates, appends under its write lock and streams rows.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from gate.decisions.checkpoints import StoredCheckpoint
from gate.decisions.documents import DocumentCache, DocumentError, inflate, split, with_results
from gate.decisions.events import Event, EventQuery
from gate.decisions.index import VEX_PREFIX
from gate.decisions.interface import ChainEntry, DecisionQuery, UndecodableRecord
from gate.decisions.quickhash import quick_decode
from gate.decisions.record import Decision, canonical_json, record_hash

if TYPE_CHECKING:
    from gate.decisions.signing import Signer

_Record = TypeVar("_Record", Decision, Event)

#: the columns of ``decisions`` an append writes (``seq`` is assigned by the store), ``record`` last
COLUMNS = (
    "decision_id", "timestamp", "outcome", "environment", "image", "digest",
    "policy_digest", "policy_revision", "prev_hash", "hash", "record",
)
#: the columns queries search on, each derived from the record (verify checks they still agree)
SEARCH_COLUMNS = COLUMNS[:-1]
#: ``--triaged-by sha256:<12 to 64 hex>``: a VEX document digest, or a prefix of it
TRIAGE_DOCUMENT_PREFIX = re.compile(r"^sha256:[0-9a-f]{12,64}$")
#: the columns of ``checkpoints``: gate.decisions.checkpoints.StoredCheckpoint's fields
CHECKPOINT_COLUMNS = ("seq", "hash", "count", "timestamp", "signing_key", "signature", "keys", "record")
#: the columns of ``events`` an append writes, ``record`` last; ``event_decisions`` indexes decision_ids
EVENT_COLUMNS = ("event_id", "timestamp", "type", "outcome", "environment", "digest", "prev_hash", "hash", "record")


def event_values(event: Event) -> tuple[Any, ...]:
    """The values of EVENT_COLUMNS but ``record`` for a chained event."""
    digest = (event.artifact or {}).get("digest")
    return (event.event_id, event.timestamp, event.type, event.outcome, event.environment, digest, event.prev_hash, event.hash)


def chain_record(decision: Decision, prev_hash: str | None, signer: Signer | None) -> Decision:
    """``decision`` linked after the record whose hash is ``prev_hash``: hashed, and signed when a signer is given.

    Both stores call this inside their append transaction, after reading the chain head under the write
    lock, with the stored form of ``documents.split``; a fresh decision (no ``input_parts``) is made a v2
    record first, so every new record is one (its hash is the same in either form).
    """
    if decision.input_parts is None:
        decision = split(decision).stored
    chained = msgspec.structs.replace(decision, prev_hash=prev_hash, signing_key=signer.key_id if signer else None)
    digest = record_hash(chained)
    return msgspec.structs.replace(chained, hash=digest, signature=signer.sign(digest) if signer else None)


def record_json(chained: Decision) -> bytes:
    """The ``record`` column of a chained decision: its canonical JSON (sorted keys, compact), so the
    bytes of its bulk (violations, warnings) are already what its hash is taken over and verify hashes
    the record without decoding them (gate.decisions.quickhash)."""
    return canonical_json(chained)


def column_values(chained: Decision) -> tuple[Any, ...]:
    """The values of COLUMNS but ``record`` for a chained decision."""
    artifact = chained.artifact or {}
    return (
        chained.decision_id,
        chained.timestamp,
        chained.outcome.value,
        chained.environment,
        artifact.get("image"),
        artifact.get("digest"),
        chained.policy.digest,
        chained.policy.revision,
        chained.prev_hash,
        chained.hash,
    )


def where_clause(query: DecisionQuery, placeholder: str = "?", walk_findings: bool = False) -> tuple[str, list[Any]]:
    """SQL conditions and parameters for ``query``; ``walk_findings``: see finding_condition."""
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("digest", query.digest),
        ("image", query.image),
        ("environment", query.environment),
        ("outcome", query.outcome),
        ("policy_digest", query.policy_digest),
    ):
        if value is not None:
            conditions.append(f"d.{column} = {placeholder}")
            params.append(value)
    bounds: tuple[tuple[str, str | int | None], ...] = (  # since inclusive, until exclusive
        ("d.timestamp >=", query.since),
        ("d.timestamp <", query.until),
        ("d.seq >", query.after_seq),
        ("d.seq <=", query.through_seq),
    )
    for bound, limit in bounds:
        if limit is not None:
            conditions.append(f"{bound} {placeholder}")
            params.append(limit)
    if query.rule is not None:
        conditions.append(f"r.rule = {placeholder}")  # joined in from_clause
        params.append(query.rule.lower())  # rules are indexed lowercased: CVE ids match in any case
    if query.waiver is not None and query.waiver_expired_before is not None:
        # the same waiver: applied here, and expired since (expires is indexed in the stored UTC format)
        conditions.append(
            f"d.seq in (select seq from decision_waivers where waiver_id = {placeholder} and expires < {placeholder}"
            " and expires <> '')"
        )
        params += [query.waiver, query.waiver_expired_before]
    elif query.waiver is not None:
        conditions.append(f"d.seq in (select seq from decision_waivers where waiver_id = {placeholder})")
        params.append(query.waiver)
    elif query.waiver_expired_before is not None:
        conditions.append(f"d.seq in (select seq from decision_waivers where expires < {placeholder} and expires <> '')")
        params.append(query.waiver_expired_before)
    elif query.waived:
        # waivers only: a VEX statement's rows (gate.decisions.index.VEX_PREFIX) have no expiry
        conditions.append("d.seq in (select seq from decision_waivers where expires <> '')")
    if query.triaged_by is not None:
        # a waiver id; a VEX statement id; a VEX document digest, or its prefix of 12 or more hex digits
        exact = [query.triaged_by, VEX_PREFIX + query.triaged_by]
        prefix = query.triaged_by.lower() if TRIAGE_DOCUMENT_PREFIX.fullmatch(query.triaged_by.lower()) else None
        matches = f"waiver_id in ({placeholder}, {placeholder})" + (f" or waiver_id like {placeholder}" if prefix else "")
        conditions.append(f"d.seq in (select seq from decision_waivers where {matches})")
        params += exact + ([f"{VEX_PREFIX}{prefix}%"] if prefix else [])
    if query.indexed:
        conditions.append(
            "(exists (select 1 from decision_rules ir where ir.seq = d.seq)"
            " or exists (select 1 from decision_waivers iw where iw.seq = d.seq))"
        )
    if query.finding is not None:
        # the only filter (and a limit): the newest (or oldest) ``limit`` matches are picked from the
        # indexes alone, and only those records are read
        alone = not conditions and query.limit is not None  # (a --rule is a condition too)
        top = ("asc" if query.oldest_first else "desc", int(query.limit or 0)) if alone else None
        conditions.append(finding_condition(placeholder, walk_findings, top))
        params.append(query.finding.lower())
    return (" where " + " and ".join(conditions)) if conditions else "", params


def finding_condition(placeholder: str, walk: bool, top: tuple[str, int] | None = None) -> str:
    """Records whose input holds a finding with this rule or id (document_findings is lowercased).

    Two plans, the store picks by how common the finding is (``SqlStore._walk_findings``): a rare
    finding collects its few records from the (finding, digest) and (digest, seq) indexes
    (``walk`` False); a common one — in most documents — is probed record by record, walking
    the log in seq order until the limit is reached, instead of collecting most of the log first.
    ``top`` (order, limit): collect only the first ``limit`` seqs in that order."""
    if walk:
        # A scalar subquery, not exists(): PostgreSQL turns exists() into a semi-join and may hash all
        # the finding's documents first; this one it runs per record, as SQLite does. Cross join:
        # SQLite keeps this order (the record's documents, then the (finding, digest) probe).
        return (
            "(select 1 from decision_documents dd cross join document_findings f"
            f" where dd.seq = d.seq and f.digest = dd.digest and f.finding = {placeholder} limit 1) is not null"
        )
    collect = f"from document_findings f join decision_documents dd on dd.digest = f.digest where f.finding = {placeholder}"
    if top is not None:
        return f"d.seq in (select distinct dd.seq {collect} order by dd.seq {top[0]} limit {top[1]})"
    return f"d.seq in (select dd.seq {collect})"


def from_clause(query: DecisionQuery) -> str:
    """The tables for ``query``. A rule filter walks the (rule, seq) index in seq order and joins the
    records: ``seq in (subquery)`` would collect every match (most of a million records for a
    common rule) before the limit applies."""
    return " from decision_rules r join decisions d on d.seq = r.seq" if query.rule is not None else " from decisions d"


def order_clause(query: DecisionQuery) -> str:
    """``order by`` and ``limit`` for ``query``: newest first, or append order."""
    key = "r.seq" if query.rule is not None else "d.seq"  # the same value; r.seq lets the rule index order
    limit = f" limit {int(query.limit)}" if query.limit is not None else ""
    return f" order by {key} {'asc' if query.oldest_first else 'desc'}{limit}"


class SqlStore(ABC):
    """Reading a decision log through SQL: get, query and chain, identical for every SQL store."""

    #: where the log is, for messages (never with credentials)
    location: str
    #: the driver's parameter placeholder
    placeholder = "?"
    #: the database's string-aggregate and code-to-character functions, for chain()
    aggregate, char = "group_concat", "char"
    #: how many of the records where a ``--finding`` walk would start are probed to choose its plan
    finding_sample = 256

    @abstractmethod
    def _one(self, sql: str, params: Any) -> Any:
        """The first row of ``sql``, or None; a database error is a StoreError."""

    @abstractmethod
    def _rows(self, sql: str, params: Any) -> Iterator[Any]:
        """The rows of ``sql``, streamed; a database error is a StoreError."""

    @abstractmethod
    def _write(self, sql: str, params: Any) -> None:
        """Run one writing statement in its own transaction; a database error is a StoreError."""

    def seq_of_hash(self, record_hash: str) -> int | None:
        """The seq of the newest record whose hash column is ``record_hash``, or None. Scans back from
        the newest record (hash has no index): cheap for the recent heads ``verify --since-head`` gets."""
        row = self._one(f"select seq from decisions where hash = {self.placeholder} order by seq desc limit 1", (record_hash,))
        return int(row[0]) if row else None

    def seq_of_decision(self, decision_id: str) -> int | None:
        """The seq (chain position) of the record with this id, or None (a page cursor, the chain position shown)."""
        row = self._one(f"select seq from decisions where decision_id = {self.placeholder}", (decision_id,))
        return int(row[0]) if row else None

    def seq_range(self, since: str | None, until: str | None) -> tuple[int, int] | None:
        """(lowest, highest) seq of the records with ``since <= timestamp < until`` (either bound may be
        None), or None when there are none: read from the timestamp index alone, in time proportional to
        the records in the range. A query bounded in time can then be bounded in seq exactly, so that it
        walks the log in seq order (newest first, a page at a time) over that range only."""
        p = self.placeholder
        conditions, params = [], []
        if since is not None:
            conditions.append(f"timestamp >= {p}")
            params.append(since)
        if until is not None:
            conditions.append(f"timestamp < {p}")
            params.append(until)
        where = (" where " + " and ".join(conditions)) if conditions else ""
        row = self._one(f"select min(seq), max(seq) from decisions{where}", params)
        return (int(row[0]), int(row[1])) if row and row[0] is not None else None

    def seq_of_event(self, event_id: str) -> int | None:
        """The seq of the event with this id, or None."""
        row = self._one(f"select seq from events where event_id = {self.placeholder}", (event_id,))
        return int(row[0]) if row else None

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every stored verify checkpoint (gate.decisions.checkpoints), newest first."""
        rows = self._rows(f"select {', '.join(CHECKPOINT_COLUMNS)} from checkpoints order by seq desc", ())
        return [StoredCheckpoint(int(r[0]), str(r[1]), int(r[2]), *map(str, r[3:])) for r in rows]

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Store a signed verify checkpoint."""
        marks = ", ".join([self.placeholder] * len(CHECKPOINT_COLUMNS))
        self._write(
            f"insert into checkpoints ({', '.join(CHECKPOINT_COLUMNS)}) values ({marks})",
            tuple(getattr(checkpoint, c) for c in CHECKPOINT_COLUMNS),
        )

    def get(self, decision_id: str) -> Decision | None:
        """The record with this id in full form, or None; one that cannot be decoded (or whose documents
        cannot be read) is an UndecodableRecord."""
        row = self._one(f"select seq, record from decisions where decision_id = {self.placeholder}", (decision_id,))
        return self._inflate(row[0], self._decode(Decision, row[0], decision_id, row[1])) if row else None

    def query(
        self, query: DecisionQuery, on_undecodable: Callable[[UndecodableRecord], None] | None = None
    ) -> Iterator[Decision]:
        """Records matching ``query``, newest first (append order with ``oldest_first``); an undecodable
        one raises UndecodableRecord, or is handed to ``on_undecodable`` and skipped."""
        where, params = where_clause(query, self.placeholder, walk_findings=self._walk_findings(query))
        sql = f"select d.seq, d.decision_id, d.record{from_clause(query)}{where}{order_clause(query)}"
        for seq, decision_id, record in self._rows(sql, params):
            try:
                decision = self._decode(Decision, seq, decision_id, record)
                yield self._inflate(seq, decision, with_input=query.with_input)
            except UndecodableRecord as e:
                if on_undecodable is None:
                    raise
                on_undecodable(e)

    def outcome_counts(self, query: DecisionQuery) -> list[tuple[str, str, str, int, str, str]]:
        """Records matching ``query`` counted from the columns alone, nothing decoded: (environment, day
        (the timestamp's first 10 characters), outcome, count, first timestamp, last timestamp) per group."""
        where, params = where_clause(replace(query, limit=None), self.placeholder)
        sql = (
            "select d.environment, substr(d.timestamp, 1, 10), d.outcome, count(*), min(d.timestamp), max(d.timestamp)"
            f"{from_clause(query)}{where} group by d.environment, substr(d.timestamp, 1, 10), d.outcome"
        )
        return [(str(e), str(day), str(o), int(n), str(lo), str(hi)) for e, day, o, n, lo, hi in self._rows(sql, params)]

    def _walk_findings(self, query: DecisionQuery) -> bool:
        """Whether ``--finding`` walks the log record by record (see finding_condition) rather than
        collecting every record that holds the finding: only with a limit, and only for a common
        finding. How common is measured where the walk starts: the newest (oldest, in append order)
        ``finding_sample`` records are probed. A walk then costs about limit × sample / hits probes, a
        collection one lookup per record holding it (about records × hits / sample, each about five
        times cheaper than a probe): with limit 50 on a million records the walk wins from 5 hits."""
        if query.finding is None or query.limit is None:
            return False
        # two subqueries: SQLite answers a lone min() or max() from the index, both at once by a scan
        row = self._one("select (select min(seq) from decisions), (select max(seq) from decisions)", ())
        if not row or row[0] is None:
            return False
        first, last = int(row[0]), int(row[1])
        if last - first + 1 <= self.finding_sample:
            return False  # a log this small is collected at once
        window = f"d.seq <= {self.placeholder}" if query.oldest_first else f"d.seq > {self.placeholder}"
        bound = first + self.finding_sample - 1 if query.oldest_first else last - self.finding_sample
        probe = finding_condition(self.placeholder, walk=True)
        row = self._one(f"select count(*) from decisions d where {window} and {probe}", (bound, query.finding.lower()))
        hits = int(row[0]) if row else 0
        records = last - first + 1
        # walk: limit × sample / hits probes; collect: records × hits / sample lookups, a probe ≈ 5 lookups
        return hits > 0 and 5 * query.limit * self.finding_sample / hits < records * hits / self.finding_sample

    def chain(self, start: int = 1, end: int | None = None, quick: bool = False) -> Iterator[ChainEntry]:
        """Every record with ``start <= seq <= end`` (no end: to the last) in append order, in stored form,
        with the columns, index rows and document references stored beside it; the walk ends with
        UndecodableRecord at a record that cannot be decoded. Ranges: verify's worker processes each read their part.
        ``quick``: each record hashed as it is read without decoding its bulk (ChainEntry.hashed), where that
        confirms its hash; decoded fully otherwise."""
        p = self.placeholder
        where, params = (f"d.seq >= {p}", [start]) if end is None else (f"d.seq >= {p} and d.seq <= {p}", [start, end])
        for seq, *columns, record, rules, waivers, documents in self._rows(chain_sql(self.aggregate, self.char, where), params):
            hashed = quick_decode(record) if quick else None
            if hashed is not None:
                yield chain_entry(seq, columns, hashed[0], rules, waivers, documents, hashed[1])
                continue
            decision = self._decode(Decision, seq, columns[COLUMNS.index("decision_id")], record)
            yield chain_entry(seq, columns, decision, rules, waivers, documents)

    def documents(self, findings: bool = False, after: int = 0) -> Iterator[tuple[Any, ...]]:
        """Every stored document (``after``: only those records after seq ``after`` reference): (digest,
        size, compressed body), by digest; with ``findings``, a fourth item: its ``document_findings`` rows, sorted."""
        p = self.placeholder
        where, params = (f" where d.digest in (select digest from decision_documents where seq > {p})", (after,)) if after else ("", ())
        if not findings:
            for digest, size, body in self._rows(f"select d.digest, d.size, d.body from documents d{where} order by d.digest", params):
                yield str(digest), int(size), bytes(body)
            return
        sql = (  # one aggregation over document_findings (keyed by finding), joined by digest
            f"select d.digest, d.size, d.body, f.terms from documents d left join (select digest,"
            f" {self.aggregate}(finding, {self.char}(31)) as terms from document_findings group by digest) f"
            f" on f.digest = d.digest{where} order by d.digest"
        )
        for digest, size, body, terms in self._rows(sql, params):
            yield str(digest), int(size), bytes(body), tuple(sorted(terms.split("\x1f"))) if terms else ()

    def document_user(self, digest: str, after: int = 0) -> tuple[int, str] | None:
        """(seq, decision id) of the first record (after seq ``after``) that references document ``digest``, or None."""
        p = self.placeholder
        row = self._one(
            "select d.seq, d.decision_id from decisions d where d.seq ="
            f" (select min(seq) from decision_documents where digest = {p} and seq > {p})",
            (digest, after),
        )
        return (int(row[0]), str(row[1])) if row else None

    def missing_document(self, after: int = 0) -> tuple[int, str] | None:
        """(seq, digest) of the first record reference (``decision_documents``, after seq ``after``) with no
        stored document, or None."""
        row = self._one(
            f"select dd.seq, dd.digest from decision_documents dd where dd.seq > {self.placeholder} and not exists"
            " (select 1 from documents d where d.digest = dd.digest) order by dd.seq, dd.digest limit 1",
            (after,),
        )
        return (int(row[0]), str(row[1])) if row else None

    def _document_body(self, digest: str) -> bytes | None:
        row = self._one(f"select body from documents where digest = {self.placeholder}", (digest,))
        return bytes(row[0]) if row else None

    def _inflate(self, seq: Any, decision: Decision, with_input: bool = True) -> Decision:
        """``decision`` in full form (``with_input=False``: its violations and warnings only, no input
        document read); a document that is missing or does not decode is an UndecodableRecord naming
        the record and the document."""
        cache: DocumentCache | None = getattr(self, "_document_cache", None)
        if cache is None:
            cache = self._document_cache = DocumentCache()
        load = lambda digest: cache.get(digest, self._document_body)  # noqa: E731
        try:
            if not with_input:  # listings and stats: results documents kept decoded
                results: dict[str, Any] | None = getattr(self, "_results_cache", None)
                if results is None:
                    results = {}
                    self._results_cache = results
                return with_results(decision, load, results)
            return inflate(decision, load)
        except DocumentError as e:
            raise UndecodableRecord(
                self.location, int(seq), decision.decision_id, f"{e}: run gate decisions verify"
            ) from None

    def head(self) -> str | None:
        """The hash column of the newest record, or None for an empty log."""
        row = self._one("select hash from decisions order by seq desc limit 1", ())
        return str(row[0]) if row else None

    def known_decisions(self, decision_ids: Collection[str]) -> set[str]:
        """Those of ``decision_ids`` that are records of this log (looked up in batches)."""
        wanted = sorted(set(decision_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ", ".join([self.placeholder] * len(batch))
            found.update(r[0] for r in self._rows(f"select decision_id from decisions where decision_id in ({marks})", batch))
        return found

    def events(self, query: EventQuery) -> Iterator[Event]:
        """Events matching ``query``, newest first (append order with ``oldest_first``)."""
        p = self.placeholder
        conditions: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("e.type", query.type), ("e.environment", query.environment), ("e.digest", query.digest),
            ("e.outcome", query.outcome),
        ):
            if value is not None:
                conditions.append(f"{column} = {p}")
                params.append(value)
        if query.since is not None:
            conditions.append(f"e.timestamp >= {p}")
            params.append(query.since)
        if query.until is not None:
            conditions.append(f"e.timestamp < {p}")
            params.append(query.until)
        if query.through_seq is not None:
            conditions.append(f"e.seq <= {p}")
            params.append(query.through_seq)
        if query.decision_id is not None:
            conditions.append(f"e.seq in (select seq from event_decisions where decision_id = {p})")
            params.append(query.decision_id)
        if query.waived:
            # a decision the event names applied a waiver (probed per event, newest first, until the limit)
            conditions.append(
                "exists (select 1 from event_decisions ed join decisions wd on wd.decision_id = ed.decision_id"
                " where ed.seq = e.seq and exists (select 1 from decision_waivers w where w.seq = wd.seq and w.expires <> ''))"
            )
        where = (" where " + " and ".join(conditions)) if conditions else ""
        limit = f" limit {int(query.limit)}" if query.limit is not None else ""
        order = "asc" if query.oldest_first else "desc"
        sql = f"select e.seq, e.event_id, e.record from events e{where} order by e.seq {order}{limit}"
        for seq, event_id, record in self._rows(sql, params):
            yield self._decode(Event, seq, event_id, record)

    def event_chain(self) -> Iterator[tuple[int, Event, str]]:
        """Every event in append order with the hash column stored beside it (UndecodableRecord ends it)."""
        for seq, event_id, stored_hash, record in self._rows("select seq, event_id, hash, record from events order by seq", ()):
            yield int(seq), self._decode(Event, seq, event_id, record), stored_hash

    def _decode(self, kind: type[_Record], seq: Any, record_id: Any, record: Any) -> _Record:
        """``record`` (JSON text or bytes) as ``kind``; anything else is an UndecodableRecord naming the row."""
        try:
            return msgspec.json.decode(record, type=kind)
        except (msgspec.DecodeError, TypeError) as e:  # ValidationError is a DecodeError; TypeError: not text at all
            reason = str(e) if isinstance(e, msgspec.DecodeError) else f"the record column holds {type(record).__name__}, not JSON text"
            raise UndecodableRecord(
                self.location, int(seq), str(record_id) if record_id else None, reason,
                kind="decision" if kind is Decision else "event",
            ) from None


def chain_sql(aggregate: str, char: str, where: str = "true") -> str:
    """The chain() query: records in order with their index rows joined (``aggregate``: the string
    aggregate function, ``char``: the code-to-character function of the database; ``where``: which
    records, by ``d.seq``)."""
    return (
        f"select d.seq, {', '.join('d.' + c for c in COLUMNS)},"  # ends with d.record
        f" (select {aggregate}(rule, {char}(31)) from decision_rules r where r.seq = d.seq),"
        f" (select {aggregate}(waiver_id || {char}(30) || rule || {char}(30) || expires, {char}(31))"
        "  from decision_waivers w where w.seq = d.seq),"
        f" (select {aggregate}(digest, {char}(31)) from decision_documents dd where dd.seq = d.seq)"
        f" from decisions d where {where} order by d.seq"
    )


def chain_entry(
    seq: int, columns: list[Any], decision: Decision, rules: str | None, waivers: str | None, documents: str | None = None,
    hashed: str | None = None,
) -> ChainEntry:
    """A ChainEntry from a chain() row: aggregated index rows come joined by \x1f (fields by \x1e)."""
    return ChainEntry(
        seq=int(seq),
        decision=decision,
        stored_hash=columns[SEARCH_COLUMNS.index("hash")],
        columns=tuple(columns),
        rules=tuple(sorted(rules.split("\x1f"))) if rules else (),
        waivers=tuple(sorted(tuple(w.split("\x1e")) for w in waivers.split("\x1f"))) if waivers else (),  # type: ignore[misc]
        documents=tuple(sorted(documents.split("\x1f"))) if documents else (),
        hashed=hashed,
    )

