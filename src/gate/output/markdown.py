"""A decision as GitHub-flavoured markdown: a CI job summary, a pull-request or merge-request comment.

The outcome line first (image, environment), then deny and warn tables, the waivers applied (those
expiring soon marked), stale waivers, the policy that decided, the decision id and links. Messages,
rule ids and waiver fields come from reports and policy data — untrusted — so every cell is escaped:
no HTML, no table break, no code span, no link, no mention, no newline gets through. The document
stays under ``MAX_CHARS`` (a GitHub comment's limit; a step summary's 1 MiB is larger) by leaving out
table rows, and says how many.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from gate import rfc3339
from gate.decisions.record import Decision, Outcome, Violation
from gate.output.decision_view import artifact_ref, ordered, platforms_line, summary_counts, vex_applied, waivers_applied
from gate.output.links import DecisionLinks

#: GitHub refuses a pull-request comment (and an issue body) longer than this; a step summary may be 1 MiB.
MAX_CHARS = 65_536
#: a longer cell (a report's message can be anything) is cut: a table row stays readable
MAX_CELL = 400
#: finding ids (32 hex digits) are shown by their first characters, as git shows commits
SHORT_ID = 12
#: finding ids listed per row; the rest are counted
MAX_IDS = 5

_MARK = {Outcome.ALLOW: "✅", Outcome.DENY: "❌", Outcome.ERROR: "⛔"}
# Characters with a meaning inside a line of (GitHub-flavoured) markdown: backslash-escaped, so they read
# as themselves (a cell never starts a line, so list and heading markers need nothing; ``$`` is math).
_PUNCTUATION = re.compile(r"([\\`*_\[\]!~|$])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}  # text, never an attribute: quotes need nothing
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")


def render(decision: Decision, *, links: DecisionLinks | None = None, max_chars: int = MAX_CHARS) -> str:
    """The markdown document, ending with a newline, at most ``max_chars`` characters."""
    head = _head(decision)
    tail = _tail(decision, links)
    budget = max_chars - len(head) - len(tail) - 200  # 200: room for the "left out" line
    body: list[str] = []
    left_out = 0
    for heading, columns, rows in _tables(decision):
        if not rows:
            continue
        section = ["", f"### {heading} ({len(rows)})", "", _row(columns), _row(["---"] * len(columns))]
        size = sum(len(line) + 1 for line in section)
        if size > budget:
            left_out += len(rows)
            continue
        budget -= size
        body.extend(section)
        for n, row in enumerate(rows):
            line = _row(row)
            if len(line) + 1 > budget:
                left_out += len(rows) - n
                break
            budget -= len(line) + 1
            body.append(line)
    if decision.stale_waivers:
        stale = ", ".join(inline_code(w) for w in sorted(decision.stale_waivers))
        line = f"Stale waivers (in scope, match nothing): {stale}"
        if len(line) + 2 <= budget:
            body.extend(["", line])
        else:
            left_out += 1
    if left_out:
        body.extend(["", f"_{left_out} row(s) left out to stay under {max_chars} characters: "
                         f"`gate decisions show {decision.decision_id}` has them all._"])
    return head + "\n".join(body) + tail


def _head(decision: Decision) -> str:
    from gate.decisions.stats import EXPIRING_WITHIN

    outcome = decision.outcome.value.upper()
    expiring = len(_expiring(decision))
    soon = f", {expiring} expiring within {EXPIRING_WITHIN.days} days" if expiring else ""
    lines = [
        f"## {_MARK[decision.outcome]} gate: {outcome} {inline_code(artifact_ref(decision))} → "
        f"{inline_code(decision.environment)}",
        "",
        f"**{len(decision.violations)} violation(s), {len(decision.warnings)} warning(s), "
        f"{len(waivers_applied(decision))} waiver(s){_vex_count(decision)} applied{soon}** · findings: {escape(summary_counts(decision.summary))}",
    ]
    if (platforms := platforms_line(decision)) is not None:
        lines += ["", escape(platforms)]
    if decision.error:
        lines += ["", f"> **Error:** {escape(decision.error)}"]
    return "\n".join(lines) + "\n"


def _tail(decision: Decision, links: DecisionLinks | None) -> str:
    """A list (so every renderer keeps the lines apart): policy, layers, decision, links."""
    policy = decision.policy
    revision = f" revision {inline_code(policy.revision)}" if policy.revision else ""
    engine = f"{escape(policy.engine)} {escape(policy.engine_version)}"
    lines = [f"- Policy {inline_code(policy.digest)}{revision}, engine {engine}"]
    if len(policy.layers) > 1:
        layers = [
            f"{inline_code(layer.source)} {inline_code(layer.digest)}"
            + (f" {inline_code(layer.revision)}" if layer.revision else "")
            for layer in policy.layers
        ]
        lines.append("- Policy layers (bottom first): " + ", ".join(layers))
    lines.append(f"- Decision {inline_code(decision.decision_id)} at {escape(decision.timestamp)}")
    for label, url in _links(decision, links):
        lines.append(f"- {label}: <{url}>")
    return "\n".join(["", "", *lines]) + "\n"


def _links(decision: Decision, links: DecisionLinks | None) -> list[tuple[str, str]]:
    """The CI run recorded with the decision (or given), and the decision's page when given; http(s) only."""
    run = (links.run if links and links.run else None) or (decision.context or {}).get("pipeline_url")
    found = [("CI run", run), ("Decision", links.decision if links else None)]
    return [(label, url) for label, url in found if isinstance(url, str) and _is_web_url(url)]


