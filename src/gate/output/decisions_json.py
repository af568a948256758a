"""``gate decisions list --format json``: exactly one JSON document, ``{"decisions": [...]}``.

Each entry is the record in its stored form (gate.decisions.record): the input's small inline keys
(``now``, ``environment``, ``context``, ...) and ``input_parts``, the digests of its large values
(``findings``) kept once in the log as documents, and ``data_digest`` instead of ``data``; violations
and warnings are listed even where the log keeps them as a document (``results_digest``, which is what
the hash covers then). A listing of thousands of decisions does not carry thousands of inputs and
reads no input document. Everything else
is kept — violations, waivers, policy, context, ``input_digest``, ``prev_hash``, ``hash``,
``signature`` — and an entry still verifies: ``record_hash`` of it equals its ``hash`` (the hash of a
stored record covers the inline keys and each document's digest). A record written before format v2
is listed with ``"input": {}`` (its hash leaves the input out). ``gate decisions show ID --format json``
and ``gate decisions export`` give full records.

The document is written entry by entry, so a long listing streams.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from gate.decisions.documents import stored_form
from gate.decisions.record import Decision


def render_list(decisions: Iterable[Decision]) -> Iterator[bytes]:
    """``{"decisions":[`` entry ``,`` entry ... ``]}`` and a newline, in chunks."""
    encoder = msgspec.json.Encoder()
    yield b'{"decisions":['
    separator = b""
    for decision in decisions:
        yield separator + encoder.encode(entry(decision))
        separator = b","
    yield b"]}\n"


def entry(decision: Decision) -> dict[str, Any]:
    """The record in stored form as JSON-ready builtins (a record from before v2: with an empty input)."""
    stored = stored_form(decision) if decision.input_parts is not None else msgspec.structs.replace(decision, input={})
    record: dict[str, Any] = msgspec.to_builtins(stored)
    return record
