"""The shipped Rego library (policies/) and `gate policy test`.

Three parts:

- ``gate policy test`` through the CLI, on the shipped bundle and on small bundles written here
  (a failing test, a policy that does not compile, no tests, coverage).
- The shipped policies driven from Python with regorus on realistic inputs: documents built by
  ``gate scan`` from the real reports in tests/data, plus the environment and time ``gate evaluate``
  adds, and data (waivers, threshold overrides) merged as ``--data`` merges it. A small helper
  evaluates ``data.gate.promotion`` the way the engine does; ``gate evaluate`` itself is tested
  elsewhere.
- Static checks that keep the library portable between regorus and OPA and keep the annotation
  contract the engine relies on (rule ids, severities, one ``*_test.rego`` per file).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DIGEST, ROOT, Run
from gate.version import __version__

POLICIES = ROOT / "policies"
NOW = "2027-01-22T00:00:00Z"
IMAGE = "registry.example.com/shop/cart"
SEVERITIES = {"critical", "high", "medium", "low", "info"}

JUICE_SHOP = "trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json"
ALPINE = "trivy/trivy-image-alpine-310.json"
COVERAGE_90 = "coverage/cobertura-java-cobertura-1.9-maven-example.xml"  # line rate 0.9
COVERAGE_80 = "coverage/cobertura-coveragepy-5.0a2-branch.xml"  # line rate exactly 0.8
COVERAGE_71 = "coverage/coveragepy-7.8.0-branch.json"  # line rate 0.710867
SONAR_GATE = "sonarqube/sonarqube-api-qualitygates-project_status-example.json"

# -------------------------------------------------------------------------------------------------
# gate policy test, through the CLI
# -------------------------------------------------------------------------------------------------


def _summary(out: str) -> tuple[int, int]:
    match = re.search(r"^(\d+) passed, (\d+) failed$", out, re.MULTILINE)
    assert match, out
    return int(match[1]), int(match[2])


def _bundle(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "bundle"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


POLICY = """package demo
import rego.v1

deny contains "too big" if input.size > 10

label(n) := "big" if n > 10
"""

PASSING_TEST = """package demo_test
import rego.v1

import data.demo

test_big_is_denied if {
	demo.deny == {"too big"} with input as {"size": 11}
}
"""


def test_shipped_library_passes_all_its_tests(gate: Callable[..., Run]) -> None:
    from gate.policy.bundle import load_bundle
    from gate.policy.testing import discover

    run = gate("policy", "test", "policies")
    assert run.code == 0, run.out + run.err
    passed, failed = _summary(run.out)
    assert failed == 0
    assert passed == len(discover(load_bundle(POLICIES).sources)) >= 100
    assert run.out.strip().splitlines()[-1] == f"{passed} passed, 0 failed"


def test_every_shipped_test_file_has_tests(gate: Callable[..., Run]) -> None:
    run = gate("policy", "test", "policies", "--format", "json")
    assert run.code == 0
    per_file = Counter(t["file"] for t in run.json()["tests"])
    test_files = {p.relative_to(POLICIES).as_posix() for p in POLICIES.rglob("*_test.rego")}
    assert set(per_file) == test_files
    assert all(n >= 1 for n in per_file.values())


def test_verbose_lists_every_test_grouped_by_file(gate: Callable[..., Run]) -> None:
    run = gate("policy", "test", "policies", "-v")
    assert run.code == 0
    passes = [line for line in run.out.splitlines() if line.strip().startswith("PASS data.gate.")]
    assert len(passes) == _summary(run.out)[0]
    assert "gate/promotion/waivers_test.rego:" in run.out.splitlines()
    assert "  PASS data.gate.promotion.waivers_test.test_expiry_warning_boundary_is_14_days (" in run.out


def test_failing_test_exits_1_naming_it(gate: Callable[..., Run], tmp_path: Path) -> None:
    failing = (
        PASSING_TEST
        + """
test_small_is_denied if {
	demo.deny == {"too big"} with input as {"size": 3}
}

test_wrong_value := 7

test_division if {
	1 / 0 == 1
}

