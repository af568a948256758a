"""Offline admission end to end through the CLI: `gate reconcile --evidence vsa|log|both` on images pushed
to the real registry (docker-registry, tests/promote/servers.py), with VSAs made by gate itself from
decisions `gate evaluate` recorded (gate.attestation: statement, DSSE signature, attach to the image's
repository under cosign's .att tag, as the registry has no referrers API). The air-gapped cluster has no
decision log at all: GATE_DECISION_STORE points nowhere. One real cycle runs on the Kubernetes API
emulator (tests/reconcile/emulator.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gate.attestation import oci, vsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.decisions.signing import Ed25519Signer, load_signer
from gate.decisions.store import open_store
from tests.conftest import DATA, ROOT, Run
from tests.promote.conftest import auth_registry, docker_config, registry  # noqa: F401 — fixtures used here too
from tests.promote.gitrepo import Remote, make_remote
from tests.promote.servers import Registry, new_repo, push_image
from tests.reconcile.emulator import EmulatorThread
from tests.reconcile.test_admission import CLEAN, ONE_CRITICAL
from tests.reconcile.test_reconcile_cli import NAMESPACE, deployment, live, live_image, sync_events

pytestmark = pytest.mark.server

POLICIES = ROOT / "policies"


@dataclass
class Image:
    """An image pushed to the test registry: ``repo`` (registry/path) and ``digest``."""

    repo: str
    digest: str

    @property
    def pinned(self) -> str:
        return f"{self.repo}:1.0@{self.digest}"

    @property
    def ref(self) -> str:
        return f"{self.repo}@{self.digest}"


@pytest.fixture
def image(registry: Registry) -> Image:
    path = new_repo("offline")
    return Image(f"{registry.host}/{path}", push_image(registry, path).digest)


@pytest.fixture(autouse=True)
def trust_the_session_key(monkeypatch: pytest.MonkeyPatch, signing_key: tuple[Path, Path]) -> None:
    """The cluster trusts the CI's key (the session key, which gate evaluate signs with)."""
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(signing_key[1]))


def evaluate(gate: Callable[..., Run], image: Image, reports: tuple[str, ...] = CLEAN, env: str = "prod") -> str:
    """``gate evaluate`` on the image; the decision id."""
    argv: list[Any] = ["evaluate", "--policy", POLICIES, "--image", image.pinned, "--env", env, "--format", "json"]
    for report in reports:
        argv += ["--report", f"auto={DATA / report}"]
    run = gate(*argv)
    assert run.code in (0, 1), run.err
    return str(run.json()["decision_id"])


def attest(decision_id: str, image: Image, *, at: datetime | None = None, signer: Ed25519Signer | None = None) -> str:
    """Sign the decision's VSA (gate's key unless ``signer``) and attach it to the image; the attachment."""
    store = open_store(create=False)
    try:
        decision = store.get(decision_id)
    finally:
        store.close()
    assert decision is not None
    at = at or datetime.now(UTC) - timedelta(minutes=1)
    envelope = vsa.sign(vsa.statement(decision, time_verified=at), signer or load_signer())
    attached = oci.attach(image.ref, envelope, environment=decision.environment, decision_id=decision_id, created=at)
    return attached.reference


def promoted(gate: Callable[..., Run], image: Image, reports: tuple[str, ...] = CLEAN, env: str = "prod", **kwargs: Any) -> str:
    """What gate promote leaves behind: a decision in the log and its VSA on the image; the decision id."""
    decision_id = evaluate(gate, image, reports, env)
    attest(decision_id, image, **kwargs)
    return decision_id