def _tables(decision: Decision) -> list[tuple[str, list[str], list[list[str]]]]:
    return [
        ("Deny reasons", ["Severity", "Rule", "Message", "Findings"], _result_rows(decision.violations)),
        ("Warnings", ["Severity", "Rule", "Message", "Findings"], _result_rows(decision.warnings)),
        ("Waivers applied", ["Waiver", "Rule", "Expires", "Approved by", "Reason"], _waiver_rows(decision)),
        ("VEX triage applied", ["Source", "Rule", "Status", "Author", "Reason"], _vex_rows(decision)),
    ]


def _vex_count(decision: Decision) -> str:
    count = len(vex_applied(decision))
    return f" and {count} VEX statement(s)" if count else ""


def _expiring(decision: Decision) -> set[str]:
    """Ids of the applied waivers that expire within the warning window of the decision's time (the
    policies' ``input.now``), as the shipped policies warn about them (14 days)."""
    from gate.decisions.stats import EXPIRING_WITHIN

    evaluated_at = decision.input.get("now") if isinstance(decision.input, dict) else None
    now = _moment(evaluated_at) or _moment(decision.timestamp)
    if now is None:
        return set()
    return {
        w.id for w in decision.waivers
        if w.expires is not None and (moment := _moment(w.expires)) is not None and moment - now <= EXPIRING_WITHIN
    }


def _result_rows(results: Sequence[Violation]) -> list[list[str]]:
    return [
        [escape(v.severity.upper()), inline_code(v.rule), escape(v.message), _finding_ids(v.finding_ids)]
        for v in ordered(results)
    ]


def _finding_ids(ids: Sequence[str]) -> str:
    shown = ", ".join(inline_code(i[:SHORT_ID]) for i in ids[:MAX_IDS])
    return shown + (f" and {len(ids) - MAX_IDS} more" if len(ids) > MAX_IDS else "")


def _waiver_rows(decision: Decision) -> list[list[str]]:
    from gate.decisions.stats import EXPIRING_WITHIN

    expiring = _expiring(decision)
    rows = []
    for w in sorted(waivers_applied(decision), key=lambda w: (w.expires or "", w.id)):
        expires = escape(w.expires or "")
        if w.id in expiring:
            expires = f"⚠️ {expires} (expires within {EXPIRING_WITHIN.days} days)"
        rows.append([inline_code(w.id), inline_code(w.rule), expires, escape(w.approved_by or ""), escape(w.reason or "")])
    return rows


def _vex_rows(decision: Decision) -> list[list[str]]:
    """Source, rule, status, author and reason of each VEX statement of the triage (no expiry)."""
    return [
        [escape(w.source), inline_code(w.rule), escape(w.status or ""), escape(w.author or ""), escape(w.reason or "")]
        for w in vex_applied(decision)
    ]


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return rfc3339.parse(value)
    except rfc3339.TimeFormatError:
        return None


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _clean(text: str) -> str:
    """One line, no control characters, at most MAX_CELL characters."""
    text = " ".join(_CONTROL.sub("\ufffd", text).split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def escape(text: str) -> str:
    """Untrusted text as literal markdown: HTML characters as entities, markdown punctuation
    backslash-escaped (``|`` cannot end a cell, a backtick cannot open code, ``[`` cannot make a
    link), ``@`` separated from a name so it mentions nobody."""
    text = "".join(_HTML.get(c, c) for c in _clean(text))
    return _PUNCTUATION.sub(r"\\\1", text).replace("@", "@\u200b")


def inline_code(text: str) -> str:
    """Untrusted text as inline code: a code span cannot be escaped from inside, so backticks and
    ``|`` (which ends a table cell even in code) become look-alikes; everything else is literal."""
    cleaned = _clean(text).replace("`", "ˋ").replace("|", "¦")
    return f"`{cleaned}`" if cleaned else "` `"


def _is_web_url(url: str) -> bool:
    return re.fullmatch(r"https?://[^\s<>`|]+", url) is not None
