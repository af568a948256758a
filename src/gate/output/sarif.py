"""A decision as SARIF 2.1.0, shaped for GitHub code scanning.

One run; one ``rules`` entry per policy rule that produced a violation or a warning; one result per
(violation, finding) pair, ``error`` for a violation and ``warning`` for a warning. GitHub ranks
alerts by the rule's ``properties.security-severity`` and follows one alert across runs by
``partialFingerprints``, so each result carries its finding id there.

Every result has a physical location: GitHub rejects the whole file when a result has none, or
has a location with only ``logicalLocations`` ("expected a physical location"). A finding with a
file location points there; a package finding points at the package's file when the scanner
named one, and otherwise — as Trivy's own SARIF does for images — at the image reference, with
the package as a logical location beside it. A violation about no finding (coverage, a missing
report) points at the image too, so it still shows up as one alert.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import quote

import msgspec

import gate
from gate.decisions.record import Decision, Outcome, Violation
from gate.output.decision_view import describe_finding, findings_by_id, one_line, ordered, severity_rank

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
#: GitHub's buckets: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0", "unknown": "0.0"}
#: partialFingerprints key: versioned, as GitHub recommends, so the scheme can change later.
FINGERPRINT = "gateFinding/v1"


def render(decision: Decision) -> bytes:
    """The SARIF log as UTF-8 JSON with a trailing newline."""
    return msgspec.json.encode(sarif_log(decision)) + b"\n"


def sarif_log(decision: Decision) -> dict[str, Any]:
    """The SARIF log as JSON-compatible builtins."""
    pairs = [(v, "error") for v in ordered(decision.violations)] + [(v, "warning") for v in ordered(decision.warnings)]
    rules = _rules(pairs)
    rule_index = {rule["id"]: i for i, rule in enumerate(rules)}
    findings = findings_by_id(decision)
    anchor = _anchor_uri(decision)
    driver: dict[str, Any] = {"name": "gate", "version": gate.__version__, "semanticVersion": gate.__version__}
    if uri := _information_uri():
        driver["informationUri"] = uri
    driver["rules"] = rules
    invocation: dict[str, Any] = {"executionSuccessful": decision.outcome is not Outcome.ERROR}
    if decision.error:
        invocation["toolExecutionNotifications"] = [{"level": "error", "message": {"text": one_line(decision.error)}}]
    run = {
        "tool": {"driver": driver},
        # GitHub keeps one set of alerts per category: one per environment, so prod does not close staging's.
        "automationDetails": {"id": f"gate/{decision.environment}/"},
        "invocations": [invocation],
        "results": [
            result
            for violation, level in pairs
            for result in _results(violation, level, rule_index[violation.rule], findings, anchor)
        ],
        "properties": {
            "decision_id": decision.decision_id,
            "outcome": decision.outcome.value,
            "environment": decision.environment,
            "artifact": decision.artifact,
            "policy": msgspec.to_builtins(decision.policy),
            "waivers": [w.id for w in decision.waivers],
        },
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _rules(pairs: list[tuple[Violation, str]]) -> list[dict[str, Any]]:
    """One reportingDescriptor per policy rule id, sorted by id."""
    by_rule: dict[str, list[tuple[Violation, str]]] = {}
    for violation, level in pairs:
        by_rule.setdefault(violation.rule, []).append((violation, level))
    rules = []
    for rule_id, group in sorted(by_rule.items()):
        worst = max((v.severity for v, _ in group), key=severity_rank)
        title = next((v.title for v, _ in group if v.title), None)
        solution = next((v.solution for v, _ in group if v.solution), None)
        package = next((v.package for v, _ in group if v.package), None)
        name = title or rule_id
        where = f" (policy rule {rule_id} in package data.{package})" if package else f" (policy rule {rule_id})"
        help_text = solution or f"See policy rule {rule_id} for what it requires."
        rules.append(
            {
                "id": rule_id,
                "shortDescription": {"text": one_line(name)},
                "fullDescription": {"text": one_line(name) + where},
                "help": {"text": help_text, "markdown": f"**Solution:** {help_text}" if solution else help_text},
                "defaultConfiguration": {"level": "error" if any(lvl == "error" for _, lvl in group) else "warning"},
                "properties": {
                    "security-severity": SECURITY_SEVERITY.get(worst, "0.0"),
                    "tags": ["security", "policy", worst] + ([package] if package else []),
                },
            }
        )
    return rules


def _results(
    violation: Violation, level: str, rule_index: int, findings: dict[str, dict[str, Any]], anchor: str
) -> list[dict[str, Any]]:
    """One result per finding the violation names, or one for the violation itself."""
    base = {"ruleId": violation.rule, "ruleIndex": rule_index, "level": level}
    properties = {"severity": violation.severity}
    if not violation.finding_ids:
        return [
            {
                **base,
                "message": {"text": violation.message},
                "locations": [_physical(anchor)],
                # Stable across runs although the message (e.g. a coverage percentage) changes.
                "partialFingerprints": {FINGERPRINT: f"rule:{violation.rule}"},
                "properties": properties,
            }
        ]
    results = []
    for finding_id in violation.finding_ids:
        finding = findings.get(finding_id)
        if finding is None:
            text, location = f"{violation.message} (finding {finding_id} is not in the input)", _physical(anchor)
        else:
            text, location = f"{describe_finding(finding)}: {violation.message}", _location(finding, anchor)
        results.append(
            {
                **base,
                "message": {"text": text},
                "locations": [location],
                "partialFingerprints": {FINGERPRINT: finding_id},
                "properties": {**properties, "finding_id": finding_id},
            }
        )
    return results


def _location(finding: dict[str, Any], anchor: str) -> dict[str, Any]:
    """Where a finding is: its file and lines, its package's file, or the image it was found in."""
    if loc := finding.get("location"):
        region: dict[str, int] = {}
        start, end = loc.get("start_line") or 0, loc.get("end_line") or 0
        if start > 0:
            region["startLine"] = start
            if end >= start:
                region["endLine"] = end
        return _physical(loc["path"], region)
    pkg = finding.get("package")
    if not pkg:
        return _physical(anchor)
    location = _physical(pkg.get("path") or anchor)
    qualified = pkg.get("purl") or "@".join(p for p in (pkg["name"], pkg.get("version")) if p)
    location["logicalLocations"] = [{"name": pkg["name"], "fullyQualifiedName": qualified, "kind": "module"}]
    return location


def _physical(path: str, region: dict[str, int] | None = None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(path)}}
    if region:
        physical["region"] = region
    return {"physicalLocation": physical}


def _uri(path: str) -> str:
    """A file path as a URI reference: forward slashes, reserved characters percent-encoded."""
    # ":" stays encoded: in a relative reference "host:5000/x" would read as a URI scheme.
    return quote(path.replace("\\", "/"), safe="/@")


def _anchor_uri(decision: Decision) -> str:
    """The image repository (``registry/name``), or the policy bundle for a decision without one."""
    artifact = decision.artifact or {}
    return str(artifact.get("image") or decision.policy.bundle or "policies")


@cache
def _information_uri() -> str | None:
    """The project's home page from the installed distribution's metadata, when it declares one."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        meta = metadata("gate")
    except PackageNotFoundError:
        return None
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository") and url.strip():
            return str(url.strip())
    home = next((h.strip() for h in meta.get_all("Home-page") or [] if h.strip()), None)
    return str(home) if home else None
