"""SonarQube responses as gate findings and metrics: one code path for saved files and live reads.

Each function takes one decoded response and returns a ``Normalized`` whose metric keys are its
own (``quality_gate``, ``issues``, ``hotspots``, ``measures``; ``project`` where the response names
it), so several SonarQube reports in one scan merge without clashing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gate.models import Finding, FindingKind, Location, ScanResult, Severity, fingerprint
from gate_sonarqube.api import (
    Component,
    Condition,
    Hotspot,
    HotspotsSearch,
    Issue,
    MeasuresResponse,
    ProjectStatusResponse,
    TextRange,
)

SCANNER = "sonarqube"

# Impacts (10.2+, MQR mode) and the legacy severity use different words for different scales.
_IMPACT_SEVERITY = {
    "BLOCKER": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
    "INFO": Severity.INFO,
}
_LEGACY_SEVERITY = {
    "BLOCKER": Severity.CRITICAL,
    "CRITICAL": Severity.HIGH,
    "MAJOR": Severity.MEDIUM,
    "MINOR": Severity.LOW,
    "INFO": Severity.INFO,
}
_PROBABILITY = {"HIGH": Severity.HIGH, "MEDIUM": Severity.MEDIUM, "LOW": Severity.LOW}
_CLOSED_STATUS = frozenset({"CLOSED", "RESOLVED"})
_CLOSED_ISSUE_STATUS = frozenset({"FIXED", "ACCEPTED", "FALSE_POSITIVE"})
_PROJECT_QUALIFIERS = frozenset({"TRK", "APP", "VW", "SVW"})


@dataclass
class Normalized:
    """Findings, metrics and notes from one or more responses about one project."""

    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, other: Normalized) -> None:
        """Take in another response's part; metric keys are disjoint by construction."""
        self.findings.extend(other.findings)
        self.metrics.update(other.metrics)
        self.notes.extend(other.notes)

    def result(self, fmt: str, version: str, report: str, sha256: str) -> ScanResult:
        """The ``ScanResult`` of the report (or live read) these came from."""
        return ScanResult(
            scanner=SCANNER,
            scanner_version=version,
            format=fmt,
            report=report,
            report_sha256=sha256,
            findings=self.findings,
            metrics=self.metrics,
            notes=tuple(self.notes),
        )


def quality_gate(response: ProjectStatusResponse) -> Normalized:
    """The gate's status and conditions as metrics; each failed (ERROR) condition as a finding."""
    status = response.project_status
    gate: dict[str, Any] = {
        "status": status.status,
        "conditions": [
            {
                "metric": c.metric_key,
                "status": c.status,
                "comparator": c.comparator,
                "error_threshold": _text(c.error_threshold),
                "actual_value": _text(c.actual_value),
            }
            for c in status.conditions
        ],
    }
    if status.cayc_status is not None:
        gate["cayc_status"] = status.cayc_status
    findings = [_condition_finding(c) for c in status.conditions if c.status == "ERROR"]
    return Normalized(findings, {"quality_gate": gate})


def _condition_finding(c: Condition) -> Finding:
    actual = _text(c.actual_value)
    threshold = _text(c.error_threshold)
    comparator = c.comparator or "?"
    if threshold is not None:
        why = f"must not be {comparator} {threshold}"
    else:  # SonarQube's own example has ERROR conditions without an errorThreshold
        why = f"fails its {comparator} condition; the server gave no error threshold"
    return Finding(
        id=fingerprint(SCANNER, FindingKind.QUALITY_GATE, c.metric_key),
        scanner=SCANNER,
        kind=FindingKind.QUALITY_GATE,
        rule=c.metric_key,
        severity=Severity.HIGH,
        title=f"Quality gate condition on {c.metric_key} failed",
        message=f"{c.metric_key} is {actual if actual is not None else 'not measured'} ({why})",
    )


def issues(found: Iterable[Issue], total: int | None = None) -> Normalized:
    """Open issues as ``code_issue`` findings; resolved/closed ones are only counted.

    ``total`` is the server's count of matching issues (``paging.total``); fewer in hand means
    the report is one page of many, which is said in a note rather than passed over.
    """
    distinct = list(dict.fromkeys(found))  # a live read may see an issue twice as pages shift
    open_issues = [i for i in distinct if not _closed(i)]
    findings, notes = _unique_ids([_issue_finding(i) for i in open_issues], open_issues)
    metrics: dict[str, Any] = {"issues": {"open": len(open_issues), "closed": len(distinct) - len(open_issues)}}
    _set_project(metrics, (i.project for i in distinct))
    if total is not None and total > len(distinct):
        notes.append(
            f"holds {len(distinct)} of the {total} issues the server matched (paging.total): "
            "the rest are not in this report; save every page, or pass report-task.txt for a live read"
        )
    return Normalized(findings, metrics, notes)


def _closed(issue: Issue) -> bool:
    return issue.status in _CLOSED_STATUS or issue.issue_status in _CLOSED_ISSUE_STATUS


def _issue_severity(issue: Issue) -> Severity:
    if issue.impacts:
        return max((_IMPACT_SEVERITY.get(i.severity, Severity.UNKNOWN) for i in issue.impacts), key=lambda s: s.rank)
    if issue.severity:
        return _LEGACY_SEVERITY.get(issue.severity, Severity.UNKNOWN)
    return Severity.UNKNOWN


