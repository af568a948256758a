"""``gate decisions events --format csv``: one row per event (promotion or sync), fixed columns.

Like ``decisions list --format csv`` (gate.output.decisions_csv): the columns are always present, in
this order; lists inside a cell are joined with ``;``; formula-like cells are defused; rows stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gate.decisions.events import Event
from gate.output.decisions_csv import csv_lines

COLUMNS: tuple[str, ...] = (
    "event_id",
    "timestamp",
    "kind",
    "outcome",
    "environment",
    "decision_ids",
    "source",
    "digest",
    "target",
    "commit",
    "reasons",
    "applied",
    "blocked",
    "actor",
    "pipeline_url",
    "hash",
    "signing_key",
)


def render_list(events: Iterable[Event]) -> Iterator[str]:
    """The header, then one CSV line per event (RFC 4180, CRLF line ends as the csv module writes)."""
    return csv_lines(COLUMNS, (row(event) for event in events))


def row(event: Event) -> list[str]:
    """The cells of COLUMNS for ``event``: a promotion's images, commit and refusal reasons; a sync's
    commit, how many objects it applied and which it blocked."""
    artifact = event.artifact or {}
    details = event.details
    context = event.context
    blocked = details.get("blocked") or []
    return [
        event.event_id,
        event.timestamp,
        event.type,
        event.outcome,
        event.environment,
        ";".join(event.decision_ids),
        str(artifact.get("source") or ""),
        str(artifact.get("digest") or ""),
        str(artifact.get("target") or ""),
        str(details.get("commit") or ""),
        ";".join(str(reason) for reason in details.get("reasons") or []),
        str(len(details["applied"])) if isinstance(details.get("applied"), list) else "",
        ";".join(str(b.get("object") if isinstance(b, dict) else b) for b in blocked) if isinstance(blocked, list) else "",
        str(context.get("actor") or ""),
        str(context.get("pipeline_url") or ""),
        event.hash or "",
        event.signing_key or "",
    ]
