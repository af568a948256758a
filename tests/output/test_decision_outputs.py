"""Decision renderers: the text summary (SARIF and JUnit: test_sarif.py, test_junit.py, same decision).

The decisions are built by hand, small but realistic: a prod deny with two fixable CVEs (one OS
package, one npm package with its lock file), a committed secret with a location, a coverage
violation about no finding, two warnings and a waiver.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from gate.decisions.record import AppliedWaiver, Decision, Outcome, PolicyInfo, Violation
from gate.output import decision_text

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


# SARIF and JUnit: tests/output/test_sarif.py and test_junit.py (they build on the decision above).


VEX_ENTRY = AppliedWaiver(
    id="47d47474a64c/#0", rule="CVE-2023-0464", reason="vulnerable_code_not_in_execute_path: no X.509 policies",
    finding_ids=(FINDINGS[0]["id"],), scope={"image_digest": DIGEST}, kind="vex", document="sha256:" + "47" * 32,
    statement="#0", format="openvex", status="not_affected", justification="vulnerable_code_not_in_execute_path",
    author="secops@example.com",
)


def test_every_format_shows_a_vex_triage_entry_as_triage() -> None:
    from gate.output import decision_text, github, junit, markdown, sarif

    decision = make_decision(waivers=(WAIVER, VEX_ENTRY))
    text = decision_text.render(decision)
    assert "Waivers applied (1):" in text and "VEX triage applied (1):" in text
    vex_row = text.splitlines()[text.splitlines().index("VEX triage applied (1):") + 2]
    assert vex_row.split()[:5] == ["VEX", "openvex", "474747474747", "statement", "#0"]
    assert "not_affected" in vex_row and "secops@example.com" in vex_row and "no X.509 policies" in vex_row
    md = markdown.render(decision)
    assert "### VEX triage applied (1)" in md and "1 waiver(s) and 1 VEX statement(s) applied" in md
    xml = junit.render(decision).decode()
    assert "VEX not_affected: VEX openvex 474747474747 statement #0 by secops@example.com" in xml
    assert "1 VEX statement(s)" in github.render(decision)
    log = json.loads(sarif.render(decision))
    [suppressed] = [r for r in log["runs"][0]["results"] if r.get("suppressions")]
    assert suppressed["suppressions"][0]["kind"] == "external" and suppressed["level"] == "none"
    assert "no X.509 policies" in suppressed["suppressions"][0]["justification"]
    # a waiver entry of the same decision renders as before: no VEX fields, its expiry and approver
    assert msgspec.json.decode(msgspec.json.encode(WAIVER)).keys() >= {"expires", "approved_by"}
    assert "kind" not in msgspec.json.decode(msgspec.json.encode(WAIVER))