test_false := 1 == 2
"""
    )
    root = _bundle(tmp_path, {"demo.rego": POLICY, "demo_test.rego": failing})
    run = gate("policy", "test", root)
    assert run.code == 1, run.out + run.err
    assert "FAIL data.demo_test.test_small_is_denied (demo_test.rego:10): undefined" in run.out
    assert "FAIL data.demo_test.test_wrong_value (demo_test.rego:14): value is 7, not true" in run.out
    assert "FAIL data.demo_test.test_division (demo_test.rego:16): demo_test.rego:17:" in run.out
    assert "divide by zero" in run.out
    assert "FAIL data.demo_test.test_false (demo_test.rego:20): false" in run.out
    assert "Stack backtrace" not in run.out + run.err
    assert "test_big_is_denied" not in run.out  # passing tests are listed only with -v
    assert _summary(run.out) == (1, 4)


def test_undefined_test_fails(gate: Callable[..., Run], tmp_path: Path) -> None:
    undefined = PASSING_TEST + "\ntest_missing if {\n\tdemo.nothing_here\n}\n"
    root = _bundle(tmp_path, {"demo.rego": POLICY, "demo_test.rego": undefined})
    run = gate("policy", "test", root, "--format", "json")
    assert run.code == 1
    tests = {t["name"]: t for t in run.json()["tests"]}
    assert tests["test_missing"]["passed"] is False
    assert tests["test_missing"]["error"] == "undefined"
    assert tests["test_big_is_denied"]["passed"] is True


def test_policy_that_does_not_compile_exits_2_with_file_and_line(gate: Callable[..., Run], tmp_path: Path) -> None:
    broken = "package demo\nimport rego.v1\n\ndeny contains msg if {\n\tmsg :=\n}\n"
    root = _bundle(tmp_path, {"demo.rego": broken, "demo_test.rego": PASSING_TEST})
    run = gate("policy", "test", root)
    assert run.code == 2
    assert run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err  # one line, no backtrace
    assert re.match(
        rf"gate: error: policy does not compile: {re.escape(str(root))}/demo\.rego:5:9: expecting", lines[0]
    ), lines[0]


def test_bundle_without_tests_exits_2(gate: Callable[..., Run], tmp_path: Path) -> None:
    root = _bundle(tmp_path, {"demo.rego": POLICY})
    run = gate("policy", "test", root)
    assert run.code == 2
    assert "no tests found" in run.err
    assert "passed" not in run.out


def test_missing_bundle_exits_2(gate: Callable[..., Run], tmp_path: Path) -> None:
    run = gate("policy", "test", tmp_path / "nowhere")
    assert run.code == 2
    assert "not a directory" in run.err


def test_coverage_reports_each_policy_file(gate: Callable[..., Run], tmp_path: Path) -> None:
    root = _bundle(
        tmp_path,
        {
            "demo.rego": POLICY,
            "other.rego": "package other\nimport rego.v1\n\nx := 1\n",
            "demo_test.rego": PASSING_TEST,
        },
    )
    run = gate("policy", "test", root, "--coverage")
    assert run.code == 0, run.out + run.err
    rows = {line.split()[0]: line.split() for line in run.out.splitlines() if line.startswith("  ") and ".rego" in line}
    assert set(rows) == {"demo.rego", "other.rego"}  # tests are not covered files
    assert rows["demo.rego"][3] != "100.0%" and rows["demo.rego"][-1] == "6"  # label() is never called
    assert rows["other.rego"][2:4] == ["0", "0.0%"]  # never evaluated: nothing covered
    assert re.search(r"^  TOTAL\s+\d+\s+\d+\s+\d+\.\d%", run.out, re.MULTILINE)

    report = gate("policy", "test", root, "--coverage", "--format", "json").json()
    files = {f["file"]: f for f in report["coverage"]["files"]}
    assert 6 in files["demo.rego"]["not_covered"] and 4 in files["demo.rego"]["covered"]
    assert files["other.rego"]["covered"] == [] and files["other.rego"]["not_covered"]


def test_shipped_policies_are_fully_covered_by_their_tests(gate: Callable[..., Run]) -> None:
    report = gate("policy", "test", "policies", "--coverage", "--format", "json").json()
    uncovered = {f["file"]: f["not_covered"] for f in report["coverage"]["files"] if f["not_covered"]}
    assert not uncovered
    assert {f["file"] for f in report["coverage"]["files"]} == {
        p.relative_to(POLICIES).as_posix() for p in POLICIES.rglob("*.rego") if not p.name.endswith("_test.rego")
    }


def test_engine_errors_lose_the_rust_backtrace() -> None:
    from gate.policy.testing import EngineError

    text = (
        "\n--> gate/x.rego:6:1\n  |\n6 | }\n  | ^\nerror: expecting expression\n\n"
        "Stack backtrace:\n   0: <unknown>\n   1: method_vectorcall_FASTCALL_KEYWORDS\n"
    )
    error = EngineError.parse(text)
    assert (error.path, error.line, error.column, error.message) == ("gate/x.rego", 6, 1, "expecting expression")
    assert error.located("policies") == "policies/gate/x.rego:6:1: expecting expression"
    assert EngineError.parse("not a valid rule path\n\nStack backtrace:\n 0: x").located() == "not a valid rule path"


# -------------------------------------------------------------------------------------------------
# The shipped policies on realistic inputs
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def scan(gate: Callable[..., Run], data: Path) -> Callable[..., dict[str, Any]]:
    """The input document `gate scan` makes of these reports (paths under tests/data), for an image."""

    def make(*reports: str, image: str | None = f"{IMAGE}:1.4.2@{DIGEST}") -> dict[str, Any]:
        argv = ["scan", "--format", "json"]
        for report in reports:
            argv += ["--report", f"auto={data / report}"]
        if image:
            argv += ["--image", image]
        run = gate(*argv)
        assert run.code == 0, run.err
        return run.json()

    return make


def decide(
    document: dict[str, Any], env: str, extra_data: dict[str, Any] | None = None, now: str = NOW
) -> dict[str, dict[str, Any]]:
    """Evaluate data.gate.promotion as the engine does: package -> {deny, warn, applied, stale}."""
    import regorus

    from gate.policy.bundle import load_bundle, merge_data

    bundle = load_bundle(POLICIES)
    engine = regorus.Engine()
    for path, source in bundle.policies().items():
        engine.add_policy(path, source)
    engine.add_data_json(json.dumps(merge_data(bundle.data, extra_data or {})))
    engine.set_input_json(json.dumps({**document, "environment": env, "now": now}))
    answer = json.loads(engine.eval_query_as_json("data.gate.promotion"))
    promotion = answer["result"][0]["expressions"][0]["value"]
    return {name: node for name, node in promotion.items() if isinstance(node, dict)}


def results(decision: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Every deny (or warn) result of every package."""
    return [r for node in decision.values() for r in node.get(kind, [])]


