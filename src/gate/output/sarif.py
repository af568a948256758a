"""A decision as SARIF 2.1.0, shaped for GitHub code scanning (and clean under the SARIF validator's rules).

One run; one ``rules`` entry per policy rule that produced a violation or a warning, described from its
METADATA when the caller passes the bundle's rules (``promotion_rules``); one result per (violation,
finding) pair, ``error`` for a violation and ``warning`` for a warning. GitHub ranks alerts by the rule's
``properties.security-severity`` and follows one alert across runs by ``partialFingerprints``, so each
result carries its finding id there (a scanner's fingerprint of the issue, never of line or scan time).

Where a result is:
- a finding in a file of the scanned source tree (Sonar issues, ``trivy fs``/``config`` misconfigurations
  and secrets, vulnerabilities of a lock file) points at that file, relative to ``%SRCROOT%``, with its
  lines as the ``region`` when the scanner gave them;
- anything else (a package in an image, a secret or misconfiguration inside an image, a violation about no
  finding) is named by ``logicalLocations``: the image, the package as ``name@version``, the path inside
  the image. A path inside the image is never given as a file of the repository. GitHub still rejects a
  whole upload when one result lacks an ``artifactLocation`` ("expected artifact location"; the
  validator's GH1001), so these results keep one on the image reference, under the ``ARTIFACT`` base
  that ``originalUriBaseIds`` describes as not being the repository — as Trivy's own SARIF anchors
  image findings on the image name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

import gate
from gate.decisions.record import Decision, Outcome, Violation
from gate.output.decision_view import (
    artifact_ref,
    describe_finding,
    findings_by_id,
    one_line,
    ordered,
    severity_rank,
)

if TYPE_CHECKING:
    from gate.policy.metadata import RuleMeta

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
#: The distribution's page, when its metadata declares no home page.
INFORMATION_URI = "https://pypi.org/project/promotion-gate/"
DISTRIBUTION = "promotion-gate"
#: GitHub's buckets: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0", "unknown": "8.0"}
#: partialFingerprints key: versioned, as GitHub recommends, so the scheme can change later.
FINGERPRINT = "gateFinding/v1"
#: The uriBaseId of files of the scanned source tree (GitHub resolves it to the checkout).
SRCROOT = "%SRCROOT%"
#: The uriBaseId of the anchor of results that are not in a repository file.
ARTIFACT_BASE = "ARTIFACT"
#: GitHub code scanning limits (docs: "SARIF support for code scanning").
MAX_RULE_ID = 255
MAX_TAGS = 25
MAX_MESSAGE = 30_000  # GitHub truncates longer messages; cut here, visibly


def render(decision: Decision, rules: Mapping[str, RuleMeta] | Mapping[str, str] | None = None) -> bytes:
    """The SARIF log as UTF-8 JSON with a trailing newline. ``rules``: ``junit.promotion_rules(bundle)``."""
    return msgspec.json.encode(sarif_log(decision, rules)) + b"\n"


def sarif_log(decision: Decision, rules: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The SARIF log as JSON-compatible builtins."""
    metadata = {rule_id: meta for rule_id, meta in (rules or {}).items() if not isinstance(meta, str)}
    pairs = [(v, "error") for v in ordered(decision.violations)] + [(v, "warning") for v in ordered(decision.warnings)]
    descriptors = _rules(pairs, metadata)
    if any(w.is_vex for w in decision.waivers):
        descriptors.append(VEX_RULE)
    rule_index = {rule["id"]: i for i, rule in enumerate(descriptors)}
    findings = findings_by_id(decision)
    anchor = _Anchor(decision)
    driver: dict[str, Any] = {
        "name": "gate",
        "fullName": f"gate {gate.__version__} (promotion gate)",
        "version": gate.__version__,
        "semanticVersion": gate.__version__,
        "informationUri": _information_uri(),
        "rules": descriptors,
    }
    invocation: dict[str, Any] = {"executionSuccessful": decision.outcome is not Outcome.ERROR}
    if decision.timestamp:
        invocation["endTimeUtc"] = decision.timestamp
    if decision.error:
        invocation["toolExecutionNotifications"] = [
            {"level": "error", "message": {"text": one_line(decision.error)}, "descriptor": {"id": "gate.error"}}
        ]
    run = {
        "tool": {"driver": driver},
        # GitHub keeps one set of alerts per category: one per environment, so prod does not close staging's.
        "automationDetails": {"id": f"gate/{decision.environment}/{decision.decision_id}"},
        "originalUriBaseIds": {
            SRCROOT: {"description": {"text": "The root of the scanned source tree (the repository checkout)."}},
            ARTIFACT_BASE: {
                "description": {
                    "text": "Not a repository file: the artifact the decision is about (the image, else the policy "
                    "bundle). The result's logicalLocations say where in it."
                }
            },
        },
        "invocations": [invocation],
        "results": [
            result
            for violation, level in pairs
            for result in _results(violation, level, rule_index[_rule_id(violation.rule)], findings, anchor)
        ] + _triaged_by_vex(decision, findings, anchor, rule_index.get(VEX_RULE["id"], 0)),
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


def _rules(pairs: list[tuple[Violation, str]], metadata: Mapping[str, RuleMeta]) -> list[dict[str, Any]]:
    """One reportingDescriptor per policy rule that produced a result, sorted by id."""
    by_rule: dict[str, list[tuple[Violation, str]]] = {}
    for violation, level in pairs:
        by_rule.setdefault(violation.rule, []).append((violation, level))
    descriptors = []
    for rule_id, group in sorted(by_rule.items()):
        meta = metadata.get(rule_id)
        worst = max((v.severity for v, _ in group), key=severity_rank)
        severity = (meta.severity if meta and meta.severity else None) or worst
        title = (meta.title if meta else None) or next((v.title for v, _ in group if v.title), None) or rule_id
        solution = (meta.solution if meta else None) or next((v.solution for v, _ in group if v.solution), None)
        package = (meta.package if meta else None) or next((v.package for v, _ in group if v.package), None)
        where = f"policy rule {rule_id} in package data.{package}" if package else f"policy rule {rule_id}"
        description = meta.description if meta and meta.description else f"{one_line(title)} ({where})."
        help_text = solution or f"See {where} for what it requires."
        if meta and meta.rule in ("deny", "warn"):
            level = "error" if meta.rule == "deny" else "warning"
        else:
            level = "error" if any(lvl == "error" for _, lvl in group) else "warning"
        tags = ["security", "policy", severity] + ([package] if package else [])
        descriptors.append(
            {
                "id": _rule_id(rule_id),
                "name": _rule_name(rule_id),
                "shortDescription": {"text": _sentence(one_line(title))},
                "fullDescription": {"text": _sentence(one_line(description))},
                "help": {
                    "text": _sentence(help_text),
                    "markdown": f"**Solution:** {help_text}" if solution else help_text,
                },
                "defaultConfiguration": {"level": level},
                "properties": {
                    "security-severity": SECURITY_SEVERITY.get(severity, "8.0"),
                    "tags": tags[:MAX_TAGS],
                },
            }
        )
    return descriptors


def _results(
    violation: Violation, level: str, rule_index: int, findings: dict[str, dict[str, Any]], anchor: _Anchor
) -> list[dict[str, Any]]:
    """One result per finding the violation names, or one for the violation itself."""
    base = {"ruleId": _rule_id(violation.rule), "ruleIndex": rule_index, "level": level}
    properties = {"severity": violation.severity}
    if not violation.finding_ids:
        return [
            {
                **base,
                "message": _message(violation.message),
                "locations": [anchor.location()],
                # Stable across runs although the message (e.g. a coverage percentage) changes.
                "partialFingerprints": {FINGERPRINT: f"rule:{violation.rule}"},
                "properties": properties,
            }
        ]
    results = []
    for finding_id in violation.finding_ids:
        finding = findings.get(finding_id)
        if finding is None:
            text, location = f"{violation.message} (finding {finding_id} is not in the input)", anchor.location()
        else:
            text, location = f"{describe_finding(finding)}: {violation.message}", _location(finding, anchor)
        results.append(
            {
                **base,
                "message": _message(text),
                "locations": [location],
                "partialFingerprints": {FINGERPRINT: finding_id},
                "properties": {**properties, "finding_id": finding_id},
            }
        )
    return results


#: the rule of the suppressed results of findings a VEX statement triaged
VEX_RULE: dict[str, Any] = {
    "id": "triage.vex",
    "name": "TriageVex",
    "shortDescription": {"text": "A finding a VEX statement says does not affect the image."},
    "fullDescription": {
        "text": "A vulnerability a not_affected or fixed VEX statement (gate evaluate --vex) triaged: it does not block."
    },
    "help": {
        "text": "The statement's justification and source are in the suppression; see docs/evidence.md.",
        "markdown": "The statement's justification and source are in the suppression; see docs/evidence.md.",
    },
    "defaultConfiguration": {"level": "note"},
    # triaged: not a security problem of the image (0.0, GitHub's "none")
    "properties": {"security-severity": "0.0", "tags": ["security", "vex", "triage"]},
}


def _triaged_by_vex(
    decision: Decision, findings: dict[str, dict[str, Any]], anchor: _Anchor, rule_index: int
) -> list[dict[str, Any]]:
    """A suppressed result (kind "external": the VEX document's author decided) per finding a VEX
    statement triaged, so code scanning shows it as dismissed with the statement's justification."""
    results = []
    for entry in sorted((w for w in decision.waivers if w.is_vex), key=lambda w: w.id):
        justification = f"VEX {entry.status}: {entry.reason or ''} ({entry.source})"
        for finding_id in entry.finding_ids:
            finding = findings.get(finding_id)
            described = describe_finding(finding) if finding is not None else f"finding {finding_id}"
            results.append({
                "ruleId": VEX_RULE["id"],
                "ruleIndex": rule_index,
                "level": "none",
                "message": _message(f"{described}: triaged by {justification}"),
                "locations": [_location(finding, anchor) if finding is not None else anchor.location()],
                "partialFingerprints": {FINGERPRINT: finding_id},
                "suppressions": [{"kind": "external", "status": "accepted", "justification": justification}],
                "properties": {
                    "finding_id": finding_id, "rule": entry.rule, "triage": entry.id, "vex_document": entry.document or "",
                },
            })
    return results


class _Anchor:
    """The artifact a decision is about: where results that are in no repository file are anchored."""

    def __init__(self, decision: Decision) -> None:
        artifact = decision.artifact or {}
        self.image: str | None = artifact_ref(decision) if artifact.get("image") else None
        # a relative reference: a bundle given as an absolute path must not read as one of this machine's files
        self.uri = _uri(str(artifact.get("image") or decision.policy.bundle or "policies").lstrip("/\\") or "policies")

    def location(self, logical: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        image = [{"name": self.image, "kind": "resource"}] if self.image else []
        location: dict[str, Any] = {
            "physicalLocation": {"artifactLocation": {"uri": self.uri, "uriBaseId": ARTIFACT_BASE}}
        }
        if image or logical:
            location["logicalLocations"] = image + (logical or [])
        return location


def _location(finding: dict[str, Any], anchor: _Anchor) -> dict[str, Any]:
    """A repository file and its lines, or the image (and the package, or the path inside it)."""
    loc = finding.get("location")
    region = _region(loc) if loc else {}
    logical: list[dict[str, Any]] = []
    if pkg := finding.get("package"):
        name_version = "@".join(p for p in (pkg["name"], pkg.get("version")) if p)
        logical.append({"name": name_version, "fullyQualifiedName": pkg.get("purl") or name_version, "kind": "module"})
    if loc and not loc.get("image") and _is_source_path(loc["path"]):
        # a file of the scanned source tree (a lock file for a package's vulnerability)
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(_relative(loc["path"])), "uriBaseId": SRCROOT}}
        if region:
            physical["region"] = region
        return {"physicalLocation": physical, **({"logicalLocations": logical} if logical else {})}
    if loc:
        lines = region.get("startLine")
        where = f"{loc['path']}:{lines}" if lines else loc["path"]
        logical.append({"name": where, "kind": "resource"})
    location = anchor.location(logical)
    if loc and loc.get("image") and loc["image"] != anchor.image:
        # the scanner's name of the image it read, when it differs from the decision's artifact
        location["logicalLocations"].insert(0, {"name": loc["image"], "kind": "resource"})
    return location


