"""Shipped settings ``unfixed`` and ``max_days_fixable`` through ``gate evaluate`` (issue 14)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cli.test_evaluate import CLEAN, JUICE, decision_of
from tests.conftest import Run


def data_file(tmp_path: Path, thresholds: dict[str, Any]) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"thresholds": thresholds}))
    return path


def fixable_ids(decision: dict[str, Any]) -> set[str]:
    return {f["id"] for f in decision["input"]["findings"] if (f.get("package") or {}).get("fixed_version")}


def test_max_days_fixable_allows_a_first_sighting_then_denies_naming_the_days(
    gate: Callable[..., Run], data: Path, tmp_path: Path, store_url: str, validate_input: Callable[[Any], None]
) -> None:
    # No clock to move: with max_days_fixable 0 any fix the log saw before counts as too old, so the
    # second evaluation of the same report (a later `now`) is denied where the first was allowed.
    settings = data_file(tmp_path, {"prod": {"max_days_fixable": 0}})
    code, first = decision_of(gate, data, CLEAN, "prod", "--data", settings)
    assert code == 0, first["violations"]
    fixable = fixable_ids(first)
    assert fixable, "the alpine 3.10 report has vulnerabilities with a fixed version"
    assert first["input"]["first_seen_fixable"] == {i: first["input"]["now"] for i in fixable}
    validate_input(first["input"])

    code, second = decision_of(gate, data, CLEAN, "prod", "--data", settings)
    assert code == 1
    assert second["input"]["first_seen_fixable"] == {i: first["timestamp"] for i in fixable}
    too_long = [v for v in second["violations"] if v["rule"] == "vulnerabilities.fixable_too_long"]
    assert {i for v in too_long for i in v["finding_ids"]} == fixable
    assert all(v["message"].endswith("available for 0 days (more than max_days_fixable 0 in prod)") for v in too_long)
    validate_input(second["input"])

    # the same log, a limit not yet reached: allowed again
    within = data_file(tmp_path, {"prod": {"max_days_fixable": 30}})
    code, third = decision_of(gate, data, CLEAN, "prod", "--data", within)
    assert code == 0, third["violations"]
    assert third["input"]["first_seen_fixable"] == {i: first["timestamp"] for i in fixable}


def test_without_max_days_fixable_the_input_is_unchanged(gate: Callable[..., Run], data: Path) -> None:
    code, decision = decision_of(gate, data, CLEAN, "prod")
    assert code == 0, decision["violations"]
    assert "first_seen_fixable" not in decision["input"]


def test_unfixed_warn_turns_an_unfixed_critical_deny_into_a_warning(
    gate: Callable[..., Run], data: Path, tmp_path: Path
) -> None:
    code, before = decision_of(gate, data, JUICE, "dev")
    assert code == 1
    unfixed = {
        f["id"]
        for f in before["input"]["findings"]
        if f["kind"] == "vulnerability" and f["severity"] == "critical"
        and not (f.get("package") or {}).get("fixed_version")
    }
    assert unfixed, "the juice-shop report has critical vulnerabilities without a fixed version"
    severity = [v for v in before["violations"] if v["rule"] == "vulnerabilities.severity"]
    denied = {i for v in severity for i in v.get("finding_ids", ())}
    assert unfixed <= denied

    warn = data_file(tmp_path, {"dev": {"unfixed": "warn"}})
    code, after = decision_of(gate, data, JUICE, "dev", "--data", warn)
    assert code == 1  # its fixable criticals still deny
    still_denied = {i for v in after["violations"] for i in v.get("finding_ids", ())}
    assert not unfixed & still_denied
    assert still_denied >= denied - unfixed
    warned = [w for w in after["warnings"] if w["rule"] == "vulnerabilities.unfixed_warning"]
    assert {i for w in warned for i in w["finding_ids"]} == unfixed
    assert all("warns instead of denying: setting unfixed is warn in dev" in w["message"] for w in warned)
