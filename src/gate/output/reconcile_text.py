"""``gate reconcile`` as text: the outcome line, then one row per object that was judged."""

from __future__ import annotations

from typing import Any

from gate.output.text import table


def render(report: dict[str, Any]) -> str:
    """A cycle report (``CycleReport.as_dict()``) for a person."""
    objects = report["objects"]
    counts = {a: sum(o["action"] == a for o in objects) for a in ("apply", "unchanged", "blocked")}
    verb = "would apply" if report["plan"] else "applied"
    head = (
        f"{report['outcome'].upper()}{' (plan)' if report['plan'] else ''} commit {report['commit'][:12]}: "
        f"{counts['apply']} {verb}, {counts['unchanged']} unchanged, {counts['blocked']} blocked"
    )
    if report["pruned"]:
        head += f", {len(report['pruned'])} pruned"
    drifted = [o for o in objects if o.get("drift")]
    if drifted:
        head += f", {len(drifted)} drift corrected"
    rows = []
    for o in [*objects, *report["pruned"]]:
        notes = list(o["reasons"]) + [f"warning: {w}" for w in o.get("warnings", [])]
        if o.get("drift"):
            notes.insert(0, "drift: edited in the cluster, put back")
        if o.get("health"):
            notes.append(f"health: {o['health']}" + (f" ({o['health_detail']})" if o.get("health_detail") else ""))
        rows.append([o["kind"], o.get("namespace") or "-", o["name"], o["action"], "; ".join(notes).replace("\n", " ")])
    out = [head, ""]
    out.append(table(["KIND", "NAMESPACE", "NAME", "ACTION", "WHY"], rows) if rows else "no objects")
    if report.get("event_id"):
        out += ["", f"Recorded as event {report['event_id']} in the decision log."]
    return "\n".join(out) + "\n"


#: workloads a progress line names; the rest are counted (the line stays readable)
SHOWN_WAITING = 5


def progress_line(progress: dict[str, Any]) -> str:
    """One line on where a health wait stands (``gate.reconcile.cycle.wait_for_health``): how many
    workloads are healthy, how long it has waited of its limit, and what each one still waits for."""
    waiting = [f"{w['object']} ({' '.join(w['detail'].split())})" if w["detail"] else w["object"]
               for w in progress["waiting"][:SHOWN_WAITING]]
    if len(progress["waiting"]) > SHOWN_WAITING:
        waiting.append(f"{len(progress['waiting']) - SHOWN_WAITING} more")
    return (
        f"waiting for workloads to roll out: {progress['healthy']} of {progress['total']} healthy, "
        f"{progress['waited_s']:.0f}s of {progress['limit_s']:.0f}s; still progressing: {', '.join(waiting)}"
    )
