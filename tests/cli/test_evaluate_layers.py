"""The shipped library as the default and layered ``--policy`` bundles, end to end through ``gate``:
evaluate, the decision record, replay, and admission (``gate serve --admission``) on the same layers.

Every run is in-process (the ``gate`` fixture) from a temporary working directory, so nothing here
leans on the checkout's ``policies/``: without ``--policy`` gate must find the library it was
installed with, and a ``policies/`` folder lying in the working directory must not be used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gate.version import __version__
from tests.conftest import DATA, DIGEST, SCHEMAS, Run
from tests.policy.test_layers import org_bundle

REVISION = f"gate-policies-{__version__}"
IMAGE = "registry.example.com/shop/cart"
REF = f"{IMAGE}:1.4.2@{DIGEST}"
#: allowed by the library: 4 medium findings, line coverage 90%
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
#: one critical finding (Spring4Shell): denied by the library
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
#: no findings to speak of, line coverage 76.18%: under prod's 80%
LOW_COVERAGE = ("trivy/trivy-image-alpine-310.json", "coverage/go-coverprofile-chi-mode-set.out")


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory outside the checkout, with no policies/ and no gate.toml (.git stops the search)."""
    work = tmp_path / "work"
    (work / ".git").mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv("GATE_CONFIG", raising=False)
    return work


def evaluate(gate: Callable[..., Run], reports: tuple[str, ...], *extra: Any) -> Run:
    argv: list[Any] = ["evaluate", "--image", REF, "--env", "prod"]
    for report in reports:
        argv += ["--report", f"auto={DATA / report}"]
    return gate(*argv, *extra)


def decision_of(gate: Callable[..., Run], reports: tuple[str, ...], *extra: Any) -> dict[str, Any]:
    run = evaluate(gate, reports, "--format", "json", *extra)
    assert run.code in (0, 1), run.err
    document = run.json()
    assert isinstance(document, dict)
    return document


def rules(results: list[dict[str, Any]]) -> set[str]:
    return {r["rule"] for r in results}


def one_error_line(run: Run) -> str:
    assert run.code == 2 and run.out == "", (run.code, run.out)
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gate: error: "), run.err
    return lines[0]


def thresholds(tmp_path: Path, min_line_coverage: float) -> Path:
    """An org bundle that only changes prod's coverage minimum (its data, no rules of its own)."""
    return org_bundle(
        tmp_path, name=f"coverage-{min_line_coverage}", revision="org-thresholds-1",
        files={"org/coverage/settings.rego": "package org.coverage.settings\n\nimport rego.v1\n\nnote := \"thresholds only\"\n"},
        data={"thresholds": {"prod": {"min_line_coverage": min_line_coverage}}},
    )


# --- the shipped library, and nothing else, by default --------------------------------------------


def test_without_policy_the_installed_library_decides_and_says_so(gate: Callable[..., Run], elsewhere: Path) -> None:
    assert not (elsewhere / "policies").exists()
    run = evaluate(gate, CLEAN)
    assert run.code == 0, run.err
    policy_line = run.out.splitlines()[-1]
    assert policy_line.startswith("Policy sha256:") and f" revision {REVISION} (gate:library), engine embedded" in policy_line
    decision = decision_of(gate, CLEAN)
    assert decision["policy"]["bundle"] == "gate:library" and decision["policy"]["revision"] == REVISION
    assert decision["policy"]["layers"] == [{"source": "gate:library", "digest": decision["policy"]["digest"], "revision": REVISION}]


def test_a_policies_folder_in_the_working_directory_is_not_used(gate: Callable[..., Run], elsewhere: Path) -> None:
    hostile = elsewhere / "policies" / "gate" / "promotion"
    hostile.mkdir(parents=True)
    (hostile / "allow.rego").write_text("package gate.promotion.everything\n\nimport rego.v1\n\ndeny := set()\n")
    (hostile.parent / "config").mkdir()
    (hostile.parent / "config" / "data.json").write_text('{"environments": {"prod": {}}}')
    run = evaluate(gate, ONE_CRITICAL)
    assert run.code == 1, run.err  # the library denies Spring4Shell; the folder would have allowed it
    assert "CVE-2022-22965" in run.out and f"revision {REVISION} (gate:library)" in run.out
    # named, it is used: the folder is a bundle like any other
    named = evaluate(gate, ONE_CRITICAL, "--policy", "policies", "--format", "json")
    assert named.code == 0 and named.json()["policy"]["bundle"] == "policies"


