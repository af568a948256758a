"""Counting covered lines and branches, and turning the counts into the metrics policies read.

Every format reader feeds a ``CoverageBuilder``: per file, lines by number and branches by key, so
a line a report lists twice (a Cobertura file split over several ``<class>`` elements) counts once.
Rates are computed only here, from the counts, and are None when nothing of that kind was measured
(a branch rate of 0 would read as "no branch is tested" rather than "branches were not measured").
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gate.scanning.parsing import number

if TYPE_CHECKING:
    from gate.scanning.report import Report

RATE_DIGITS = 6
#: Larger line numbers are refused: no source file has them, and lines are marked by number.
MAX_LINE = 10_000_000
#: How far a report's own rate may be from the computed one; coverage.py rounds to 4 decimals.
RATE_TOLERANCE = 1e-4

# The quantities a report's own summary may state, as ``mismatch_note`` names them.
FILES = "files"
LINES = "lines"
LINES_COVERED = "lines covered"
BRANCHES = "branches"
BRANCHES_COVERED = "branches covered"
LINE_RATE = "line rate"
BRANCH_RATE = "branch rate"
_RATES = frozenset({LINE_RATE, BRANCH_RATE})


def rate(covered: int, valid: int) -> float | None:
    """``covered / valid`` rounded to 6 decimals, or None when there was nothing to cover."""
    return round(covered / valid, RATE_DIGITS) if valid else None


def whole(value: str | int | None, report: Report, what: str, limit: int | None = None) -> int:
    """A non-negative whole number read from a report, or a ``ReportError`` saying what was wrong."""
    if value is None:
        raise report.error(f"{what} is missing")
    try:
        n = int(value)
    except (TypeError, ValueError):
        f = number(value, report, what)
        if not f.is_integer():
            raise report.error(f"{what} is not a whole number: {value!r}") from None
        n = int(f)
    if n < 0:
        raise report.error(f"{what} is negative: {value!r}")
    if limit is not None and n > limit:
        raise report.error(f"{what} is out of range (over {limit}): {value!r}")
    return n


@dataclass(frozen=True, slots=True)
class Counts:
    """Covered and valid lines and branches of one file, or of several added up."""

    lines_covered: int = 0
    lines_valid: int = 0
    branches_covered: int = 0
    branches_valid: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.lines_covered + other.lines_covered,
            self.lines_valid + other.lines_valid,
            self.branches_covered + other.branches_covered,
            self.branches_valid + other.branches_valid,
        )

    def file_metrics(self) -> dict[str, Any]:
        """The per-file entry of ``metrics.coverage.files``."""
        return {
            "line_rate": rate(self.lines_covered, self.lines_valid),
            "lines_covered": self.lines_covered,
            "lines_valid": self.lines_valid,
            "branch_rate": rate(self.branches_covered, self.branches_valid),
            "branches_covered": self.branches_covered,
            "branches_valid": self.branches_valid,
        }

    @classmethod
    def from_metrics(cls, entry: Mapping[str, Any]) -> Counts:
        """Read back a per-file (or total) entry of the metrics."""
        return cls(entry["lines_covered"], entry["lines_valid"], entry["branches_covered"], entry["branches_valid"])


def metrics_of(files: Mapping[str, Counts]) -> dict[str, Any]:
    """The coverage metrics: totals added up from ``files``, rates recomputed, and every file."""
    total = sum(files.values(), Counts())
    return {
        "line_rate": rate(total.lines_covered, total.lines_valid),
        "branch_rate": rate(total.branches_covered, total.branches_valid),
        "lines_covered": total.lines_covered,
        "lines_valid": total.lines_valid,
        "branches_covered": total.branches_covered,
        "branches_valid": total.branches_valid,
        "files": {path: counts.file_metrics() for path, counts in files.items()},
    }


class FileTally:
    """One file's lines (by number) and branches (by key) as a report lists them.

    A line or branch listed again merges with what was seen before (covered if either says so), so
    repeats never count twice. Lines are marks in a bytearray indexed by line number (0 = not
    listed, 1 = listed, 2 = covered): one byte per line keeps a 100 MB report's lines small.
    """

    __slots__ = ("_branches", "_marks")

    def __init__(self) -> None:
        self._marks = bytearray()
        self._branches: dict[Hashable, tuple[int, int]] = {}

    def line(self, number: int, covered: bool) -> None:
        """Line ``number`` (at most ``MAX_LINE``) is executable, and covered or not."""
        marks = self._marks
        if number >= len(marks):
            marks.extend(bytes(number + 1 - len(marks)))
        mark = 2 if covered else 1
        if marks[number] < mark:
            marks[number] = mark

    def branches(self, key: Hashable, covered: int, valid: int) -> None:
        """``covered`` of ``valid`` branches at ``key`` (a line number, or a branch's own id)."""
        seen = self._branches.get(key)
        self._branches[key] = (covered, valid) if seen is None else (max(seen[0], covered), max(seen[1], valid))

    def counts(self) -> Counts:
        """What this file adds up to."""
        covered = self._marks.count(2)
        return Counts(
            covered,
            covered + self._marks.count(1),
            sum(c for c, _ in self._branches.values()),
            sum(v for _, v in self._branches.values()),
        )


@dataclass(frozen=True)
class Coverage:
    """What a reader made of one report: counts per file, the tool's version, and notes."""

    files: dict[str, Counts]
    version: str = "unknown"
    notes: tuple[str, ...] = ()

    def metrics(self) -> dict[str, Any]:
        """The metrics for ``ScanResult.metrics``."""
        return metrics_of(self.files)


@dataclass
class CoverageBuilder:
    """Collects a report's files as its reader goes, then checks them against its own summary."""

    report: Report
    version: str = "unknown"
    _tallies: dict[str, FileTally] = field(default_factory=dict)
    _counted: dict[str, Counts] = field(default_factory=dict)

    def file(self, path: str) -> FileTally:
        """The tally for ``path``, the same one each time the report lists that file."""
        tally = self._tallies.get(path)
        if tally is None:
            tally = self._tallies[path] = FileTally()
        return tally

    def counted(self, path: str, counts: Counts) -> None:
        """A file whose format gives counts rather than lines (coverage.py JSON, Go statements)."""
        self._counted[path] = counts

    def finish(
        self,
        nothing: str,
        stated: Mapping[str, float] | None = None,
        entries: Mapping[str, float] | None = None,
    ) -> Coverage:
        """The files read, or a ``ReportError`` when there are none (``nothing`` says what was missing).

        ``stated`` is what the report's own summary says, compared with what the entries add up
        to (or with ``entries``, for a format that states its summary per record, as LCOV does).
        """
        files = {path: tally.counts() for path, tally in self._tallies.items()}
        files.update(self._counted)
        if not files:
            raise self.report.error(f"{nothing}: the report lists no files, so it measured nothing")
        note = mismatch_note(stated or {}, entries if entries is not None else _added_up(files))
        return Coverage(files, self.version, (note,) if note else ())


def _added_up(files: Mapping[str, Counts]) -> dict[str, float]:
    """What a report's entries add up to, in the terms its summary may use."""
    total = sum(files.values(), Counts())
    entries: dict[str, float] = {
        FILES: len(files),
        LINES: total.lines_valid,
        LINES_COVERED: total.lines_covered,
        BRANCHES: total.branches_valid,
        BRANCHES_COVERED: total.branches_covered,
    }
    # A rate is only comparable when something was measured: tools write 0 or 1 for nothing.
    if (line_rate := rate(total.lines_covered, total.lines_valid)) is not None:
        entries[LINE_RATE] = line_rate
    if (branch_rate := rate(total.branches_covered, total.branches_valid)) is not None:
        entries[BRANCH_RATE] = branch_rate
    return entries


def mismatch_note(stated: Mapping[str, float], entries: Mapping[str, float]) -> str | None:
    """A note when the report's summary disagrees with its entries, else None.

    Only what both sides know is compared; rates within ``RATE_TOLERANCE`` agree.
    """
    keys = [k for k in stated if k in entries]
    if not any(_differs(k, stated[k], entries[k]) for k in keys):
        return None
    said = ", ".join(_show(k, stated[k]) for k in keys)
    found = ", ".join(_show(k, entries[k]) for k in keys)
    return f"the report's summary says {said} but its entries add up to {found}; using the entries"


def _differs(key: str, stated: float, counted: float) -> bool:
    if key in _RATES:
        return abs(stated - counted) > RATE_TOLERANCE
    return stated != counted


def _show(key: str, value: float) -> str:
    return f"{key} {value:g}" if key in _RATES else f"{int(value)} {key}"
