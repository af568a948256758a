"""The SonarQube plugin on real SonarQube responses (tests/data/sonarqube, see SOURCES.md there).

SonarQube itself (a Java server with Elasticsearch and a database) cannot run here, so the live
tests (marked ``server``) talk to a stand-in for it: a small ``http.server`` on 127.0.0.1 that
answers the Web API endpoints gate calls with SonarQube's own example responses from
tests/data/sonarqube, checks the token like SonarQube does (basic auth, token as user), reports the
analysis task PENDING before SUCCESS, and pages issues as ``api/issues/search`` does (including its
refusal to page past 10,000 results). The client under test is unchanged against a real server.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from gate.errors import ReportError, ScannerServiceError, UsageError
from gate.models import FindingKind, ScanResult, Severity
from gate.scanning.report import Report
from gate_sonarqube import SonarQubeScanner
from gate_sonarqube.api import Impact, Issue
from gate_sonarqube.normalize import issues as normalize_issues
from gate_sonarqube.scanner import key_paths

SONAR = Path(__file__).resolve().parent.parent / "data" / "sonarqube"
PROJECT_STATUS = SONAR / "sonarqube-api-qualitygates-project_status-example.json"
PROJECT_STATUS_LEGACY = SONAR / "sonarqube-api-qualitygates-project_status-example-legacy-periods.json"
ISSUES_REAL = SONAR / "sonarqube-api-issues-search-real-server-anonymized.json"
ISSUES_10X = SONAR / "sonarqube-api-issues-search-example-10x-with-severity-type.json"
ISSUES_MQR = SONAR / "sonarqube-api-issues-search-example.json"
MEASURES = SONAR / "sonarqube-api-measures-component-example.json"
HOTSPOTS = SONAR / "sonarqube-api-hotspots-search-real-server-anonymized.json"
CE_TASK = SONAR / "sonarqube-api-ce-task-example.json"
REPORT_TASK = SONAR / "sonar-scanner-report-task-written-here.txt"
EXTERNAL_RULES = SONAR / "sonarqube-generic-external-issues-10.3-rules-format.json"
EXTERNAL_LEGACY = SONAR / "sonarqube-generic-external-issues-legacy-format.json"

TOKEN = "squ_standin0123456789abcdef"
TASK_ID = "AZJ3cbb2kGd1xQ6mT0nV"  # from the report-task.txt
ANALYSIS_ID = "AYhSC3WDE6ILQDIMAPIp"  # from the ce/task example
PROJECT = "shop-cart"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def scan(path: Path) -> ScanResult:
    scanner = SonarQubeScanner()
    report = Report.open(path)
    fmt = scanner.detect(report)
    assert fmt is not None, f"{path.name} not detected as SonarQube"
    return scanner.scan(report, fmt)


def edited(tmp_path: Path, source: Path, edit: Callable[[Any], None]) -> Path:
    """A copy of ``source`` changed by ``edit`` (to reach a branch the real file does not)."""
    doc = load(source)
    edit(doc)
    return write_json(tmp_path / source.name, doc)


def generated_issues(n: int, project: str = PROJECT) -> list[dict[str, Any]]:
    """``n`` open issues with distinct keys, cycled from the real-server and MQR examples' issues."""
    mqr = load(ISSUES_MQR)["issues"][0] | {"issueStatus": "OPEN"}  # the example's issue is ACCEPTED
    bases = [*load(ISSUES_REAL)["issues"], mqr]
    issues = []
    for i in range(n):
        issue = copy.deepcopy(bases[i % len(bases)])
        old = issue["project"]
        issue["component"] = project + issue["component"][len(old) :]
        issue |= {"key": f"AZgen{i:06d}", "project": project}
        issues.append(issue)
    return issues


