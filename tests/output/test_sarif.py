"""SARIF 2.1.0 of a decision: valid against the official schema (tests/data/sarif), clean under the rules of
Microsoft's SARIF validator (the SARIF Multitool), and within GitHub code scanning's limits.

Locations: a finding in a file of the scanned source tree points at that file (``%SRCROOT%``) with its
lines as the region; a package in an image, a path inside an image and a violation about no finding are
named by logical locations and anchored on the artifact, never given as a repository file.

The decisions are the hand-built ones of test_decision_outputs.py, and real ones made by ``gate evaluate``
from real reports in tests/data (Trivy misconfigurations with lines, secrets, an image; SonarQube issues).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

import gate
from gate.decisions.record import Decision, Violation
from gate.output import sarif
from gate.policy.metadata import RuleMeta
from tests.conftest import DATA, DIGEST, ROOT, Run
from tests.output.test_decision_outputs import (
    ALLOW,
    DECISION_ID,
    ERROR,
    FIXABLE,
    IMAGE,
    UPGRADE,
    VEX_ENTRY,
    WAIVER,
    make_decision,
)

SCHEMA = DATA / "sarif" / "sarif-schema-2.1.0.json"
REF = f"{IMAGE}:1.4.2@{DIGEST}"
#: where .ci/run installs Microsoft's SARIF Multitool (npm @microsoft/sarif-multitool-linux, a self-contained binary)
MULTITOOL_PATHS = (ROOT / ".tools" / "node_modules" / "@microsoft" / "sarif-multitool-linux" / "Sarif.Multitool",)
#: Reports with everything SARIF must place: misconfigurations with and without lines (a Helm chart), secrets
#: in repository files, an image with OS and npm packages and secrets inside it, SonarQube issues with lines.
REAL_REPORTS = (
    "trivy/trivy-config-helm-testchart-misconfig-lines.json",
    "trivy/trivy-fs-secrets.json",
    "trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json",
    "sonarqube/sonarqube-api-issues-search-real-server-anonymized.json",
)
#: An org layer that denies every SonarQube issue, so Sonar issues reach the SARIF.
CODE_ISSUES_REGO = """\
package gate.promotion.code_issues

import rego.v1

