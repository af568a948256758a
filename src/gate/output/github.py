"""A decision as GitHub Actions workflow commands: annotations on the run and on the pull request's files.

One ``::error`` per deny reason and one ``::warning`` per warning, titled with the rule. A reason
whose findings have a place in a repository file gets one annotation per such finding, with
``file``, ``line`` and ``endLine``, so GitHub shows it on that line of the diff; a path inside an
image (a scan of the image) is no repository file and is not named as one. Then one ``::notice``
with the outcome and the decision id.

Messages are untrusted report content: data and properties are escaped exactly as GitHub's toolkit
(@actions/core ``escapeData``/``escapeProperty``) does, so every command is one line and no text can
start a second command (``::set-output``, ``::add-mask``, ...) or end the properties early.
"""

from __future__ import annotations

from typing import Any

from gate.decisions.record import Decision, Violation
from gate.output.decision_view import artifact_ref, findings_by_id, ordered


def render(decision: Decision) -> str:
    """The workflow commands, one a line, ending with a newline."""
    findings = findings_by_id(decision)
    lines = []
    for command, results in (("error", decision.violations), ("warning", decision.warnings)):
        for violation in ordered(results):
            lines.extend(_annotations(command, violation, findings))
    if decision.error:
        lines.append(command_line("error", decision.error, {"title": "gate: no decision"}))
    summary = (
        f"{decision.outcome.value.upper()} {artifact_ref(decision)} ({decision.environment}): "
        f"{len(decision.violations)} violation(s), {len(decision.warnings)} warning(s), "
        f"{sum(not w.is_vex for w in decision.waivers)} waiver(s) applied"
        + (f", {vex} VEX statement(s)" if (vex := sum(w.is_vex for w in decision.waivers)) else "")
        + f"; decision {decision.decision_id}"
    )
    lines.append(command_line("notice", summary, {"title": "gate"}))
    return "\n".join(lines) + "\n"


def _annotations(command: str, violation: Violation, findings: dict[str, dict[str, Any]]) -> list[str]:
    title = f"{violation.rule} ({violation.severity})"
    places = [
        place
        for finding in (findings.get(i) for i in violation.finding_ids)
        if finding is not None and (place := _repository_location(finding)) is not None
    ]
    if not places:
        return [command_line(command, violation.message, {"title": title})]
    lines = []
    for path, start, end in places:  # the place is in the properties, the message says what is wrong
        properties = {"file": path, "line": str(start) if start else "", "endLine": str(end) if end else "", "title": title}
        lines.append(command_line(command, violation.message, properties))
    return lines


def _repository_location(finding: dict[str, Any]) -> tuple[str, int | None, int | None] | None:
    """A finding's file of the repository and its lines; None for no location or a path inside an image."""
    loc = finding.get("location")
    if not isinstance(loc, dict) or loc.get("image") or not isinstance(loc.get("path"), str) or not loc["path"]:
        return None
    start = loc.get("start_line") if isinstance(loc.get("start_line"), int) and loc["start_line"] > 0 else None
    end = loc.get("end_line") if start and isinstance(loc.get("end_line"), int) and loc["end_line"] >= start else None
    return loc["path"], start, end


def command_line(command: str, message: str, properties: dict[str, str]) -> str:
    """``::command key=value,...::message`` with GitHub's escaping; empty properties are left out."""
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items() if value)
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


def escape_data(text: str) -> str:
    """@actions/core ``escapeData``: ``%``, CR and LF percent-encoded."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """@actions/core ``escapeProperty``: as data, plus ``:`` and ``,`` (they end a property)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