# --- detection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        (PROJECT_STATUS, "project-status"),
        (PROJECT_STATUS_LEGACY, "project-status"),
        (ISSUES_REAL, "issues-search"),
        (ISSUES_10X, "issues-search"),
        (ISSUES_MQR, "issues-search"),
        (MEASURES, "measures-component"),
        (HOTSPOTS, "hotspots-search"),
        (REPORT_TASK, "report-task"),
        (CE_TASK, "ce-task"),
        (EXTERNAL_RULES, "generic-external-issues"),
        (EXTERNAL_LEGACY, "generic-external-issues"),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_every_corpus_file_is_detected(path: Path, fmt: str) -> None:
    assert SonarQubeScanner().detect(Report.open(path)) == fmt


@pytest.mark.parametrize(
    "content",
    [
        '{"SchemaVersion": 2, "ArtifactName": "alpine:3.10", "Results": [{"Target": "x", "Vulnerabilities": []}]}',
        '[{"Target": "Pipfile.lock", "Vulnerabilities": null}]',
        '{"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [{"results": []}]}',
        '{"bomFormat": "CycloneDX", "components": [{"name": "a"}], "vulnerabilities": [{"id": "CVE-1"}]}',
        '{"meta": {"format": 3}, "files": {"a.py": {"summary": {}}}, "totals": {"percent_covered": 80}}',
        '<?xml version="1.0"?>\n<coverage line-rate="0.8"><packages/></coverage>\n',
        "TN:\nSF:src/a.js\nDA:1,1\nend_of_record\n",
        "mode: set\ngithub.com/a/b/c.go:3.14,5.2 1 1\n",
        "sonar.projectKey=shop-cart\nsonar.sources=src\n",
        '{"issues": []}',
        '{"errors": [{"msg": "Insufficient privileges"}]}',
    ],
    ids=[
        "trivy",
        "trivy-legacy",
        "sarif",
        "cyclonedx",
        "coverage.py",
        "cobertura",
        "lcov",
        "go",
        "sonar-project",
        "bare-issues",
        "api-error",
    ],
)
def test_other_reports_are_not_claimed(tmp_path: Path, content: str) -> None:
    path = tmp_path / "report"
    path.write_text(content)
    assert SonarQubeScanner().detect(Report.open(path)) is None


def test_detection_reads_only_the_head_of_a_large_response(tmp_path: Path) -> None:
    doc = {"issues": generated_issues(600), "paging": {"pageIndex": 1, "pageSize": 600, "total": 600}}
    path = write_json(tmp_path / "issues.json", doc)  # paging comes after 64 KiB of issues
    report = Report.open(path)
    assert report.size > len(report.head)
    assert SonarQubeScanner().detect(report) == "issues-search"
    assert len(scan(path).findings) == 600


def test_key_paths_tolerate_a_cut_off_head() -> None:
    paths = key_paths('{"a": {"b": [1, {"c": "x, {y}"}]}, "d": [{"e": "unterminated')
    assert paths == {("a",), ("a", "b"), ("d",), ("d", "[]", "e")}  # depth capped at 3


# --- quality gate ------------------------------------------------------------------------------


def test_project_status_gives_the_gate_and_its_failed_conditions() -> None:
    result = scan(PROJECT_STATUS)
    gate = result.metrics["quality_gate"]
    assert set(result.metrics) == {"quality_gate"}  # no project key in this response
    assert gate["status"] == "ERROR"
    assert gate["cayc_status"] == "non-compliant"
    assert len(gate["conditions"]) == 7
    assert gate["conditions"][0] == {
        "metric": "new_coverage",
        "status": "ERROR",
        "comparator": "LT",
        "error_threshold": "85",
        "actual_value": "82.50562381034781",
    }
    assert gate["conditions"][4]["error_threshold"] is None  # reopened_issues has no errorThreshold
    assert [(f.kind, f.rule, f.severity) for f in result.findings] == [
        (FindingKind.QUALITY_GATE, rule, Severity.HIGH)
        for rule in ("new_coverage", "new_blocker_violations", "new_critical_violations", "open_issues")
    ]
    messages = {f.rule: f.message for f in result.findings}
    assert messages["new_coverage"] == "new_coverage is 82.50562381034781 (must not be LT 85)"
    assert messages["open_issues"] == "open_issues is 17 (fails its GT condition; the server gave no error threshold)"
    assert result.scanner_version == "unknown"
    assert result.report_sha256 == hashlib.sha256(PROJECT_STATUS.read_bytes()).hexdigest()


