"""From the evaluated ``data.gate.promotion`` document to violations, warnings and waivers.

Shared by every engine, so the embedded engine and an OPA server reach a decision through the
same steps. Fail closed: no deny/warn rule evaluated, or a result of the wrong shape, is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gate.decisions.record import AppliedWaiver, Violation
from gate.errors import PolicyError
from gate.models import Severity
from gate.policy.interface import PROMOTION_ROOT, PolicyEngine
from gate.policy.metadata import RuleMeta

_SEVERITIES = {s.value for s in Severity}
_RANK = {s.value: s.rank for s in Severity}
WAIVERS_PACKAGE = f"{PROMOTION_ROOT}.waivers"


@dataclass(frozen=True)
class PolicyResult:
    """What the policies said about one input."""

    violations: tuple[Violation, ...]
    warnings: tuple[Violation, ...]
    waivers: tuple[AppliedWaiver, ...]
    stale_waivers: tuple[str, ...]
    rules_evaluated: int


def evaluate_promotion(
    engine: PolicyEngine, metadata: dict[tuple[str, str], RuleMeta], input: dict[str, Any], now: datetime
) -> PolicyResult:
    """Evaluate every ``gate.promotion`` package on ``input`` and normalize what they say."""
    return promotion_result(engine.evaluate(PROMOTION_ROOT, input), metadata, now)


def promotion_result(document: Any, metadata: dict[tuple[str, str], RuleMeta], now: datetime) -> PolicyResult:
    """What ``data.gate.promotion`` (``document``, as the engine returned it) says, normalized."""
    packages = dict(_rule_packages(document, PROMOTION_ROOT)) if isinstance(document, dict) else {}
    rules = sum(("deny" in node) + ("warn" in node) for node in packages.values())
    if rules == 0:
        raise PolicyError(f"no deny or warn rule under data.{PROMOTION_ROOT} was evaluated: refusing to allow")
    violations: list[Violation] = []
    warnings: list[Violation] = []
    for package, node in packages.items():
        for kind, default_severity in (("deny", Severity.HIGH), ("warn", Severity.MEDIUM)):
            results = node.get(kind, [])
            if not isinstance(results, list):
                raise PolicyError(f"data.{package}.{kind} must be a set, got {type(results).__name__}")
            for raw in results:
                v = _violation(raw, package, kind, default_severity, metadata)
                if kind == "deny" and v.effective_on and _parse_time(v.effective_on, package) > now:
                    v = _postponed(v)
                    warnings.append(v)
                else:
                    (violations if kind == "deny" else warnings).append(v)
    waivers_node = packages.get(WAIVERS_PACKAGE, {})
    return PolicyResult(
        violations=tuple(sorted(violations, key=_order)),
        warnings=tuple(sorted(warnings, key=_order)),
        waivers=tuple(sorted((_applied(w) for w in waivers_node.get("applied", [])), key=lambda w: w.id)),
        stale_waivers=tuple(sorted(str(i) for i in waivers_node.get("stale", []))),
        rules_evaluated=rules,
    )


def _rule_packages(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every package (nested mapping) that defines ``deny`` or ``warn``."""
    found = []
    if "deny" in node or "warn" in node or path == WAIVERS_PACKAGE:
        found.append((path, node))
    for key, child in node.items():
        if isinstance(child, dict) and key not in ("deny", "warn"):
            found.extend(_rule_packages(child, f"{path}.{key}"))
    return found


def _violation(
    raw: Any, package: str, kind: str, default: Severity, metadata: dict[tuple[str, str], RuleMeta]
) -> Violation:
    if isinstance(raw, str):
        raw = {"msg": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("msg"), str):
        raise PolicyError(f"data.{package}.{kind}: each result must be a string or an object with a msg string")
    rule = str(raw.get("rule") or f"{package.removeprefix(PROMOTION_ROOT + '.')}.{kind}")
    meta = metadata.get((package, rule))
    severity = str(raw.get("severity") or (meta.severity if meta else None) or default.value).lower()
    if severity not in _SEVERITIES:
        raise PolicyError(f"data.{package}.{kind}: rule {rule} has unknown severity {severity!r}")
    ids = raw.get("finding_ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise PolicyError(f"data.{package}.{kind}: rule {rule} finding_ids must be a list of strings")
    return Violation(
        rule=rule,
        message=raw["msg"],
        severity=severity,
        finding_ids=tuple(sorted(ids)),
        title=(meta.title if meta else None) or raw.get("title"),
        solution=raw.get("solution") or (meta.solution if meta else None),
        package=package,
        effective_on=meta.effective_on if meta else None,
    )


def _postponed(v: Violation) -> Violation:
    """A deny whose rule is not in force yet: a warning saying when it starts to block."""
    import msgspec

    return msgspec.structs.replace(v, message=f"{v.message} (blocks from {v.effective_on})")


def _parse_time(text: str, where: str) -> datetime:
    """An RFC 3339 time, or a date (midnight UTC, as people write ``effective_on: 2027-03-01``)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PolicyError(f"{where}: effective_on {text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        if len(text.strip()) != 10:  # a time without a zone is ambiguous; a plain date is not
            raise PolicyError(f"{where}: effective_on {text!r} has no time zone: add Z or +HH:MM")
        moment = moment.replace(tzinfo=UTC)
    return moment


def _applied(raw: Any) -> AppliedWaiver:
    try:
        return AppliedWaiver(
            id=str(raw["id"]),
            rule=str(raw["rule"]),
            expires=str(raw["expires"]),
            approved_by=str(raw.get("approved_by", "")),
            reason=str(raw.get("reason", "")),
            finding_ids=tuple(sorted(raw.get("finding_ids") or ())),
        )
    except (KeyError, TypeError):
        raise PolicyError(f"data.{WAIVERS_PACKAGE}.applied: each entry needs id, rule and expires") from None


def _order(v: Violation) -> tuple[int, str, str]:
    return (-_RANK.get(v.severity, 0), v.rule, v.message)
