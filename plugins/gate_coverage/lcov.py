"""LCOV tracefiles (lcov/geninfo, c8, istanbul/nyc, grcov, ...), streamed line by line.

A record runs from ``SF:<path>`` to ``end_of_record``. ``DA:<line>,<hits>`` lists a line (c8 can
write 2^64-1 hits: still just "covered"); ``BRDA:<line>,<block>,<branch>,<taken>`` a branch, where
a taken of ``-`` means never reached. ``LF``/``LH``/``BRF``/``BRH`` are each record's own totals:
they are summed over the records that give them and compared with those records' entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gate_coverage.totals import (
    BRANCHES,
    BRANCHES_COVERED,
    LINES,
    LINES_COVERED,
    MAX_LINE,
    Coverage,
    CoverageBuilder,
    FileTally,
    whole,
)

if TYPE_CHECKING:
    from gate.scanning.report import Report

#: A record's own totals, and the summary quantities they state.
_TOTALS = {"LF": LINES, "LH": LINES_COVERED, "BRF": BRANCHES, "BRH": BRANCHES_COVERED}


@dataclass
class _Record:
    """One SF: ... end_of_record block: its entries as listed, and the totals it states."""

    path: str
    tally: FileTally
    start: int
    listed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_TOTALS.values(), 0))
    stated: dict[str, int] = field(default_factory=dict)


def read(report: Report) -> Coverage:
    """Every record's lines and branches, checked against the records' LF/LH/BRF/BRH."""
    builder = CoverageBuilder(report)
    record: _Record | None = None
    stated: dict[str, float] = {}
    entries: dict[str, float] = {}
    for n, text in report.lines():
        line = text.strip()  # istanbul ends with "end_of_record " (trailing space)
        if not line:
            continue
        if line == "end_of_record":
            if record is None:
                raise report.error(f"line {n}: end_of_record without an SF: record before it")
            for key, total in record.stated.items():
                stated[key] = stated.get(key, 0) + total
                entries[key] = entries.get(key, 0) + record.listed[key]
            record = None
            continue
        tag, sep, value = line.partition(":")
        if not sep:
            raise report.error(f"line {n}: not an LCOV line (TAG:value or end_of_record): {line[:80]!r}")
        if tag == "SF":
            if record is not None:
                raise report.error(f"line {n}: SF: before the end_of_record of {record.path} (line {record.start})")
            if not value:
                raise report.error(f"line {n}: SF: without a path")
            record = _Record(value, builder.file(value), n)
        elif record is not None:
            _entry(record, tag, value, n, report)
        elif tag != "TN":  # the test name is the only tag that may stand outside a record
            raise report.error(f"line {n}: {tag}: outside a record (no SF: line before it)")
    if record is not None:
        raise report.error(
            f"the record for {record.path} (line {record.start}) has no end_of_record: is the file truncated?"
        )
    return builder.finish("no SF: records", stated=stated, entries=entries)


def _entry(record: _Record, tag: str, value: str, n: int, report: Report) -> None:
    """One line inside a record; tags gate does not use (FN, FNDA, FNF, ...) are skipped."""
    if tag == "DA":
        parts = value.split(",")
        if len(parts) < 2:
            raise report.error(f"line {n}: DA: needs line,hits: {value!r}")
        number = whole(parts[0], report, f"line {n}: DA line number", limit=MAX_LINE)
        covered = whole(parts[1], report, f"line {n}: DA hit count") > 0
        record.tally.line(number, covered)
        record.listed[LINES] += 1
        record.listed[LINES_COVERED] += covered
    elif tag == "BRDA":
        parts = value.split(",")
        if len(parts) < 4:
            raise report.error(f"line {n}: BRDA: needs line,block,branch,taken: {value!r}")
        whole(parts[0], report, f"line {n}: BRDA line number", limit=MAX_LINE)
        taken = parts[-1] != "-" and whole(parts[-1], report, f"line {n}: BRDA taken count") > 0
        # "line,block,branch" as written identifies the branch (lcov 2 allows an expression, with
        # commas, as the branch); one string per branch keeps large tracefiles small
        record.tally.branches(value.rpartition(",")[0], int(taken), 1)
        record.listed[BRANCHES] += 1
        record.listed[BRANCHES_COVERED] += taken
    elif tag in _TOTALS:
        record.stated[_TOTALS[tag]] = whole(value, report, f"line {n}: {tag}")