def test_legacy_project_status_with_periods_reads_the_same() -> None:
    current, legacy = scan(PROJECT_STATUS), scan(PROJECT_STATUS_LEGACY)
    assert "cayc_status" not in legacy.metrics["quality_gate"]
    assert legacy.metrics["quality_gate"]["conditions"] == current.metrics["quality_gate"]["conditions"]
    assert [f.id for f in legacy.findings] == [f.id for f in current.findings]


def test_passed_gate_has_no_findings(tmp_path: Path) -> None:
    def passed(doc: Any) -> None:
        doc["projectStatus"] |= {"status": "OK", "conditions": [{"status": "OK", "metricKey": "new_coverage"}]}

    result = scan(edited(tmp_path, PROJECT_STATUS, passed))
    assert result.findings == []
    assert result.metrics["quality_gate"]["conditions"][0]["actual_value"] is None


# --- issues ------------------------------------------------------------------------------------


def test_real_server_issues_become_findings() -> None:
    result = scan(ISSUES_REAL)
    assert [(f.rule, f.severity) for f in result.findings] == [
        ("OWASP:UsingComponentWithKnownVulnerability", Severity.MEDIUM),  # MAJOR
        ("Web:TableWithoutCaptionCheck", Severity.LOW),  # MINOR
        ("typescript:S1533", Severity.LOW),
        ("OWASP:UsingComponentWithKnownVulnerability", Severity.MEDIUM),
        ("OWASP:UsingComponentWithKnownVulnerability", Severity.HIGH),  # CRITICAL
    ]
    assert all(f.kind is FindingKind.CODE_ISSUE for f in result.findings)
    assert result.metrics == {"issues": {"open": 5, "closed": 0}, "project": "testapplication"}
    table = result.findings[1]
    assert table.title == table.message == "Add a description to this table."
    assert table.location is not None
    assert (table.location.path, table.location.start_line, table.location.end_line) == (
        "src/app/pages/fjiowefjewio/fjwieof/fjiwoe/details.html",
        59,
        59,
    )
    assert table.raw == {
        "key": "asdfwfewfwefewf",
        "component": "testapplication:src/app/pages/fjiowefjewio/fjwieof/fjiwoe/details.html",
        "type": "BUG",
        "status": "OPEN",
        "tags": ["accessibility", "wcag2-a"],
    }
    # the dependency-check issues are on the project itself, not on a file
    assert result.findings[0].location is None


def test_a_repeated_issue_key_keeps_ids_unique_and_says_so() -> None:
    result = scan(ISSUES_REAL)  # two different issues share key fjioefjwoefisdfjo in this file
    assert len({f.id for f in result.findings}) == 5
    assert any("fjioefjwoefisdfjo" in note for note in result.notes)


def test_ids_are_stable_across_copies(tmp_path: Path) -> None:
    copy_ = tmp_path / "next-build.json"
    copy_.write_bytes(ISSUES_REAL.read_bytes())
    assert [f.id for f in scan(ISSUES_REAL).findings] == [f.id for f in scan(copy_).findings]


@pytest.mark.parametrize(("path", "status_field"), [(ISSUES_10X, "status"), (ISSUES_MQR, "issueStatus")])
def test_resolved_issues_are_counted_not_found(path: Path, status_field: str) -> None:
    result = scan(path)  # 10.x: RESOLVED/WONTFIX; MQR: issueStatus ACCEPTED
    assert result.findings == []
    assert result.metrics == {"issues": {"open": 0, "closed": 1}, "project": "com.github.kevinsawicki:http-request"}