def test_the_configuration_file_names_the_layers_when_no_flag_does(gate: Callable[..., Run], elsewhere: Path, tmp_path: Path) -> None:
    org = org_bundle(tmp_path)
    (elsewhere / "gate.toml").write_text(f'policy = ["gate:library", "{org}"]\n')
    decision = decision_of(gate, CLEAN)
    assert [layer["source"] for layer in decision["policy"]["layers"]] == ["gate:library", str(org)]
    assert "org.images.registry" in rules(decision["violations"])
    # a flag replaces the file's layers
    assert decision_of(gate, CLEAN, "--policy", "gate:library")["outcome"] == "allow"


# --- an organization's layer ---------------------------------------------------------------------


def test_an_org_layer_adds_a_deny(gate: Callable[..., Run], tmp_path: Path) -> None:
    org = org_bundle(tmp_path)
    run = evaluate(gate, CLEAN, "--policy", "gate:library", "--policy", org)
    assert run.code == 1, run.err
    assert "org.images.registry" in run.out and "shop images come from the release registry" in run.out
    assert "Policy layers (2, bottom first):" in run.out
    assert "gate:library" in run.out and str(org) in run.out and "org-7" in run.out and REVISION in run.out
    decision = decision_of(gate, CLEAN, "--policy", "gate:library", "--policy", org)
    [org_violation] = [v for v in decision["violations"] if v["rule"] == "org.images.registry"]
    assert org_violation["package"] == "gate.promotion.org_images" and org_violation["severity"] == "high"


def test_org_data_raises_and_lowers_a_library_threshold(gate: Callable[..., Run], tmp_path: Path) -> None:
    stricter, looser = thresholds(tmp_path, 0.95), thresholds(tmp_path, 0.7)
    assert decision_of(gate, CLEAN)["outcome"] == "allow"  # 90% against the library's 80%
    raised = decision_of(gate, CLEAN, "--policy", "gate:library", "--policy", stricter)
    assert raised["outcome"] == "deny" and rules(raised["violations"]) == {"coverage.line_rate"}
    assert "under the 95% required in prod" in raised["violations"][0]["message"]
    assert decision_of(gate, LOW_COVERAGE)["outcome"] == "deny"  # 76.18% against 80%
    lowered = decision_of(gate, LOW_COVERAGE, "--policy", "gate:library", "--policy", looser)
    assert lowered["outcome"] == "allow" and lowered["violations"] == []


def test_an_org_layer_redefining_a_library_package_is_an_error(gate: Callable[..., Run], tmp_path: Path) -> None:
    org = org_bundle(tmp_path, files={"gate/promotion/coverage.rego": "package gate.promotion.coverage\n\nimport rego.v1\n\ndeny := set()\n"})
    line = one_error_line(evaluate(gate, CLEAN, "--policy", "gate:library", "--policy", org))
    assert f"policy layers gate:library and {org} both define package gate.promotion.coverage" in line


def test_a_missing_layer_is_an_error_naming_it(gate: Callable[..., Run]) -> None:
    line = one_error_line(evaluate(gate, CLEAN, "--policy", "gate:library", "--policy", "org-policies"))
    assert "policy bundle org-policies: not a directory" in line


