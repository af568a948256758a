"""`gate evaluate` fails closed: every way of not reaching a decision exits 2 and never allows.

These use small bundles written per test, so each failure is caused on purpose; the shipped
policy library is exercised in test_evaluate.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_scan import one_error_line
from tests.conftest import DIGEST, Run

IMAGE = f"registry.example.com/shop/cart@{DIGEST}"

DENY_CRITICAL = """package gate.promotion.vulns

import rego.v1

# METADATA
# title: Critical vulnerabilities
# custom:
#   rule_id: vulns.critical
#   severity: critical
#   solution: Upgrade the package.
deny contains result if {
	some f in input.findings
	f.severity == "critical"
	result := {"msg": sprintf("%v in %v", [f.rule, f["package"].name]), "rule": "vulns.critical", "finding_ids": [f.id]}
}
"""


def bundle(tmp_path: Path, *files: tuple[str, str]) -> Path:
    root = tmp_path / "bundle"
    for name, text in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def evaluate(gate: Callable[..., Run], data: Path, policy: Path, *extra: str) -> Run:
    report = data / "trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json"
    return gate("evaluate", "--report", f"trivy={report}", "--policy", policy, "--image", IMAGE, "--env", "prod", *extra)


def recorded(store: Path) -> list[dict]:
    with sqlite3.connect(store) as db:
        return [json.loads(r[0]) for r in db.execute("select record from decisions order by seq")]


def test_a_working_bundle_denies_and_records(gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path) -> None:
    run = evaluate(gate, data, bundle(tmp_path, ("vulns.rego", DENY_CRITICAL)), "--format", "json")
    assert run.code == 1
    decision = run.json()
    assert decision["outcome"] == "deny"
    assert len(decision["violations"]) == 28
    v = decision["violations"][0]
    assert (v["rule"], v["severity"], v["title"], v["solution"]) == ("vulns.critical", "critical", "Critical vulnerabilities", "Upgrade the package.")
    [stored] = recorded(decision_store)
    assert stored["decision_id"] == decision["decision_id"] and stored["hash"] == decision["hash"]


def test_policy_that_does_not_compile(gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path) -> None:
    policy = bundle(tmp_path, ("vulns.rego", "package gate.promotion.vulns\nimport rego.v1\ndeny contains x if {\n"))
    line = one_error_line(evaluate(gate, data, policy))
    assert "does not compile" in line and "vulns.rego:" in line and "Stack backtrace" not in line
    [stored] = recorded(decision_store)
    assert stored["outcome"] == "error" and "does not compile" in stored["error"]


def test_no_rules_evaluated(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    policy = bundle(tmp_path, ("other.rego", "package gate.other\nimport rego.v1\ndeny contains 1 if { false }\n"))
    assert "no deny or warn rule" in one_error_line(evaluate(gate, data, policy))


def test_runtime_error_in_policy(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    conflict = "package gate.promotion.x\nimport rego.v1\nlimit := 1\nlimit := 2 if { true }\ndeny contains \"x\" if { limit > 0 }\n"
    line = one_error_line(evaluate(gate, data, bundle(tmp_path, ("x.rego", conflict))))
    assert "policy" in line


def test_result_of_the_wrong_shape(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    policy = bundle(tmp_path, ("x.rego", "package gate.promotion.x\nimport rego.v1\ndeny contains {\"message\": \"no msg key\"} if { true }\n"))
    assert "msg string" in one_error_line(evaluate(gate, data, policy))


def test_evaluation_timeout(gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = "package gate.promotion.slow\nimport rego.v1\ndeny contains \"slow\" if {\n\tcount([x | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); x := i * j]) < 0\n}\n"
    monkeypatch.setenv("GATE_POLICY_TIMEOUT", "0.3")
    assert "timed out after 0.3 s" in one_error_line(evaluate(gate, data, bundle(tmp_path, ("slow.rego", slow))))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("waivers: {id: W-1}\n", "data.waivers must be a list"),
        ("waivers:\n- {id: W-1, rule: CVE-1, reason: r, approved_by: me}\n", "expires is required"),
        ("waivers:\n- {id: W-1, rule: CVE-1, reason: r, approved_by: me, expires: soon}\n", "not an RFC 3339 time"),
        ("waivers:\n- {id: W-1, rule: CVE-1, reason: r, approved_by: me, expires: 2030-01-01T00:00:00Z, image: 3}\n", "image must be a string"),
        ("waivers: [\n", "invalid YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
    ],
)
def test_wrong_data(gate: Callable[..., Run], data: Path, tmp_path: Path, content: str, problem: str) -> None:
    data_file = tmp_path / "waivers.yaml"
    data_file.write_text(content)
    line = one_error_line(evaluate(gate, data, bundle(tmp_path, ("vulns.rego", DENY_CRITICAL)), "--data", data_file))
    assert problem in line


def test_unreadable_report_records_nothing(gate: Callable[..., Run], tmp_path: Path, decision_store: Path) -> None:
    policy = bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))
    run = gate("evaluate", "--report", f"trivy={tmp_path / 'missing.json'}", "--policy", policy, "--image", IMAGE, "--env", "prod")
    assert "no such file" in one_error_line(run)
    assert not decision_store.exists() or recorded(decision_store) == []


def test_store_that_cannot_be_written(gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("GATE_DECISION_STORE", str(blocker / "decisions.db"))
    line = one_error_line(evaluate(gate, data, bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))))
    assert "decision log" in line


def test_missing_policy_dir_and_bad_usage(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    assert "not a directory" in one_error_line(evaluate(gate, data, tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no .rego files" in one_error_line(evaluate(gate, data, empty))
    policy = bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))
    assert "--opa-url" in one_error_line(evaluate(gate, data, policy, "--engine", "opa"))
    run = gate("evaluate", "--policy", policy, "--image", IMAGE, "--env", "Prod!")
    assert "--env" in one_error_line(run)


def test_effective_on_turns_a_deny_into_a_dated_warning(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    future = DENY_CRITICAL.replace("#   severity: critical", "#   severity: critical\n#   effective_on: 2999-01-01T00:00:00Z")
    run = evaluate(gate, data, bundle(tmp_path, ("vulns.rego", future)), "--format", "json")
    assert run.code == 0
    decision = run.json()
    assert decision["outcome"] == "allow" and decision["violations"] == []
    assert len(decision["warnings"]) == 28
    assert all("(blocks from 2999-01-01T00:00:00Z)" in w["message"] for w in decision["warnings"])
    past = DENY_CRITICAL.replace("#   severity: critical", "#   severity: critical\n#   effective_on: 2020-01-01T00:00:00Z")
    (tmp_path / "bundle" / "vulns.rego").write_text(past)
    assert evaluate(gate, data, tmp_path / "bundle").code == 1


def test_effective_on_may_be_a_date_but_not_a_zoneless_time(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    """``effective_on: 2999-01-01`` is midnight UTC that day (people write dates); a time without a zone is refused."""
    dated = DENY_CRITICAL.replace("#   severity: critical", "#   severity: critical\n#   effective_on: 2999-01-01")
    run = evaluate(gate, data, bundle(tmp_path, ("vulns.rego", dated)), "--format", "json")
    assert run.code == 0 and run.json()["outcome"] == "allow"
    zoneless = DENY_CRITICAL.replace("#   severity: critical", "#   severity: critical\n#   effective_on: 2999-01-01T00:00:00")
    (tmp_path / "bundle" / "vulns.rego").write_text(zoneless)
    assert "has no time zone" in one_error_line(evaluate(gate, data, tmp_path / "bundle"))
