"""What each command tells gate.notify: the ``--notify`` flag and the small payload of each kind.

Payloads stay small — subject, outcome, image, environment, decision id, the top reasons, and for a
decision its markdown summary (gate.output.markdown, cut to ``notify.MAX_MARKDOWN``) — never the
input document: a chat channel or a webhook receiver is not the decision log.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gate.notify import Target

__all__ = [
    "BlockedObjects", "add_notify_argument", "notify_decision", "notify_error", "notify_promotion", "notify_targets",
]


def add_notify_argument(parser: argparse.ArgumentParser, *, what: str) -> None:
    """``--notify URL`` (repeatable), the same spelling on every command that notifies."""
    parser.add_argument(
        "--notify", action="append", default=[], metavar="URL",
        help=(
            f"also notify this webhook {what}: https://… gets a CloudEvents 1.0 JSON event, "
            "slack+https://… a Slack-compatible {\"text\": …} message; repeatable. Besides [notify] in gate.toml. "
            "A failed notification is one warning line and never changes the exit code (docs/configuration.md)"
        ),
    )


def notify_targets(args: argparse.Namespace) -> list[Target]:
    """The targets of this call, checked before anything is decided (a bad one is exit 2)."""
    from gate import notify

    return notify.targets(getattr(args, "notify", None) or ())


def _reasons(messages: Iterable[str]) -> list[str]:
    from gate import notify

    listed = list(messages)
    top = listed[: notify.TOP_REASONS]
    if len(listed) > len(top):
        top.append(f"… and {len(listed) - len(top)} more")
    return top


def notify_decision(decision: Any, targets: Sequence[Target]) -> None:
    """``decision.denied`` or ``decision.error`` for a recorded decision; nothing for an allow."""
    from gate import notify

    from gate.output.decision_view import artifact_ref

    kind = {"deny": "decision.denied", "error": "decision.error"}.get(str(decision.outcome.value))
    if kind is None or not targets:
        return
    reasons = _reasons(v.message for v in decision.violations) if decision.violations else _reasons(
        [decision.error] if decision.error else []
    )
    image = artifact_ref(decision)
    data: dict[str, Any] = {
        "text": f"{decision.outcome.value.upper()} for {decision.environment}"
        + (f": {reasons[0]}" if reasons else "") + f" (decision {decision.decision_id})",
        "outcome": decision.outcome.value, "image": image, "environment": decision.environment,
        "decision_id": decision.decision_id, "reasons": reasons,
    }
    markdown = _markdown(decision)
    if markdown:
        data["markdown"] = markdown
    notify.notify(kind, image, data, targets=targets)


def _markdown(decision: Any) -> str | None:
    """The decision's markdown summary (the one renderer, gate.output.markdown), cut to a small size."""
    from gate import notify

    try:
        from gate.output.markdown import render

        return render(decision, max_chars=notify.MAX_MARKDOWN)  # the renderer says what it left out
    except Exception:  # noqa: BLE001 - a summary that cannot be rendered leaves it out, nothing more
        return None


def notify_error(image: str, environment: str, problem: str, targets: Sequence[Target]) -> None:
    """``decision.error`` when evaluation failed after recording an error decision (``problem`` names it)."""
    from gate import notify

    if not targets:
        return
    data = {"text": f"ERROR for {environment}: {problem}", "outcome": "error", "image": image,
            "environment": environment, "reasons": [problem]}
    notify.notify("decision.error", image, data, targets=targets)


def notify_promotion(result: Mapping[str, Any], targets: Sequence[Target]) -> None:
    """``promotion.done`` or ``promotion.refused`` for a promotion's result (no-ops, dry runs and errors: none)."""
    from gate import notify

    outcome = result.get("outcome")
    kind = {"done": "promotion.done", "refused": "promotion.refused"}.get(str(outcome))
    if kind is None or not targets:
        return
    target = str(result.get("target") or "")
    subject = target or str(result.get("source") or "")
    reasons = _reasons(str(r) for r in (result.get("reasons") or ([result["reason"]] if result.get("reason") else [])))
    data: dict[str, Any] = {
        "text": f"{outcome} {subject}" + (f": {reasons[0]}" if reasons and kind == "promotion.refused" else "")
        + (f" (decision {result['decision_id']})" if result.get("decision_id") else ""),
        "outcome": outcome,
    }
    for key in ("decision_id", "environment", "source", "target", "digest", "event_id"):
        if result.get(key):
            data[key] = result[key]
    gitops = result.get("gitops")
    if isinstance(gitops, Mapping) and gitops.get("commit"):
        data["commit"] = gitops["commit"]
    pull = result.get("pull_request")
    if isinstance(pull, Mapping) and pull.get("url"):
        data["pull_request"] = pull["url"]
    if reasons:
        data["reasons"] = reasons
    notify.notify(kind, subject, data, targets=targets)


class BlockedObjects:
    """``reconcile.blocked``: one notification per cycle listing the objects newly blocked.

    An object blocked for the same images (digests) as in an earlier cycle of this process is not
    announced again; one that was synced in between, or blocked for another digest, is.
    """

    def __init__(self, targets: Sequence[Target], environment: str, path: str) -> None:
        self.targets = list(targets)
        self.environment = environment
        self.path = path
        self._announced: set[tuple[str, tuple[str, ...]]] = set()

    def cycle(self, report: Any) -> None:
        """Notify about ``report``'s newly blocked objects (nothing when there are none)."""
        from gate import notify

        blocked = [o for o in report.objects if o.action == "blocked"]
        current = {(o.ref, tuple(getattr(o, "images", ()))) for o in blocked}
        fresh = [o for o in blocked if (o.ref, tuple(getattr(o, "images", ()))) not in self._announced]
        self._announced = current  # an object no longer blocked is forgotten: a new block is news again
        if not fresh or not self.targets:
            return
        objects = [
            {"object": o.ref, "images": list(getattr(o, "images", ())), "reasons": _reasons(o.reasons),
             **({"decision_ids": list(o.decision_ids)} if o.decision_ids else {})}
            for o in fresh[:20]
        ]
        names = ", ".join(o.ref for o in fresh[:3]) + (f" and {len(fresh) - 3} more" if len(fresh) > 3 else "")
        first = fresh[0].reasons[0] if fresh[0].reasons else "blocked"
        data: dict[str, Any] = {
            "text": f"{len(fresh)} object(s) blocked in {self.environment} ({self.path}): {names}: {first}",
            "outcome": "blocked", "environment": self.environment, "path": self.path,
            "commit": report.commit, "blocked": len(fresh), "objects": objects,
        }
        if report.event_id:
            data["event_id"] = report.event_id
        notify.notify("reconcile.blocked", f"{self.path} ({self.environment})", data, targets=self.targets)
