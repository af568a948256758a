"""Clover XML (OpenClover, PHPUnit / php-code-coverage, istanbul/Jest, Kover): lines per ``<file>``.

Lines are the ``stmt`` and ``cond`` ``<line>`` entries (``method`` entries count method calls, not
lines). Branches are the file's own ``<metrics conditionals coveredconditionals>``: per line, istanbul
writes covered/missed branch counts in ``truecount``/``falsecount`` where OpenClover writes how often
the condition was true/false, so those attributes cannot be read one way for every producer.
Files under ``<testproject>`` (OpenClover's coverage of the tests themselves) are not counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gate.scanning.parsing import iterparse_xml
from gate_coverage.totals import (
    BRANCHES,
    BRANCHES_COVERED,
    FILES,
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

_LINE_TYPES = ("stmt", "cond")
#: Project <metrics> attributes and the summary quantities they state.
_PROJECT_METRICS = {
    "files": FILES,
    "statements": LINES,
    "coveredstatements": LINES_COVERED,
    "conditionals": BRANCHES,
    "coveredconditionals": BRANCHES_COVERED,
}


def read(report: Report) -> Coverage:
    """Every file of the project, checked against the project's metrics."""
    builder = CoverageBuilder(report)
    root: Element | None = None
    stated: dict[str, float] = {}
    project_done = False
    for _, elem in iterparse_xml(report):
        if elem.tag == "file" and not project_done:
            _read_file(elem, builder, report)
            elem.clear()
        elif elem.tag == "package":
            elem.clear()
        elif elem.tag == "project":
            # <project> ends before <testproject> starts: later files are test code.
            project_done = True
            stated = _summary(elem.find("metrics"), report)
        root = elem  # the last element to end is the root
    builder.version = (root.get("clover") if root is not None else None) or "unknown"
    return builder.finish("no <file> elements in <project>", stated=stated)


def _read_file(elem: Element, builder: CoverageBuilder, report: Report) -> None:
    # istanbul gives a short name plus the full path; PHPUnit gives the full path as the name
    path = elem.get("path") or elem.get("name")
    if not path:
        raise report.error("a <file> has neither a path nor a name attribute")
    tally = builder.file(path)
    for line in elem.iterfind("line"):
        if line.get("type", "stmt") in _LINE_TYPES:
            num = whole(line.get("num"), report, f"num of a <line> in {path}", limit=MAX_LINE)
            tally.line(num, whole(line.get("count"), report, f"count of line {num} in {path}") > 0)
    metrics = elem.find("metrics")
    if metrics is not None:
        valid = whole(metrics.get("conditionals", 0), report, f"conditionals of {path}")
        covered = whole(metrics.get("coveredconditionals", 0), report, f"coveredconditionals of {path}")
        if covered > valid:
            raise report.error(f"{path} has more covered conditionals ({covered}) than conditionals ({valid})")
        tally.branches(None, covered, valid)


def _summary(metrics: Element | None, report: Report) -> dict[str, float]:
    if metrics is None:
        return {}
    return {
        key: whole(metrics.get(attr), report, f"{attr} of the project <metrics>")
        for attr, key in _PROJECT_METRICS.items()
        if attr in metrics.attrib
    }