def test_mqr_issue_severity_comes_from_impacts(tmp_path: Path) -> None:
    result = scan(edited(tmp_path, ISSUES_MQR, lambda d: d["issues"][0].update(issueStatus="OPEN")))
    (f,) = result.findings
    assert (f.rule, f.severity) == ("java:S1144", Severity.HIGH)  # impacts: SECURITY HIGH; no severity field
    assert f.location is not None
    # the project key itself holds a colon; textRange wins over line 81
    where = (f.location.path, f.location.start_line, f.location.end_line)
    assert where == ("com.github.kevinsawicki.http.HttpRequest", 2, 2)
    assert f.raw is not None and f.raw["issueStatus"] == "OPEN"
    assert f.raw["impacts"] == [{"softwareQuality": "SECURITY", "severity": "HIGH"}]
    assert "comments" not in f.raw and "flows" not in f.raw


def test_10x_issue_prefers_impacts_over_the_legacy_severity(tmp_path: Path) -> None:
    def reopen(doc: Any) -> None:
        doc["issues"][0].update(status="REOPENED", resolution=None)

    assert scan(edited(tmp_path, ISSUES_10X, reopen)).findings[0].severity is Severity.HIGH  # not MAJOR→medium

    def without_impacts(doc: Any) -> None:
        reopen(doc)
        del doc["issues"][0]["impacts"]

    assert scan(edited(tmp_path, ISSUES_10X, without_impacts)).findings[0].severity is Severity.MEDIUM


@pytest.mark.parametrize(
    ("impacts", "legacy", "expected"),
    [
        (("BLOCKER", "LOW"), None, Severity.CRITICAL),
        (("LOW", "MEDIUM"), None, Severity.MEDIUM),
        (("INFO",), "BLOCKER", Severity.INFO),
        ((), "BLOCKER", Severity.CRITICAL),
        ((), "CRITICAL", Severity.HIGH),
        ((), "MINOR", Severity.LOW),
        ((), "INFO", Severity.INFO),
        ((), None, Severity.UNKNOWN),
        (("SEVERE",), None, Severity.UNKNOWN),
    ],
)
def test_severity_scales(impacts: tuple[str, ...], legacy: str | None, expected: Severity) -> None:
    impact_list = tuple(Impact("SECURITY", s) for s in impacts)
    issue = Issue(key="k", rule="r", component="p:f", project="p", severity=legacy, impacts=impact_list)
    assert normalize_issues([issue]).findings[0].severity is expected


def test_a_partial_page_is_noted(tmp_path: Path) -> None:
    result = scan(edited(tmp_path, ISSUES_REAL, lambda d: d["paging"].update(total=1200)))
    assert len(result.findings) == 5
    assert any("5 of the 1200 issues" in note for note in result.notes)


# --- hotspots and measures ---------------------------------------------------------------------


def test_hotspots_to_review_become_findings(tmp_path: Path) -> None:
    result = scan(HOTSPOTS)
    assert [(f.rule, f.severity) for f in result.findings] == [
        ("typescript:7777", Severity.HIGH),
        ("Web:1222", Severity.LOW),
        ("Web:9876", Severity.LOW),
        ("Web:12345", Severity.LOW),
    ]
    assert result.metrics == {"hotspots": {"to_review": 4, "reviewed": 0}, "project": "nana-ofewfe"}
    assert result.findings[0].location is not None and result.findings[0].location.path == "src/app/component.asdf"
    assert result.findings[0].raw is not None and result.findings[0].raw["securityCategory"] == "xss"

    reviewed = scan(edited(tmp_path, HOTSPOTS, lambda d: d["hotspots"][0].update(status="REVIEWED")))
    assert [f.rule for f in reviewed.findings] == ["Web:1222", "Web:9876", "Web:12345"]
    assert reviewed.metrics["hotspots"] == {"to_review": 3, "reviewed": 1}