def air_gapped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The cluster cannot reach the decision log: GATE_DECISION_STORE names a log that is not there."""
    monkeypatch.setenv("GATE_DECISION_STORE", f"postgresql://gate@127.0.0.1:1/decisions?connect_timeout=1")
    monkeypatch.delenv("GATE_EVIDENCE", raising=False)


def gitops(tmp_path: Path, *images: str) -> Remote:
    files = {"gate-environments.yaml": "paths:\n  apps/prod: prod\n", "apps/prod/namespace.yaml": NAMESPACE}
    for index, ref in enumerate(images):
        files[f"apps/prod/web{index}.yaml"] = deployment(ref, name=f"web{index}")
    return make_remote(tmp_path, files)


def plan(gate: Callable[..., Run], tmp_path: Path, *images: str, extra: tuple[str, ...] = ()) -> Run:
    repo = gitops(tmp_path, *images)
    return gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
                "--once", "--plan", "--format", "json", *extra)


def verdicts(run: Run) -> dict[str, dict[str, Any]]:
    assert run.code in (0, 1), run.err
    return {o["name"]: o for o in run.json()["objects"] if o["kind"] == "Deployment"}


def reasons(run: Run, name: str = "web0") -> str:
    return " | ".join(verdicts(run)[name]["reasons"])


# --- evidence vsa: the air-gapped cluster ---------------------------------------------------------------


def test_air_gapped_admits_an_image_with_a_valid_passed_vsa(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decision_id = promoted(gate, image)
    air_gapped(monkeypatch, tmp_path)
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "vsa"))
    assert run.code == 0, run.out + run.err
    web = verdicts(run)["web0"]
    assert web["action"] == "apply" and web["decision_ids"] == [decision_id]
    assert "decision log" not in run.err  # never opened


def test_air_gapped_blocks_an_image_without_a_vsa(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluate(gate, image)  # an allow in the central log, but nothing attached to the image
    air_gapped(monkeypatch, tmp_path)
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "vsa"))
    assert run.code == 1
    assert f"no valid VSA for environment prod is attached to {image.ref}" in reasons(run)
    assert verdicts(run)["web0"]["action"] == "blocked"


def test_air_gapped_blocks_a_newer_failed_vsa(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image, at=datetime.now(UTC) - timedelta(hours=2))
    denied = promoted(gate, image, ONE_CRITICAL, at=datetime.now(UTC) - timedelta(hours=1))
    air_gapped(monkeypatch, tmp_path)
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "vsa"))
    assert run.code == 1
    assert f"the newest VSA for prod (decision {denied}," in reasons(run) and "is FAILED" in reasons(run)


def test_air_gapped_blocks_a_vsa_for_another_environment(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image, env="staging")
    air_gapped(monkeypatch, tmp_path)
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "vsa"))
    assert run.code == 1
    assert "no valid VSA for environment prod" in reasons(run) and "1 for another environment" in reasons(run)


def test_air_gapped_blocks_a_vsa_signed_by_an_untrusted_key(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image, signer=Ed25519Signer(Ed25519PrivateKey.generate()))
    air_gapped(monkeypatch, tmp_path)
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "vsa"))
    assert run.code == 1
    assert "1 not signed by a trusted key" in reasons(run)


def test_air_gapped_blocks_a_stale_vsa_unless_the_max_age_allows_it(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image, at=datetime.now(UTC) - timedelta(days=41))
    air_gapped(monkeypatch, tmp_path)
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "vsa"))
    assert run.code == 1 and "old, older than 30d" in reasons(run)
    longer = plan(gate, tmp_path / "b", image.pinned, extra=("--evidence", "vsa", "--vsa-max-age", "60d"))
    assert longer.code == 0, longer.out
    monkeypatch.setenv("GATE_VSA_MAX_AGE", "45d")
    assert plan(gate, tmp_path / "c", image.pinned, extra=("--evidence", "vsa")).code == 0


def test_air_gapped_blocks_a_vsa_dated_in_the_future(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image, at=datetime.now(UTC) + timedelta(days=1))
    air_gapped(monkeypatch, tmp_path)
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "vsa"))
    assert run.code == 1 and "is dated in the future" in reasons(run)


def test_a_vsa_copied_from_another_image_does_not_count(
    gate: Callable[..., Run], registry: Registry, image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_path = new_repo("offline")
    other = Image(f"{registry.host}/{other_path}", push_image(registry, other_path, content=b"other\n").digest)
    decision_id = evaluate(gate, other)
    store = open_store(create=False)
    decision = store.get(decision_id)
    store.close()
    assert decision is not None
    envelope = vsa.sign(vsa.statement(decision, time_verified=datetime.now(UTC)), load_signer())
    oci.attach(image.ref, envelope, environment="prod", decision_id=decision_id, created=datetime.now(UTC))
    air_gapped(monkeypatch, tmp_path)
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "vsa"))
    assert run.code == 1 and "1 about another image" in reasons(run)


def test_a_tag_only_image_is_blocked_since_no_vsa_can_be_looked_up(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image)
    air_gapped(monkeypatch, tmp_path)
    run = plan(gate, tmp_path, f"{image.repo}:1.0", extra=("--evidence", "vsa"))
    assert run.code == 1 and "is not pinned by digest" in reasons(run)


def test_an_unreachable_registry_blocks_with_its_reason(
    gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    air_gapped(monkeypatch, tmp_path)
    ref = "127.0.0.1:1/shop/web:1.0@sha256:" + "a1" * 32
    run = plan(gate, tmp_path, ref, extra=("--evidence", "vsa"))
    assert run.code == 1
    text = reasons(run)
    assert "the VSA of 127.0.0.1:1/shop/web@sha256:" in text and "could not be checked" in text
    assert "Traceback" not in run.err


def test_images_share_one_check_and_each_is_judged_alone(
    gate: Callable[..., Run], registry: Registry, image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image)
    other_path = new_repo("offline")
    other = Image(f"{registry.host}/{other_path}", push_image(registry, other_path, content=b"b\n").digest)
    air_gapped(monkeypatch, tmp_path)
    run = plan(gate, tmp_path, image.pinned, other.pinned, image.pinned, extra=("--evidence", "vsa"))
    actions = {name: v["action"] for name, v in verdicts(run).items()}
    assert actions == {"web0": "apply", "web1": "blocked", "web2": "apply"}
    assert run.json()["objects"][0]["action"] == "apply"  # the Namespace: no image, never held hostage


# --- evidence both and log ----------------------------------------------------------------------------


def test_both_blocks_an_allow_in_the_log_without_a_vsa(gate: Callable[..., Run], image: Image, tmp_path: Path) -> None:
    evaluate(gate, image)
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "both"))
    assert run.code == 1 and f"no valid VSA for environment prod is attached to {image.ref}" in reasons(run)
    assert plan(gate, tmp_path / "log", image.pinned, extra=("--evidence", "log")).code == 0


def test_both_blocks_a_vsa_without_an_allow_in_this_log(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image)  # in another log: the cluster's own has no decision for the digest
    other_log = tmp_path / "cluster-log.db"
    open_store(str(other_log)).close()
    monkeypatch.setenv("GATE_DECISION_STORE", str(other_log))
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "both"))
    assert run.code == 1 and "it never passed the gate" in reasons(run)
    assert plan(gate, tmp_path / "vsa", image.pinned, extra=("--evidence", "vsa")).code == 0


def test_both_admits_with_both(gate: Callable[..., Run], image: Image, tmp_path: Path) -> None:
    decision_id = promoted(gate, image)
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "both"))
    assert run.code == 0, run.out
    assert verdicts(run)["web0"]["decision_ids"] == [decision_id]


def test_both_blocks_a_log_allow_when_the_newest_vsa_is_failed(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decision_store: Path
) -> None:
    promoted(gate, image, at=datetime.now(UTC) - timedelta(hours=2))  # the cluster's log: an allow
    elsewhere = tmp_path / "elsewhere.db"
    open_store(str(elsewhere)).close()
    monkeypatch.setenv("GATE_DECISION_STORE", str(elsewhere))
    denied = promoted(gate, image, ONE_CRITICAL, at=datetime.now(UTC) - timedelta(hours=1))  # a newer FAILED VSA
    monkeypatch.setenv("GATE_DECISION_STORE", str(decision_store))
    assert plan(gate, tmp_path / "log", image.pinned, extra=("--evidence", "log")).code == 0
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "both"))
    assert run.code == 1
    [reason] = verdicts(run)["web0"]["reasons"]  # the log had nothing against it
    assert f"the newest VSA for prod (decision {denied}, verified " in reason and reason.endswith(") is FAILED")


# --- the default ---------------------------------------------------------------------------------------


def test_default_without_a_log_is_vsa_and_says_so(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image)
    monkeypatch.delenv("GATE_DECISION_STORE")
    monkeypatch.delenv("GATE_EVIDENCE")
    run = plan(gate, tmp_path, image.pinned)
    assert run.code == 0, run.out + run.err
    assert "gate: evidence vsa (default: no decision log is configured (GATE_DECISION_STORE unset))" in run.err


def test_default_with_a_reachable_log_is_both(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluate(gate, image)
    monkeypatch.delenv("GATE_EVIDENCE")
    run = plan(gate, tmp_path, image.pinned)
    assert run.code == 1 and "no valid VSA for environment prod" in reasons(run)
    assert "gate: evidence both (default: a decision log is configured (GATE_DECISION_STORE))" in run.err


def test_default_with_an_unreachable_configured_log_is_exit_2_never_vsa(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image)
    monkeypatch.setenv("GATE_DECISION_STORE", str(tmp_path / "gone" / "decisions.db"))
    monkeypatch.delenv("GATE_EVIDENCE")
    run = plan(gate, tmp_path, image.pinned)
    assert run.code == 2 and run.out == ""
    line = run.err.strip().splitlines()[-1]
    assert "gone" in line and "--evidence vsa" in line and "Traceback" not in run.err


def test_evidence_from_the_configuration_file(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image)
    air_gapped(monkeypatch, tmp_path)
    config = tmp_path / "gate.toml"
    config.write_text('evidence = "vsa"\nvsa_max_age = "7d"\n')
    monkeypatch.setenv("GATE_CONFIG", str(config))
    assert plan(gate, tmp_path, image.pinned).code == 0
    shown = gate("config", "show", "--format", "json").json()["settings"]
    rows = {row["name"]: row for row in shown}
    assert rows["evidence"]["value"] == "vsa" and rows["evidence"]["source"] == "file"
    assert rows["vsa_max_age"]["value"] == "7d"
    config.write_text('evidence = "offline"\n')
    bad = plan(gate, tmp_path / "b", image.pinned)
    assert bad.code == 2 and "evidence in" in bad.err and "'offline': the evidence must be one of" in bad.err


def test_usage_errors(gate: Callable[..., Run], tmp_path: Path) -> None:
    repo = gitops(tmp_path, "nginx:1.27")
    base = ("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--once", "--plan")
    assert gate(*base, "--evidence", "none").code == 2
    run = gate(*base, "--evidence", "vsa", "--vsa-max-age", "forever")
    assert run.code == 2 and "--vsa-max-age 'forever'" in run.err


# --- one real cycle ----------------------------------------------------------------------------------


def test_a_real_cycle_applies_by_vsa_and_records_nothing_without_a_log(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    kubeconfig: Path, cluster_server: EmulatorThread,
) -> None:
    decision_id = promoted(gate, image)
    air_gapped(monkeypatch, tmp_path)
    repo = gitops(tmp_path, image.pinned)
    run = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
               "--once", "--kubeconfig", kubeconfig, "--health-timeout", "0", "--format", "json", "--evidence", "vsa")
    assert run.code == 0, run.out + run.err
    assert live_image(cluster_server, "web0") == image.pinned
    obj = live(cluster_server, "web0")
    assert obj is not None and obj["metadata"]["annotations"]["gate.dev/decisions"] == decision_id
    assert run.json()["event_id"] is None  # no log: no sync event


def test_a_real_cycle_with_both_records_the_sync_event(
    gate: Callable[..., Run], image: Image, tmp_path: Path, kubeconfig: Path, cluster_server: EmulatorThread,
) -> None:
    decision_id = promoted(gate, image)
    repo = gitops(tmp_path, image.pinned)
    run = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
               "--once", "--kubeconfig", kubeconfig, "--health-timeout", "0", "--format", "json", "--evidence", "both")
    assert run.code == 0, run.out + run.err
    assert sync_events()[-1].decision_ids == (decision_id,)


# --- the whole flow: gate promote attaches, the air-gapped cluster admits ------------------------------


def test_promote_then_an_air_gapped_reconcile_admits_the_released_digest(
    gate: Callable[..., Run], registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging, release = new_repo("staging"), new_repo("release")
    pushed = push_image(registry, staging, "1.0", content=f"web {staging}\n".encode())
    release_name = f"{registry.host}/{release}"
    remote = make_remote(tmp_path, {
        "gate-environments.yaml": "paths:\n  apps/prod: prod\n",
        "apps/prod/namespace.yaml": NAMESPACE,
        "apps/prod/web.yaml": deployment(f"{release_name}:0.9", name="web0"),
    })
    decision_id = evaluate(gate, Image(f"{registry.host}/{staging}", pushed.digest))
    promote = gate("promote", "--decision", decision_id, "--target", f"{release_name}:1.0", "--gitops-repo", remote.url,
                   "--gitops-path", "apps/prod/web.yaml", "--format", "json")
    assert promote.code == 0, promote.err
    assert promote.json()["attestation"]["reference"].startswith(release_name)

    air_gapped(monkeypatch, tmp_path)
    run = gate("reconcile", "--repo", remote.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
               "--once", "--plan", "--format", "json", "--evidence", "vsa")
    assert run.code == 0, run.out + run.err
    web = verdicts(run)["web0"]
    assert web["action"] == "apply" and web["decision_ids"] == [decision_id]
    # the staging repository's copy of the same digest has no VSA: the attestation lives with the release
    person = make_remote(tmp_path / "hand", {
        "gate-environments.yaml": "paths:\n  apps/prod: prod\n",
        "apps/prod/web.yaml": deployment(f"{registry.host}/{staging}:1.0@{pushed.digest}", name="web0"),
    })
    hand = gate("reconcile", "--repo", person.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
                "--once", "--plan", "--format", "json", "--evidence", "vsa")
    assert hand.code == 1 and "no valid VSA for environment prod" in reasons(hand)


def test_every_command_in_the_offline_docs_parses() -> None:
    from gate.cli import build_parser
    from tests.reconcile.test_deploy import doc_commands

    # whole commands (a span such as `gate serve --admission` names a mode, it is not a command)
    commands = [c for c in doc_commands(ROOT / "docs" / "evidence.md") if "--env" in c and c[0] in ("reconcile", "serve")]
    assert sum(c[0] == "reconcile" for c in commands) >= 2 and any(c[0] == "serve" for c in commands)
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        if args.command in ("reconcile", "serve"):
            assert args.evidence in ("vsa", "both", "log", None)


# --- credentials, and gate as the authority ----------------------------------------------------------


def test_a_private_registry_is_read_with_the_docker_config_credentials(
    gate: Callable[..., Run], auth_registry: Registry, docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    path = new_repo("offline")
    login = {"auths": {auth_registry.host: {"username": auth_registry.user, "password": auth_registry.password}}}
    (docker_config / "config.json").write_text(json.dumps(login))
    private = Image(f"{auth_registry.host}/{path}", push_image(auth_registry, path).digest)
    promoted(gate, private)
    air_gapped(monkeypatch, tmp_path)
    assert plan(gate, tmp_path, private.pinned, extra=("--evidence", "vsa")).code == 0
    (docker_config / "config.json").write_text("{}")  # no credentials: the VSA cannot be read
    run = plan(gate, tmp_path / "b", private.pinned, extra=("--evidence", "vsa"))
    assert run.code == 1 and "could not be checked" in reasons(run) and "401" in reasons(run)
    assert auth_registry.password not in run.out + run.err


def test_gate_blocks_without_a_passed_vsa_even_when_the_bundle_has_no_vsa_rules(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(POLICIES, bundle)
    (bundle / "gate" / "admission" / "attestations.rego").unlink()
    (bundle / "gate" / "admission" / "attestations_test.rego").unlink()
    evaluate(gate, image)  # a log allow, no VSA
    air_gapped(monkeypatch, tmp_path)
    repo = gitops(tmp_path, image.pinned)
    run = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", bundle,
               "--once", "--plan", "--format", "json", "--evidence", "vsa")
    assert run.code == 1
    assert reasons(run).endswith(f"no valid VSA for environment prod is attached to {image.ref}: blocked (gate.attestation)")


def test_a_later_deny_attached_with_gate_attestation_attach_blocks_the_air_gapped_cluster(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image, at=datetime.now(UTC) - timedelta(hours=1))
    denied = evaluate(gate, image, ONE_CRITICAL)  # judged again where the log is: a new CVE
    attach = gate("attestation", "attach", image.ref, "--env", "prod", "--policy", POLICIES)
    assert attach.code == 0, attach.out + attach.err
    air_gapped(monkeypatch, tmp_path)
    run = plan(gate, tmp_path, image.pinned, extra=("--evidence", "vsa"))
    assert run.code == 1 and f"(decision {denied}," in reasons(run) and reasons(run).endswith("is FAILED")
