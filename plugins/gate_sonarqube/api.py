"""What the SonarQube plugin reads: Web API responses as typed structs, and sonar-scanner's report-task.txt.

Only the fields gate uses are declared, so msgspec skips the rest (flows, comments, facets, ...)
without materializing them. Python names are snake_case; ``rename="camel"`` maps them to the
Web API's camelCase keys. The same structs decode saved files and live responses.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from gate.scanning.report import Report

#: SonarQube gives measure values and thresholds as strings; a number is accepted and kept as given.
Value = str | float | None


class _Api(msgspec.Struct, rename="camel", frozen=True):
    # subclasses inherit frozen; they restate it because type checkers do not see it inherited
    pass


class TextRange(_Api, frozen=True):
    start_line: int | None = None
    end_line: int | None = None


class Impact(_Api, frozen=True):
    software_quality: str = ""
    severity: str = ""


class Issue(_Api, frozen=True):
    """One issue of ``api/issues/search``: 10.x (severity/type/status) or MQR (impacts/issueStatus)."""

    key: str
    rule: str
    component: str
    project: str | None = None
    message: str = ""
    line: int | None = None
    text_range: TextRange | None = None
    severity: str | None = None
    type: str | None = None
    status: str | None = None
    issue_status: str | None = None
    resolution: str | None = None
    impacts: tuple[Impact, ...] = ()
    tags: tuple[str, ...] = ()


class Paging(_Api, frozen=True):
    page_index: int = 1
    page_size: int = 0
    total: int = 0


class IssuesSearch(_Api, frozen=True):
    """``api/issues/search``; older servers give ``total/p/ps`` beside (or instead of) ``paging``."""

    issues: tuple[Issue, ...]
    paging: Paging | None = None
    total: int | None = None

    @property
    def total_count(self) -> int | None:
        """How many issues match the query across all pages, if the response says."""
        return self.paging.total if self.paging is not None else self.total


class Hotspot(_Api, frozen=True):
    key: str
    component: str
    rule_key: str
    project: str | None = None
    security_category: str | None = None
    vulnerability_probability: str | None = None
    status: str = ""
    resolution: str | None = None
    message: str = ""
    line: int | None = None
    text_range: TextRange | None = None


class HotspotsSearch(_Api, frozen=True):
    """``api/hotspots/search``."""

    hotspots: tuple[Hotspot, ...]
    paging: Paging | None = None


class Condition(_Api, frozen=True):
    metric_key: str
    status: str
    comparator: str | None = None
    error_threshold: Value = None
    actual_value: Value = None


class ProjectStatus(_Api, frozen=True):
    status: str
    conditions: tuple[Condition, ...] = ()
    cayc_status: str | None = None


class ProjectStatusResponse(_Api, frozen=True):
    """``api/qualitygates/project_status`` (current single ``period`` and legacy ``periods[]`` alike)."""

    project_status: ProjectStatus


class PeriodValue(_Api, frozen=True):
    value: Value = None


class Measure(_Api, frozen=True):
    metric: str
    value: Value = None
    period: PeriodValue | None = None
    periods: tuple[PeriodValue, ...] = ()  # servers before 8.x list one value per period


class Component(_Api, frozen=True):
    key: str
    qualifier: str | None = None
    measures: tuple[Measure, ...] = ()


class MeasuresResponse(_Api, frozen=True):
    """``api/measures/component``."""

    component: Component


class CeTask(_Api, frozen=True):
    id: str
    status: str
    analysis_id: str | None = None
    error_message: str | None = None


class CeTaskResponse(_Api, frozen=True):
    """``api/ce/task``: the state of the background task that processes an analysis."""

    task: CeTask


class ApiMessage(_Api, frozen=True):
    msg: str = ""


class ApiErrors(_Api, frozen=True):
    """The body SonarQube sends with a 4xx/5xx: ``{"errors": [{"msg": ...}]}``."""

    errors: tuple[ApiMessage, ...] = ()


@dataclass(frozen=True)
class ReportTask:
    """sonar-scanner's ``.scannerwork/report-task.txt``: where the analysis went and its task id."""

    project_key: str
    server_url: str
    ce_task_id: str
    server_version: str = "unknown"
    branch: str | None = None
    pull_request: str | None = None

    @classmethod
    def read(cls, report: Report) -> ReportTask:
        """Parse the ``key=value`` lines; projectKey, serverUrl and ceTaskId are required."""
        values: dict[str, str] = {}
        for number, line in report.lines():
            text = line.strip()
            if not text or text.startswith(("#", "!")):
                continue
            key, sep, value = text.partition("=")
            if not sep:
                raise report.error(f"line {number} is not key=value: {text[:80]!r}")
            values[key.strip()] = value.strip()
        missing = [k for k in ("projectKey", "serverUrl", "ceTaskId") if not values.get(k)]
        if missing:
            raise report.error(f"report-task.txt lacks {', '.join(missing)}")
        return cls(
            project_key=values["projectKey"],
            server_url=values["serverUrl"],
            ce_task_id=values["ceTaskId"],
            server_version=values.get("serverVersion") or "unknown",
            branch=values.get("branch") or None,
            pull_request=values.get("pullRequest") or None,
        )
