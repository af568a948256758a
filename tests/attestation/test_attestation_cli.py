"""`gate promote` attaches the decision's VSA and `gate attestation verify|show` read it, end to end through the
CLI on the real registry and real git."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate.attestation import oci, vsa
from gate.decisions.signing import Ed25519Signer, generate_keypair, load_signer
from gate.decisions.store import open_store
from tests.attestation.referrers_standin import ReferrersStandIn
from tests.conftest import Run
from tests.promote.gitrepo import trailers
from tests.attestation.decisions import make_decision
from tests.promote.servers import Registry, manifest_digest, new_repo, push_image, push_index
from tests.promote.test_promote_cli import ONE_CRITICAL, POLICIES, App, evaluate, events

pytestmark = pytest.mark.server


def verify(gate: Callable[..., Run], image: str, *extra: str) -> Run:
    return gate("attestation", "verify", image, "--env", "prod", "--policy", str(POLICIES), *extra)


def test_promote_attaches_a_vsa_that_verifies_and_the_trailer_names_it(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, signing_key: tuple[Path, Path]
) -> None:
    app = App(registry, tmp_path)
    decision = evaluate(gate, data, app.source)
    run = app.promote(gate, decision["decision_id"], "--format", "json")
    assert run.code == 0, run.err
    attestation = run.json()["attestation"]
    tag = "sha256-" + app.image.digest.split(":")[1] + ".att"
    assert attestation["mode"] == "tag" and attestation["key_id"] == load_signer().key_id
    assert attestation["reference"] == f"{app.release_name}:{tag}@{manifest_digest(registry, app.release, tag)}"
    assert f"Gate-Attestation: {attestation['reference']}" in trailers(app.remote)

    released = f"{app.release_name}@{app.image.digest}"
    ok = verify(gate, released)
    assert ok.code == 0, ok.out + ok.err
    assert ok.out.startswith(f"PASSED {released} for prod: the newest VSA for prod (decision {decision['decision_id']}")
    assert verify(gate, released, "--key", str(signing_key[1])).code == 0
    as_json = verify(gate, released, "--format", "json").json()
    assert as_json["passed"] is True and as_json["decision_id"] == decision["decision_id"]
    assert as_json["policy_digest"] == decision["policy"]["digest"]

    # the staging repository has no VSA; another environment has none either
    staging = verify(gate, f"{app.source}")
    assert staging.code == 1 and "no valid VSA for environment prod" in staging.out
    other = gate("attestation", "verify", released, "--env", "staging", "--policy", str(POLICIES))
    assert other.code == 1 and "1 for another environment" in other.out

    # promoting again signs the same envelope: nothing new is attached
    again = app.promote(gate, decision["decision_id"], "--format", "json")
    assert again.code == 0 and again.json()["outcome"] == "noop"
    assert again.json()["attestation"]["already_present"] is True
    shown = gate("attestation", "show", released, "--format", "json").json()["attestations"]
    assert len(shown) == 1 and shown[0]["result"] == "PASSED" and shown[0]["signed_by"] == load_signer().key_id
    assert events(decision["decision_id"]) == ["done", "noop"]
    assert gate("decisions", "verify").code == 0


def test_a_newer_failed_vsa_makes_verify_exit_1(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    app = App(registry, tmp_path)
    allow = evaluate(gate, data, app.source)
    assert app.promote(gate, allow["decision_id"]).code == 0
    deny = evaluate(gate, data, app.source, ONE_CRITICAL)
    assert deny["outcome"] == "deny"
    store = open_store()
    try:
        decision = store.get(deny["decision_id"])
    finally:
        store.close()
    released = f"{app.release_name}@{app.image.digest}"
    statement = vsa.statement(decision, time_verified=datetime.now(UTC), image=released)
    oci.attach(released, vsa.sign(statement, load_signer()), environment="prod", decision_id=deny["decision_id"],
               created=datetime.now(UTC))
    run = verify(gate, released)
    assert run.code == 1 and f"(decision {deny['decision_id']}" in run.out and "is FAILED" in run.out
    shown = gate("attestation", "show", released).out
    assert shown.count("signed by") == 2 and "FAILED prod" in shown and "PASSED prod" in shown


def test_dry_run_and_no_attest_attach_nothing(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    app = App(registry, tmp_path)
    decision = evaluate(gate, data, app.source)
    dry = app.promote(gate, decision["decision_id"], "--dry-run")
    assert dry.code == 0 and "Attestation (would do):" in dry.out and ".att tag)" in dry.out
    assert app.promote(gate, decision["decision_id"], "--no-attest").code == 0
    released = f"{app.release_name}@{app.image.digest}"
    assert gate("attestation", "show", released).out == f"no attestations are attached to {released}\n"
    assert not any(t.startswith("Gate-Attestation:") for t in trailers(app.remote))
    assert verify(gate, released).code == 1


def test_a_vsa_that_cannot_be_attached_stops_the_promotion_before_the_commit(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    app = App(registry, tmp_path)
    decision = evaluate(gate, data, app.source)
    # something that is not an image manifest already sits under the image's .att tag
    push_index(registry, app.release, "sha256-" + app.image.digest.split(":")[1] + ".att")
    head = app.remote.head()
    run = app.promote(gate, decision["decision_id"])
    assert run.code == 2 and "is not an image manifest; refusing" in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert app.remote.head() == head
    assert events(decision["decision_id"]) == ["error"]


def test_verify_errors_are_exit_2_in_one_line(gate: Callable[..., Run], tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    cases = [
        (("attestation", "verify", "127.0.0.1:9/app:1.0", "--env", "prod"), "not pinned by digest"),
        (("attestation", "verify", f"127.0.0.1:9/app@{digest}", "--env", "Prod"), 'did you mean "prod"'),
        (("attestation", "verify", f"127.0.0.1:9/app@{digest}", "--env", "prod"), "ConnectError"),
        (("attestation", "verify", f"127.0.0.1:9/app@{digest}", "--env", "prod", "--key", str(tmp_path / "nope.pem")),
         "nope.pem"),
        (("attestation", "verify", f"127.0.0.1:9/app@{digest}", "--env", "prod", "--max-age", "soon"), "not a duration"),
        (("attestation", "show", f"127.0.0.1:9/app@{digest}"), "ConnectError"),
    ]
    for argv, message in cases:
        run = gate(*argv)
        assert run.code == 2, (argv, run.out, run.err)
        assert message in run.err and len(run.err.strip().splitlines()) == 1, run.err


def test_exit_codes_through_a_subprocess(registry: Registry) -> None:
    digest = "sha256:" + "cd" * 32
    done = subprocess.run([sys.executable, "-m", "gate", "attestation", "verify", f"{registry.host}/none/here@{digest}",
                           "--env", "prod"], capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    assert "no valid VSA" in done.stdout and "Traceback" not in done.stderr


def test_the_configured_verifier_id_is_signed_and_required(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App(registry, tmp_path)
    decision = evaluate(gate, data, app.source)
    monkeypatch.setenv("GATE_VSA_VERIFIER_ID", "https://gate.example.com/prod-gate")
    assert app.promote(gate, decision["decision_id"]).code == 0
    released = f"{app.release_name}@{app.image.digest}"
    assert verify(gate, released).code == 0
    monkeypatch.delenv("GATE_VSA_VERIFIER_ID")
    run = verify(gate, released)
    assert run.code == 1 and "1 by another verifier" in run.out
    assert verify(gate, released, "--verifier-id", "https://gate.example.com/prod-gate").code == 0
    (tmp_path / "gate.toml").write_text('[attestation]\nverifier_id = "https://gate.example.com/prod-gate"\n')
    assert gate("--config", str(tmp_path / "gate.toml"), "attestation", "verify", released, "--env", "prod",
                "--policy", str(POLICIES)).code == 0
    monkeypatch.setenv("GATE_VSA_VERIFIER_ID", " ")
    bad = verify(gate, released)
    assert bad.code == 2 and "GATE_VSA_VERIFIER_ID: the verifier id must be a URI" in bad.err


def test_promote_through_a_registry_with_the_referrers_api(
    gate: Callable[..., Run], data: Path, referrers_registry: ReferrersStandIn, tmp_path: Path
) -> None:
    """The referrers path end to end, through the referrers-API STAND-IN in front of the real registry."""
    app = App(Registry(tmp_path / "standin", host=referrers_registry.host), tmp_path)
    decision = evaluate(gate, data, app.source)
    run = app.promote(gate, decision["decision_id"], "--format", "json")
    assert run.code == 0, run.err
    attestation = run.json()["attestation"]
    assert attestation["mode"] == "referrer"
    assert attestation["reference"] == f"{app.release_name}@{attestation['manifest_digest']}"
    assert f"Gate-Attestation: {attestation['reference']}" in trailers(app.remote)
    ok = verify(gate, f"{app.release_name}@{app.image.digest}")
    assert ok.code == 0 and f"found at: referrer {app.release_name}@{attestation['manifest_digest']}" in ok.out


def test_an_authenticated_registry_uses_the_docker_config_and_never_prints_the_password(
    gate: Callable[..., Run], auth_registry: Registry, docker_config: Path, signer: Ed25519Signer
) -> None:
    repo = new_repo("vsa")
    digest = push_image(auth_registry, repo).digest
    image = f"{auth_registry.host}/{repo}@{digest}"
    denied = gate("attestation", "verify", image, "--env", "prod", "--policy", str(POLICIES))
    assert denied.code == 2 and "UNAUTHORIZED" in denied.err and len(denied.err.strip().splitlines()) == 1
    (docker_config / "config.json").write_text(json.dumps(
        {"auths": {auth_registry.host: {"username": auth_registry.user, "password": auth_registry.password}}}))
    decision = make_decision(f"{auth_registry.host}/{repo}", digest)
    envelope = vsa.sign(vsa.statement(decision, time_verified=datetime.now(UTC)), signer)
    oci.attach(image, envelope, environment="prod", decision_id=decision.decision_id, created=datetime.now(UTC))
    key = docker_config / "signer.pub.pem"
    key.write_bytes(signer.public_pem())
    run = gate("attestation", "verify", image, "--env", "prod", "--policy", str(POLICIES), "--key", str(key))
    assert run.code == 0, run.out + run.err
    assert auth_registry.password and auth_registry.password not in run.out + run.err + denied.err


def test_attach_revokes_a_released_digest_with_the_newer_deny(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App(registry, tmp_path)
    allow = evaluate(gate, data, app.source)
    assert app.promote(gate, allow["decision_id"]).code == 0
    released = f"{app.release_name}@{app.image.digest}"
    attach = ("attestation", "attach", released, "--env", "prod", "--policy", str(POLICIES))
    # the allow is the newest: attaching it again is what promote attached
    again = gate(*attach)
    assert again.code == 0 and again.out.startswith(f"PASSED VSA of decision {allow['decision_id']} already attached")
    # a new scan denies the same digest; offline clusters learn it from the FAILED VSA
    deny = evaluate(gate, data, app.source, ONE_CRITICAL)
    dry = gate(*attach, "--dry-run")
    assert dry.code == 0 and f"FAILED VSA of decision {deny['decision_id']}" in dry.out
    assert verify(gate, released).code == 0
    run = gate(*attach, "--format", "json")
    assert run.code == 0, run.err
    assert run.json()["result"] == "FAILED" and run.json()["decision_id"] == deny["decision_id"]
    check = verify(gate, released)
    assert check.code == 1 and f"(decision {deny['decision_id']}" in check.out and "is FAILED" in check.out


def test_attach_refuses_without_a_trusted_decision(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App(registry, tmp_path)
    released = f"{app.release_name}@{app.image.digest}"
    attach = ("attestation", "attach", released, "--env", "prod", "--policy", str(POLICIES))
    none = gate(*attach)
    assert none.code == 1 and "it never passed the gate" in none.out
    evaluate(gate, data, app.source)
    other = generate_keypair(tmp_path / "other")[1]
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(other))
    untrusted = gate(*attach)
    assert untrusted.code == 1 and "not a trusted key" in untrusted.out
    assert gate("attestation", "show", released).out.startswith("no attestations")