def test_measures_are_numbers_and_period_only_values_count(tmp_path: Path) -> None:
    result = scan(MEASURES)
    assert result.metrics == {"measures": {"complexity": 12.0, "new_violations": 25.0, "ncloc": 114.0}}
    # the example is one file's measures, so it names no project and says so
    assert any("ElementImpl.java" in note for note in result.notes)

    def project_level(doc: Any) -> None:
        doc["component"] |= {"key": PROJECT, "qualifier": "TRK"}
        doc["component"]["measures"].append({"metric": "alert_status", "value": "OK"})

    project = scan(edited(tmp_path, MEASURES, project_level))
    assert project.metrics["project"] == PROJECT
    assert project.metrics["measures"]["alert_status"] == "OK"
    assert project.notes == ()


# --- refusals and malformed files ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "says"),
    [
        (CE_TASK, "holds no results"),
        (EXTERNAL_RULES, "generic external issues"),
        (EXTERNAL_LEGACY, "generic external issues"),
    ],
    ids=["ce-task", "external-rules", "external-legacy"],
)
def test_refused_files_say_what_to_pass_instead(path: Path, says: str) -> None:
    with pytest.raises(ReportError) as e:
        scan(path)
    message = e.value.diagnostics()
    assert str(path) in message and says in message
    assert "report-task.txt" in message and "api/issues/search" in message


