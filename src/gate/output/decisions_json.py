"""``gate decisions list --format json``: exactly one JSON document, ``{"decisions": [...]}``.

Each entry is the stored record without its ``input`` (the input document can be megabytes: a
listing of thousands of decisions should not carry thousands of inputs). Everything else is
kept — violations, waivers, policy, context, ``input_digest``, ``prev_hash``, ``hash``,
``signature`` — and since the record hash does not cover the input (it is bound through
``input_digest``), an entry still verifies: ``record_hash`` of it with ``"input": {}`` equals its
``hash``. ``gate decisions show ID --format json`` and ``gate decisions export`` give full records.

The document is written entry by entry, so a long listing streams.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

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
    """The record as JSON-ready builtins, without ``input``."""
    record: dict[str, Any] = msgspec.to_builtins(msgspec.structs.replace(decision, input={}))
    record.pop("input", None)
    return record
