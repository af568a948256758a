"""The live read: wait for the analysis sonar-scanner submitted, then fetch its results from the Web API.

This is the only module of the plugin that imports httpx; the scanner imports it only when a
report-task.txt is read. Settings come from the environment, as sonar-scanner's do:
``SONAR_TOKEN`` (sent as the basic-auth user with an empty password), ``SONAR_HOST_URL`` (overrides
report-task's serverUrl), ``GATE_SONAR_TIMEOUT`` and ``GATE_SONAR_POLL_INTERVAL`` (seconds).
The token never appears in a message or a log line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Any, TypeVar

import httpx
import msgspec

from gate.errors import ScannerServiceError, UsageError
from gate.models import ScanResult
from gate.redact import redact
from gate_sonarqube import normalize
from gate_sonarqube.api import (
    ApiErrors,
    CeTask,
    CeTaskResponse,
    Issue,
    IssuesSearch,
    MeasuresResponse,
    ProjectStatusResponse,
    ReportTask,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

FORMAT = "report-task"
DEFAULT_TIMEOUT = 300.0
DEFAULT_POLL_INTERVAL = 2.0
PAGE_SIZE = 500
#: api/issues/search refuses to page past this many results.
MAX_SEARCH_RESULTS = 10_000
MEASURE_KEYS = (
    "coverage",
    "new_coverage",
    "bugs",
    "vulnerabilities",
    "code_smells",
    "security_hotspots",
    "duplicated_lines_density",
)
_WAITING = frozenset({"PENDING", "IN_PROGRESS"})


def read_live(task: ReportTask, report: str) -> ScanResult:
    """Wait for ``task``'s analysis, then read its quality gate, open issues and measures."""
    with SonarQubeClient(_server_url(task), os.environ.get("SONAR_TOKEN") or None) as client:
        analysis = client.wait_for_analysis(task.ce_task_id, _seconds("GATE_SONAR_TIMEOUT", DEFAULT_TIMEOUT))
        scope = {k: v for k, v in (("branch", task.branch), ("pullRequest", task.pull_request)) if v}
        # the analysis id pins the gate to this very analysis, not whatever ran last
        status_query = (
            {"analysisId": analysis.analysis_id} if analysis.analysis_id else {"projectKey": task.project_key, **scope}
        )
        status = client.get("api/qualitygates/project_status", status_query, ProjectStatusResponse)
        gathered = normalize.Normalized(metrics={"project": task.project_key})
        gathered.add(normalize.quality_gate(status))
        gathered.add(client.open_issues(task.project_key, scope))
        measures_query = {"component": task.project_key, "metricKeys": ",".join(MEASURE_KEYS), **scope}
        gathered.add(normalize.measures(client.get("api/measures/component", measures_query, MeasuresResponse)))
        return gathered.result(FORMAT, task.server_version, report, client.bodies_sha256())


