"""Events (promotions, syncs) as text tables: ``gate decisions events`` and the tail of ``decisions show``."""

from __future__ import annotations

from collections.abc import Iterable

from gate.decisions.events import Event
from gate.output.text import table


def _what(event: Event) -> str:
    """One line on what the event did: the target and commit of a promotion, the counts of a sync, or why not."""
    details = event.details
    parts = []
    if event.artifact and event.artifact.get("target"):
        parts.append(str(event.artifact["target"]))
    if details.get("commit"):
        parts.append(f"commit {str(details['commit'])[:12]}")
    if "applied" in details or "blocked" in details:
        parts.append(f"{len(details.get('applied', []))} applied, {len(details.get('blocked', []))} blocked")
    if details.get("reasons"):
        parts.append("; ".join(str(r) for r in details["reasons"]))
    return " — ".join(parts).replace("\n", " ")


def render_list(events: Iterable[Event]) -> str:
    """TIME TYPE OUTCOME ENV DECISIONS WHAT, one row per event."""
    rows = [
        [e.timestamp, e.type, e.outcome, e.environment, ",".join(e.decision_ids) or "-", _what(e)]
        for e in events
    ]
    if not rows:
        return "no events\n"
    return table(["TIME", "TYPE", "OUTCOME", "ENV", "DECISIONS", "WHAT"], rows) + "\n"