def _region(loc: dict[str, Any]) -> dict[str, int]:
    start, end = loc.get("start_line") or 0, loc.get("end_line") or 0
    if start <= 0:
        return {}
    return {"startLine": start, "endLine": end} if end >= start else {"startLine": start}


def _is_source_path(path: str) -> bool:
    """A path a repository can hold: relative, without ``..`` (Sonar and ``trivy fs`` name files so)."""
    parts = path.replace("\\", "/").split("/")
    return bool(path) and not path.startswith(("/", "\\")) and ".." not in parts and not re.match(r"^[A-Za-z]:", path)


def _relative(path: str) -> str:
    return path.replace("\\", "/").removeprefix("./")


def _uri(path: str) -> str:
    """A path as a relative URI reference: forward slashes, reserved characters percent-encoded."""
    # ":" stays encoded: in a relative reference "host:5000/x" would read as a URI scheme.
    return quote(path.replace("\\", "/"), safe="/@")


def _rule_id(rule_id: str) -> str:
    """The rule id, within GitHub's 255 characters (a longer one keeps a digest of itself to stay unique)."""
    if len(rule_id) <= MAX_RULE_ID:
        return rule_id
    digest = hashlib.sha256(rule_id.encode()).hexdigest()[:16]
    return f"{rule_id[: MAX_RULE_ID - 17]}~{digest}"


def _rule_name(rule_id: str) -> str:
    """An identifier-like name (``vulnerabilities.critical`` -> ``VulnerabilitiesCritical``), as SARIF asks."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", rule_id) if w]
    return "".join(w[:1].upper() + w[1:] for w in words) or "Rule"


def _sentence(text: str) -> str:
    """SARIF asks plain-text messages to end with a period (validator rule SARIF2001)."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _message(text: str) -> dict[str, str]:
    text = _sentence(text)
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 20] + " … (cut by gate)."
    return {"text": text}


@cache
def _information_uri() -> str:
    """The project's home page from the installed distribution's metadata, else its package index page."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        meta = metadata(DISTRIBUTION)
    except PackageNotFoundError:
        return INFORMATION_URI
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository") and url.strip():
            return str(url.strip())
    home = next((h.strip() for h in meta.get_all("Home-page") or [] if h.strip()), None)
    return str(home) if home else INFORMATION_URI
