"""JUnit XML of a decision: only the promotion rules that were evaluated, one testcase each (deny: failure,
warn: passed with system-out, waived: skipped "waived by W-…"), valid against the JUnit schema of Jenkins'
xUnit plugin (tests/data/junit/junit-10.xsd), parsed with defusedxml.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from defusedxml import ElementTree as SafeET

from gate.decisions.record import Decision, Violation
from gate.output import junit
from gate.policy.sources import load_layers, shipped_library
from tests.cli.test_evaluate import ONE_CRITICAL, POLICIES, evaluate, waiver, waivers_file
from tests.conftest import DATA, Run
from tests.output.test_decision_outputs import ALLOW, DECISION_ID, DIGEST, ERROR, FIXABLE, IMAGE, UPGRADE, make_decision

XSD = DATA / "junit" / "junit-10.xsd"


@pytest.fixture(scope="module")
def schema() -> Any:
    import xmlschema  # the test extra's (PyPI xmlschema)

    return xmlschema.XMLSchema(str(XSD))


def parsed(raw: bytes, schema: Any) -> Element:
    assert raw.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    schema.validate(raw.decode("utf-8"))
    root: Element = SafeET.fromstring(raw)
    return root


def junit_of(decision: Decision, schema: Any, rules: Any = ()) -> Element:
    return parsed(junit.render(decision, rules), schema)


EVERY_RULE = {
    FIXABLE: "gate.promotion.vulnerabilities",
    "secrets.any": "gate.promotion.secrets",
    "coverage.minimum": "gate.promotion.coverage",
    "misconfig.dockerfile": "gate.promotion.misconfig",
    "waivers.expiring": "gate.promotion.waivers",
    "sonarqube.quality_gate": "gate.promotion.sonarqube",
    "scanners.required": "gate.promotion.scanners",
    # an admission rule of the same bundle: no part of a promotion
    "admission.digest_pinned": "gate.admission.images",
}


def test_one_testcase_per_promotion_rule_failures_warnings_and_waivers(schema: Any) -> None:
    root = junit_of(make_decision(), schema, EVERY_RULE)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "gate prod"
    cases = {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}
    # 7 promotion rules + the waived finding rule; the admission rule is not listed
    assert len(cases) == 8 and suite.get("tests") == "8" and root.get("tests") == "8"
    assert not any(classname.startswith("gate.admission") for classname, _ in cases)
    assert suite.get("failures") == root.get("failures") == "3"
    assert suite.get("errors") == "0" and suite.get("skipped") == "1"

    fixable = cases[("gate.promotion.vulnerabilities", FIXABLE)].find("failure")
    assert fixable is not None and fixable.get("type") == "critical"
    assert fixable.get("message", "").startswith("2 violations; first: CVE-2023-0286")
    assert "CVE-2023-0286" in (fixable.text or "") and "CVE-2022-25883" in (fixable.text or "")
    assert f"solution: {UPGRADE}" in (fixable.text or "")
    assert "finding: CVE-2022-25883 in semver 7.3.7 (fixed in 7.5.2, 6.3.1, 5.7.2)" in (fixable.text or "")

    warned = cases[("gate.promotion.misconfig", "misconfig.dockerfile")]
    assert warned.find("failure") is None and warned.find("skipped") is None
    assert "DS-0002" in (warned.findtext("system-out") or "")
    passing = cases[("gate.promotion.sonarqube", "sonarqube.quality_gate")]
    assert list(passing) == []

    # the waiver names a finding rule (a CVE): a skipped testcase of its own, saying who waived it until when
    waived = cases[("gate.promotion.waivers", "CVE-2023-52425")]
    skipped = waived.find("skipped")
    assert skipped is not None and skipped.get("message") == "waived by W-0042"
    out = waived.findtext("system-out") or ""
    assert "W-0042" in out and "2026-12-01T00:00:00Z" in out and "secops@example.com" in out

    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["decision_id"] == DECISION_ID and props["outcome"] == "deny"
    assert props["artifact"] == f"{IMAGE}@{DIGEST}"
    assert "stale waiver W-0007" in (suite.findtext("system-out") or "")


def test_a_promotion_rule_named_by_a_waiver_is_skipped_unless_it_still_denies(schema: Any) -> None:
    waived_rule = msgspec_replace_waiver(rule="secrets.any")
    # secrets.any still denies: the failure wins, the waiver is shown beside it
    denied = junit_of(make_decision(waivers=(waived_rule,)), schema, EVERY_RULE)
    case = next(c for c in denied.iter("testcase") if c.get("name") == "secrets.any")
    assert case.find("failure") is not None and case.find("skipped") is None
    # nothing denies any more: skipped, by that waiver
    allowed = junit_of(make_decision(**{**ALLOW, "waivers": (waived_rule,)}), schema, EVERY_RULE)
    case = next(c for c in allowed.iter("testcase") if c.get("name") == "secrets.any")
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message") == "waived by W-0042"
    assert case.get("classname") == "gate.promotion.secrets"


def msgspec_replace_waiver(**changes: Any) -> Any:
    import msgspec

    (w,) = make_decision().waivers
    return msgspec.structs.replace(w, **changes)


def test_plain_rule_ids_error_outcome_and_hostile_text(schema: Any) -> None:
    root = junit_of(make_decision(**ALLOW), schema, ["coverage.minimum", "secrets.any"])
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == "2"

    error_suite = junit_of(make_decision(**ERROR), schema).find("testsuite")
    assert error_suite is not None and error_suite.get("errors") == "1"
    error = error_suite.find("testcase/error")
    assert error is not None and "could not find function" in error.get("message", "")

    hostile = Violation(rule="x.<y>", message='bad \x1b[31m"red"\x00 & <tag>', severity="high", package="gate.promotion.x")
    case = junit_of(make_decision(violations=(hostile,), warnings=(), waivers=()), schema).find("testsuite/testcase")
    assert case is not None and case.get("name") == "x.<y>"
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == 'bad \ufffd[31m"red"\ufffd & <tag>'


def test_promotion_rules_of_the_shipped_library() -> None:
    rules = junit.promotion_rules(load_layers([str(shipped_library())]))
    assert "vulnerabilities.severity" in rules and "secrets.exposed" in rules
    assert rules["vulnerabilities.severity"].package == "gate.promotion.vulnerabilities"
    assert all(m.package.startswith("gate.promotion.") for m in rules.values())
    assert all(m.rule in ("deny", "warn") for m in rules.values())
    # the library has admission rules too: none of them is a promotion rule
    from gate.policy.metadata import read_metadata

    every = read_metadata(load_layers([str(shipped_library())]).policies())
    assert any(package.startswith("gate.admission") for package, _ in every)


# --- through `gate evaluate --format junit` --------------------------------------------------------


def test_junit_of_a_promotion_lists_only_promotion_rules(gate: Callable[..., Run], schema: Any) -> None:
    run = evaluate(gate, DATA, ONE_CRITICAL, "prod", "--format", "junit")
    assert run.code == 1, run.err
    root = parsed(run.out.encode("utf-8"), schema)
    cases = root.findall(".//testcase")
    classnames = {c.get("classname") or "" for c in cases}
    assert not any(name.startswith("gate.admission") for name in classnames)
    assert all(name.startswith("gate.promotion.") for name in classnames)
    failing = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failing == {"vulnerabilities.severity"}
    expected = set(junit.promotion_rules(load_layers([str(POLICIES)])))
    assert {c.get("name") for c in cases} == expected  # every evaluated promotion rule, passing ones too


def test_junit_through_the_cli_shows_a_waiver_as_skipped(gate: Callable[..., Run], schema: Any, tmp_path: Path) -> None:
    waivers = waivers_file(tmp_path, waiver("W-0042", timedelta(days=90), environment="prod"))
    run = evaluate(gate, DATA, ONE_CRITICAL, "prod", "--format", "junit", "--data", waivers)
    assert run.code == 0, run.err
    root = parsed(run.out.encode("utf-8"), schema)
    (skipped,) = [c for c in root.iter("testcase") if c.find("skipped") is not None]
    assert (skipped.get("classname"), skipped.get("name")) == ("gate.promotion.waivers", "CVE-2022-22965")
    element = skipped.find("skipped")
    assert element is not None and element.get("message") == "waived by W-0042"
    assert root.find("testsuite") is not None and root.find("testsuite").get("skipped") == "1"  # type: ignore[union-attr]
    assert not any(c.find("failure") is not None for c in root.iter("testcase"))
