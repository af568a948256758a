"""Cobertura XML (coverage.py, Cobertura, gcovr, istanbul, ...): lines and branches per ``<class>``.

A file can be split over several ``<class>`` elements (Java inner classes), and Java Cobertura lists
each line twice (under ``<methods>`` and under the class), so lines count once per (file, number).
Branches come from ``condition-coverage="50% (1/2)"``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gate.scanning.parsing import iterparse_xml, number
from gate_coverage.totals import (
    BRANCH_RATE,
    BRANCHES,
    BRANCHES_COVERED,
    LINE_RATE,
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

_CONDITIONS = re.compile(r"\((\d+)/(\d+)\)")


def read(report: Report) -> Coverage:
    """Every class's lines and branches, checked against the root's totals."""
    builder = CoverageBuilder(report)
    root: Element | None = None
    for _, elem in iterparse_xml(report):
        if elem.tag == "class":
            _read_class(elem, builder, report)
            elem.clear()
        elif elem.tag == "package":
            elem.clear()
        root = elem  # the last element to end is the root
    attrs = root.attrib if root is not None else {}
    builder.version = attrs.get("version") or "unknown"
    return builder.finish("no <class> elements", stated=_summary(attrs, report))


def _read_class(elem: Element, builder: CoverageBuilder, report: Report) -> None:
    filename = elem.get("filename")
    if not filename:
        raise report.error(f"<class name={elem.get('name')!r}> has no filename attribute")
    tally = builder.file(filename)
    for line in elem.iter("line"):
        n = whole(line.get("number"), report, f"number of a <line> in {filename}", limit=MAX_LINE)
        tally.line(n, whole(line.get("hits"), report, f"hits of line {n} in {filename}") > 0)
        conditions = line.get("condition-coverage")
        if conditions and line.get("branch", "").lower() == "true":
            m = _CONDITIONS.search(conditions)
            if not m or int(m[1]) > int(m[2]):
                raise report.error(
                    f"condition-coverage of line {n} in {filename} is not like '50% (1/2)': {conditions!r}"
                )
            tally.branches(n, int(m[1]), int(m[2]))


def _summary(attrs: dict[str, str], report: Report) -> dict[str, float]:
    """What the root element says; rates only where its counts are missing (Cobertura 1.9)."""
    stated: dict[str, float] = {}
    for attr, key in (
        ("lines-valid", LINES),
        ("lines-covered", LINES_COVERED),
        ("branches-valid", BRANCHES),
        ("branches-covered", BRANCHES_COVERED),
    ):
        if attr in attrs:
            stated[key] = whole(attrs[attr], report, f"<coverage {attr}>")
    for attr, key, count in (("line-rate", LINE_RATE, LINES), ("branch-rate", BRANCH_RATE, BRANCHES)):
        if attr in attrs and count not in stated:
            stated[key] = number(attrs[attr], report, f"<coverage {attr}>")
    return stated