def _issue_finding(issue: Issue, *extra_identity: str) -> Finding:
    raw: dict[str, Any] = {"key": issue.key, "component": issue.component}
    for name in ("type", "status", "issue_status", "resolution"):
        if (value := getattr(issue, name)) is not None:
            raw[_camel(name)] = value
    if issue.impacts:
        raw["impacts"] = [{"softwareQuality": i.software_quality, "severity": i.severity} for i in issue.impacts]
    if issue.tags:
        raw["tags"] = list(issue.tags)
    return Finding(
        id=fingerprint(SCANNER, issue.rule, issue.component, issue.key, *extra_identity),
        scanner=SCANNER,
        kind=FindingKind.CODE_ISSUE,
        rule=issue.rule,
        severity=_issue_severity(issue),
        title=issue.message or issue.rule,
        message=issue.message,
        location=_location(issue.component, issue.project, issue.text_range, issue.line),
        raw=raw,
    )


def _unique_ids(findings: list[Finding], sources: list[Issue]) -> tuple[list[Finding], list[str]]:
    """Keep ids unique when one issue key carries different issues.

    SonarQube issue keys are unique, but saved (e.g. anonymized) responses can repeat one with
    other content; those issues then take their message into the id too, and a note says so.
    """
    seen: dict[str, int] = {}
    for f in findings:
        seen[f.id] = seen.get(f.id, 0) + 1
    repeated = {fid for fid, n in seen.items() if n > 1}
    if not repeated:
        return findings, []
    keys = sorted({i.key for f, i in zip(findings, sources) if f.id in repeated})
    fixed = [_issue_finding(i, i.message) if f.id in repeated else f for f, i in zip(findings, sources)]
    notes = [
        f"issue key(s) {', '.join(keys)} appear more than once with different content; their ids include the message"
    ]
    return fixed, notes


def hotspots(response: HotspotsSearch) -> Normalized:
    """Security hotspots still TO_REVIEW as ``code_issue`` findings; reviewed ones are only counted."""
    pending = [h for h in response.hotspots if h.status == "TO_REVIEW"]
    metrics: dict[str, Any] = {
        "hotspots": {"to_review": len(pending), "reviewed": len(response.hotspots) - len(pending)}
    }
    _set_project(metrics, (h.project for h in response.hotspots))
    notes = []
    total = response.paging.total if response.paging else None
    if total is not None and total > len(response.hotspots):
        notes.append(f"holds {len(response.hotspots)} of the {total} hotspots the server matched (paging.total)")
    return Normalized([_hotspot_finding(h) for h in pending], metrics, notes)


def _hotspot_finding(h: Hotspot) -> Finding:
    raw = {
        k: v
        for k, v in {
            "key": h.key,
            "component": h.component,
            "status": h.status,
            "securityCategory": h.security_category,
            "vulnerabilityProbability": h.vulnerability_probability,
        }.items()
        if v is not None
    }
    return Finding(
        id=fingerprint(SCANNER, h.rule_key, h.component, h.key),
        scanner=SCANNER,
        kind=FindingKind.CODE_ISSUE,
        rule=h.rule_key,
        severity=_PROBABILITY.get(h.vulnerability_probability or "", Severity.UNKNOWN),
        title=h.message or h.rule_key,
        message=h.message,
        location=_location(h.component, h.project, h.text_range, h.line),
        raw=raw,
    )


def measures(response: MeasuresResponse) -> Normalized:
    """Measures as numbers where they parse (SonarQube sends strings), else as the string given."""
    component = response.component
    values: dict[str, float | str] = {}
    for m in component.measures:
        value = m.value
        if value is None:  # new_* measures carry only the value over the new-code period
            period = m.period or (m.periods[0] if m.periods else None)
            value = period.value if period else None
        if value is not None:
            values[m.metric] = _number(value)
    metrics: dict[str, Any] = {"measures": values}
    notes = []
    if _is_project(component):
        metrics["project"] = component.key
    else:
        notes.append(
            f"measures are of component {component.key!r} (qualifier {component.qualifier}), not of a whole project"
        )
    return Normalized([], metrics, notes)


def _is_project(component: Component) -> bool:
    return component.qualifier is None or component.qualifier in _PROJECT_QUALIFIERS


def _location(component: str, project: str | None, text_range: TextRange | None, line: int | None) -> Location | None:
    """The file a finding is in, relative to the project; None for issues on the project itself."""
    if project and component == project:
        return None
    prefix = f"{project}:" if project else ""
    path = component[len(prefix) :] if prefix and component.startswith(prefix) else component
    start = text_range.start_line if text_range and text_range.start_line is not None else line
    end = text_range.end_line if text_range and text_range.end_line is not None else start
    return Location(path=path, start_line=start, end_line=end)


def _set_project(metrics: dict[str, Any], projects: Iterable[str | None]) -> None:
    """``metrics["project"]`` when every item names the same project."""
    named = {p for p in projects if p}
    if len(named) == 1:
        metrics["project"] = named.pop()


def _number(value: str | float) -> float | str:
    try:
        number = float(value)
    except ValueError:
        return value
    return number if math.isfinite(number) else str(value)


def _text(value: str | float | None) -> str | None:
    """Thresholds and values as the API gives them: strings (a bare number is turned into one)."""
    if value is None or isinstance(value, str):
        return value
    return str(int(value)) if value.is_integer() else repr(value)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
