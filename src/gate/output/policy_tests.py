"""Rego unit-test results (``gate policy test``) as text, in the manner of ``opa test``.

Failing tests are listed one per line with the reason; ``verbose`` lists every test, grouped by
file. Under a failed test, as ``opa test --var-values`` shows it: the expression it stopped at
(``file:line: expression``) with what was expected and what came (long values shortened), then
what the test printed. With coverage, a table per policy file follows. The last line is the
summary, ``N passed, M failed``.
"""

from __future__ import annotations

import textwrap
from itertools import groupby

from gate.output.text import table
from gate.policy.explain import shorten
from gate.policy.testing import Coverage, TestReport, TestResult

RULER = "-" * 80


def render(report: TestReport, verbose: bool = False) -> str:
    """The report as text, ending with a newline."""
    out: list[str] = []
    if verbose:
        for path, results in groupby(report.results, key=lambda r: r.path):
            out.append(f"{path}:")
            for result in results:
                out.extend(f"  {line}" for line in _lines(result, verbose))
            out.append("")
    failures = [r for r in report.results if not r.passed]
    if failures and not verbose:
        for result in failures:
            out.extend(_lines(result, verbose))
        out.append("")
    if report.coverage is not None:
        out.extend(_coverage(report.coverage))
        out.append("")
    if out:
        out.append(RULER)
    out.append(f"{report.passed} passed, {report.failed} failed")
    return "\n".join(out) + "\n"


def _line(result: TestResult) -> str:
    """``PASS data.pkg.test_x (0.4ms)`` or ``FAIL data.pkg.test_x (file:line): why``."""
    if result.passed:
        return f"PASS {result.qualified_name} ({_ms(result.duration)})"
    return f"FAIL {result.qualified_name} ({result.path}:{result.line}): {result.error or 'failed'}"


def _lines(result: TestResult, verbose: bool) -> list[str]:
    """The test's line, then (failed) where it stopped and the values, then (failed, or verbose) its prints."""
    lines = [_line(result)]
    failure = result.failure
    if failure is not None:
        lines.append(f"  {failure.path}:{failure.line}: {_one_line(failure.expression)}")
        if failure.expected is not None:
            lines.append(f"    expected: {shorten(failure.expected)}")
        if failure.got is not None:
            lines.append(f"    got:      {shorten(failure.got)}")
        lines.extend(f"    where:    {text} = {shorten(value)}" for text, value in failure.where)
        if failure.note is not None:
            lines.append(f"    ({failure.note})")
    if result.output and (verbose or not result.passed):
        lines.append("  output:")
        lines.extend(f"    {line}" for line in result.output)
    return lines


def _one_line(expression: str) -> str:
    """A statement written over several lines, on one (long ones shortened): the lines that end a
    statement (inside an ``every`` body, say) are joined with ``;``, as Rego would read them."""
    lines = [line.strip() for line in expression.splitlines() if line.strip()]
    joined = lines[0] if lines else ""
    for line in lines[1:]:
        continues = joined.endswith(("{", "[", "(", ",", "|")) or line.startswith(("}", "]", ")", "|"))
        joined += (" " if continues else "; ") + line
    return shorten(joined)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


def _coverage(coverage: Coverage) -> list[str]:
    rows = [
        [
            f.path,
            str(len(f.covered) + len(f.not_covered)),
            str(len(f.covered)),
            f"{f.percent:.1f}%",
            _ranges(f.not_covered),
        ]
        for f in coverage.files
    ]
    total = coverage.covered_lines + coverage.not_covered_lines
    rows.append(["TOTAL", str(total), str(coverage.covered_lines), f"{coverage.percent:.1f}%", ""])
    body = table(["FILE", "LINES", "COVERED", "COVERAGE", "NOT COVERED (lines)"], rows)
    return ["Coverage of the policies (tests excluded):", textwrap.indent(body, "  ")]


def _ranges(lines: tuple[int, ...]) -> str:
    """``3-5, 9`` for lines 3, 4, 5 and 9."""
    spans: list[str] = []
    for _, group in groupby(enumerate(lines), key=lambda pair: pair[1] - pair[0]):
        run = [line for _, line in group]
        spans.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ", ".join(spans)