class SonarQubeClient:
    """A few GETs against one SonarQube server, with errors a person can act on."""

    def __init__(self, server: str, token: str | None) -> None:
        self.server = _without_userinfo(server)
        self._token = token
        self._digest = hashlib.sha256()
        self._http = httpx.Client(
            base_url=server,
            auth=(token, "") if token else None,
            timeout=httpx.Timeout(30.0),
            follow_redirects=True,
            headers={"Accept": "application/json"},
        )

    def __enter__(self) -> SonarQubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def bodies_sha256(self) -> str:
        """sha256 over the result bodies fetched so far, in order (task polls excluded: they vary)."""
        return self._digest.hexdigest()

    def get(self, path: str, params: dict[str, Any], shape: type[T], record: bool = True) -> T:
        """GET ``path`` and decode the JSON body into ``shape``; ``record`` adds it to the digest."""
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as e:
            raise self._error(
                f"cannot reach SonarQube at {self.server} (GET {path}): {type(e).__name__}: {e}"
            ) from None
        url = _without_userinfo(str(response.request.url))
        if response.status_code >= 400:
            raise self._error(self._http_problem(response.status_code, url, response.content))
        if record:
            self._digest.update(response.content)
        try:
            return msgspec.json.decode(response.content, type=shape)
        except msgspec.DecodeError as e:
            raise self._error(f"{url}: unexpected answer from SonarQube: {e}") from None

    def wait_for_analysis(self, task_id: str, timeout: float) -> CeTask:
        """Poll ``api/ce/task`` until the server has processed the analysis (SUCCESS)."""
        interval = _seconds("GATE_SONAR_POLL_INTERVAL", DEFAULT_POLL_INTERVAL)
        deadline = time.monotonic() + timeout
        while True:
            task = self.get("api/ce/task", {"id": task_id}, CeTaskResponse, record=False).task
            if task.status == "SUCCESS":
                return task
            if task.status not in _WAITING:
                why = f": {task.error_message}" if task.error_message else ""
                raise self._error(f"SonarQube analysis task {task_id} ended {task.status}{why}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._error(
                    f"SonarQube analysis task {task_id} is still {task.status} after {timeout:g}s "
                    "(the server's compute engine is busy or stuck; raise GATE_SONAR_TIMEOUT to wait longer)"
                )
            logger.info("SonarQube task %s is %s; checking again in %gs", task_id, task.status, interval)
            time.sleep(min(interval, remaining))

    def open_issues(self, project: str, scope: dict[str, str]) -> normalize.Normalized:
        """Every unresolved issue of ``project``, page by page; over SonarQube's 10,000 limit is an error."""
        found: list[Issue] = []
        total: int | None = None
        page = 1
        while True:
            query = {"componentKeys": project, "resolved": "false", "ps": PAGE_SIZE, "p": page, **scope}
            response = self.get("api/issues/search", query, IssuesSearch)
            total = response.total_count if response.total_count is not None else total
            if total is not None and total > MAX_SEARCH_RESULTS:
                raise self._error(
                    f"{project} has {total} open issues; SonarQube's api/issues/search returns at most "
                    f"{MAX_SEARCH_RESULTS}, so gate cannot read them all (resolve issues, or gate on the quality "
                    "gate alone with a saved api/qualitygates/project_status response)"
                )
            found.extend(response.issues)
            # stop at the server's total, or at a short page when it gives none
            if not response.issues or (len(found) >= total if total is not None else len(response.issues) < PAGE_SIZE):
                break
            page += 1
        logger.info("read %d open issues of %s in %d page(s)", len(found), project, page)
        return normalize.issues(found, total)

    def _http_problem(self, status: int, url: str, body: bytes) -> str:
        try:
            detail = "; ".join(m.msg for m in msgspec.json.decode(body, type=ApiErrors).errors if m.msg)
        except msgspec.DecodeError:
            detail = ""
        hint = ""
        if status in (401, 403):
            hint = " (check SONAR_TOKEN" + ("" if self._token else ": it is not set") + ")"
        return f"SonarQube answered HTTP {status} for {url}{hint}" + (f": {detail}" if detail else "")

    def _error(self, message: str) -> ScannerServiceError:
        # belt and braces: a server may echo what it was sent
        return ScannerServiceError(redact(message, (self._token,) if self._token else ()))


def _server_url(task: ReportTask) -> str:
    """SONAR_HOST_URL if set, else report-task's serverUrl; either must be an http(s) URL."""
    if os.environ.get("SONAR_HOST_URL"):
        source, url = "SONAR_HOST_URL", os.environ["SONAR_HOST_URL"]
    else:
        source, url = "serverUrl in report-task.txt", task.server_url
    try:
        scheme = httpx.URL(url).scheme
    except httpx.InvalidURL:
        scheme = ""
    if scheme not in ("http", "https"):
        shown = url.rpartition("@")[2]  # never echo credentials someone put in the URL
        raise UsageError(f"{source} must be an http(s) URL such as https://sonarqube.example.com, not {shown!r}")
    return url.rstrip("/")


def _without_userinfo(url: str) -> str:
    """The server URL for messages, with any ``user:password@`` removed."""
    return str(httpx.URL(url).copy_with(userinfo=b""))


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value < 0:
        raise UsageError(f"{name} must not be negative ({raw})")
    return value