def rules(decision: dict[str, dict[str, Any]], kind: str) -> Counter[str]:
    return Counter(r["rule"] for r in results(decision, kind))


def test_juice_shop_is_denied_in_prod(scan: Callable[..., dict[str, Any]]) -> None:
    decision = decide(scan(JUICE_SHOP), "prod")
    vulns = decision["vulnerabilities"]["deny"]
    assert Counter(r["severity"] for r in vulns) == {"critical": 28, "high": 100}
    assert rules(decision, "deny") == {"vulnerabilities.severity": 128, "secrets.exposed": 3, "scanners.required": 1}
    assert results(decision, "warn") == []
    messages = {r["msg"] for r in vulns}
    assert (
        "critical vulnerability CVE-2021-44906 in minimist 0.2.1 "
        "(juice-shop/node_modules/bower-config/node_modules/minimist/package.json): fixed in 1.2.6, 0.2.4"
    ) in messages
    for result in results(decision, "deny"):
        assert set(result) == {"msg", "rule", "severity", "finding_ids", "solution"}
        assert result["severity"] in SEVERITIES and result["solution"]
    assert all(len(r["finding_ids"]) == 1 for r in vulns)
    assert decision["scanners"]["deny"][0]["msg"] == "required scanner coverage has no report (required in prod)"


