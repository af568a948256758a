"""`gate evaluate --vex` end to end: VEX statements triage a real Trivy finding like a waiver, the
decision names them, `decisions list --triaged-by` finds them (SQLite and PostgreSQL), replay agrees,
and every unusable document is exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA, DIGEST, SCHEMAS, Run

VEX = DATA / "vex"
REF = f"registry.example.com/shop/cart:1.4.2@{DIGEST}"
OTHER_DIGEST = "sha256:" + "cd" * 32
SPRING = ("--report", f"auto={DATA / 'trivy/trivy-image-spring4shell-jre11-jar.json'}",
          "--report", f"auto={DATA / 'coverage/cobertura-java-cobertura-1.9-maven-example.xml'}")
NOT_AFFECTED = VEX / "authored-spring4shell-not_affected.openvex.json"
NOT_AFFECTED_CDX = VEX / "authored-spring4shell-not_affected.cdx.json"
AFFECTED_LATER = VEX / "authored-spring4shell-affected-later.openvex.json"


def evaluate(gate: Callable[..., Run], *extra: Any, image: str = REF) -> tuple[int, dict[str, Any]]:
    run = gate("evaluate", *SPRING, "--image", image, "--env", "prod", "--format", "json", *extra)
    assert run.code in (0, 1), run.err
    return run.code, run.json()


def vex_entries(decision: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for w in decision["waivers"] if w.get("kind") == "vex"]


def test_not_affected_statement_triages_the_finding(gate: Callable[..., Run], validate_input: Callable[[Any], None]) -> None:
    from jsonschema import Draft202012Validator

    code, decision = evaluate(gate)
    assert code == 1 and [v["rule"] for v in decision["violations"]] == ["vulnerabilities.severity"]
    code, decision = evaluate(gate, "--vex", NOT_AFFECTED)
    assert code == 0, decision["violations"]
    [entry] = vex_entries(decision)
    finding = next(f for f in decision["input"]["findings"] if f["rule"] == "CVE-2022-22965")
    assert entry["rule"] == "CVE-2022-22965" and entry["status"] == "not_affected"
    assert entry["finding_ids"] == [finding["id"]]
    assert entry["document"].startswith("sha256:") and entry["id"] == f"{entry['document'][7:19]}/{entry['statement']}"
    assert entry["justification"] == "vulnerable_code_not_in_execute_path" and entry["author"] == "secops@example.com"
    assert entry["reason"].startswith("vulnerable_code_not_in_execute_path: cart runs on Tomcat 9")
    assert entry["scope"] == {"image_digest": DIGEST, "subcomponents": "pkg:maven/org.springframework/spring-beans@5.3.15"}
    assert "expires" not in entry and "approved_by" not in entry
    validate_input(decision["input"])
    validator = Draft202012Validator(json.loads((SCHEMAS / "decision.schema.json").read_text()))
    assert not list(validator.iter_errors(decision))
    # the text output names the VEX source, status, author and reason
    text = gate("decisions", "show", decision["decision_id"]).out
    assert "VEX triage applied (1):" in text and f"VEX openvex {entry['document'][7:19]} statement" in text
    assert gate("decisions", "verify").code == 0


def test_cyclonedx_vex_triages_the_finding(gate: Callable[..., Run]) -> None:
    code, decision = evaluate(gate, "--vex", NOT_AFFECTED_CDX)
    assert code == 0
    [entry] = vex_entries(decision)
    assert entry["format"] == "cyclonedx" and entry["statement"] == "vex-spring4shell"


def test_vex_for_another_image_does_not_triage(gate: Callable[..., Run]) -> None:
    code, decision = evaluate(gate, "--vex", NOT_AFFECTED, image=f"registry.example.com/shop/cart@{OTHER_DIGEST}")
    assert code == 1 and not vex_entries(decision)


def test_affected_statement_does_not_triage(gate: Callable[..., Run]) -> None:
    code, decision = evaluate(gate, "--vex", AFFECTED_LATER)
    assert code == 1 and not vex_entries(decision)


@pytest.mark.parametrize("order", [(NOT_AFFECTED, AFFECTED_LATER), (AFFECTED_LATER, NOT_AFFECTED)])
def test_a_newer_affected_statement_reopens_the_finding(gate: Callable[..., Run], order: tuple[Path, Path]) -> None:
    code, decision = evaluate(gate, "--vex", order[0], "--vex", order[1])
    assert code == 1 and not vex_entries(decision)
    assert len(decision["input"]["vex"]) == 2  # both statements are in the input: replay sees the same


def test_a_waiver_and_a_vex_statement_of_equal_specificity_the_waiver_applies(gate: Callable[..., Run], tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.json"
    waivers.write_text(json.dumps({"waivers": [{
        "id": "W-1", "rule": "CVE-2022-22965", "image_digest": DIGEST, "purl": "pkg:maven/org.springframework/spring-beans",
        "reason": "accepted", "approved_by": "secops@example.com", "expires": "2099-01-01T00:00:00Z",
    }]}))
    code, decision = evaluate(gate, "--vex", NOT_AFFECTED, "--data", waivers)
    assert code == 0
    assert [w["id"] for w in decision["waivers"]] == ["W-1"]
    # a more specific VEX statement (digest + subcomponent) wins over a rule-wide waiver
    waivers.write_text(json.dumps({"waivers": [{
        "id": "W-2", "rule": "CVE-2022-22965", "reason": "r", "approved_by": "a", "expires": "2099-01-01T00:00:00Z",
    }]}))
    code, decision = evaluate(gate, "--vex", NOT_AFFECTED, "--data", waivers)
    assert code == 0 and [w.get("kind") for w in decision["waivers"]] == ["vex"]
    assert decision["stale_waivers"] == ["W-2"]


def test_triaged_by_finds_vex_and_waivers(gate: Callable[..., Run], tmp_path: Path, store_url: str) -> None:
    _, triaged = evaluate(gate, "--vex", NOT_AFFECTED)
    evaluate(gate)  # a deny without VEX
    waivers = tmp_path / "waivers.json"
    waivers.write_text(json.dumps({"waivers": [{
        "id": "W-7", "rule": "CVE-2022-22965", "reason": "r", "approved_by": "a", "expires": "2099-01-01T00:00:00Z",
    }]}))
    _, waived = evaluate(gate, "--data", waivers)
    [entry] = vex_entries(triaged)

    def listed(*filters: str) -> list[str]:
        run = gate("decisions", "list", *filters, "--format", "json")
        assert run.code == 0, run.err
        return [d["decision_id"] for d in run.json()["decisions"]]

    for value in (entry["document"], entry["document"][:19], entry["document"][:19].upper().replace("SHA256", "sha256"), entry["id"]):
        assert listed("--triaged-by", value) == [triaged["decision_id"]], value
    assert listed("--triaged-by", entry["document"][:18]) == []  # 11 hex digits: too short a prefix
    assert listed("--triaged-by", "W-7") == [waived["decision_id"]]
    assert listed("--waiver", "W-7") == [waived["decision_id"]]
    # --waived and --waiver-expired are about waivers: a VEX statement has no expiry
    assert listed("--waived") == [waived["decision_id"]]
    assert listed("--waiver-expired") == []
    assert gate("decisions", "verify").code == 0


def test_stats_count_vex_statements_apart_from_waivers(gate: Callable[..., Run]) -> None:
    _, triaged = evaluate(gate, "--vex", NOT_AFFECTED)
    evaluate(gate, "--vex", NOT_AFFECTED)
    [entry] = vex_entries(triaged)
    stats = gate("decisions", "stats", "--format", "json")
    assert stats.code == 0, stats.err
    assert stats.json()["waivers"] == []
    assert stats.json()["vex"] == [{
        "id": entry["id"], "rule": entry["rule"], "document": entry["document"], "status": entry["status"],
        "applied": 2, "last_applied": stats.json()["vex"][0]["last_applied"],
    }]
    text = gate("decisions", "stats")
    assert "VEX statements applied (1):" in text.out and entry["id"] in text.out


def test_replay_of_a_vex_triaged_decision_agrees(gate: Callable[..., Run]) -> None:
    evaluate(gate, "--vex", NOT_AFFECTED)
    run = gate("decisions", "replay", "--format", "json")
    assert run.code == 0, run.err
    report = run.json()
    assert report["replayed"] == 1 and report["unchanged"] == 1 and report["flips"] == []


def test_vex_from_the_configuration_file(gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "vex").mkdir()
    (tmp_path / "vex" / "cart.json").write_bytes(NOT_AFFECTED.read_bytes())
    (tmp_path / "gate.toml").write_text('vex = ["vex/cart.json"]\n')
    monkeypatch.chdir(tmp_path)
    code, decision = evaluate(gate)
    assert code == 0 and len(vex_entries(decision)) == 1
    shown = gate("config", "show")
    assert "vex" in shown.out and "cart.json" in shown.out


@pytest.mark.parametrize(
    ("vex", "problem"),
    [
        (VEX / "openvex-vexctl-v001-images.json", "gate reads OpenVEX v0.2.0"),
        (VEX / "cdx-usecase7-no-affects.json", "names no product"),
        (DATA / "trivy/trivy-image-alpine-310.json", "is not a VEX document gate reads"),
        (Path("/nonexistent/vex.json"), "no such file"),
    ],
)
def test_unusable_vex_is_exit_2_and_records_nothing(gate: Callable[..., Run], vex: Path, problem: str) -> None:
    run = gate("evaluate", *SPRING, "--image", REF, "--env", "prod", "--vex", vex)
    assert run.code == 2 and problem in run.err and str(vex) in run.err
    assert "Traceback" not in run.err
    assert "No decisions" in gate("decisions", "list").out


def test_unsigned_vex_when_signatures_are_required(gate: Callable[..., Run], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_VEX_REQUIRE_SIGNED", "true")
    run = gate("evaluate", *SPRING, "--image", REF, "--env", "prod", "--vex", NOT_AFFECTED)
    assert run.code == 2 and "is not signed, and vex_require_signed is set" in run.err
    monkeypatch.setenv("GATE_VEX_REQUIRE_SIGNED", "maybe")
    run = gate("evaluate", *SPRING, "--image", REF, "--env", "prod", "--vex", NOT_AFFECTED)
    assert run.code == 2 and "GATE_VEX_REQUIRE_SIGNED: 'maybe' is not a boolean" in run.err


def test_signed_vex_by_the_trusted_key(gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       signing_key: tuple[Path, Path]) -> None:
    from gate import dsse
    from gate.decisions.signing import load_signer

    monkeypatch.setenv("GATE_VEX_REQUIRE_SIGNED", "1")
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(signing_key[1]))
    signer = load_signer()
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "registry.example.com/shop/cart", "digest": {"sha256": DIGEST[7:]}}],
        "predicateType": "https://openvex.dev/ns/v0.2.0",
        "predicate": json.loads(NOT_AFFECTED.read_text()),
    }
    signed = tmp_path / "cart.vex.dsse.json"
    signed.write_text(json.dumps(dsse.sign(json.dumps(statement).encode(), dsse.IN_TOTO, signer.key_id, signer.sign_bytes)))
    code, decision = evaluate(gate, "--vex", signed)
    assert code == 0 and len(vex_entries(decision)) == 1
    run = gate("evaluate", *SPRING, "--image", f"registry.example.com/shop/cart@{OTHER_DIGEST}", "--env", "prod", "--vex", signed)
    assert run.code == 2 and "signed for other images" in run.err


@pytest.mark.parametrize(
    ("image", "product", "triaged"),
    [
        (f"cart:1.4.2@{DIGEST}", "index.docker.io/library/cart:1.4.2", True),  # Docker Hub spellings, same tag
        (f"docker.io/library/cart@{DIGEST}", "docker.io/library/cart", True),  # the repository: every digest
        (f"cart:1.5.0@{DIGEST}", "docker.io/library/cart:1.4.2", False),  # another tag
        (f"registry.example.com/shop/cart@{DIGEST}", "docker.io/library/cart", False),  # another repository
        (f"registry.example.com/shop/cart@{DIGEST}", f"registry.example.com/shop/other@{DIGEST}", True),  # the digest is the image
    ],
)
def test_image_products_match_by_the_one_image_grammar(
    gate: Callable[..., Run], tmp_path: Path, image: str, product: str, triaged: bool
) -> None:
    document = json.loads(NOT_AFFECTED.read_text())
    document["statements"][0]["products"] = [{"@id": product}]
    path = tmp_path / "cart.openvex.json"
    path.write_text(json.dumps(document))
    code, decision = evaluate(gate, "--vex", path, image=image)
    assert (code == 0) is triaged and bool(vex_entries(decision)) is triaged
