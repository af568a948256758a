"""``gate decisions replay`` as text: the counts first, then each decision that would flip and why."""

from __future__ import annotations

from collections.abc import Sequence

from gate.decisions.record import Outcome, Violation
from gate.decisions.replay import Flip, ReplayReport
from gate.output.decision_view import ordered, one_line

#: Flip groups in the order a reader cares about: newly blocked first.
_GROUPS: tuple[tuple[Outcome, Outcome, str], ...] = (
    (Outcome.ALLOW, Outcome.DENY, "Allow → deny"),
    (Outcome.DENY, Outcome.ALLOW, "Deny → allow"),
    (Outcome.ERROR, Outcome.DENY, "Error → deny"),
    (Outcome.ERROR, Outcome.ALLOW, "Error → allow"),
)


def render(report: ReplayReport) -> str:
    """The summary line, the policy replayed under, each flip with the violations that appear or go."""
    counts = [
        f"{report.count(Outcome.ALLOW, Outcome.DENY)} allow→deny",
        f"{report.count(Outcome.DENY, Outcome.ALLOW)} deny→allow",
    ]
    for before, after in ((Outcome.ERROR, Outcome.DENY), (Outcome.ERROR, Outcome.ALLOW)):
        if n := report.count(before, after):
            counts.append(f"{n} {before.value}→{after.value}")
    counts += [f"{report.unchanged} unchanged", f"{len(report.errors)} errors"]
    noun = "decision" if report.replayed == 1 else "decisions"
    out = [f"{report.replayed} {noun} replayed: {', '.join(counts)}"]
    policy = report.policy
    revision = f" revision {policy.revision}" if policy.revision else ""
    when = f"every input judged as at {report.now}" if report.now else "each input judged as at its own decision time"
    out.append(f"Policy {policy.digest}{revision} ({policy.bundle}); {when}; nothing recorded")
    if len(policy.layers) > 1:
        out += [f"  layer {layer.source} {layer.digest} revision {layer.revision or '(none)'}" for layer in policy.layers]
    if report.reasons_changed:
        out.append(f"{report.reasons_changed} unchanged denial(s) would deny for different reasons")
    for before, after, heading in _GROUPS:
        flips = [f for f in report.flips if f.before is before and f.after is after]
        if flips:
            out.append("")
            out.append(f"{heading} ({len(flips)}):")
            for flip in flips:
                out.extend(_flip(flip))
    if report.errors:
        out.append("")
        out.append(f"Could not replay ({len(report.errors)}):")
        for failure in report.errors:
            d = failure.decision
            out.append(f"  {d.decision_id}  {d.timestamp}  {d.environment}  {d.ref}")
            out.append(f"    error: {one_line(failure.error)}")
    return "\n".join(out) + "\n"


def _flip(flip: Flip) -> list[str]:
    d = flip.decision
    lines = [f"  {d.decision_id}  {d.timestamp}  {d.environment}  {d.ref}"]
    lines += _violations("+", flip.appeared)
    lines += _violations("-", flip.disappeared)
    return lines


def _violations(sign: str, violations: Sequence[Violation]) -> list[str]:
    return [f"    {sign} {v.severity.upper()} {v.rule}: {one_line(v.message)}" for v in ordered(violations)]