def test_juice_shop_in_staging_blocks_only_critical(scan: Callable[..., dict[str, Any]]) -> None:
    decision = decide(scan(JUICE_SHOP), "staging")
    assert rules(decision, "deny") == {"vulnerabilities.severity": 28, "secrets.exposed": 3}
    assert rules(decision, "warn") == {"vulnerabilities.severity_warning": 100}
    assert {r["severity"] for r in decision["vulnerabilities"]["warn"]} == {"high"}


def test_alpine_with_good_coverage_is_allowed_in_prod(scan: Callable[..., dict[str, Any]]) -> None:
    document = scan(ALPINE, COVERAGE_90)
    assert Counter(f["severity"] for f in document["findings"]) == {"medium": 4}
    decision = decide(document, "prod")
    assert results(decision, "deny") == []
    assert results(decision, "warn") == []
    assert decision["waivers"].get("applied", []) == [] and decision["waivers"].get("stale", []) == []


def test_coverage_of_exactly_80_percent_passes_prod(scan: Callable[..., dict[str, Any]]) -> None:
    document = scan(ALPINE, COVERAGE_80)
    assert document["metrics"]["coverage"]["line_rate"] == 0.8
    assert results(decide(document, "prod"), "deny") == []


def test_low_coverage_denies_prod_but_passes_staging(scan: Callable[..., dict[str, Any]]) -> None:
    document = scan(ALPINE, COVERAGE_71)
    prod = decide(document, "prod")
    assert [r["msg"] for r in results(prod, "deny")] == ["line coverage 71.09% is under the 80% required in prod"]
    assert results(decide(document, "staging"), "deny") == []


def test_threshold_override_from_data(scan: Callable[..., dict[str, Any]]) -> None:
    document = scan(ALPINE, COVERAGE_90)
    stricter = {
        "thresholds": {"prod": {"min_line_coverage": 0.95, "vulnerabilities": {"deny": ["critical", "high", "medium"]}}}
    }
    decision = decide(document, "prod", stricter)
    assert rules(decision, "deny") == {"coverage.line_rate": 1, "vulnerabilities.severity": 4}
    assert decision["coverage"]["deny"][0]["msg"] == "line coverage 90% is under the 95% required in prod"
    staging_only = {"thresholds": {"staging": {"min_line_coverage": 0.95}}}
    assert results(decide(document, "prod", staging_only), "deny") == []
    assert rules(decide(document, "staging", staging_only), "deny") == {"coverage.line_rate": 1}


def test_invalid_override_is_a_deny_not_a_silent_pass(scan: Callable[..., dict[str, Any]]) -> None:
    document = scan(ALPINE, COVERAGE_90)
    typo = {"thresholds": {"prod": {"vulnerabilities": {"deny": "critical"}}}}
    decision = decide(document, "prod", typo)
    assert rules(decision, "deny") == {"settings.invalid": 1}
    assert decision["settings"]["deny"][0]["msg"].startswith("setting vulnerabilities for environment prod must be")


def test_required_scanner_missing(scan: Callable[..., dict[str, Any]]) -> None:
    alpine_only = scan(ALPINE)
    assert [r["msg"] for r in results(decide(alpine_only, "prod"), "deny")] == [
        "required scanner coverage has no report (required in prod)"
    ]
    assert results(decide(alpine_only, "staging"), "deny") == []
    coverage_only = scan(COVERAGE_90)
    assert [r["msg"] for r in results(decide(coverage_only, "dev"), "deny")] == [
        "required scanner trivy has no report (required in dev)"
    ]


