"""A decision as readable text for a CI log: verdict first, then why, then what was waived."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from gate.decisions.record import Decision, PolicyInfo, Violation
from gate.output.decision_view import (
    artifact_ref,
    one_line,
    ordered,
    platforms_line,
    summary_counts,
    vex_applied,
    waivers_applied,
)
from gate.output.text import table


def render(decision: Decision) -> str:
    """The decision summary, ending with a newline."""
    out = [f"{decision.outcome.value.upper()} {artifact_ref(decision)} ({decision.environment})"]
    if decision.error:
        out.append(f"error: {one_line(decision.error)}")
    out.extend(_results("Deny reasons", decision.violations))
    out.extend(_results("Warnings", decision.warnings))
    if waivers := waivers_applied(decision):
        rows = [[w.id, w.rule, w.expires or "", w.approved_by or ""] for w in waivers]
        out.append("")
        out.append(f"Waivers applied ({len(rows)}):")
        out.append(textwrap.indent(table(["ID", "RULE", "EXPIRES", "APPROVED BY"], rows), "  "))
    out.extend(vex_lines(decision))
    if decision.stale_waivers:
        out.append("")
        out.append(f"Stale waivers (match nothing): {', '.join(sorted(decision.stale_waivers))}")
    out.append("")
    out.append(f"Findings: {summary_counts(decision.summary)}")
    if (platforms := platforms_line(decision)) is not None:
        out.append(platforms)
    out.extend(policy_lines(decision.policy, f"; decision {decision.decision_id}"))
    return "\n".join(out) + "\n"


def vex_lines(decision: Decision) -> list[str]:
    """The VEX statements of the decision's triage: source, rule, status, author, reason; with the findings
    each silenced (triage, like waivers, but with no expiry)."""
    entries = vex_applied(decision)
    if not entries:
        return []
    rows = [
        [w.source, w.rule, w.status or "", w.author or "", str(len(w.finding_ids)), one_line(w.reason or "")]
        for w in entries
    ]
    return ["", f"VEX triage applied ({len(rows)}):",
            textwrap.indent(table(["SOURCE", "RULE", "STATUS", "AUTHOR", "FINDINGS", "REASON"], rows), "  ")]


def policy_lines(policy: PolicyInfo, tail: str = "") -> list[str]:
    """Which policy decided: digest, revision and source (the library, a directory, an OCI bundle), engine;
    with several layers, one line per layer under it (bottom first)."""
    revision = f" revision {policy.revision}" if policy.revision else ""
    source = f" ({policy.bundle})" if policy.bundle else ""
    lines = [f"Policy {policy.digest}{revision}{source}, engine {policy.engine} ({policy.engine_version}){tail}"]
    if len(policy.layers) > 1:
        rows = [[layer.source, layer.digest, layer.revision or "(none)"] for layer in policy.layers]
        lines.append(f"Policy layers ({len(rows)}, bottom first):")
        lines.append(textwrap.indent(table(["SOURCE", "DIGEST", "REVISION"], rows), "  "))
    return lines


def _results(heading: str, results: Sequence[Violation]) -> list[str]:
    """A SEVERITY RULE MESSAGE table with each result's solution on the line under it."""
    if not results:
        return []
    rows = ordered(results)
    lines = table(["SEVERITY", "RULE", "MESSAGE"], [[v.severity.upper(), v.rule, one_line(v.message)] for v in rows])
    header, *body = lines.splitlines()
    message_column = header.index("MESSAGE")
    out = ["", f"{heading} ({len(rows)}):", f"  {header}"]
    for violation, line in zip(rows, body):
        out.append(f"  {line}")
        if violation.solution:
            out.append(f"  {' ' * message_column}solution: {one_line(violation.solution)}")
    return out
