"""Run a bundle's Rego unit tests in the embedded engine (regorus), as ``opa test`` runs them.

A test is a rule whose name starts with ``test_`` in any package of the bundle (by convention in a
``*_test.rego`` file next to the policy it tests). It passes when its value is ``true``; ``false``,
undefined, or an evaluation error (with the engine's message, without its Rust backtrace) fail it.
Every ``.rego`` file of the bundle, tests included, is loaded together with the bundle's data, as
``opa test DIR`` loads them. A file that does not parse is a ``PolicyError`` naming the file, line
and message; a bundle with no test at all is a ``PolicyError`` too, never a pass.

A test that fails (false or undefined, not an error) is explained as ``opa test --var-values``
explains it: the first expression of its body that no evaluation got past, and for a comparison
what was expected and what came (gate.policy.explain). What the test printed (Rego ``print``)
is kept with its result.

Tests are found in the sources themselves (regorus has no test discovery): ``package`` lines give
the package, rule heads at the start of a line named ``test_*`` (``test_x if ...``, ``test_x :=``,
``test_x contains ...``; functions are not tests) give the tests, in file order.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from gate.errors import PolicyError
from gate.policy.bundle import Bundle
from gate.policy.embedded import RegorusEngine, new_regorus_engine
from gate.policy.explain import JSON_VALUE_CHARS, Failure, explain, shorten

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)\s*(?:#.*)?$", re.MULTILINE)
_TEST_HEAD = re.compile(r"^(test_\w*)\s*(?=if\b|contains\b|:=|=|\{|\[|#|$)", re.MULTILINE)
_LOCATION = re.compile(r"-->\s*(?P<path>.+?):(?P<line>\d+):(?P<col>\d+)")
_MESSAGE = re.compile(r"^error:\s*(?P<message>.+)$", re.MULTILINE)


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test rule."""

    __test__ = False  # not a pytest test class

    #: the Rego package, e.g. ``gate.promotion.vulnerabilities_test``
    package: str
    #: the rule name, e.g. ``test_prod_denies_critical``
    name: str
    passed: bool
    #: why it failed: ``undefined``, ``false``, another value, or the engine's error message
    error: str | None = None
    #: the file that defines it (relative to the bundle root) and the line of its first head
    path: str = ""
    line: int = 0
    #: wall time of the evaluation, in seconds
    duration: float = 0.0
    #: the evaluation raised an error (``error`` is its message), rather than not being true
    errored: bool = False
    #: for a failed (not errored) test: the expression it stopped at and the values compared, when known
    failure: Failure | None = None
    #: what the test printed (Rego ``print``), ``file:line: text`` per call
    output: tuple[str, ...] = ()

    @property
    def qualified_name(self) -> str:
        """``data.<package>.<name>``, as ``opa test`` names a test."""
        return f"data.{self.package}.{self.name}"


@dataclass(frozen=True)
class FileCoverage:
    """Line coverage of one policy file (tests excluded) over the whole test run."""

    path: str
    covered: tuple[int, ...]
    not_covered: tuple[int, ...]

    @property
    def percent(self) -> float:
        """Covered lines as a percentage of the lines the engine can cover (100 when there are none)."""
        total = len(self.covered) + len(self.not_covered)
        return 100.0 if total == 0 else 100.0 * len(self.covered) / total


@dataclass(frozen=True)
class Coverage:
    """Line coverage of every non-test policy file of the bundle."""

    files: tuple[FileCoverage, ...]

    @property
    def covered_lines(self) -> int:
        """Lines evaluated at least once, over all files."""
        return sum(len(f.covered) for f in self.files)

    @property
    def not_covered_lines(self) -> int:
        """Lines never evaluated, over all files."""
        return sum(len(f.not_covered) for f in self.files)

    @property
    def percent(self) -> float:
        """Covered lines as a percentage of all coverable lines."""
        total = self.covered_lines + self.not_covered_lines
        return 100.0 if total == 0 else 100.0 * self.covered_lines / total


