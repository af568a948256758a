"""From an evaluated document to violations and warnings: the one deny/warn collector.

``collect_results`` reads the deny/warn results under any root; promotion (``data.gate.promotion``,
plus its waivers) and admission (``data.gate.admission``, gate.reconcile.admission) both use it.
Shared by every engine, so the embedded engine and an OPA server reach a decision through the
same steps. Fail closed: no deny/warn rule evaluated, or a result of the wrong shape, is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gate import rfc3339
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
    results = collect_results(document, PROMOTION_ROOT, metadata, now, refusal="refusing to allow")
    waivers = document.get("waivers") if isinstance(document, dict) else None
    waivers_node: dict[str, Any] = waivers if isinstance(waivers, dict) else {}
    return PolicyResult(
        violations=results.violations,
        warnings=results.warnings,
        waivers=tuple(sorted((_applied(w) for w in waivers_node.get("applied", [])), key=lambda w: w.id)),
        stale_waivers=tuple(sorted(str(i) for i in waivers_node.get("stale", []))),
        rules_evaluated=results.rules_evaluated,
    )


@dataclass(frozen=True)
class RuleResults:
    """The deny and warn results under one document root, normalized and sorted (most severe first)."""

    #: the denies in force
    violations: tuple[Violation, ...]
    #: the warns, and the denies not in force yet (``effective_on`` after now)
    warnings: tuple[Violation, ...]
    #: deny and warn rules that were evaluated (never 0: that is an error)
    rules_evaluated: int


def collect_results(
    document: Any,
    root: str,
    metadata: dict[tuple[str, str], RuleMeta],
    now: datetime,
    *,
    refusal: str,
    rule_ids_under: str | None = None,
) -> RuleResults:
    """Every deny/warn result of every package under ``data.<root>`` (``document``, as an engine returned it).

    The one collector for promotion (``gate.promotion``) and admission (``gate.admission``): a result
    is a message string or an object with a ``msg`` string (and optional ``rule``, ``severity``,
    ``finding_ids``, ``title``, ``solution``); the rule's METADATA fills in what the result leaves
    out. A rule without an id is named ``<package under rule_ids_under (default root)>.<deny|warn>``.
    A deny whose rule's ``effective_on`` is after ``now`` is a warning saying when it starts to
    block. Fail closed: no deny or warn rule evaluated is a PolicyError ending in ``refusal``, and so
    is a result of the wrong shape.
    """
    packages = dict(_rule_packages(document, root)) if isinstance(document, dict) else {}
    rules = sum(("deny" in node) + ("warn" in node) for node in packages.values())
    if rules == 0:
        raise PolicyError(f"no deny or warn rule under data.{root} was evaluated: {refusal}")
    violations: list[Violation] = []
    warnings: list[Violation] = []
    for package, node in packages.items():
        for kind, default_severity in (("deny", Severity.HIGH), ("warn", Severity.MEDIUM)):
            results = node.get(kind, [])
            if not isinstance(results, list):
                raise PolicyError(f"data.{package}.{kind} must be a set, got {type(results).__name__}")
            default_rule = f"{package.removeprefix((rule_ids_under or root) + '.')}.{kind}"
            for raw in results:
                v = _violation(raw, package, kind, default_rule, default_severity, metadata)
                if kind == "deny" and v.effective_on and effective_from(v.effective_on, package) > now:
                    v = _postponed(v)
                    warnings.append(v)
                else:
                    (violations if kind == "deny" else warnings).append(v)
    return RuleResults(tuple(sorted(violations, key=_order)), tuple(sorted(warnings, key=_order)), rules)


def _rule_packages(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every package (nested mapping) that defines ``deny`` or ``warn``."""
    found = []
    if "deny" in node or "warn" in node:
        found.append((path, node))
    for key, child in node.items():
        if isinstance(child, dict) and key not in ("deny", "warn"):
            found.extend(_rule_packages(child, f"{path}.{key}"))
    return found


def _violation(
    raw: Any, package: str, kind: str, default_rule: str, default: Severity, metadata: dict[tuple[str, str], RuleMeta]
) -> Violation:
    if isinstance(raw, str):
        raw = {"msg": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("msg"), str):
        raise PolicyError(f"data.{package}.{kind}: each result must be a string or an object with a msg string")
    rule = str(raw.get("rule") or default_rule)
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


def effective_from(text: str, where: str) -> datetime:
    """When a rule's ``effective_on`` (an RFC 3339 time, or a date as midnight UTC) starts to block.

    The one reading for promotion and admission: a zoneless time or garbage is a PolicyError.
    """
    try:
        return rfc3339.parse_date_or_time(text)
    except rfc3339.TimeFormatError as e:
        raise PolicyError(f"{where}: effective_on {e}") from None


def _applied(raw: Any) -> AppliedWaiver:
    if isinstance(raw, dict) and raw.get("kind") == "vex":
        return _applied_vex(raw)
    try:
        return AppliedWaiver(
            id=str(raw["id"]),
            rule=str(raw["rule"]),
            expires=str(raw["expires"]),
            approved_by=str(raw.get("approved_by", "")),
            reason=str(raw.get("reason", "")),
            finding_ids=tuple(sorted(raw.get("finding_ids") or ())),
            scope={str(k): str(v) for k, v in raw["scope"].items()} if raw.get("scope") is not None else None,
        )
    except (KeyError, TypeError, AttributeError):
        raise PolicyError(f"data.{WAIVERS_PACKAGE}.applied: each entry needs id, rule and expires") from None


def _applied_vex(raw: dict[str, Any]) -> AppliedWaiver:
    """A VEX statement the policy applied: its reason is the justification and impact statement."""

    def optional(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) and value else None

    try:
        justification, impact = optional("justification"), optional("impact_statement")
        return AppliedWaiver(
            id=str(raw["id"]),
            rule=str(raw["rule"]),
            reason=": ".join(part for part in (justification, impact) if part) or str(raw["status"]),
            finding_ids=tuple(sorted(raw.get("finding_ids") or ())),
            scope={str(k): str(v) for k, v in raw["scope"].items()} if isinstance(raw.get("scope"), dict) else None,
            kind="vex",
            document=str(raw["document"]),
            statement=str(raw["statement"]),
            format=optional("format"),
            status=str(raw["status"]),
            justification=justification,
            author=optional("author"),
        )
    except (KeyError, TypeError, AttributeError):
        raise PolicyError(
            f"data.{WAIVERS_PACKAGE}.applied: a VEX entry needs id, rule, document, statement and status"
        ) from None


def _order(v: Violation) -> tuple[int, str, str]:
    return (-_RANK.get(v.severity, 0), v.rule, v.message)
