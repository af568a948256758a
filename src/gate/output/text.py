"""Readable text summaries for people at a terminal or in a CI log."""

from __future__ import annotations

from collections import Counter
from typing import Any

from gate.models import Severity

SEVERITIES = [s.value for s in Severity]
MAX_FINDINGS_SHOWN = 20


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)


def render_scan(document: dict[str, Any]) -> str:
    """Summary of an input document: scanners, severity counts, key metrics, worst findings."""
    out = []
    artifact = document.get("artifact")
    if artifact:
        tag = f":{artifact['tag']}" if artifact.get("tag") else ""
        out.append(f"Artifact: {artifact['image']}{tag}@{artifact['digest']}")
    out.append("Reports:")
    out.append(
        _indent(
            table(
                ["SCANNER", "VERSION", "FORMAT", "FINDINGS", "REPORT"],
                [[s["name"], s["version"], s["format"], str(s["findings"]), s["report"]] for s in document["scanners"]],
            )
        )
    )
    findings = document["findings"]
    counts: Counter[tuple[str, str, str]] = Counter((f["scanner"], f["kind"], f["severity"]) for f in findings)
    if counts:
        groups = sorted({(scanner, kind) for scanner, kind, _ in counts})
        rows = [[s, k, *(str(counts[(s, k, sev)]) for sev in SEVERITIES)] for s, k in groups]
        out.append("Findings by severity:")
        out.append(_indent(table(["SCANNER", "KIND", *(s.upper() for s in SEVERITIES)], rows)))
    else:
        out.append("Findings: none")
    metric_lines = _metric_lines(document["metrics"])
    if metric_lines:
        out.append("Metrics:")
        out.extend(f"  {line}" for line in metric_lines)
    if findings:
        rank = {s.value: s.rank for s in Severity}
        worst = sorted(findings, key=lambda f: -rank[f["severity"]])[:MAX_FINDINGS_SHOWN]
        out.append(f"Top findings ({len(worst)} of {len(findings)}):")
        rows = [[f["severity"].upper(), f["rule"], _where(f), _clip(f["title"], 60)] for f in worst]
        out.append(_indent(table(["SEVERITY", "RULE", "WHERE", "TITLE"], rows)))
    return "\n".join(out) + "\n"


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    lines = []
    coverage = metrics.get("coverage")
    if coverage:
        lines.append(
            f"coverage: lines {_percent(coverage.get('line_rate'))} "
            f"({coverage.get('lines_covered')}/{coverage.get('lines_valid')}), "
            f"branches {_percent(coverage.get('branch_rate'))}, {len(coverage.get('files', {}))} files"
        )
    gate_status = (metrics.get("sonarqube") or {}).get("quality_gate")
    if gate_status:
        lines.append(f"sonarqube quality gate: {gate_status.get('status')}")
    return lines


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.2f}%"


def _where(finding: dict[str, Any]) -> str:
    if pkg := finding.get("package"):
        return f"{pkg['name']} {pkg.get('version') or ''}".strip()
    if loc := finding.get("location"):
        return f"{loc['path']}:{loc['start_line']}" if loc.get("start_line") else loc["path"]
    return ""


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def render_plugins(rows: list[dict[str, Any]]) -> str:
    """The installed scanners, for ``gate plugins list``."""
    body = table(
        ["NAME", "VERSION", "FORMATS", "FROM"],
        [[r["name"], r["version"], "; ".join(r["formats"]), r["origin"]] for r in rows],
    )
    return body + "\n"
