"""A decision as a GitLab code quality report (the Code Climate subset GitLab reads).

GitLab shows ``artifacts:reports:codequality`` in the merge request widget in every tier (its
``sast`` report needs GitLab's own security schema and Ultimate, so gate writes this one). The
subset: a JSON array of issues, each with ``description``, ``check_name``, ``fingerprint``,
``severity`` (info, minor, major, critical, blocker) and ``location.path`` + ``location.lines.begin``.

One issue per (violation or warning, finding) pair, as in SARIF. A finding in a repository file
points there; any other (a package in the image, coverage, a missing report) points at the image
reference at line 1, since GitLab requires a path and a line. A deny is never below ``major``; a
warning is ``minor`` (``info`` when low), so the widget ranks what blocked the promotion first.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from gate.decisions.record import Decision, Violation
from gate.output.decision_view import artifact_ref, describe_finding, findings_by_id, one_line, ordered

_DENY_SEVERITY = {"critical": "blocker", "high": "critical"}
_WARN_SEVERITY = {"low": "info", "info": "info", "unknown": "info"}


def render(decision: Decision) -> bytes:
    """The report as UTF-8 JSON with a trailing newline (``[]`` when nothing was found)."""
    return msgspec.json.encode(issues(decision)) + b"\n"


def issues(decision: Decision) -> list[dict[str, Any]]:
    """The report's issues as JSON-compatible builtins: denies first, then warnings, each worst first."""
    findings = findings_by_id(decision)
    anchor = artifact_ref(decision)
    out: list[dict[str, Any]] = []
    for deny, results in ((True, decision.violations), (False, decision.warnings)):
        for violation in ordered(results):
            ids = violation.finding_ids or ("",)
            for finding_id in ids:
                out.append(_issue(decision, violation, findings.get(finding_id), finding_id, deny=deny, anchor=anchor))
    return out


def _issue(
    decision: Decision, violation: Violation, finding: dict[str, Any] | None, finding_id: str, *, deny: bool, anchor: str
) -> dict[str, Any]:
    message = one_line(violation.message)
    if finding is not None and len(violation.finding_ids) > 1:
        message = f"{message} ({describe_finding(finding)})"
    path, line = _place(finding, anchor)
    if deny:
        severity = _DENY_SEVERITY.get(violation.severity, "major")
    else:
        severity = _WARN_SEVERITY.get(violation.severity, "minor")
    # Stable across runs of the same finding (GitLab diffs the base and head reports by fingerprint),
    # distinct per environment, rule and finding; a result about no finding is keyed by its message.
    key = "\0".join((decision.environment, violation.rule, finding_id or message))
    return {
        "type": "issue",
        "description": message,
        "check_name": violation.rule,
        "fingerprint": hashlib.sha256(key.encode()).hexdigest(),
        "severity": severity,
        "location": {"path": path, "lines": {"begin": line}},
    }


def _place(finding: dict[str, Any] | None, anchor: str) -> tuple[str, int]:
    """The finding's file and line, its package's file, else the image reference at line 1."""
    if finding is not None:
        location = finding.get("location") or {}
        if location.get("path"):
            return str(location["path"]), max(int(location.get("start_line") or 1), 1)
        package = finding.get("package") or {}
        if package.get("path"):
            return str(package["path"]), 1
    return anchor, 1