def test_sonarqube_quality_gate_names_failed_conditions(scan: Callable[..., dict[str, Any]]) -> None:
    document = scan(ALPINE, COVERAGE_90, SONAR_GATE)
    decision = decide(document, "staging")
    assert rules(decision, "deny") == {"quality_gate.status": 1}
    result = decision["quality_gate"]["deny"][0]
    assert result["msg"].startswith(
        "SonarQube quality gate is ERROR: new_coverage is 82.50562381034781 (must not be below 85); "
    )
    for metric in ("new_blocker_violations", "new_critical_violations", "open_issues"):
        assert metric in result["msg"]
    assert "new_sqale_debt_ratio" not in result["msg"]  # a condition that is OK
    gate_findings = {f["id"] for f in document["findings"] if f["kind"] == "quality_gate"}
    assert set(result["finding_ids"]) == gate_findings and len(gate_findings) == 4


def test_secrets_and_misconfigurations_from_real_reports(scan: Callable[..., dict[str, Any]]) -> None:
    secrets = decide(scan("trivy/trivy-fs-secrets.json"), "dev")
    assert sorted(r["msg"] for r in secrets["secrets"]["deny"]) == [
        "critical secret aws-access-key-id (AWS Access Key ID) in deploy.sh line 3",
        "high secret mysecret (My Secret) in deploy.sh line 7",
    ]
    misconfig = decide(scan("trivy/trivy-config-dockerfile-misconfig.json", COVERAGE_90), "prod")
    assert results(misconfig, "deny") == [
        {
            "msg": "high misconfiguration DS-0002 in Dockerfile: Image user should not be 'root'",
            "rule": "misconfigurations.severity",
            "severity": "high",
            "finding_ids": [misconfig["misconfigurations"]["deny"][0]["finding_ids"][0]],
            "solution": "Add 'USER <non root user name>' line to the Dockerfile",
        }
    ]


def test_unknown_severity_fails_closed_in_prod_only(scan: Callable[..., dict[str, Any]]) -> None:
    document = scan("trivy/trivy-legacy-schema1-vulns-null.json", COVERAGE_90)
    unknown = [f["id"] for f in document["findings"] if f["severity"] == "unknown"]
    assert len(unknown) == 1
    prod = decide(document, "prod")
    denied = [r for r in prod["vulnerabilities"]["deny"] if r["finding_ids"] == unknown]
    assert len(denied) == 1 and denied[0]["severity"] == "high"
    assert denied[0]["msg"].startswith("unknown-severity vulnerability ")
    staging = decide(document, "staging")
    assert staging["vulnerabilities"].get("deny", []) == []
    assert any(r["finding_ids"] == unknown for r in staging["vulnerabilities"]["warn"])


def waiver(id: str, rule: str, expires: str, **scope: str) -> dict[str, str]:
    return {
        "id": id,
        "rule": rule,
        "reason": "not reachable",
        "approved_by": "secops@example.com",
        "expires": expires,
        **scope,
    }


def test_waivers_applied_stale_expiring_and_expired(scan: Callable[..., dict[str, Any]]) -> None:
    document = scan(JUICE_SHOP, COVERAGE_90)
    minimist = sorted(f["id"] for f in document["findings"] if f["rule"] == "CVE-2021-44906")
    assert len(minimist) == 4
    waivers = [
        waiver("W-0042", "CVE-2021-44906", "2027-06-30T00:00:00Z", image=IMAGE, environment="prod"),
        waiver("W-0043", "CVE-2021-3807", "2027-01-31T00:00:00Z"),  # expires in 9 days
        waiver("W-0044", "CVE-1999-0001", "2027-06-30T00:00:00Z"),  # matches nothing
        waiver("W-0045", "CVE-2021-42378", "2027-01-01T00:00:00Z"),  # expired
        waiver("W-0046", "CVE-2021-42379", "2027-06-30T00:00:00Z", image="registry.example.com/other"),
        waiver("W-0047", "jwt-token", "2027-06-30T00:00:00Z", environment="prod"),  # a secret rule
    ]
    decision = decide(document, "prod", {"waivers": waivers})

    applied = {w["id"]: w for w in decision["waivers"]["applied"]}
    assert set(applied) == {"W-0042", "W-0043", "W-0047"}
    assert applied["W-0042"] == {
        "id": "W-0042",
        "rule": "CVE-2021-44906",
        "expires": "2027-06-30T00:00:00Z",
        "approved_by": "secops@example.com",
        "reason": "not reachable",
        "finding_ids": applied["W-0042"]["finding_ids"],
        "scope": {"image": IMAGE, "environment": "prod"},
    }
    assert sorted(applied["W-0042"]["finding_ids"]) == minimist
    assert decision["waivers"]["stale"] == ["W-0044"]

    denied_rules = {r["msg"].split()[2] for r in decision["vulnerabilities"]["deny"]}
    assert "CVE-2021-44906" not in denied_rules and "CVE-2021-3807" not in denied_rules
    assert {"CVE-2021-42378", "CVE-2021-42379"} <= denied_rules  # expired; other image
    assert rules(decision, "deny")["vulnerabilities.severity"] == 128 - 4 - 6
    assert rules(decision, "deny")["secrets.exposed"] == 2

    warnings = {r["rule"]: r for r in decision["waivers"]["warn"]}
    assert set(warnings) == {"waivers.expiring", "waivers.expired"}
    assert (
        warnings["waivers.expiring"]["msg"]
        == "waiver W-0043 for CVE-2021-3807 expires 2027-01-31T00:00:00Z (in 9 days)"
    )
    assert warnings["waivers.expired"]["msg"] == (
        "waiver W-0045 expired on 2027-01-01T00:00:00Z; CVE-2021-42378 is no longer waived"
    )
    assert len(warnings["waivers.expired"]["finding_ids"]) == 2


