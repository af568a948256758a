"""``gate decisions list --format csv``: one row per decision, for spreadsheets and SIEM imports.

The columns are fixed (COLUMNS) and always present, in this order; lists inside a cell are
joined with ``;``. Rows are produced one at a time, so a long listing streams.

Cells a spreadsheet would run as a formula (text starting with ``=``, ``+``, ``-``, ``@``, tab
or carriage return — an ``actor`` or ``pipeline_url`` comes from the CI's environment and is not
trusted) are prefixed with a single quote, as OWASP recommends against CSV injection.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from gate.decisions.record import Decision

COLUMNS: tuple[str, ...] = (
    "decision_id",
    "timestamp",
    "outcome",
    "environment",
    "image",
    "tag",
    "digest",
    "violations",
    "warnings",
    "violation_rules",
    "waivers",
    "policy_digest",
    "policy_revision",
    "engine",
    "actor",
    "pipeline_url",
    "git_commit",
    "input_digest",
    "hash",
    "signing_key",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def render_list(decisions: Iterable[Decision]) -> Iterator[str]:
    """The header, then one CSV line per decision (RFC 4180, CRLF line ends as the csv module writes)."""
    return csv_lines(COLUMNS, (row(decision) for decision in decisions))


def csv_lines(columns: tuple[str, ...], rows: Iterable[list[str]]) -> Iterator[str]:
    """The header, then one CSV line per row, each yielded as soon as it is written (a listing streams);
    cells a spreadsheet would run as a formula are defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    yield _drain(buffer)
    for cells in rows:
        writer.writerow([_safe(cell) for cell in cells])
        yield _drain(buffer)


def row(decision: Decision) -> list[str]:
    """The cells of COLUMNS for ``decision``."""
    artifact = decision.artifact or {}
    context = decision.context or {}
    policy = decision.policy
    return [
        decision.decision_id,
        decision.timestamp,
        decision.outcome.value,
        decision.environment,
        str(artifact.get("image") or ""),
        str(artifact.get("tag") or ""),
        str(artifact.get("digest") or ""),
        str(len(decision.violations)),
        str(len(decision.warnings)),
        ";".join(sorted({v.rule for v in decision.violations})),
        ";".join(sorted({w.id for w in decision.waivers})),
        policy.digest,
        policy.revision or "",
        f"{policy.engine} {policy.engine_version}",
        str(context.get("actor") or ""),
        str(context.get("pipeline_url") or ""),
        str(context.get("git_commit") or ""),
        decision.input_digest,
        decision.hash or "",
        decision.signing_key or "",
    ]


def _safe(cell: str) -> str:
    return f"'{cell}" if cell.startswith(_FORMULA) else cell


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
