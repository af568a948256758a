"""JaCoCo XML (``jacoco:report``, ``report-aggregate``): lines and branches per ``<sourcefile>``.

Files are keyed ``package/SourceFile.java``. Per line, ``ci`` > 0 means covered (JaCoCo's own LINE
counter says so too) and ``mb``/``cb`` are the missed/covered branches. ``<group>`` elements of an
aggregate report just nest packages, so they need nothing special. The report-level LINE and BRANCH
counters are the summary the entries are checked against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gate.scanning.parsing import iterparse_xml
from gate_coverage.totals import (
    BRANCHES,
    BRANCHES_COVERED,
    LINES,
    LINES_COVERED,
    MAX_LINE,
    Coverage,
    CoverageBuilder,
    whole,
)

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

    from gate.scanning.report import Report

#: The report-level counters used, and the summary quantities they state (missed + covered, covered).
_COUNTERS = {"LINE": (LINES, LINES_COVERED), "BRANCH": (BRANCHES, BRANCHES_COVERED)}


def read(report: Report) -> Coverage:
    """Every source file's lines and branches, checked against the report's counters."""
    builder = CoverageBuilder(report)
    root: Element | None = None
    for _, elem in iterparse_xml(report):
        if elem.tag == "package":
            # The package name is known only here, so source files are read when it ends.
            package = elem.get("name") or ""
            for sourcefile in elem.iterfind("sourcefile"):
                _read_sourcefile(sourcefile, package, builder, report)
            elem.clear()
        elif elem.tag == "class":
            elem.clear()  # class and method counters repeat what the source files say
        root = elem  # the last element to end is the root
    counters = root.findall("counter") if root is not None else []
    return builder.finish("no <sourcefile> elements", stated=_summary(counters, report))


def _read_sourcefile(elem: Element, package: str, builder: CoverageBuilder, report: Report) -> None:
    name = elem.get("name")
    if not name:
        raise report.error(f"a <sourcefile> in package {package!r} has no name")
    path = f"{package}/{name}" if package else name
    tally = builder.file(path)
    for line in elem.iterfind("line"):
        nr = whole(line.get("nr"), report, f"nr of a <line> in {path}", limit=MAX_LINE)
        mi, ci, mb, cb = (whole(line.get(a), report, f"{a} of line {nr} in {path}") for a in ("mi", "ci", "mb", "cb"))
        if mi + ci:
            tally.line(nr, ci > 0)
        if mb + cb:
            tally.branches(nr, cb, mb + cb)


def _summary(counters: list[Element], report: Report) -> dict[str, float]:
    """The report-level LINE and BRANCH counters; JaCoCo leaves out a counter whose total is 0."""
    if not counters:
        return {}
    stated: dict[str, float] = dict.fromkeys((LINES, LINES_COVERED, BRANCHES, BRANCHES_COVERED), 0)
    for counter in counters:
        kind = counter.get("type", "")
        if kind in _COUNTERS:
            total, covered = _COUNTERS[kind]
            missed = whole(counter.get("missed"), report, f"missed of the report's {kind} counter")
            stated[covered] = whole(counter.get("covered"), report, f"covered of the report's {kind} counter")
            stated[total] = missed + stated[covered]
    return stated