def test_waivers_follow_input_now_not_the_clock(scan: Callable[..., dict[str, Any]]) -> None:
    document = scan(ALPINE, COVERAGE_90)
    waivers = {"waivers": [waiver("W-1", "CVE-2019-1549", "2027-01-22T00:00:00Z")]}
    before = decide(document, "prod", waivers, now="2027-01-21T23:59:59Z")
    assert [w["id"] for w in before["waivers"]["applied"]] == ["W-1"]
    assert before["waivers"]["warn"][0]["msg"].endswith("(in less than a day)")
    at_expiry = decide(document, "prod", waivers, now="2027-01-22T00:00:00Z")
    assert at_expiry["waivers"].get("applied", []) == []
    assert [w["rule"] for w in at_expiry["waivers"]["warn"]] == ["waivers.expired"]


def test_missing_environment_or_time_is_a_deny(scan: Callable[..., dict[str, Any]]) -> None:
    document = scan(ALPINE, COVERAGE_90)
    decision = decide(document, "", now="yesterday")
    assert sorted(r["msg"] for r in decision["settings"]["deny"]) == [
        "input.environment is missing: the environment decides which thresholds apply",
        "input.now is missing or not an RFC 3339 timestamp: waivers cannot be checked",
    ]


# -------------------------------------------------------------------------------------------------
# The bundle's shape and the annotation contract
# -------------------------------------------------------------------------------------------------