@dataclass(frozen=True)
class TestReport:
    """Every test's result, in file order, and (when asked for) the policies' line coverage."""

    __test__ = False  # not a pytest test class

    results: tuple[TestResult, ...]
    coverage: Coverage | None = None

    @property
    def passed(self) -> int:
        """How many tests passed."""
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        """How many tests failed (false, undefined or error)."""
        return len(self.results) - self.passed

    @property
    def ok(self) -> bool:
        """True when there were tests and all of them passed."""
        return bool(self.results) and self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (what ``--format json`` prints)."""
        coverage = self.coverage
        return {
            "passed": self.passed,
            "failed": self.failed,
            "tests": [
                {
                    "package": r.package,
                    "name": r.name,
                    "passed": r.passed,
                    "error": r.error,
                    "file": r.path,
                    "line": r.line,
                    "duration_ms": round(r.duration * 1000, 3),
                    **_failure_dict(r.failure),
                    "output": list(r.output),
                }
                for r in self.results
            ],
            "coverage": None
            if coverage is None
            else {
                "percent": round(coverage.percent, 2),
                "covered_lines": coverage.covered_lines,
                "not_covered_lines": coverage.not_covered_lines,
                "files": [
                    {
                        "file": f.path,
                        "percent": round(f.percent, 2),
                        "covered": list(f.covered),
                        "not_covered": list(f.not_covered),
                    }
                    for f in coverage.files
                ],
            },
        }


def _failure_dict(failure: Failure | None) -> dict[str, Any]:
    """A failed test's ``expression`` (and its ``expression_line``), ``expected``, ``got``, ``where``
    and ``note``; all null for a test that passed, errored or could not be explained."""
    if failure is None:
        return dict.fromkeys(("expression", "expression_line", "expected", "got", "where", "note"))

    def cut(text: str | None) -> str | None:
        return None if text is None else shorten(text, JSON_VALUE_CHARS)

    return {
        "expression": failure.expression,
        "expression_line": failure.line,
        "expected": cut(failure.expected),
        "got": cut(failure.got),
        "where": {text: cut(value) for text, value in failure.where},
        "note": failure.note,
    }


@dataclass(frozen=True)
class _Test:
    package: str
    name: str
    path: str
    line: int


def discover(sources: dict[str, str]) -> list[_Test]:
    """The test rules of these sources (path -> Rego text), in path then line order."""
    tests: list[_Test] = []
    seen: set[tuple[str, str]] = set()
    for path in sorted(sources):
        text = sources[path]
        package = _PACKAGE.search(text)
        if package is None:
            continue  # the engine reports a file without a package when it is loaded
        for match in _TEST_HEAD.finditer(text):
            key = (package.group(1), match.group(1))
            if key in seen:  # a test defined by several bodies is one test
                continue
            seen.add(key)
            line = text.count("\n", 0, match.start()) + 1
            tests.append(_Test(package.group(1), match.group(1), path, line))
    return tests


def run_tests(bundle: Bundle, coverage: bool = False) -> TestReport:
    """Load the whole bundle (tests included) and its data, and evaluate every test rule."""
    tests = discover(bundle.sources)
    if not tests:
        raise PolicyError(
            f"policy bundle {bundle.name}: no tests found "
            "(rules named test_* in the bundle's .rego files, by convention in *_test.rego files)"
        )
    engine = _engine(bundle, coverage)
    engine.set_gather_prints(True)  # print() output is kept per test
    ast: list[dict[str, Any]] | None = None  # read once, when a first test fails
    results = []
    for test in tests:
        result = _run_one(engine, test)
        if not result.passed and not result.errored:
            ast = _ast(engine) if ast is None else ast
            result = dataclasses.replace(result, failure=_explained(engine, ast, test))
        results.append(result)
    return TestReport(tuple(results), _coverage(engine, bundle) if coverage else None)


def _ast(engine: RegorusEngine) -> list[dict[str, Any]]:
    """Every module's AST (regorus' JSON), or none when the engine cannot give it."""
    try:
        modules = json.loads(engine.get_ast_as_json())
    except (RuntimeError, ValueError):
        return []
    return modules if isinstance(modules, list) else []


def _explained(engine: RegorusEngine, ast: list[dict[str, Any]], test: _Test) -> Failure | None:
    """Why ``test`` failed; an explanation that breaks down never fails the run (the result stands)."""
    try:
        return explain(engine, ast, test.package, test.name, test.path)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - an unforeseen AST shape, a regorus panic: the failure unexplained
        return None


def _engine(bundle: Bundle, coverage: bool) -> RegorusEngine:
    engine = new_regorus_engine()
    if coverage:
        engine.set_enable_coverage(True)
    for path in sorted(bundle.sources):
        try:
            engine.add_policy(path, bundle.sources[path])
        except RuntimeError as e:
            error = EngineError.parse(str(e))
            file = bundle.location(error.path if error.path in bundle.sources else path)
            where = f"{file}:{error.line}:{error.column}: {error.message}" if error.path else f"{file}: {error.message}"
            raise PolicyError(f"policy does not compile: {where}") from None
    try:
        engine.add_data_json(json.dumps(bundle.data))
    except RuntimeError as e:
        raise PolicyError(f"policy bundle {bundle.name}: data: {EngineError.parse(str(e)).message}") from None
    return engine


def _run_one(engine: RegorusEngine, test: _Test) -> TestResult:
    started = time.perf_counter()
    error: str | None
    errored = False
    try:
        answer = json.loads(engine.eval_query_as_json(f"data.{test.package}.{test.name}"))
    except RuntimeError as e:
        error, errored = EngineError.parse(str(e)).located(), True
    else:
        error = _verdict(answer)
    duration = time.perf_counter() - started
    return TestResult(
        package=test.package,
        name=test.name,
        passed=error is None,
        error=error,
        path=test.path,
        line=test.line,
        duration=duration,
        errored=errored,
        output=tuple(engine.take_prints()),
    )


def _verdict(answer: Any) -> str | None:
    """None when the query's one value is ``true``; otherwise what it was instead."""
    results = answer.get("result") or [] if isinstance(answer, dict) else []
    if not results:
        return "undefined"
    values = [e.get("value") for r in results for e in r.get("expressions", [])]
    if values == [True]:
        return None
    if values == [False]:
        return "false"
    return "value is " + json.dumps(values[0] if len(values) == 1 else values)[:200] + ", not true"