def test_truncated_and_mistyped_responses_are_errors(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(PROJECT_STATUS.read_bytes()[:700])
    with pytest.raises(ReportError, match="truncated"):
        scan(truncated)
    mistyped = edited(tmp_path, ISSUES_REAL, lambda d: d["issues"][1].update(line="59"))
    with pytest.raises(ReportError, match=r"\$\.issues\[1\]\.line"):
        scan(mistyped)


def test_report_task_without_a_task_id_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "report-task.txt"
    path.write_text("projectKey=shop-cart\nceTaskId=\n")
    with pytest.raises(ReportError, match="lacks serverUrl, ceTaskId"):
        SonarQubeScanner().scan(Report.open(path), "report-task")


def test_saved_reports_merge_without_clashing() -> None:
    scanner = SonarQubeScanner()
    merged = scanner.merge_metrics([scan(p).metrics for p in (PROJECT_STATUS, ISSUES_REAL, MEASURES)])
    assert set(merged) == {"quality_gate", "issues", "measures", "project"}
    # two different projects in one scan are refused rather than mixed
    with pytest.raises(UsageError, match="metrics.sonarqube.project"):
        scanner.merge_metrics([scan(ISSUES_REAL).metrics, scan(HOTSPOTS).metrics])


def test_saved_files_are_read_without_importing_httpx() -> None:
    code = (
        "import sys\n"
        "from gate.scanning.report import Report\n"
        "from gate_sonarqube import SonarQubeScanner\n"
        "report = Report.open(sys.argv[1])\n"
        "SonarQubeScanner().scan(report, SonarQubeScanner().detect(report))\n"
        "assert 'httpx' not in sys.modules, 'httpx was imported for a saved file'\n"
    )
    subprocess.run([sys.executable, "-c", code, str(ISSUES_REAL)], check=True)


# --- through the CLI ---------------------------------------------------------------------------


def test_cli_scans_three_saved_files_into_one_document(gate: Callable[..., Any], validate_input: Any) -> None:
    reports = [f"sonarqube={PROJECT_STATUS}", f"sonarqube={ISSUES_REAL}", f"auto={MEASURES}"]
    run = gate("scan", *(arg for r in reports for arg in ("--report", r)), "--format", "json")
    assert run.code == 0, run.err
    doc = run.json()
    validate_input(doc)
    assert Counter(f["kind"] for f in doc["findings"]) == {"quality_gate": 4, "code_issue": 5}
    sonar = doc["metrics"]["sonarqube"]
    assert sonar["quality_gate"]["status"] == "ERROR"
    assert sonar["issues"] == {"open": 5, "closed": 0}
    assert sonar["measures"]["ncloc"] == 114.0
    assert sonar["project"] == "testapplication"
    assert [s["format"] for s in doc["scanners"]] == ["project-status", "issues-search", "measures-component"]


@pytest.mark.parametrize("path", [CE_TASK, EXTERNAL_LEGACY], ids=["ce-task", "external"])
def test_cli_refusal_is_one_error_line(gate: Callable[..., Any], path: Path) -> None:
    run = gate("scan", "--report", f"sonarqube={path}", "--format", "json")
    assert run.code == 2
    assert run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gate: error:") and "report-task.txt" in lines[0]


# --- live reads against the stand-in SonarQube -------------------------------------------------


class StandIn:
    """What the stand-in SonarQube answers, and what it was asked."""

    def __init__(self) -> None:
        self.url = ""
        self.task_statuses = ["PENDING", "SUCCESS"]  # the last one repeats
        self.issues = generated_issues(1234)
        self.claimed_total: int | None = None  # a paging.total other than len(issues)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.result_bodies: list[bytes] = []
        self.auth = "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> tuple[int, bytes]:
        self.requests.append((path, query))
        if authorization != self.auth:
            return 401, b""  # what SonarQube sends to an unknown or missing token
        if path == "/api/ce/task":
            return self.ce_task(query)
        if path == "/api/qualitygates/project_status" and query.get("analysisId") == ANALYSIS_ID:
            return self.result(PROJECT_STATUS.read_bytes())
        if path == "/api/issues/search" and query.get("componentKeys") == PROJECT and query.get("resolved") == "false":
            return self.issue_page(int(query["p"]), int(query["ps"]))
        if path == "/api/measures/component" and query.get("component") == PROJECT:
            return self.result(MEASURES.read_bytes())
        return 404, errors(f"Unknown url: {path}")

    def ce_task(self, query: dict[str, str]) -> tuple[int, bytes]:
        if query.get("id") != TASK_ID:
            return 404, errors(f"No activity found for task '{query.get('id')}'")
        status = self.task_statuses.pop(0) if len(self.task_statuses) > 1 else self.task_statuses[0]
        doc = load(CE_TASK)
        doc["task"]["status"] = status
        if status == "FAILED":
            doc["task"]["errorMessage"] = "Fail to extract report AYhSC2 from database"
        return 200, json.dumps(doc).encode()

    def issue_page(self, page: int, size: int) -> tuple[int, bytes]:
        if page * size > 10_000:
            return 400, errors(f"Can return only the first 10000 results. {page * size}th result asked.")
        total = self.claimed_total if self.claimed_total is not None else len(self.issues)
        chunk = self.issues[(page - 1) * size : page * size]
        paging = {"pageIndex": page, "pageSize": size, "total": total}
        doc = {"total": total, "p": page, "ps": size, "paging": paging, "issues": chunk, "components": []}
        return self.result(json.dumps(doc).encode())

    def result(self, body: bytes) -> tuple[int, bytes]:
        self.result_bodies.append(body)
        return 200, body

    def asked(self, path: str) -> list[dict[str, str]]:
        return [q for p, q in self.requests if p == path]


def errors(msg: str) -> bytes:
    return json.dumps({"errors": [{"msg": msg}]}).encode()


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            status, body = state.answer(url.path, dict(parse_qsl(url.query)), self.headers.get("Authorization"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    return Handler


@pytest.fixture
def sonar(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    """The stand-in SonarQube on a free port of 127.0.0.1, with the environment pointing at it."""
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("SONAR_HOST_URL", state.url)  # report-task.txt names port 9000
    monkeypatch.setenv("SONAR_TOKEN", TOKEN)
    monkeypatch.setenv("GATE_SONAR_POLL_INTERVAL", "0.01")
    monkeypatch.delenv("GATE_SONAR_TIMEOUT", raising=False)
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.server
def test_live_read_waits_then_fetches_gate_all_issue_pages_and_measures(sonar: StandIn) -> None:
    result = scan(REPORT_TASK)
    assert [q["id"] for q in sonar.asked("/api/ce/task")] == [TASK_ID, TASK_ID]  # PENDING, then SUCCESS
    pages = sonar.asked("/api/issues/search")
    assert [(q["p"], q["ps"], q["branch"]) for q in pages] == [(p, "500", "main") for p in ("1", "2", "3")]
    assert sonar.asked("/api/measures/component")[0]["metricKeys"].split(",")[:2] == ["coverage", "new_coverage"]

    issues = [f for f in result.findings if f.kind is FindingKind.CODE_ISSUE]
    assert len(issues) == len({f.id for f in issues}) == 1234
    assert {f.raw["key"] for f in issues if f.raw} == {i["key"] for i in sonar.issues}
    cycled = [len(range(k, 1234, 6)) for k in range(6)]  # how often each of the 6 example issues repeats
    assert Counter(f.severity for f in issues) == {
        Severity.MEDIUM: cycled[0] + cycled[3],  # MAJOR
        Severity.LOW: cycled[1] + cycled[2],  # MINOR
        Severity.HIGH: cycled[4] + cycled[5],  # CRITICAL, and the MQR issue's impacts HIGH
    }
    assert [f.rule for f in result.findings if f.kind is FindingKind.QUALITY_GATE] == [
        "new_coverage",
        "new_blocker_violations",
        "new_critical_violations",
        "open_issues",
    ]
    assert result.metrics["project"] == PROJECT
    assert result.metrics["issues"] == {"open": 1234, "closed": 0}
    assert result.metrics["quality_gate"]["status"] == "ERROR"
    assert result.metrics["measures"]["complexity"] == 12.0
    assert (result.format, result.scanner_version) == ("report-task", "10.6.0.92116")
    assert result.report_sha256 == hashlib.sha256(b"".join(sonar.result_bodies)).hexdigest()


@pytest.mark.server
def test_live_read_through_the_cli_uses_report_task_server_url(
    sonar: StandIn, gate: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SONAR_HOST_URL")
    task = tmp_path / "report-task.txt"
    lines = REPORT_TASK.read_text().replace("http://127.0.0.1:9000", sonar.url).splitlines(keepends=True)
    task.write_text("".join(line for line in lines if not line.startswith("branch=")))
    run = gate("scan", "--report", f"sonarqube={task}", "--format", "json")
    assert run.code == 0, run.err
    doc = run.json()
    assert len(doc["findings"]) == 1234 + 4
    assert doc["metrics"]["sonarqube"]["issues"]["open"] == 1234
    assert doc["scanners"][0]["version"] == "10.6.0.92116"
    assert all("branch" not in q for q in sonar.asked("/api/issues/search"))
    assert TOKEN not in run.out + run.err


@pytest.mark.server
def test_failed_analysis_task_is_an_error(sonar: StandIn) -> None:
    sonar.task_statuses = ["IN_PROGRESS", "FAILED"]
    with pytest.raises(ScannerServiceError, match=f"{TASK_ID} ended FAILED: Fail to extract report"):
        scan(REPORT_TASK)
    assert sonar.asked("/api/issues/search") == []


@pytest.mark.server
def test_waiting_is_bounded_by_the_timeout(sonar: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    sonar.task_statuses = ["IN_PROGRESS"]
    monkeypatch.setenv("GATE_SONAR_TIMEOUT", "0.2")
    monkeypatch.setenv("GATE_SONAR_POLL_INTERVAL", "0.05")
    with pytest.raises(ScannerServiceError, match=r"still IN_PROGRESS after 0\.2s.*GATE_SONAR_TIMEOUT"):
        scan(REPORT_TASK)
    assert len(sonar.asked("/api/ce/task")) >= 2


@pytest.mark.server
@pytest.mark.parametrize("token", ["squ_wrong_token_9f8e7d", None])
def test_unauthorized_names_sonar_token_but_never_its_value(
    sonar: StandIn, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, token: str | None
) -> None:
    if token:
        monkeypatch.setenv("SONAR_TOKEN", token)
    else:
        monkeypatch.delenv("SONAR_TOKEN")
    with caplog.at_level(logging.DEBUG), pytest.raises(ScannerServiceError) as e:
        scan(REPORT_TASK)
    message = e.value.diagnostics()
    assert "HTTP 401" in message and "check SONAR_TOKEN" in message and f"{sonar.url}/api/ce/task" in message
    assert ("it is not set" in message) is (token is None)
    assert token is None or token not in message + caplog.text


@pytest.mark.server
def test_unknown_task_carries_the_servers_message(sonar: StandIn, tmp_path: Path) -> None:
    task = tmp_path / "report-task.txt"
    task.write_text(REPORT_TASK.read_text().replace(TASK_ID, "AZnope"))
    with pytest.raises(ScannerServiceError, match="HTTP 404 .*No activity found for task 'AZnope'"):
        scan(task)


@pytest.mark.server
def test_more_than_10000_open_issues_fail_rather_than_truncate(sonar: StandIn) -> None:
    sonar.claimed_total = 12_345
    with pytest.raises(ScannerServiceError, match="12345 open issues.*at most 10000"):
        scan(REPORT_TASK)
    assert len(sonar.asked("/api/issues/search")) == 1


@pytest.mark.server
def test_connection_refused_names_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    monkeypatch.setenv("SONAR_HOST_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SONAR_TOKEN", TOKEN)
    with pytest.raises(ScannerServiceError, match=f"cannot reach SonarQube at http://127.0.0.1:{port}") as e:
        scan(REPORT_TASK)
    assert TOKEN not in e.value.diagnostics()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("GATE_SONAR_TIMEOUT", "5min"), ("GATE_SONAR_POLL_INTERVAL", "-1"), ("SONAR_HOST_URL", "sonar.example.com:9000")],
)
def test_bad_settings_are_usage_errors_before_any_request(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("SONAR_HOST_URL", "http://127.0.0.1:9")  # nothing listens: a request would fail differently
    monkeypatch.setenv(variable, value)
    with pytest.raises(UsageError, match=variable):
        scan(REPORT_TASK)


def test_key_paths_refuse_nesting_deeper_than_any_report(tmp_path: Path) -> None:
    """Detection used to copy the whole key path into every nested container: quadratic in the nesting
    (a 131 KB file took 65 s and 20 GB through `--report auto=`). Now deep containers keep no path, and
    nesting past the limit is refused (issue 10, item 7; the CLI test runs the full-size file)."""
    from gate.scanning.parsing import MAX_JSON_NESTING

    at_the_limit = '{"a": ' + "[" * (MAX_JSON_NESTING - 2) + '{"b": 1'  # 512 open containers
    assert key_paths(at_the_limit) == {("a",)}
    with pytest.raises(ValueError, match=f"JSON nests deeper than {MAX_JSON_NESTING} levels"):
        key_paths('{"a": ' + "[" * MAX_JSON_NESTING)
    deep = tmp_path / "deep.json"
    deep.write_text('{"issues": ' + "[" * (MAX_JSON_NESTING + 10) + "]" * (MAX_JSON_NESTING + 10) + "}")
    with pytest.raises(ReportError, match="deep.json: JSON nests deeper than 512 levels; refused"):
        SonarQubeScanner().detect(Report.open(deep))


def test_key_paths_read_a_cut_off_string_full_of_escaped_quotes_to_its_end() -> None:
    r"""A head cut off inside a string of escaped quotes (``"\"\"\"...``) used to restart a scan to the end
    at every quote: quadratic. The cut-off string now runs to the end; what came before still counts."""
    assert key_paths('{"projectStatus": {"status": "OK"}, "note": "' + '\\"' * 2000) == {
        ("projectStatus",),
        ("projectStatus", "status"),
        ("note",),
    }
    assert key_paths('{"a": "ends in a backslash \\') == {("a",)}
