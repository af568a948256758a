"""What every decision renderer (text, SARIF, JUnit) reads the same way from a ``Decision``.

Ordering, the artifact reference, the findings a violation points at and how a finding is named
live here once, so the three formats cannot drift apart on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gate.decisions.record import AppliedWaiver, Decision, Violation
from gate.models import Severity

#: Display order of severities, worst first.
SEVERITIES: tuple[str, ...] = tuple(s.value for s in Severity)
_RANK = {s.value: s.rank for s in Severity}


def severity_rank(severity: str) -> int:
    """Higher is worse; a severity gate does not know ranks lowest."""
    return _RANK.get(severity, 0)


def ordered(violations: Iterable[Violation]) -> list[Violation]:
    """Severity rank (worst first), then rule, then message: the same order in every format."""
    return sorted(violations, key=lambda v: (-severity_rank(v.severity), v.rule, v.message))


def artifact_ref(decision: Decision) -> str:
    """``image[:tag]@digest``, or a placeholder for a decision about no artifact."""
    artifact = decision.artifact or {}
    if not artifact.get("image"):
        return "(no artifact)"
    tag = f":{artifact['tag']}" if artifact.get("tag") else ""
    digest = f"@{artifact['digest']}" if artifact.get("digest") else ""
    return f"{artifact['image']}{tag}{digest}"


def findings_by_id(decision: Decision) -> dict[str, dict[str, Any]]:
    """The input's findings, by id."""
    findings = decision.input.get("findings") or []
    return {f["id"]: f for f in findings if isinstance(f, dict) and "id" in f}


def describe_finding(finding: dict[str, Any]) -> str:
    """One line naming a finding: ``CVE-… in pkg 1.2 (fixed in 1.3)`` or ``RULE at path:line``."""
    rule = finding.get("rule") or finding.get("id", "?")
    if pkg := finding.get("package"):
        name = " ".join(p for p in (pkg.get("name"), pkg.get("version")) if p)
        fixed = pkg.get("fixed_version")
        return f"{rule} in {name} ({f'fixed in {fixed}' if fixed else 'no fixed version'})"
    if loc := finding.get("location"):
        line = loc.get("start_line")
        return f"{rule} at {loc['path']}:{line}" if line else f"{rule} at {loc['path']}"
    return str(rule)


def one_line(text: str) -> str:
    """Whitespace (newlines included) collapsed to single spaces, for table cells and attributes."""
    return " ".join(text.split())


def summary_counts(summary: dict[str, dict[str, int]]) -> str:
    """A decision's ``summary`` as ``trivy 1 critical, 2 high; coverage none``, in severity order."""
    if not summary:
        return "none"
    parts = []
    for scanner, counts in sorted(summary.items()):
        known = [f"{counts[s]} {s}" for s in SEVERITIES if counts.get(s)]
        known += [f"{n} {s}" for s, n in sorted(counts.items()) if s not in SEVERITIES and n]
        parts.append(f"{scanner} {', '.join(known) if known else 'none'}")
    return "; ".join(parts)


def platform_coverage(decision: Decision) -> list[tuple[str, str]]:
    """``[(platform, state)]`` for an image index (or a decision a ``platforms.*`` rule spoke on): each
    platform the index carries or a report covers, sorted, with the scanners that cover it
    (``(trivy)``), ``missing``, or ``(trivy) not in the index``; [] when platforms play no part."""
    document = decision.input if isinstance(decision.input, dict) else {}
    artifact = document.get("artifact")
    listed = artifact.get("platforms") if isinstance(artifact, dict) else None
    carried = {p for p in listed if isinstance(p, str)} if isinstance(listed, list) else set()
    ruled = any(v.rule.startswith("platforms.") for v in (*decision.violations, *decision.warnings))
    if not isinstance(listed, list) and not ruled:
        return []
    covering: dict[str, set[str]] = {}
    for scanner in document.get("scanners") or []:
        if isinstance(scanner, dict) and isinstance(scanner.get("platform"), str):
            covering.setdefault(scanner["platform"], set()).add(str(scanner.get("name", "?")))
    rows = []
    for platform in sorted(carried | set(covering)):
        if platform not in covering:
            rows.append((platform, "missing"))
            continue
        names = f"({', '.join(sorted(covering[platform]))})"
        outside = isinstance(listed, list) and platform not in carried
        rows.append((platform, f"{names} not in the index" if outside else names))
    return rows


def platforms_line(decision: Decision) -> str | None:
    """``Platforms: linux/amd64 (trivy), linux/arm64 — missing`` (``platform_coverage``), or None."""
    rows = platform_coverage(decision)
    if not rows:
        return None
    parts = [f"{p} — {state}" if state == "missing" else f"{p} {state}" for p, state in rows]
    return "Platforms: " + ", ".join(parts)


def waivers_applied(decision: Decision) -> list[AppliedWaiver]:
    """The waivers of the decision's triage (VEX statements left out), by id."""
    return sorted((w for w in decision.waivers if not w.is_vex), key=lambda w: w.id)


def vex_applied(decision: Decision) -> list[AppliedWaiver]:
    """The VEX statements of the decision's triage, by source."""
    return sorted((w for w in decision.waivers if w.is_vex), key=lambda w: (w.rule, w.id))


def triage_reason(entry: AppliedWaiver) -> str:
    """Why an entry triages: a waiver's reason; a VEX statement's status, justification and impact statement."""
    if entry.is_vex:
        return " ".join(part for part in (f"VEX {entry.status}:" if entry.status else "VEX:", entry.reason) if part)
    return entry.reason or ""
