"""The coverage scanner: which coverage format a report is in (from its content), and reading it.

Detection never looks at the file name (``coverage.xml`` is Cobertura, Clover or anything else). XML
formats are told apart by their root element, found after the prolog, comments and DOCTYPE.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gate.errors import UsageError
from gate.models import ScanResult
from gate.scanning.interface import Scanner
from gate.scanning.report import Report
from gate_coverage import clover, cobertura, coveragepy, gocover, jacoco, lcov
from gate_coverage.totals import Counts, Coverage, metrics_of

_READERS: dict[str, Callable[[Report], Coverage]] = {
    "cobertura": cobertura.read,
    "jacoco": jacoco.read,
    "lcov": lcov.read,
    "coveragepy-json": coveragepy.read,
    "clover": clover.read,
    "go-coverprofile": gocover.read,
}

# What may come before the root element. Every repetition starts on a character no other branch
# starts on, so a hostile head cannot make the match backtrack exponentially.
_PROLOG = re.compile(
    r"""\s*(?:
        <\?.*?\?>                                         # XML declaration
      | <!--.*?-->                                        # comment
      | (?P<doctype><!DOCTYPE (?:
            [^\[>"'] | "[^"]*" | '[^']*'                  # name and PUBLIC/SYSTEM ids
          | \[ (?:[^\]"'] | "[^"]*" | '[^']*')* \]          # internal subset (entities: refused later)
        )* >)
    )""",
    re.S | re.X,
)
_ROOT = re.compile(r"\s*<(?P<tag>[A-Za-z_][\w.:-]*)(?P<attrs>(?:[^>\"']|\"[^\"]*\"|'[^']*')*)>", re.S)
_ATTR = re.compile(r"""([\w.:-]+)\s*=\s*(?:"[^"]*"|'[^']*')""")
_COVERAGEPY_JSON = re.compile(r'\{\s*"meta"\s*:\s*\{[^{}]*"(?:format|branch_coverage)"\s*:')
_COVERAGEPY_FILES = re.compile(r'"(?:files|totals)"\s*:\s*\{')
_LCOV = re.compile(r"\s*(?:TN|SF):")
_GO_MODE = re.compile(r"mode: (?:set|count|atomic)\s*$", re.M)


class CoverageScanner(Scanner):
    """Line and branch coverage from the common report formats, as metrics (never findings)."""

    name = "coverage"
    description = "Line and branch coverage: totals and per-file rates"
    formats = ("Cobertura XML", "JaCoCo XML", "LCOV", "coverage.py JSON", "Clover XML", "Go coverprofile")

    def detect(self, report: Report) -> str | None:
        """The coverage format of ``report``, judged from its first bytes only."""
        head = report.head_text()
        if (root := _xml_root(head)) is not None:
            return _xml_format(*root)
        if _COVERAGEPY_JSON.match(head) and _COVERAGEPY_FILES.search(head):
            return "coveragepy-json"
        if _GO_MODE.match(head):
            return "go-coverprofile"
        if _LCOV.match(head):
            return "lcov"
        return None

    def scan(self, report: Report, fmt: str) -> ScanResult:
        """Read ``report`` as ``fmt``: metrics only, since thresholds are for policies to judge."""
        reader = _READERS.get(fmt)
        if reader is None:
            raise report.error(f"unknown coverage format {fmt!r} (known: {', '.join(_READERS)})")
        coverage = reader(report)
        return ScanResult(
            scanner=self.name,
            scanner_version=coverage.version,
            format=fmt,
            report=str(report.path),
            report_sha256=report.sha256,
            findings=[],
            metrics=coverage.metrics(),
            notes=coverage.notes,
        )

    def merge_metrics(self, metrics: list[dict[str, Any]]) -> dict[str, Any]:
        """Several reports (backend + frontend) add up; one file in two reports is refused.

        Adding the two entries of one file would count its lines twice, and keeping either would
        silently drop the other run: combine such runs with the coverage tool first.
        """
        files: dict[str, Counts] = {}
        for item in metrics:
            for path, entry in item["files"].items():
                if path in files:
                    raise UsageError(
                        f"two coverage reports both cover {path}: combine those runs into one report first "
                        "(coverage combine, lcov -a, JaCoCo merge), then pass it once"
                    )
                files[path] = Counts.from_metrics(entry)
        return metrics_of(files)


def _xml_root(head: str) -> tuple[str, str, str, str] | None:
    """The root element's tag, its attribute text, the DOCTYPE (or ''), and the text after it."""
    pos, doctype = 0, ""
    while (m := _PROLOG.match(head, pos)) is not None:
        doctype = m["doctype"] or doctype
        pos = m.end()
    root = _ROOT.match(head, pos)
    if root is None:
        return None
    return root["tag"], root["attrs"], doctype, head[root.end() :]


def _xml_format(tag: str, attrs: str, doctype: str, rest: str) -> str | None:
    names = set(_ATTR.findall(attrs))
    if tag == "coverage":
        if "clover" in names or ("generated" in names and rest.lstrip().startswith("<project")):
            return "clover"
        # Cobertura's root carries its totals; a bare <coverage/> is an empty Cobertura report
        # (claimed, so that scanning it says it lists no files rather than "not recognized").
        if names & {"line-rate", "lines-valid"} or not names:
            return "cobertura"
        return None
    if tag == "report" and ("-//JACOCO//DTD Report" in doctype or rest.lstrip().startswith("<sessioninfo")):
        return "jacoco"
    return None
