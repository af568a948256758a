"""The SonarQube scanner: which SonarQube file a report is, and reading it (saved, or live via the Web API)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gate.models import ScanResult
from gate.scanning.interface import Scanner
from gate.scanning.parsing import MAX_JSON_NESTING, decode_json
from gate.scanning.report import Report
from gate_sonarqube import normalize
from gate_sonarqube.api import (
    HotspotsSearch,
    IssuesSearch,
    MeasuresResponse,
    ProjectStatusResponse,
    ReportTask,
)

PROJECT_STATUS = "project-status"
ISSUES_SEARCH = "issues-search"
MEASURES = "measures-component"
HOTSPOTS = "hotspots-search"
REPORT_TASK = "report-task"
# recognized only to say what to pass instead
CE_TASK = "ce-task"
EXTERNAL_ISSUES = "generic-external-issues"

_INSTEAD = (
    "pass .scannerwork/report-task.txt for a live read (with SONAR_TOKEN), or saved "
    "api/qualitygates/project_status, api/issues/search or api/measures/component responses"
)
_REFUSALS = {
    CE_TASK: "a saved api/ce/task response only says whether the analysis was processed; it holds no results: "
    + _INSTEAD,
    EXTERNAL_ISSUES: "this is a SonarQube generic external issues file, which sonar-scanner imports "
    "(sonar.externalIssuesReportPaths); it is not a SonarQube result: " + _INSTEAD,
}

_SAVED: dict[str, tuple[type[Any], Callable[[Any], normalize.Normalized]]] = {
    PROJECT_STATUS: (ProjectStatusResponse, normalize.quality_gate),
    ISSUES_SEARCH: (IssuesSearch, lambda r: normalize.issues(r.issues, r.total_count)),
    MEASURES: (MeasuresResponse, normalize.measures),
    HOTSPOTS: (HotspotsSearch, normalize.hotspots),
}

# Strings (keys or values) and the structural characters of JSON; numbers and literals are skipped.
# A string the head cuts off runs to the end (``\\?\Z``), so every match attempt succeeds at once:
# without that, each escaped quote of an unterminated string restarted a scan to the end (quadratic).
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|[{}\[\]:,]')
_REPORT_TASK_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9.]*=")


class SonarQubeScanner(Scanner):
    """SonarQube analysis results: saved Web API responses, or a live read after sonar-scanner."""

    name = "sonarqube"
    description = "SonarQube quality gate, issues, measures, hotspots: saved Web API JSON, or live via report-task.txt"
    formats = (
        "api/qualitygates/project_status JSON",
        "api/issues/search JSON",
        "api/measures/component JSON",
        "api/hotspots/search JSON",
        "report-task.txt (live Web API read)",
    )

    def detect(self, report: Report) -> str | None:
        """Recognize a saved response by its keys, or report-task.txt by its key=value lines."""
        text = report.head_text().lstrip()
        if text.startswith("{"):
            try:
                return _detect_json(key_paths(text))
            except ValueError as e:  # nested too deeply: hostile, refused rather than guessed at
                raise report.error(str(e)) from None
        return REPORT_TASK if _is_report_task(text) else None

    def scan(self, report: Report, fmt: str) -> ScanResult:
        """Read a saved response, or read the analysis a report-task.txt points at from the server."""
        if fmt in _REFUSALS:
            raise report.error(_REFUSALS[fmt])
        if fmt == REPORT_TASK:
            from gate_sonarqube.client import read_live  # httpx only when a server is asked

            return read_live(ReportTask.read(report), str(report.path))
        if fmt not in _SAVED:
            raise report.error(f"unknown sonarqube format {fmt!r}")
        response_type, to_gate = _SAVED[fmt]
        return to_gate(decode_json(report, response_type)).result(fmt, "unknown", str(report.path), report.sha256)


def _detect_json(paths: set[tuple[str, ...]]) -> str | None:
    if ("projectStatus",) in paths:
        return PROJECT_STATUS
    if ("component", "measures") in paths:
        return MEASURES
    if ("task",) in paths and paths & {("task", "analysisId"), ("task", "status"), ("task", "type")}:
        return CE_TASK
    if ("hotspots",) in paths and paths & {("hotspots", "[]", "ruleKey"), ("paging",)}:
        return HOTSPOTS
    if ("issues",) not in paths:
        return None
    # the import format names its engine and rule by id, and places issues by primaryLocation
    if paths & {("issues", "[]", "engineId"), ("issues", "[]", "ruleId"), ("issues", "[]", "primaryLocation")}:
        return EXTERNAL_ISSUES
    if paths & {("issues", "[]", "key"), ("issues", "[]", "rule"), ("paging",), ("total",)}:
        return ISSUES_SEARCH
    return None


def key_paths(text: str, max_depth: int = 3, max_nesting: int = MAX_JSON_NESTING) -> set[tuple[str, ...]]:
    """The key paths of a JSON object, read from its (possibly truncated) first bytes.

    ``{"issues": [{"rule": ...}]}`` gives ``("issues",)`` and ``("issues", "[]", "rule")``. Only
    the head of a report is available at detection, so this tolerates text cut off anywhere.
    Linear in the text: containers below ``max_depth`` keep no path, and nesting deeper than
    ``max_nesting`` raises ``ValueError`` (no report of any scanner nests that deep).
    """
    paths: set[tuple[str, ...]] = set()
    # one entry per open container: its path (None below max_depth, where no key is recorded)
    # and whether it is an object
    stack: list[tuple[tuple[str, ...] | None, bool]] = []
    key: str | None = None
    expect_key = False
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "{[":
            path: tuple[str, ...] | None
            if not stack:
                path = ()
            else:
                parent, parent_is_object = stack[-1]
                step = (key or "") if parent_is_object else "[]"
                path = (*parent, step) if parent is not None and len(parent) < max_depth else None
            if len(stack) >= max_nesting:
                raise ValueError(f"JSON nests deeper than {max_nesting} levels; refused")
            stack.append((path, token == "{"))
            expect_key = token == "{"
        elif token in "}]":
            if not stack:
                break
            stack.pop()
            expect_key = False
        elif token == ",":
            expect_key = bool(stack) and stack[-1][1]
        elif token == ":":
            expect_key = False
        elif expect_key:
            key = token[1:-1]
            parent = stack[-1][0]
            if parent is not None and len(parent) < max_depth:
                paths.add((*parent, key))
            expect_key = False
    return paths


def _is_report_task(text: str) -> bool:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines or not all(_REPORT_TASK_LINE.match(line) for line in lines[:-1]):
        return False  # the last line may be cut off by the head
    keys = {line.partition("=")[0] for line in lines}
    return {"projectKey", "ceTaskId"} <= keys