# METADATA
# title: SonarQube issue
# description: Any issue SonarQube reports on the code blocks promotion.
# custom:
#   rule_id: code_issues.any
#   severity: medium
#   solution: Fix the issue SonarQube reports, or mark it as won't fix in SonarQube.
deny contains result if {
	some finding in input.findings
	finding.kind == "code_issue"
	result := {"msg": sprintf("%s: %s", [finding.rule, finding.title]), "rule": "code_issues.any", "finding_ids": [finding.id]}
}
"""


@pytest.fixture(scope="module")
def validator() -> Any:
    """The official SARIF 2.1.0 JSON schema (OASIS, draft-04), from tests/data/sarif."""
    from jsonschema.validators import validator_for

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["id"] == sarif.SCHEMA_URI
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def valid(log: dict[str, Any], validator: Any) -> dict[str, Any]:
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    check_github_limits(log)
    return log


def sarif_of(decision: Decision, validator: Any, rules: Any = None) -> dict[str, Any]:
    return valid(json.loads(sarif.render(decision, rules)), validator)


def check_github_limits(log: dict[str, Any]) -> None:
    """What GitHub code scanning requires of an upload (docs: "SARIF support for code scanning")."""
    for run in log["runs"]:
        rules = run["tool"]["driver"]["rules"]
        assert run["tool"]["driver"]["informationUri"].startswith("https://")
        for rule in rules:
            assert 0 < len(rule["id"]) <= 255
            severity = rule["properties"]["security-severity"]
            assert isinstance(severity, str) and 0.0 <= float(severity) <= 10.0
            assert len(rule["properties"]["tags"]) <= 25
            assert rule["shortDescription"]["text"] and rule["help"]["text"]
        for result in run["results"]:
            assert 0 < len(result["ruleId"]) <= 255
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
            assert result["message"]["text"].strip()
            # every result needs a location with an artifact URI, relative (GitHub's "expected artifact location")
            assert result["locations"]
            for location in result["locations"]:
                artifact = location["physicalLocation"]["artifactLocation"]
                assert artifact["uri"] and ":" not in artifact["uri"].split("/")[0]
                assert artifact["uriBaseId"] in run["originalUriBaseIds"]
            assert result["partialFingerprints"][sarif.FINGERPRINT]


def meta(rule_id: str, package: str, head: str, **fields: Any) -> RuleMeta:
    values: dict[str, Any] = {"title": None, "description": None, "severity": None, "solution": None}
    values.update(fields)
    return RuleMeta(package=package, rule=head, rule_id=rule_id, effective_on=None, file="x.rego", line=1, **values)


def by_fingerprint(log: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["partialFingerprints"][sarif.FINGERPRINT]: r for r in log["runs"][0]["results"]}


# --- the hand-built decision -------------------------------------------------------------------------


def test_one_result_per_violation_and_finding_with_the_tool_described(validator: Any) -> None:
    log = sarif_of(make_decision(), validator)
    assert log["version"] == "2.1.0" and log["$schema"] == sarif.SCHEMA_URI and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("gate", gate.__version__)
    assert driver["informationUri"] == sarif.INFORMATION_URI  # the distribution declares no home page yet
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [
        ("secrets.any", "error"),
        (FIXABLE, "error"),
        ("coverage.minimum", "error"),
        (FIXABLE, "error"),
        ("misconfig.dockerfile", "warning"),
        ("waivers.expiring", "warning"),
    ]
    assert [rule["id"] for rule in driver["rules"]] == sorted(
        {"secrets.any", FIXABLE, "coverage.minimum", "misconfig.dockerfile", "waivers.expiring"}
    )
    # GitHub's category is the part before the last "/": one set of alerts per environment
    assert run["automationDetails"]["id"] == f"gate/prod/{DECISION_ID}"
    assert run["invocations"] == [{"executionSuccessful": True, "endTimeUtc": "2026-11-26T18:40:00.123456Z"}]
    assert run["properties"]["decision_id"] == DECISION_ID


def test_rules_without_metadata_come_from_the_results(validator: Any) -> None:
    rules = {r["id"]: r for r in sarif_of(make_decision(), validator)["runs"][0]["tool"]["driver"]["rules"]}
    fixable = rules[FIXABLE]
    assert fixable["name"] == "VulnerabilitiesFixable"
    assert fixable["properties"]["security-severity"] == "9.5"  # the worst of its results: critical
    assert fixable["properties"]["tags"] == ["security", "policy", "critical", "gate.promotion.vulnerabilities"]
    assert fixable["shortDescription"]["text"] == "Fixable critical or high vulnerability."
    assert "gate.promotion.vulnerabilities" in fixable["fullDescription"]["text"]
    assert fixable["help"]["text"] == UPGRADE and UPGRADE in fixable["help"]["markdown"]
    assert fixable["defaultConfiguration"]["level"] == "error"
    assert rules["coverage.minimum"]["properties"]["security-severity"] == "8.0"
    assert rules["coverage.minimum"]["shortDescription"]["text"] == "coverage.minimum."  # no title: the rule id
    assert rules["misconfig.dockerfile"]["properties"]["security-severity"] == "5.5"
    assert rules["misconfig.dockerfile"]["defaultConfiguration"]["level"] == "warning"
    assert rules["waivers.expiring"]["properties"]["security-severity"] == "3.0"


def test_rules_are_described_from_their_metadata(validator: Any) -> None:
    metadata = {
        FIXABLE: meta(
            FIXABLE,
            "gate.promotion.vulnerabilities",
            "deny",
            title="Fixable vulnerability",
            description="A vulnerability with a fixed version at a blocking severity.",
            severity="high",
            solution="Rebuild on the fixed version.",
        ),
        "misconfig.dockerfile": meta("misconfig.dockerfile", "gate.promotion.misconfig", "warn", severity="medium"),
    }
    rules = {r["id"]: r for r in sarif_of(make_decision(), validator, metadata)["runs"][0]["tool"]["driver"]["rules"]}
    fixable = rules[FIXABLE]
    assert fixable["shortDescription"]["text"] == "Fixable vulnerability."
    assert fixable["fullDescription"]["text"] == "A vulnerability with a fixed version at a blocking severity."
    assert fixable["help"] == {"text": "Rebuild on the fixed version.", "markdown": "**Solution:** Rebuild on the fixed version."}
    assert fixable["properties"]["security-severity"] == "8.0"  # METADATA's severity, not the worst result's
    assert fixable["defaultConfiguration"]["level"] == "error"  # a deny rule
    assert rules["misconfig.dockerfile"]["defaultConfiguration"]["level"] == "warning"  # a warn rule
    # a rule without METADATA is still described from its results
    assert rules["secrets.any"]["shortDescription"]["text"] == "No secrets in images."
    # the ids-to-packages form (JUnit's) is accepted and adds nothing
    plain = sarif_of(make_decision(), validator, {FIXABLE: "gate.promotion.vulnerabilities"})
    assert plain == sarif_of(make_decision(), validator)


def test_repository_files_have_regions_and_image_findings_logical_locations(validator: Any) -> None:
    results = by_fingerprint(sarif_of(make_decision(), validator))

    secret = results["f-secret"]["locations"][0]
    assert secret == {
        "physicalLocation": {
            "artifactLocation": {"uri": "app/config/settings.py", "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": 12, "endLine": 12},
        }
    }
    assert results["f-secret"]["message"]["text"].startswith("aws-access-key-id at app/config/settings.py:12: ")
    dockerfile = results["f-root"]["locations"][0]
    assert dockerfile == {"physicalLocation": {"artifactLocation": {"uri": "Dockerfile", "uriBaseId": "%SRCROOT%"}}}

    # an OS package of the image: the image and the package, no repository file
    openssl = results["f-openssl"]["locations"][0]
    assert openssl["physicalLocation"] == {"artifactLocation": {"uri": IMAGE, "uriBaseId": sarif.ARTIFACT_BASE}}
    assert openssl["logicalLocations"] == [
        {"name": f"{IMAGE}@{DIGEST}", "kind": "resource"},
        {
            "name": "libssl3@3.0.7-r0",
            "fullyQualifiedName": "pkg:apk/alpine/libssl3@3.0.7-r0?distro=3.17.1",
            "kind": "module",
        },
    ]
    # a package path is a path inside the image as far as gate knows: never given as a repository file
    semver = results["f-semver"]["locations"][0]
    assert semver["physicalLocation"]["artifactLocation"]["uriBaseId"] == sarif.ARTIFACT_BASE
    assert semver["logicalLocations"][1]["name"] == "semver@7.3.7"
    message = results["f-semver"]["message"]["text"]
    assert "CVE-2022-25883" in message and "semver 7.3.7" in message and "fixed in 7.5.2" in message

    coverage = results["rule:coverage.minimum"]
    assert coverage["locations"] == [
        {
            "physicalLocation": {"artifactLocation": {"uri": IMAGE, "uriBaseId": sarif.ARTIFACT_BASE}},
            "logicalLocations": [{"name": f"{IMAGE}@{DIGEST}", "kind": "resource"}],
        }
    ]
    assert coverage["message"]["text"] == "line coverage 71.3% is under the 80% required in prod."


def test_a_path_inside_an_image_is_a_logical_location(validator: Any) -> None:
    finding = {
        "id": "f-in-image",
        "scanner": "trivy",
        "kind": "secret",
        "rule": "jwt-token",
        "severity": "medium",
        "title": "JWT token",
        "location": {"path": "/juice-shop/lib/insecurity.js", "start_line": 23, "end_line": 23, "image": "bkimminich/juice-shop:v12.10.2"},
    }
    relative = {**finding, "id": "f-relative-in-image", "location": {**finding["location"], "path": "juice-shop/lib/x.js"}}
    absolute = {**finding, "id": "f-absolute", "location": {"path": "/etc/shadow", "start_line": 1}}
    decision = make_decision(
        input={"findings": [finding, relative, absolute]},
        violations=(Violation(rule="secrets.any", message="secret", severity="critical", finding_ids=("f-absolute", "f-in-image", "f-relative-in-image")),),
        warnings=(),
    )
    results = by_fingerprint(sarif_of(decision, validator))
    for finding_id in ("f-in-image", "f-relative-in-image", "f-absolute"):
        location = results[finding_id]["locations"][0]
        assert location["physicalLocation"]["artifactLocation"]["uriBaseId"] == sarif.ARTIFACT_BASE, finding_id
        assert "region" not in location["physicalLocation"]
    assert results["f-in-image"]["locations"][0]["logicalLocations"] == [
        {"name": "bkimminich/juice-shop:v12.10.2", "kind": "resource"},
        {"name": f"{IMAGE}@{DIGEST}", "kind": "resource"},
        {"name": "/juice-shop/lib/insecurity.js:23", "kind": "resource"},
    ]


def test_a_lock_file_vulnerability_points_at_the_lock_file(validator: Any) -> None:
    jquery = {
        "id": "f-jquery",
        "scanner": "trivy",
        "kind": "vulnerability",
        "rule": "CVE-2019-11358",
        "severity": "medium",
        "title": "jquery: Prototype pollution",
        "package": {"name": "jquery", "version": "3.3.9", "purl": "pkg:npm/jquery@3.3.9"},
        "location": {"path": "./web/package-lock.json"},
    }
    decision = make_decision(
        input={"findings": [jquery]},
        violations=(Violation(rule="vulnerabilities.severity", message="m", severity="medium", finding_ids=("f-jquery",)),),
        warnings=(),
    )
    (result,) = sarif_of(decision, validator)["runs"][0]["results"]
    assert result["locations"] == [
        {
            "physicalLocation": {"artifactLocation": {"uri": "web/package-lock.json", "uriBaseId": "%SRCROOT%"}},
            "logicalLocations": [{"name": "jquery@3.3.9", "fullyQualifiedName": "pkg:npm/jquery@3.3.9", "kind": "module"}],
        }
    ]


def test_fingerprints_are_stable_across_runs(validator: Any) -> None:
    first = by_fingerprint(sarif_of(make_decision(), validator))
    reworded = tuple(msgspec.structs.replace(v, message=v.message + " (now 70.1%)") for v in make_decision().violations)
    later = make_decision(decision_id="01937c9e-0000-7000-8000-000000000000", timestamp="2026-12-01T00:00:00Z", violations=reworded)
    second = by_fingerprint(sarif_of(later, validator))
    assert set(first) == set(second) == {"f-openssl", "f-semver", "f-secret", "rule:coverage.minimum", "f-root", "rule:waivers.expiring"}


def test_allow_error_long_ids_and_odd_inputs_stay_valid(validator: Any) -> None:
    allow = sarif_of(make_decision(**ALLOW), validator)["runs"][0]
    assert allow["results"] == [] and allow["tool"]["driver"]["rules"] == []
    error = sarif_of(make_decision(**ERROR), validator)["runs"][0]
    assert error["invocations"][0]["executionSuccessful"] is False
    assert "could not find function" in error["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
    # a registry with a port must not read as a URI scheme; a finding id missing from the input still reports;
    # a rule id over GitHub's 255 characters is cut to one that stays unique
    long_id = "org." + "x" * 300
    odd = make_decision(
        artifact={"image": "localhost:5000/shop/cart", "digest": DIGEST},
        violations=(
            Violation(rule="x.y", message="m", severity="unknown", finding_ids=("gone",)),
            Violation(rule=long_id, message="long", severity="low"),
        ),
        warnings=(),
    )
    results = sarif_of(odd, validator)["runs"][0]["results"]
    gone = next(r for r in results if r["ruleId"] == "x.y")
    assert gone["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "localhost%3A5000/shop/cart"
    assert "finding gone is not in the input" in gone["message"]["text"]
    cut = next(r for r in results if r["ruleId"] != "x.y")["ruleId"]
    assert len(cut) == 255 and cut.startswith("org.xxx") and cut != long_id[:255]


# --- real reports through `gate evaluate --format sarif` -------------------------------------------


@pytest.fixture
def code_issues_layer(tmp_path: Path) -> Path:
    layer = tmp_path / "org-policies"
    (layer / "gate" / "promotion").mkdir(parents=True)
    (layer / "gate" / "promotion" / "code_issues.rego").write_text(CODE_ISSUES_REGO)
    return layer


def evaluate_real(gate: Callable[..., Run], layer: Path, *extra: Any) -> Run:
    argv: list[Any] = ["evaluate", "--image", REF, "--env", "prod", "--policy", "gate:library", "--policy", layer]
    for report in REAL_REPORTS:
        argv += ["--report", f"auto={DATA / report}"]
    return gate(*argv, *extra)


def test_real_reports_through_the_cli(gate: Callable[..., Run], code_issues_layer: Path, validator: Any) -> None:
    run = evaluate_real(gate, code_issues_layer, "--format", "sarif")
    assert run.code == 1, run.err
    log = valid(json.loads(run.out), validator)
    results = log["runs"][0]["results"]
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_rule.setdefault(result["ruleId"], []).append(result)

    def repository_files(rule: str) -> dict[tuple[str, int | None], dict[str, Any]]:
        found = {}
        for result in by_rule[rule]:
            physical = result["locations"][0]["physicalLocation"]
            if physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%":
                region = physical.get("region", {})
                found[(physical["artifactLocation"]["uri"], region.get("startLine"))] = region
        return found

    # Trivy misconfigurations of a Helm chart (repository files), with the lines Trivy gives
    misconfig = repository_files("misconfigurations.severity")
    assert misconfig[("templates/deployment.yaml", 23)] == {"startLine": 23, "endLine": 57}
    # secrets in repository files (trivy fs), with their lines
    secrets = repository_files("secrets.exposed")
    assert secrets[("deploy.sh", 3)] == {"startLine": 3, "endLine": 3}
    assert ("deploy.sh", 7) in secrets
    # SonarQube issues: the component's file under the project, with the issue's lines
    sonar = repository_files("code_issues.any")
    assert sonar[("src/app/pages/fjiowefjewio/fjwieof/fjiwoe/details.html", 59)]["startLine"] == 59
    assert all(region for region in sonar.values())

    # vulnerabilities of the image: logical locations (the image, name@version), never a repository file
    vulnerabilities = by_rule["vulnerabilities.severity"]
    assert vulnerabilities
    for result in vulnerabilities:
        location = result["locations"][0]
        assert location["physicalLocation"] == {"artifactLocation": {"uri": IMAGE, "uriBaseId": sarif.ARTIFACT_BASE}}
        names = [logical["name"] for logical in location["logicalLocations"]]
        assert names[0] == REF and "@" in names[1]
    assert any(
        logical["name"] == "lodash@4.17.11"
        for result in vulnerabilities
        for logical in result["locations"][0]["logicalLocations"]
    )
    # secrets Trivy found inside the image: the path inside it is a logical location only
    in_image = [r for r in by_rule["secrets.exposed"] if r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] != "%SRCROOT%"]
    assert len(in_image) == 3
    for result in in_image:
        names = [logical["name"] for logical in result["locations"][0]["logicalLocations"]]
        assert names[0] == "bkimminich/juice-shop:v12.10.2" and names[-1].startswith("/juice-shop/")
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert not any("juice-shop/" in uri or uri.startswith("usr/") for uri in uris)

    # the same reports again: a new decision, the same fingerprints (GitHub keeps the same alerts)
    again = json.loads(evaluate_real(gate, code_issues_layer, "--format", "sarif").out)
    assert again["runs"][0]["properties"]["decision_id"] != log["runs"][0]["properties"]["decision_id"]
    assert by_fingerprint(again).keys() == by_fingerprint(log).keys()


# --- Microsoft's SARIF validator -------------------------------------------------------------------


def multitool() -> str:
    """Microsoft's SARIF Multitool: GATE_SARIF_MULTITOOL, else .tools/ (where .ci/run installs it), else PATH."""
    candidates = [os.environ.get("GATE_SARIF_MULTITOOL"), *map(str, MULTITOOL_PATHS), shutil.which("Sarif.Multitool")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "the SARIF validator is not installed: npm install --prefix .tools @microsoft/sarif-multitool-linux@5.7.0 "
        "&& chmod u+x .tools/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool (or set GATE_SARIF_MULTITOOL)"
    )


