"""The decision log as text for people: ``gate decisions list``, ``show`` and ``stats``."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from gate.decisions.record import Decision, Violation
from gate.output.decision_text import vex_lines
from gate.output.decision_view import (
    artifact_ref,
    describe_finding,
    findings_by_id,
    one_line,
    ordered,
    platforms_line,
    summary_counts,
    waivers_applied,
)
from gate.output.text import table

#: hex digits of an image digest shown in a listing
SHORT_DIGEST = 12


def render_list(decisions: Iterable[Decision]) -> str:
    """One row per decision, in the order given (the store's: newest first)."""
    rows = [
        [
            short_time(d.timestamp),
            d.outcome.value.upper(),
            d.environment,
            short_ref(d),
            str(len(d.violations)),
            ",".join(sorted({w.id for w in d.waivers})) or "-",
            d.decision_id,
        ]
        for d in decisions
    ]
    if not rows:
        return "No decisions match.\n"
    headers = ["TIME", "OUTCOME", "ENV", "IMAGE@DIGEST", "VIOLATIONS", "TRIAGE", "DECISION ID"]
    return table(headers, rows) + f"\n{len(rows)} decision(s)\n"


def short_time(timestamp: str) -> str:
    """``2026-11-26T18:57:08Z``: the stored time to the second."""
    return f"{timestamp[:19]}Z" if len(timestamp) > 19 else timestamp


def short_ref(decision: Decision) -> str:
    """``image@sha256:<12 hex>``."""
    artifact = decision.artifact or {}
    if not artifact.get("image"):
        return "(no artifact)"
    digest = str(artifact.get("digest") or "")
    algorithm, _, hexdigits = digest.partition(":")
    short = f"@{algorithm}:{hexdigits[:SHORT_DIGEST]}" if hexdigits else (f"@{digest}" if digest else "")
    return f"{artifact['image']}{short}"


# --- show ---------------------------------------------------------------------------------------


def render_show(decision: Decision) -> str:
    """The whole record, section by section; the input as a summary (``--format json`` has all of it)."""
    policy = decision.policy
    revision = policy.revision or "(none)"
    fields = [
        ("Decision", decision.decision_id),
        ("Time", decision.timestamp),
        ("Outcome", decision.outcome.value.upper()),
        ("Environment", decision.environment),
        ("Artifact", artifact_ref(decision)),
        ("Policy", f"{policy.digest} revision {revision}"),
        ("Engine", f"{policy.engine} {policy.engine_version}" + (f", bundle {policy.bundle}" if policy.bundle else "")),
    ]
    if (platforms := platforms_line(decision)) is not None:
        fields.insert(5, ("Platforms", platforms.removeprefix("Platforms: ")))
    if len(policy.layers) > 1:  # bottom first, each with its own digest and revision
        fields += [
            (f"Layer {n}", f"{layer.source} {layer.digest} revision {layer.revision or '(none)'}")
            for n, layer in enumerate(policy.layers, 1)
        ]
    if decision.error:
        fields.append(("Error", one_line(decision.error)))
    out = _fields(fields)
    findings = findings_by_id(decision)
    out += _results("Deny reasons", decision.violations, findings)
    out += _results("Warnings", decision.warnings, findings)
    out.append("")
    if waivers := waivers_applied(decision):
        rows = [
            [w.id, w.rule, w.expires or "", w.approved_by or "", str(len(w.finding_ids)), one_line(w.reason or "")]
            for w in waivers
        ]
        out.append(f"Waivers applied ({len(rows)}):")
        out.append(_indent(table(["ID", "RULE", "EXPIRES", "APPROVED BY", "FINDINGS", "REASON"], rows)))
    else:
        out.append("Waivers applied: none")
    out.extend(vex_lines(decision)[1:])
    if decision.stale_waivers:
        out.append(f"Stale waivers (in scope, matched nothing): {', '.join(sorted(decision.stale_waivers))}")
    out.append("")
    if decision.scanners:
        rows = [[str(s.get("name", "")), str(s.get("version", "")), str(s.get("report_sha256", ""))] for s in decision.scanners]
        out.append("Scanners:")
        out.append(_indent(table(["NAME", "VERSION", "REPORT SHA256"], rows)))
    else:
        out.append("Scanners: none")
    out.append("")
    if decision.context:
        out.append("Context:")
        out += _indent_lines(_fields([(str(k), str(v)) for k, v in sorted(decision.context.items())]))
    else:
        out.append("Context: none recorded")
    out.append("")
    out.append("Input:")
    out += _indent_lines(_fields(_input_summary(decision)))
    out.append("")
    out.append("Chain:")
    out += _indent_lines(
        _fields(
            [
                ("input_digest", decision.input_digest),
                ("prev_hash", decision.prev_hash or "(first record)"),
                ("hash", decision.hash or "(not recorded)"),
                ("signing_key", decision.signing_key or "(unsigned)"),
                ("signature", "present" if decision.signature else "(none)"),
            ]
        )
    )
    return "\n".join(out) + "\n"


def _results(heading: str, results: Sequence[Violation], findings: dict[str, dict[str, Any]]) -> list[str]:
    """A SEVERITY RULE MESSAGE table; each result's findings and solution on lines under it."""
    out = [""]
    if not results:
        return [*out, f"{heading}: none"]
    rows = ordered(results)
    header, *body = table(
        ["SEVERITY", "RULE", "MESSAGE"], [[v.severity.upper(), v.rule, one_line(v.message)] for v in rows]
    ).splitlines()
    column = " " * header.index("MESSAGE")
    out += [f"{heading} ({len(rows)}):", f"  {header}"]
    for result, line in zip(rows, body):
        out.append(f"  {line}")
        for finding_id in result.finding_ids:
            finding = findings.get(finding_id)
            out.append(f"  {column}finding: {describe_finding(finding) if finding else finding_id}")
        if result.solution:
            out.append(f"  {column}solution: {one_line(result.solution)}")
    return out


def _input_summary(decision: Decision) -> list[tuple[str, str]]:
    document = decision.input
    findings = document.get("findings") or []
    summary = [("environment", str(document.get("environment", ""))), ("now", str(document.get("now", "")))]
    summary.append(("findings", f"{len(findings)}: {summary_counts(decision.summary)}"))
    coverage = (document.get("metrics") or {}).get("coverage") or {}
    if isinstance(coverage.get("line_rate"), (int, float)):
        summary.append(("line coverage", f"{coverage['line_rate'] * 100:.2f}%"))
    quality = ((document.get("metrics") or {}).get("sonarqube") or {}).get("quality_gate") or {}
    if quality.get("status"):
        summary.append(("quality gate", str(quality["status"])))
    summary.append(("full input", f"gate decisions show {decision.decision_id} --format json"))
    return summary


# --- stats --------------------------------------------------------------------------------------


def render_stats(stats: dict[str, Any]) -> str:
    """The ``Stats.as_dict()`` document as sections."""
    outcomes = stats["outcomes"]
    scope = []
    if stats.get("since"):
        scope.append(f"since {stats['since']}")
    if stats.get("until"):
        scope.append(f"until {stats['until']}")
    out = [
        f"Decisions: {stats['total']} (allow {outcomes['allow']}, deny {outcomes['deny']}, error {outcomes['error']})"
        + (f", {' '.join(scope)}" if scope else "")
    ]
    if not stats["total"]:
        return "\n".join(out) + "\n"
    out += ["", "By environment:"]
    out.append(
        _indent(
            table(
                ["ENV", "ALLOW", "DENY", "ERROR", "TOTAL"],
                [[e["environment"], *(str(e[k]) for k in ("allow", "deny", "error", "total"))] for e in stats["environments"]],
            )
        )
    )
    out.append("")
    if stats["blocking_rules"]:
        out.append("Top blocking policy rules:")
        out.append(
            _indent(
                table(
                    ["RULE", "DECISIONS", "VIOLATIONS"],
                    [[r["rule"], str(r["decisions"]), str(r["violations"])] for r in stats["blocking_rules"]],
                )
            )
        )
    else:
        out.append("Top blocking policy rules: none")
    out.append("")
    if stats["blocking_findings"]:
        out.append("Top blocking findings (CVEs and other finding rules):")
        out.append(
            _indent(
                table(
                    ["RULE", "KIND", "DECISIONS"],
                    [[f["rule"], f["kind"] or "-", str(f["decisions"])] for f in stats["blocking_findings"]],
                )
            )
        )
    else:
        out.append("Top blocking findings: none")
    out.append("")
    if stats["waivers"]:
        out.append(f"Waivers applied ({len(stats['waivers'])}):")
        rows = [
            [w["id"], w["rule"], str(w["applied"]), short_time(w["last_applied"]), w["expires"], w["status"]]
            for w in stats["waivers"]
        ]
        out.append(_indent(table(["ID", "RULE", "APPLIED", "LAST APPLIED", "EXPIRES", "STATUS"], rows)))
        if stats["waivers_expiring"]:
            listed = ", ".join(f"{w['id']} ({w['status']} {w['expires']})" for w in stats["waivers_expiring"])
            out.append(f"Expired or expiring within 14 days of {short_time(stats['now'])}: {listed}")
    else:
        out.append("Waivers applied: none")
    if stats.get("vex"):
        out.append(f"VEX statements applied ({len(stats['vex'])}):")
        rows = [
            [v["id"], v["rule"], v["status"], str(v["applied"]), short_time(v["last_applied"])] for v in stats["vex"]
        ]
        out.append(_indent(table(["STATEMENT", "VULNERABILITY", "STATUS", "APPLIED", "LAST APPLIED"], rows)))
    out.append("")
    out.append(f"Per {stats['period']}:")
    out.append(
        _indent(
            table(
                [stats["period"].upper() if stats["period"] == "day" else "WEEK OF", "ALLOW", "DENY", "ERROR", "TOTAL"],
                [[p["start"], *(str(p[k]) for k in ("allow", "deny", "error", "total"))] for p in stats["periods"]],
            )
        )
    )
    return "\n".join(out) + "\n"


def _fields(pairs: list[tuple[str, str]]) -> list[str]:
    width = max((len(k) for k, _ in pairs), default=0)
    return [f"{k + ':':<{width + 1}}  {v}" for k, v in pairs]


def _indent(text: str) -> str:
    return textwrap.indent(text, "  ")


def _indent_lines(lines: list[str]) -> list[str]:
    return [f"  {line}" for line in lines]
