"""A decision as JUnit XML, the way Jenkins (and GitLab, Azure DevOps) show test reports.

One ``<testsuite name="gate <environment>">``; one ``<testcase>`` per promotion rule that was evaluated,
named by its rule id with the Rego package as class name: a rule that denied fails (one ``<failure>``
listing its violations), a rule that warned passes with the warnings in ``<system-out>``, a rule whose
findings were waived is ``<skipped message="waived by W-…">`` (a waiver names a finding rule, e.g. a CVE,
which is then a skipped testcase of ``gate.promotion.waivers``), a rule with no result passes. The
decision only knows the rules that produced results, so the caller passes the promotion rules of the
bundle that decided (``promotion_rules(bundle)``) for the passing ones to appear — with their packages,
so a rule keeps the same class name whether it passes or fails, and the CI server's per-test history
stays joined up. Admission rules (``gate.admission``) are no part of a promotion and never listed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from gate.decisions.record import AppliedWaiver, Decision, Outcome, Violation
from gate.output.decision_view import artifact_ref, describe_finding, findings_by_id, one_line, ordered
from gate.policy.interface import PROMOTION_ROOT

if TYPE_CHECKING:
    from gate.policy.bundle import Bundle
    from gate.policy.metadata import RuleMeta

DEFAULT_PACKAGE = PROMOTION_ROOT
WAIVERS_PACKAGE = f"{PROMOTION_ROOT}.waivers"
# XML 1.0 cannot carry most control characters even escaped; ElementTree would write them anyway.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def promotion_rules(bundle: Bundle) -> dict[str, RuleMeta]:
    """The promotion rules of a loaded bundle (every layer), by rule id: the deny and warn rules of the
    ``gate.promotion`` packages that carry METADATA. Admission rules and helper rules are left out: they
    are not evaluated for a promotion. ``RuleMeta.package`` is the rule's package."""
    from gate.policy.metadata import read_metadata

    found = {}
    for (package, rule_id), meta in sorted(read_metadata(bundle.policies()).items()):
        if _is_promotion(package) and meta.rule in ("deny", "warn"):
            found[rule_id] = meta
    return found


def render(decision: Decision, rules: Iterable[str] | Mapping[str, RuleMeta] | Mapping[str, str] = ()) -> bytes:
    """The JUnit XML document (UTF-8, with declaration). ``rules``: ``promotion_rules(bundle)``, or rule ids
    (mapped to their packages); a rule of a package outside ``gate.promotion`` is left out."""
    packages: dict[str, str | None] = {}
    for rule_id, meta in (rules.items() if isinstance(rules, Mapping) else dict.fromkeys(rules).items()):
        package = meta if meta is None or isinstance(meta, str) else meta.package
        if package is None or _is_promotion(package if package.startswith("gate.") else f"gate.{package}"):
            packages[rule_id] = package
    denied: dict[str, list[Violation]] = {}
    warned: dict[str, list[Violation]] = {}
    for target, results in ((denied, decision.violations), (warned, decision.warnings)):
        for v in ordered(results):
            target.setdefault(v.rule, []).append(v)
            if not packages.get(v.rule):
                packages[v.rule] = v.package
    waived: dict[str, list[AppliedWaiver]] = {}
    for w in decision.waivers:
        # A waiver names a finding rule (a CVE, a check id), which no policy rule denied for the waived
        # findings: it shows as a skipped testcase of its own, unless a promotion rule has its id.
        waived.setdefault(w.rule, []).append(w)
        packages.setdefault(w.rule, WAIVERS_PACKAGE)
    findings = findings_by_id(decision)

    suite = ET.Element("testsuite", name=_x(f"gate {decision.environment}"), timestamp=decision.timestamp[:19])
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("decision_id", decision.decision_id),
        ("outcome", decision.outcome.value),
        ("artifact", artifact_ref(decision)),
        ("policy_digest", decision.policy.digest),
        ("policy_revision", decision.policy.revision or ""),
        ("engine", f"{decision.policy.engine} {decision.policy.engine_version}"),
        *(
            (f"policy_layer_{n}", f"{layer.source} {layer.digest} {layer.revision or ''}".rstrip())
            for n, layer in enumerate(decision.policy.layers, 1)
        ),
    ):
        ET.SubElement(properties, "property", name=name, value=_x(value))
    failures = errors = skipped = 0
    if decision.outcome is Outcome.ERROR:
        errors += 1
        case = ET.SubElement(suite, "testcase", classname="gate", name="evaluate", time="0")
        ET.SubElement(case, "error", message=_x(one_line(decision.error or "no decision")), type="error")
    for rule, package in sorted(packages.items(), key=lambda item: (_classname(item[1]), item[0])):
        case = ET.SubElement(suite, "testcase", classname=_x(_classname(package)), name=_x(rule), time="0")
        if rule in denied:
            failures += 1
            violations = denied[rule]
            first = one_line(violations[0].message)
            message = first if len(violations) == 1 else f"{len(violations)} violations; first: {first}"
            failure = ET.SubElement(case, "failure", message=_x(message), type=violations[0].severity)
            failure.text = _x("\n".join(_describe(v, findings) for v in violations))
        elif rule in waived:
            # what it would have denied was waived: neither passed nor failed
            skipped += 1
            ids = ", ".join(w.id for w in waived[rule])
            ET.SubElement(case, "skipped", message=_x(f"waived by {ids}"))
        out = [_describe(v, findings) for v in warned.get(rule, ())] + [_waiver(w) for w in waived.get(rule, ())]
        if out:
            ET.SubElement(case, "system-out").text = _x("\n".join(out))
    if decision.stale_waivers:
        stale = [f"stale waiver {i}: matches nothing" for i in decision.stale_waivers]
        ET.SubElement(suite, "system-out").text = _x("\n".join(stale))
    tests = len(suite.findall("testcase"))
    counts = {
        "tests": str(tests),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": "0",
    }
    suite.attrib.update(counts)
    root = ET.Element("testsuites", {"name": "gate", **{k: v for k, v in counts.items() if k != "skipped"}})
    root.append(suite)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _describe(violation: Violation, findings: dict[str, dict[str, Any]]) -> str:
    """``[HIGH] message``, then the findings it names and the solution, indented."""
    lines = [f"[{violation.severity.upper()}] {violation.message}"]
    for finding_id in violation.finding_ids:
        finding = findings.get(finding_id)
        lines.append(f"  finding: {describe_finding(finding) if finding else finding_id}")
    if violation.solution:
        lines.append(f"  solution: {one_line(violation.solution)}")
    return "\n".join(lines)


def _waiver(w: AppliedWaiver) -> str:
    if w.is_vex:
        author = f" by {w.author}" if w.author else ""
        return f"VEX {w.status}: {w.source}{author}: {one_line(w.reason or '')}"
    return f"waiver {w.id}: expires {w.expires}, approved by {w.approved_by}: {one_line(w.reason or '')}"


def _is_promotion(package: str) -> bool:
    return package == PROMOTION_ROOT or package.startswith(f"{PROMOTION_ROOT}.")


def _classname(package: str | None) -> str:
    if not package:
        return DEFAULT_PACKAGE
    return package if package.startswith("gate.") else f"gate.{package}"


def _x(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