@pytest.fixture
def logs(tmp_path: Path, gate: Callable[..., Run], code_issues_layer: Path) -> Iterator[list[Path]]:
    """SARIF files of every shape: the hand-built decision (with and without METADATA), allow, error, real reports."""
    rules = {FIXABLE: meta(FIXABLE, "gate.promotion.vulnerabilities", "deny", title="Fixable", description="Fixable.")}
    documents = {
        "deny.sarif": sarif.render(make_decision()),
        "deny-metadata.sarif": sarif.render(make_decision(), rules),
        "allow.sarif": sarif.render(make_decision(**ALLOW)),
        "error.sarif": sarif.render(make_decision(**ERROR)),
        "vex.sarif": sarif.render(make_decision(waivers=(WAIVER, VEX_ENTRY))),
        "real.sarif": evaluate_real(gate, code_issues_layer, "--format", "sarif").out.encode(),
    }
    paths = []
    for name, document in documents.items():
        (tmp_path / name).write_bytes(document)
        paths.append(tmp_path / name)
    yield paths


def test_clean_under_the_sarif_validator_rules(logs: list[Path], tmp_path: Path) -> None:
    """Errors and warnings of the validator's SARIF rules fail the test; its notes are advice (e.g. "consider
    message ids instead of text"). One warning is allowed where gate has nothing true to say: SARIF2017 asks every
    physical location for a region, and a result in no repository file (an image) or without lines has none."""
    report = tmp_path / "validation.sarif"
    env = {**os.environ, "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT": "1", "DOTNET_CLI_TELEMETRY_OPTOUT": "1"}
    command = [multitool(), "validate", "--rule-kind", "Sarif", "--level", "Error;Warning", "--log", "ForceOverwrite"]
    done = subprocess.run([*command, "-o", str(report), *map(str, logs)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and report.exists(), done.stdout + done.stderr
    validation = json.loads(report.read_text(encoding="utf-8-sig"))
    problems = []
    checked = 0
    for result in validation["runs"][0].get("results", []):
        level = result.get("level", "warning")
        if level not in ("error", "warning"):
            continue
        checked += 1
        if result["ruleId"] == "SARIF2017" and _has_no_known_lines(result, logs):
            continue
        problems.append(f"{result['ruleId']} {level}: {result['message'].get('arguments') or result['message']}")
    assert not problems, "\n".join(problems[:20])
    assert checked > 0  # the validator ran its rules on the files (SARIF2017 fires on every image result)


def _has_no_known_lines(result: dict[str, Any], logs: list[Path]) -> bool:
    """Whether the physical location the validator names lacks a region because gate knows no lines for it."""
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    pointer = result["message"]["arguments"][0]  # e.g. runs[0].results[3].locations[0].physicalLocation
    document = json.loads(Path(uri.removeprefix("file://")).read_text(encoding="utf-8"))
    node: Any = document
    for part in pointer.replace("]", "").replace("[", ".").split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    artifact = node["artifactLocation"]
    if artifact["uriBaseId"] == sarif.ARTIFACT_BASE:
        return True
    # a repository file without a region: the finding has no line (e.g. Trivy's KSV-0117, DS-0002)
    return "region" not in node


def test_vex_triaged_findings_are_suppressed_results(validator: Any) -> None:
    log = sarif_of(make_decision(waivers=(WAIVER, VEX_ENTRY)), validator)
    [result] = [r for r in log["runs"][0]["results"] if r.get("suppressions")]
    assert result["ruleId"] == "triage.vex" and result["properties"]["rule"] == "CVE-2023-0464"
    assert result["properties"]["triage"] == "47d47474a64c/#0"
    assert log["runs"][0]["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "triage.vex"
    assert result["partialFingerprints"] == {"gateFinding/v1": VEX_ENTRY.finding_ids[0]}
