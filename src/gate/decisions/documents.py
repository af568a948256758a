"""Content-addressed documents of the decision log: each distinct input value or ``--data`` document
stored once, zstd-compressed, keyed by the sha256 of its canonical JSON.

A decision on a 20,000-finding report used to carry 18 MB of input in its record, again on every
re-evaluation of the same image. A record (format v2) now keeps its small, per-run input keys
(``now``, ``environment``, ``context``, ...) inline and names its large ones (``findings`` always,
any other key from DOCUMENT_MIN_BYTES) and its ``data`` by digest (``input_parts``, ``data_digest``);
the documents live in the ``documents`` table, so re-evaluating the same report stores one record and
no new document.

This module is the one home of: which keys become documents (``split``), how a body is compressed and
checked (``compress``, ``body_problem``), what ``--finding`` searches in a document
(``finding_terms``), and putting a stored record back together (``inflate``) through a bounded cache.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import zstandard

from gate.decisions.record import Decision, Violation, canonical_json

#: input keys always stored as documents (``findings`` is what ``decisions list --finding`` searches)
DOCUMENT_KEYS = frozenset({"findings"})
#: any other input key whose canonical JSON is at least this long is stored as a document too
DOCUMENT_MIN_BYTES = 1024
#: zstd levels: documents up to SMALL_DOCUMENT bytes get the stronger level (a juice-shop report's
#: 140 KB of findings: 16.3 KB at level 3, 14.9 KB at 9, in 8 ms); larger ones level 3, which keeps
#: a 20,000-finding report (15 MB) near 100 ms and under 2 MB
SMALL_DOCUMENT = 1 << 20
SMALL_LEVEL, LARGE_LEVEL = 9, 3
#: decompressed bytes the read cache keeps (documents are shared by many records: a listing or an
#: export of re-evaluations of one image reads its findings once)
CACHE_BYTES = 64 << 20


@dataclass(frozen=True)
class Document:
    """One document a record references: its digest, canonical JSON bytes, and what ``--finding`` finds in it."""

    digest: str
    canonical: bytes
    #: the findings list the document holds, if it is one: its ``--finding`` terms are taken from it only
    #: when the log does not hold the document yet (most appends re-use a stored findings document)
    findings: Any = None

    def terms(self) -> tuple[str, ...]:
        """The lowercased ``rule`` and ``id`` of every finding it holds (sorted; none for other documents)."""
        return finding_terms(self.findings) if self.findings is not None else ()


@dataclass(frozen=True)
class Split:
    """A fresh decision in both forms (format v2), and the documents its stored form references."""

    #: ``input`` and ``data`` complete, ``input_parts`` and ``data_digest`` set
    full: Decision
    #: ``input`` holds only the inline keys, ``data`` is None when ``data_digest`` is set
    stored: Decision
    documents: tuple[Document, ...]


def digest_of(canonical: bytes) -> str:
    """``sha256:<hex>`` of canonical JSON bytes (equals ``record.sha256_digest`` of the value)."""
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def finding_terms(findings: Any) -> tuple[str, ...]:
    """The lowercased ``rule`` and ``id`` of every finding in ``findings`` (a list of finding objects)."""
    terms: set[str] = set()
    if isinstance(findings, list):
        for finding in findings:
            if isinstance(finding, dict):
                for key in ("rule", "id"):
                    value = finding.get(key)
                    if isinstance(value, str) and value:
                        terms.add(value.lower())
    return tuple(sorted(terms))


def split(decision: Decision) -> Split:
    """``decision`` as a v2 record: large input values and ``data`` become documents.

    A decision already in v2 form (``input_parts`` set, input complete) is split the same way again.
    Each value is serialized once: the canonical bytes give the digest and, when new to the log, the body.
    """
    import msgspec.structs

    documents: list[Document] = []
    parts: dict[str, str] = {}
    inline: dict[str, Any] = {}
    for key, value in decision.input.items():
        canonical = canonical_json(value)
        if key not in DOCUMENT_KEYS and len(canonical) < DOCUMENT_MIN_BYTES:
            inline[key] = value
            continue
        digest = digest_of(canonical)
        parts[key] = digest
        documents.append(Document(digest, canonical, value if key == "findings" else None))
    data_digest = None
    if decision.data is not None:
        canonical = canonical_json(decision.data)
        data_digest = digest_of(canonical)
        documents.append(Document(data_digest, canonical))
    results = canonical_json(results_of(decision))
    results_digest = None
    if len(results) >= DOCUMENT_MIN_BYTES:  # a deny on a large report: megabytes, the same on every re-evaluation
        results_digest = digest_of(results)
        documents.append(Document(results_digest, results))
    full = msgspec.structs.replace(decision, input_parts=parts, data_digest=data_digest, results_digest=results_digest)
    stored = msgspec.structs.replace(
        full, input=inline, data=None if data_digest else decision.data,
        **({"violations": (), "warnings": ()} if results_digest else {}),
    )
    unique = {d.digest: d for d in documents}  # two keys may hold the same value
    return Split(full, stored, tuple(unique.values()))


def results_of(decision: Decision) -> dict[str, Any]:
    """The results document of ``decision`` (full form): its violations and warnings."""
    return {"violations": decision.violations, "warnings": decision.warnings}


def stored_form(decision: Decision) -> Decision:
    """The stored form of a v2 record in either form: only the inline input keys, ``data`` None when it
    is a document (a record from before v2 is returned as it is)."""
    import msgspec.structs

    parts = decision.input_parts
    if parts is None:
        return decision
    return msgspec.structs.replace(
        decision,
        input={k: v for k, v in decision.input.items() if k not in parts},
        data=None if decision.data_digest is not None else decision.data,
    )


def references(decision: Decision) -> tuple[str, ...]:
    """The digests of the documents ``decision`` (either form) is read from, sorted: its parts and data
    (v2), or its whole input under ``input_digest`` (a record from before v2, moved out by migration 4)."""
    if decision.input_parts is None:
        return (decision.input_digest,)
    refs = set(decision.input_parts.values())
    refs.update(d for d in (decision.data_digest, decision.results_digest) if d is not None)
    return tuple(sorted(refs))


def compress(canonical: bytes) -> bytes:
    """One zstd frame of ``canonical`` (its size is written in the frame header)."""
    level = SMALL_LEVEL if len(canonical) <= SMALL_DOCUMENT else LARGE_LEVEL
    return zstandard.ZstdCompressor(level=level).compress(canonical)


def decompress(body: bytes) -> bytes:
    """The canonical JSON bytes of a stored body; a body that is not one zstd frame raises zstandard.ZstdError."""
    return zstandard.ZstdDecompressor().decompress(bytes(body))


def body_problem(digest: str, size: int, body: bytes) -> str | None:
    """What is wrong with a stored document: it must decompress, to ``size`` bytes, that hash to ``digest``."""
    try:
        canonical = decompress(body)
    except zstandard.ZstdError as e:
        return f"document {digest} cannot be decompressed ({e}): edited"
    actual = digest_of(canonical)
    if actual != digest:
        return f"document {digest} edited: its contents hash to {actual}"
    if len(canonical) != size:
        return f"document {digest} size column edited: it says {size}, the document has {len(canonical)} bytes"
    return None


class _RuleAndId(msgspec.Struct):
    """A finding as ``stored_terms`` reads it: both keys required (any JSON value), every other key skipped."""

    rule: Any
    id: Any


def stored_terms(canonical: bytes) -> tuple[str, ...]:
    """The ``document_findings`` rows a stored document should have: its findings' rules and ids when it
    is a findings list (a ``findings`` part) or a whole input holding ``findings`` (before v2)."""
    try:  # a findings list: only each finding's rule and id are decoded (10x faster than the whole document)
        found = msgspec.json.decode(canonical, type=list[_RuleAndId])
        values = {v for f in found for v in (f.rule, f.id) if isinstance(v, str) and v}
        return tuple(sorted({v.lower() for v in values}))  # as finding_terms, each distinct value lowered once
    except msgspec.DecodeError:
        pass  # not a list of objects that all have both: decoded whole below
    try:
        value = msgspec.json.decode(canonical)
    except msgspec.DecodeError:
        return ()
    if isinstance(value, dict):
        return finding_terms(value.get("findings"))
    if isinstance(value, list) and all(isinstance(f, dict) and "rule" in f and "id" in f for f in value):
        return finding_terms(value)
    return ()


class DocumentError(Exception):
    """A document a record references is missing or does not decode (``digest``; ``reason`` says which)."""

    def __init__(self, digest: str, reason: str) -> None:
        self.digest, self.reason = digest, reason
        super().__init__(f"document {digest} {reason}")


class DocumentCache:
    """Decompressed documents by digest, least recently used dropped past CACHE_BYTES.

    Bytes are cached, not decoded values: every caller gets its own objects to change.
    """

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self._limit, self._used = limit, 0
        self._entries: OrderedDict[str, bytes] = OrderedDict()

    def get(self, digest: str, fetch: Callable[[str], bytes | None]) -> Any:
        """The decoded document ``digest``, read through ``fetch`` (its stored body, or None) when not cached."""
        canonical = self._entries.get(digest)
        if canonical is not None:
            self._entries.move_to_end(digest)
        else:
            body = fetch(digest)
            if body is None:
                raise DocumentError(digest, "is missing")
            try:
                canonical = decompress(body)
            except zstandard.ZstdError as e:
                raise DocumentError(digest, f"cannot be decompressed ({e})") from None
            # re-hashed on every read from the log (hashing costs far less than decoding): show, export,
            # replay and the trust checks never see an edited or swapped document as the record's input
            actual = digest_of(canonical)
            if actual != digest:
                raise DocumentError(digest, f"edited: its contents hash to {actual}")
            if len(canonical) <= self._limit:
                self._entries[digest] = canonical
                self._used += len(canonical)
                while self._used > self._limit:
                    _, dropped = self._entries.popitem(last=False)
                    self._used -= len(dropped)
        try:
            return msgspec.json.decode(canonical)
        except msgspec.DecodeError as e:
            raise DocumentError(digest, f"is not JSON ({e})") from None


def inflate(stored: Decision, load: Callable[[str], Any]) -> Decision:
    """The full form of a stored record: its input parts and data read through ``load`` (digest -> value).

    A record from before v2 gets its whole input (moved out under ``input_digest`` by migration 4).
    """
    import msgspec.structs

    if stored.input_parts is None:
        if stored.input:
            return stored  # not moved out (a record handed over in full form)
        return msgspec.structs.replace(stored, input=load(stored.input_digest))
    full_input = dict(stored.input)
    for key, digest in stored.input_parts.items():
        if key not in full_input:
            full_input[key] = load(digest)
    data = stored.data
    if data is None and stored.data_digest is not None:
        data = load(stored.data_digest)
    return with_results(msgspec.structs.replace(stored, input=full_input, data=data), load)


def with_results(stored: Decision, load: Callable[[str], Any], cache: dict[str, Any] | None = None) -> Decision:
    """``stored`` with its violations and warnings read from its results document, when it has one
    (always from the document: anything inline beside a ``results_digest`` is not what was hashed).
    ``cache``: results already read, by digest (immutable: frozen structs in tuples, so shared safely;
    emptied past RESULTS_CACHED entries)."""
    import msgspec.structs

    if stored.results_digest is None:
        return stored
    results = cache.get(stored.results_digest) if cache is not None else None
    if results is None:
        try:
            results = msgspec.convert(load(stored.results_digest), _Results)
        except msgspec.ValidationError as e:
            raise DocumentError(stored.results_digest, f"is not a results document ({e})") from None
        if cache is not None:
            if len(cache) >= RESULTS_CACHED:
                cache.clear()
            cache[stored.results_digest] = results
    return msgspec.structs.replace(stored, violations=results.violations, warnings=results.warnings)


#: results documents a store keeps decoded (with_results' cache): a rebuild's decisions share one
RESULTS_CACHED = 256


class _Results(msgspec.Struct):
    violations: tuple[Violation, ...]
    warnings: tuple[Violation, ...]


def new_documents(documents: Iterable[Document], stored: set[str]) -> list[tuple[str, int, bytes, tuple[str, ...]]]:
    """(digest, size, compressed body, finding terms) of the documents not yet ``stored``: only those are compressed."""
    return [(d.digest, len(d.canonical), compress(d.canonical), d.terms()) for d in documents if d.digest not in stored]


@dataclass(frozen=True)
class LegacyMove:
    """Migration 4's rewrite of one record written before v2: its input moves out to a document."""

    seq: int
    #: the record's canonical JSON with ``"input": {}`` (its hash is unchanged: a pre-v2 hash leaves the
    #: input out), as every record is now written (gate.decisions.sql.record_json)
    record: bytes
    #: the input as a document, under the digest it really has (a record whose input was edited
    #: before the migration keeps pointing at its ``input_digest``, which verify then finds missing)
    document: Document
    #: the record's ``input_digest``: its reference (``decision_documents``)
    reference: str | None


def legacy_moves(rows_after: Callable[[int], list[Any]]) -> Iterator[LegacyMove]:
    """The move of every record from before v2, in seq order; ``rows_after(seq)`` reads the next
    (seq, record) rows after ``seq`` (a batch, fully read before any is moved)."""
    after = 0
    while batch := rows_after(after):
        after = int(batch[-1][0])
        for seq, record in batch:
            move = legacy_move(seq, record)
            if move is not None:
                yield move


def legacy_move(seq: int, record: bytes | str) -> LegacyMove | None:
    """The move of a pre-v2 record's input, or None for a v2 record or one that does not decode
    (left as it is: verify names it)."""
    try:
        value = msgspec.json.decode(record)
    except (msgspec.DecodeError, TypeError):
        return None
    if not isinstance(value, dict) or value.get("input_parts") is not None or not isinstance(value.get("input"), dict):
        return None
    moved = value["input"]
    value["input"] = {}
    canonical = canonical_json(moved)
    reference = value.get("input_digest")
    return LegacyMove(
        int(seq),
        msgspec.json.encode(value, order="sorted"),
        Document(digest_of(canonical), canonical, moved.get("findings")),
        reference if isinstance(reference, str) else None,
    )