def test_the_decision_records_every_layer_and_replays_under_them(gate: Callable[..., Run], tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    org = org_bundle(tmp_path)
    layers = ["--policy", "gate:library", "--policy", str(org)]
    decision = decision_of(gate, CLEAN, *layers)
    errors = list(Draft202012Validator(json.loads((SCHEMAS / "decision.schema.json").read_text())).iter_errors(decision))
    assert not errors, errors[:3]
    policy = decision["policy"]
    library_digest = decision_of(gate, CLEAN)["policy"]["digest"]
    assert policy["bundle"] == f"gate:library, {org}" and policy["revision"] == "org-7"
    assert policy["layers"] == [
        {"source": "gate:library", "digest": library_digest, "revision": REVISION},
        {"source": str(org), "digest": policy["layers"][1]["digest"], "revision": "org-7"},
    ]
    assert policy["layers"][1]["digest"].startswith("sha256:") and policy["digest"] not in (library_digest, policy["layers"][1]["digest"])
    assert gate("decisions", "verify").code == 0  # the layered record is hashed and signed like any other
    shown = gate("decisions", "show", decision["decision_id"])
    assert "Layer 2" in shown.out and str(org) in shown.out
    # replayed under the same layers, it agrees; under the library alone, the org's deny goes
    same = gate("decisions", "replay", "--outcome", "deny", *layers, "--format", "json")
    assert same.code == 0, same.err
    report = same.json()
    assert report["replayed"] == 1 and report["unchanged"] == 1 and report["flips"] == []
    assert [layer["source"] for layer in report["policy"]["layers"]] == ["gate:library", str(org)]
    library = gate("decisions", "replay", "--outcome", "deny", "--format", "json").json()
    assert library["deny_to_allow"] == 1 and library["policy"]["bundle"] == "gate:library"
    # an OPA decision-log event names each layer in its bundles, with its revision
    exported = gate("decisions", "export", "--format", "opa", "--outcome", "deny")
    assert exported.code == 0, exported.err
    [event] = [json.loads(line) for line in exported.out.splitlines()]
    assert event["bundles"] == {"gate:library": {"revision": REVISION}, "org": {"revision": "org-7"}}


def test_junit_lists_the_org_rules_too(gate: Callable[..., Run], tmp_path: Path) -> None:
    org = org_bundle(tmp_path)
    run = evaluate(gate, CLEAN, "--policy", "gate:library", "--policy", org, "--format", "junit")
    assert run.code == 1, run.err
    assert 'name="org.images.registry"' in run.out and 'name="coverage.line_rate"' in run.out
    assert 'name="policy_layer_2"' in run.out


def test_help_names_the_forms_of_a_bundle(gate: Callable[..., Run]) -> None:
    for command in (["evaluate"], ["promote"], ["reconcile"], ["serve"], ["decisions", "replay"], ["decisions", "export"]):
        run = gate(*command, "--help")
        text = " ".join(run.out.split())
        assert run.code == 0 and "--policy BUNDLE" in text, command
        assert "gate:library (the library installed with gate), a bundle DIR, or oci://REGISTRY/REPO:TAG" in text, command
        assert "repeatable, bottom first" in text and "default: policies" not in text, command


# --- admission on the same layers ------------------------------------------------------------------


@pytest.mark.server
def test_admission_judges_with_the_layers(gate: Callable[..., Run], tmp_path: Path) -> None:
    from gate.serve import make_server
    from tests.test_serve import start
    from tests.test_serve_admission import pinned_deployment, review

    decided = decision_of(gate, CLEAN)  # allowed under the library alone
    assert decided["outcome"] == "allow"
    # --admission without --policy: the shipped library, which the decision still passes
    for client in start(make_server(port=0, admission="prod")):
        assert review(client, pinned_deployment())["allowed"] is True
    # the org's layer on top: today's policy denies the image, so the webhook does
    org = org_bundle(tmp_path)
    for client in start(make_server(["gate:library", str(org)], port=0, admission="prod")):
        answer = review(client, pinned_deployment())
        assert answer["allowed"] is False
        assert "org.images.registry (e.g. shop images come from the release registry)" in answer["status"]["message"]


@pytest.mark.server
def test_the_opa_engine_decides_alike_on_layers(gate: Callable[..., Run], tmp_path: Path) -> None:
    """The layered bundle pushed to an OPA server (``gate serve`` standing in): the same decision."""
    from gate.serve import make_server
    from tests.test_serve import start

    org = org_bundle(tmp_path)
    stricter = thresholds(tmp_path, 0.95)
    layers = ["--policy", "gate:library", "--policy", str(org), "--policy", str(stricter)]
    embedded = decision_of(gate, CLEAN, *layers)
    for client in start(make_server(port=0)):
        opa = decision_of(gate, CLEAN, *layers, "--engine", "opa", "--opa-url", str(client.base_url))
        # pushed as policies of their own: the org's file under its layer's name, beside the library's
        ids = {p["id"] for p in client.get("/v1/policies").json()["result"]}
        assert "gate/org/gate/promotion/org_images.rego" in ids and "gate/library/gate/promotion/coverage.rego" in ids
    assert embedded["outcome"] == opa["outcome"] == "deny"
    assert rules(embedded["violations"]) == rules(opa["violations"]) == {"org.images.registry", "coverage.line_rate"}
    assert embedded["policy"]["digest"] == opa["policy"]["digest"] and opa["policy"]["engine"] == "opa"
