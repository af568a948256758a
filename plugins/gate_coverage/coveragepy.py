"""coverage.py's JSON report (``coverage json``): each file's ``summary``, checked against ``totals``.

Only the summaries are decoded; the per-line lists, functions and classes (most of the file) are
skipped by msgspec. ``totals.percent_covered`` is not the line rate: coverage.py counts statements
and branches together there, (covered_lines + covered_branches) / (num_statements + num_branches).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec

from gate.scanning.parsing import decode_json
from gate_coverage.totals import BRANCHES, BRANCHES_COVERED, LINES, LINES_COVERED, Counts, Coverage, CoverageBuilder

if TYPE_CHECKING:
    from gate.scanning.report import Report

_Count = Annotated[int, msgspec.Meta(ge=0)]


class _Summary(msgspec.Struct, frozen=True):
    covered_lines: _Count
    num_statements: _Count
    # absent when the run did not measure branches
    covered_branches: _Count = 0
    num_branches: _Count = 0


class _File(msgspec.Struct, frozen=True):
    summary: _Summary


class _Meta(msgspec.Struct, frozen=True):
    version: str | None = None


class _Report(msgspec.Struct, frozen=True):
    meta: _Meta
    files: dict[str, _File]
    totals: _Summary | None = None


def read(report: Report) -> Coverage:
    """Every file's summary, checked against the report's totals."""
    doc = decode_json(report, _Report)
    builder = CoverageBuilder(report, version=doc.meta.version or "unknown")
    for path, entry in doc.files.items():
        s = entry.summary
        if s.covered_lines > s.num_statements or s.covered_branches > s.num_branches:
            raise report.error(f"the summary of {path} covers more than it counts: {msgspec.to_builtins(s)}")
        builder.counted(path, Counts(s.covered_lines, s.num_statements, s.covered_branches, s.num_branches))
    stated: dict[str, float] = {}
    if doc.totals is not None:
        t = doc.totals
        stated = {
            LINES: t.num_statements,
            LINES_COVERED: t.covered_lines,
            BRANCHES: t.num_branches,
            BRANCHES_COVERED: t.covered_branches,
        }
    return builder.finish('"files" is empty', stated=stated)