def _coverage(engine: RegorusEngine, bundle: Bundle) -> Coverage:
    by_path = _coverage_lines(engine)
    files = []
    unseen = [path for path in bundle.policies(include_tests=False) if path not in by_path]
    coverable = _coverable_lines(bundle, unseen) if unseen else {}
    for path in sorted(bundle.policies(include_tests=False)):
        if path in by_path:
            covered, not_covered = by_path[path]
        else:  # no test evaluated anything in this file: every line the engine can cover is uncovered
            covered, not_covered = set(), coverable.get(path, set())
        files.append(FileCoverage(path, tuple(sorted(covered)), tuple(sorted(not_covered - covered))))
    return Coverage(tuple(files))


def _coverage_lines(engine: RegorusEngine) -> dict[str, tuple[set[int], set[int]]]:
    report = json.loads(engine.get_coverage_report_as_json())
    return {f["path"]: (set(f.get("covered") or ()), set(f.get("not_covered") or ())) for f in report.get("files", [])}


def _coverable_lines(bundle: Bundle, paths: list[str]) -> dict[str, set[int]]:
    """The lines regorus can cover in files no test touched.

    regorus reports a file only once a rule of it was evaluated, and then lists every line it can
    cover. So a second engine evaluates each such file's package once, and all of the lines it
    reports count as not covered.
    """
    probe = _engine(bundle, coverage=True)
    for path in paths:
        package = _PACKAGE.search(bundle.sources[path])
        if package is None:
            continue
        try:
            probe.eval_query_as_json(f"data.{package.group(1)}")
        except RuntimeError:
            pass  # an error still marks the lines evaluation reached
    return {path: covered | not_covered for path, (covered, not_covered) in _coverage_lines(probe).items()}


@dataclass(frozen=True)
class EngineError:
    """An error regorus raised, parsed: where (when it says) and what, without the Rust backtrace."""

    message: str
    path: str | None = None
    line: int | None = None
    column: int | None = None

    @classmethod
    def parse(cls, text: str) -> EngineError:
        """Parse regorus' ``--> path:line:col`` / source line / ``error: message`` format.

        Everything from ``Stack backtrace:`` on (printed when RUST_BACKTRACE is set) is dropped; an
        error in another shape keeps its first lines, joined.
        """
        head = text.split("Stack backtrace:", 1)[0]
        message = _MESSAGE.search(head)
        if message is None:
            lines = [line.strip() for line in head.splitlines() if line.strip()]
            return cls(" ".join(lines[:3]) or "unknown engine error")
        location = _LOCATION.search(head)
        if location is None:
            return cls(message["message"].strip())
        return cls(message["message"].strip(), location["path"], int(location["line"]), int(location["col"]))

    def located(self, root: object = None) -> str:
        """``path:line:col: message`` (``path`` under ``root`` when given), or the message alone."""
        if self.path is None:
            return self.message
        path = f"{root}/{self.path}" if root is not None else self.path
        return f"{path}:{self.line}:{self.column}: {self.message}"