def _metadata_blocks(text: str) -> list[tuple[dict[str, Any], str, int]]:
    """(METADATA mapping, rule name, line) of every annotated rule (not package) in a file."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.strip() != "# METADATA":
            continue
        j = i + 1
        block = []
        while j < len(lines) and lines[j].startswith("#"):
            block.append(lines[j][2:] if lines[j].startswith("# ") else lines[j][1:])
            j += 1
        head = lines[j].split()[0] if j < len(lines) and lines[j].strip() else ""
        if head != "package":
            found.append((yaml.safe_load("\n".join(block)), head, j + 1))
    return found


def _rule_bodies(text: str) -> list[tuple[str, int, str]]:
    """(rule name, line, body text) of every deny/warn definition."""
    bodies = []
    for match in re.finditer(r"^(deny|warn) contains result if \{\n(.*?)^\}", text, re.MULTILINE | re.DOTALL):
        bodies.append((match[1], text.count("\n", 0, match.start()) + 1, match[2]))
    return bodies


def _promotion_files() -> list[Path]:
    return sorted(p for p in (POLICIES / "gate" / "promotion").glob("*.rego") if not p.name.endswith("_test.rego"))


def test_every_deny_and_warn_is_annotated_with_its_rule_id() -> None:
    from datetime import UTC, datetime

    seen: dict[str, str] = {}
    for path in _promotion_files():
        text = path.read_text()
        topic = path.stem
        assert re.search(rf"^package gate\.promotion\.{topic}$", text, re.MULTILINE), path
        blocks = {line: (meta, head) for meta, head, line in _metadata_blocks(text)}
        for kind, line, body in _rule_bodies(text):
            assert line in blocks, f"{path.name}:{line}: {kind} has no METADATA block directly above it"
            meta, head = blocks[line]
            assert head == kind
            custom = meta["custom"]
            assert meta["title"] and meta["description"], f"{path.name}:{line}"
            assert custom["severity"] in SEVERITIES and custom["solution"], f"{path.name}:{line}"
            rule_id = custom["rule_id"]
            assert rule_id.startswith(f"{topic}."), rule_id
            # the body names exactly its own rule id (as "rule": ... or as a helper's argument)
            assert re.findall(rf'"({re.escape(topic)}\.[a-z_]+)"', body) == [rule_id], (
                f"{path.name}:{line}: results carry another rule id"
            )
            assert rule_id not in seen, f"{rule_id} is defined in {seen.get(rule_id)} and {path.name}"
            seen[rule_id] = path.name
            if "effective_on" in custom:
                effective = datetime.fromisoformat(str(custom["effective_on"]))
                assert effective <= datetime.now(UTC), f"{rule_id}: shipped rules must be in force"
    assert set(seen) == set(SHIPPED_RULES)
    assert {rule_id: _severity_of(rule_id) for rule_id in seen} == SHIPPED_RULES


SHIPPED_RULES = {
    "coverage.line_rate": "medium",
    "coverage.not_measured": "high",
    "coverage.not_measured_warning": "low",
    "licenses.severity": "high",
    "licenses.severity_warning": "medium",
    "misconfigurations.severity": "high",
    "misconfigurations.severity_warning": "medium",
    "platforms.extra": "medium",
    "platforms.invalid": "high",
    "platforms.missing": "high",
    "platforms.required": "high",
    "quality_gate.status": "high",
    "quality_gate.status_warning": "medium",
    "scanners.required": "high",
    "secrets.exposed": "high",
    "secrets.exposed_warning": "medium",
    "settings.invalid": "high",
    "vulnerabilities.severity": "high",
    "vulnerabilities.severity_warning": "medium",
    "vulnerabilities.unfixed_warning": "medium",
    "vulnerabilities.fixable_too_long": "high",
    "waivers.expired": "medium",
    "waivers.expiring": "low",
}


def _severity_of(rule_id: str) -> str:
    topic = rule_id.split(".")[0]
    text = (POLICIES / "gate" / "promotion" / f"{topic}.rego").read_text()
    return next(
        meta["custom"]["severity"] for meta, _, _ in _metadata_blocks(text) if meta["custom"]["rule_id"] == rule_id
    )


def test_the_engine_finds_metadata_for_every_rule() -> None:
    from gate.policy.bundle import load_bundle
    from gate.policy.metadata import read_metadata

    metadata = read_metadata(load_bundle(POLICIES).policies())
    for rule_id, severity in SHIPPED_RULES.items():
        meta = metadata[(f"gate.promotion.{rule_id.split('.')[0]}", rule_id)]
        assert meta.severity == severity and meta.title and meta.solution
        assert meta.effective_on is None


def test_bundle_layout_is_an_opa_bundle_with_a_test_next_to_every_file() -> None:
    assert json.loads((POLICIES / ".manifest").read_text()) == {"revision": f"gate-policies-{__version__}", "roots": ["gate"]}
    files = {p.relative_to(POLICIES).as_posix() for p in POLICIES.rglob("*") if p.is_file()}
    allowed = re.compile(r"^(\.manifest|README\.md|gate/.+\.rego|gate/.+/data\.json)$")
    assert all(allowed.match(f) for f in files), sorted(f for f in files if not allowed.match(f))
    for rego in files:
        if rego.endswith(".rego") and not rego.endswith("_test.rego"):
            assert rego.removesuffix(".rego") + "_test.rego" in files, f"{rego} has no test file next to it"
    config = json.loads((POLICIES / "gate" / "config" / "data.json").read_text())
    assert config["waiver_warning_days"] == 14
    assert set(config["environments"]) == {"dev", "staging", "prod"}
    assert config["environments"]["staging"]["inherits"] == "dev"
    assert set(config["thresholds"]) == {"prod", "dev"}  # no implicit "default" for undeclared names


def test_every_file_is_rego_v1() -> None:
    for path in POLICIES.rglob("*.rego"):
        text = path.read_text()
        assert re.search(r"^import rego\.v1$", text, re.MULTILINE), path
        assert not re.search(
            r"\.(package|default|not|with|as|some|else|in|if|contains|every|import)\b(?!\()", _code(text)
        ), f'{path}: a keyword in a reference; write x["keyword"] (older OPA rejects x.keyword)'
        assert "time.now_ns" not in text, f"{path}: use input.now, so decisions replay"
        assert "%f" not in text and "%d" not in text, (
            f"{path}: format numbers with %v (OPA prints ints given to %f oddly)"
        )


# -------------------------------------------------------------------------------------------------
# Portability between regorus and OPA: patterns that give different answers, kept out of the library
# -------------------------------------------------------------------------------------------------


def _code(text: str) -> str:
    """Rego source without comments and string literals (replaced by empty strings)."""
    text = re.sub(r"`[^`]*`", '""', text)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    return re.sub(r"#.*", "", text)


_REF = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\]]*\])+")


def negations_with_refs(text: str) -> list[str]:
    """`not f(x.y)`-style lines: OPA evaluates `x.y` outside the `not`, so an undefined `x.y` makes
    the whole expression undefined (opa#1877) where regorus makes it true."""
    bad = []
    for line in _code(text).splitlines():
        expr = line.strip().split(" with ", 1)[0]  # with-targets are not arguments
        if not expr.startswith("not ") or not re.search(r"\(|\sin\s|==|!=|<|>", expr):
            continue
        for ref in _REF.finditer(expr):
            if not expr[ref.end() :].lstrip().startswith("("):  # a function name is fine
                bad.append(expr)
                break
    return bad


def functions_reading_imported_rules(text: str) -> list[str]:
    """Function bodies that read a rule through an import. regorus loses such a reference when the
    caller evaluated a rule of the function's package first (the function is then undefined)."""
    code = _code(text)
    aliases = {
        m[2] or m[1].split(".")[-1] for m in re.finditer(r"^import (data(?:\.\w+)+)(?: as (\w+))?", code, re.MULTILINE)
    }
    bad = []
    for match in re.finditer(r"^(\w+)\([^)]*\)\s*(?::=|if|=|\{).*?(?=^\w|\Z)", code, re.MULTILINE | re.DOTALL):
        for alias in aliases:
            for ref in re.finditer(rf"\b{alias}\.(\w+)\b", match[0]):
                if not match[0][ref.end() :].lstrip().startswith("("):
                    bad.append(f"{match[1]}: {ref[0]}")
    return bad


def test_portability_checks_catch_what_they_are_for() -> None:
    assert negations_with_refs("x if {\n\tnot is_object(input.thresholds)\n}\n")
    assert negations_with_refs("x if {\n\tnot f.severity in allowed\n}\n")
    assert not negations_with_refs("x if {\n\tnot input.thresholds\n\tnot waivers.waived(finding)\n}\n")
    lib = "package p\nimport rego.v1\nimport data.gate.lib.config\n\nf(x) := x - config.now_ns\n\ng(x) := config.time_ns(x)\n"
    assert functions_reading_imported_rules(lib) == ["f: config.now_ns"]


@pytest.mark.parametrize("path", sorted(POLICIES.rglob("*.rego")), ids=lambda p: p.relative_to(POLICIES).as_posix())
def test_library_avoids_engine_divergences(path: Path) -> None:
    text = path.read_text()
    assert negations_with_refs(text) == [], "bind the value first, or use object.get(...) / a helper rule"
    assert functions_reading_imported_rules(text) == [], "copy the imported rule into a local rule first"
