"""`gate reconcile` end to end through the CLI: a real git remote, real decisions from `gate evaluate`,
the shipped admission rules, and the Kubernetes API emulator (tests/reconcile/emulator.py, where
every behaviour kmock lacks is marked EMULATION)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gate.decisions.events import EventQuery
from gate.decisions.signing import generate_keypair
from gate.decisions.store import open_store
from tests.conftest import DATA, ROOT, Run
from tests.promote.gitrepo import Remote, git, make_remote, person_clone, person_commit, person_revert
from tests.reconcile.emulator import EmulatorThread, write_kubeconfig
from tests.reconcile.test_admission import CLEAN, ONE_CRITICAL, tightened_bundle, waivers_file

POLICIES = ROOT / "policies"
IMAGE = "registry.example.com/shop/web"
DIGEST_A = "sha256:" + "a1" * 32
DIGEST_B = "sha256:" + "b2" * 32
DEPLOYMENTS = "apps/v1/deployments"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n  namespace: shop\ndata:\n  mode: prod\n"


def deployment(image: str, name: str = "web", replicas: int = 2) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n"
        f"  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n"
        f"      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: {name}\n        image: {image}\n"
    )


def evaluate(gate: Callable[..., Run], digest: str, reports: tuple[str, ...] = CLEAN, *extra: Any) -> dict[str, Any]:
    argv: list[Any] = ["evaluate", "--policy", POLICIES, "--image", f"{IMAGE}:1.0@{digest}", "--env", "prod", "--format", "json"]
    for report in reports:
        argv += ["--report", f"auto={DATA / report}"]
    run = gate(*argv, *extra)
    assert run.code in (0, 1), run.err
    return run.json()


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository mirror goes to the test's folder, never the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def repo(tmp_path: Path) -> Remote:
    """A GitOps remote: a Namespace, a ConfigMap and a Deployment of IMAGE pinned to DIGEST_A; apps/prod
    deploys prod (gate-environments.yaml)."""
    return make_remote(tmp_path, {
        "gate-environments.yaml": "paths:\n  apps/prod: prod\n",
        "apps/prod/namespace.yaml": NAMESPACE,
        "apps/prod/config.yaml": CONFIGMAP,
        "apps/prod/web.yaml": deployment(f"{IMAGE}:1.0@{DIGEST_A}"),
    })


@pytest.fixture
def reconcile(gate: Callable[..., Run], repo: Remote, kubeconfig: Path) -> Callable[..., Run]:
    def run(*extra: Any) -> Run:
        # --policy is repeatable (layers): a test naming its own bundle gets that bundle alone
        policy = () if "--policy" in extra else ("--policy", POLICIES)
        return gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", *policy,
                    "--kubeconfig", kubeconfig, "--health-timeout", "0", *extra)
    return run


def stored(server: EmulatorThread, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
    """The object as the emulator holds it now, or None when it does not exist (or was deleted)."""
    try:
        obj = server.emulator.objects[resource, namespace, name]
    except KeyError:
        return None
    return None if obj.deleted else dict(obj.raw)


def live(server: EmulatorThread, name: str = "web") -> dict[str, Any] | None:
    return stored(server, DEPLOYMENTS, "shop", name)


def live_image(server: EmulatorThread, name: str = "web") -> str | None:
    obj = live(server, name)
    return obj["spec"]["template"]["spec"]["containers"][0]["image"] if obj else None


def api_client(server: EmulatorThread) -> Any:
    """The official client on the emulator, for what a person would do with kubectl."""
    from kubernetes import client

    config = client.Configuration()
    config.host = server.url
    return client.ApiClient(config)


def actions(run: Run) -> dict[str, str]:
    return {f"{o['kind']}/{o['name']}": o["action"] for o in run.json()["objects"]}


def gate_events(server: EmulatorThread) -> list[dict[str, Any]]:
    return [dict(o.raw) for (res, _, _), o in list(server.emulator.objects.items())
            if res.plural == "events" and not o.deleted]


def sync_events() -> list[Any]:
    store = open_store()
    try:
        return list(store.events(EventQuery(type="sync", oldest_first=True)))
    finally:
        store.close()


def test_an_allowed_image_is_synced_then_unchanged(
    gate: Callable[..., Run], reconcile: Callable[..., Run], repo: Remote, cluster_server: EmulatorThread
) -> None:
    decision = evaluate(gate, DIGEST_A)
    first = reconcile("--once", "--format", "json")
    assert first.code == 0, first.out + first.err
    body = first.json()
    assert body["outcome"] == "synced" and body["commit"] == repo.head()
    assert actions(first) == {"Namespace/shop": "apply", "ConfigMap/web-config": "apply", "Deployment/web": "apply"}
    assert [o["kind"] for o in body["objects"]][0] == "Namespace"  # dependency order
    obj = live(cluster_server)
    assert obj is not None and live_image(cluster_server) == f"{IMAGE}:1.0@{DIGEST_A}"
    annotations = obj["metadata"]["annotations"]
    assert annotations["gate.dev/commit"] == repo.head()
    assert annotations["gate.dev/decisions"] == decision["decision_id"]
    assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gate"

    second = reconcile("--once", "--format", "json")
    assert second.code == 0 and set(actions(second).values()) == {"unchanged"}
    events = sync_events()
    assert [e.outcome for e in events] == ["synced", "synced"]
    assert events[0].decision_ids == (decision["decision_id"],)
    assert events[0].details["applied"] == ["Namespace/shop", "ConfigMap/shop/web-config", "Deployment/shop/web"]
    text = reconcile("--once")
    assert text.out.startswith(f"SYNCED commit {repo.head()[:12]}: 0 applied, 3 unchanged, 0 blocked")


def test_an_image_committed_by_hand_without_a_decision_is_blocked_and_the_live_one_stays(
    gate: Callable[..., Run], reconcile: Callable[..., Run], repo: Remote, cluster_server: EmulatorThread, tmp_path: Path
) -> None:
    evaluate(gate, DIGEST_A)
    assert reconcile("--once").code == 0
    person_commit(repo, tmp_path, "apps/prod/web.yaml", deployment(f"{IMAGE}:6.6.6@{DIGEST_B}"), "hotfix: bump web")
    run = reconcile("--once", "--format", "json")
    assert run.code == 1
    blocked = next(o for o in run.json()["objects"] if o["kind"] == "Deployment")
    assert blocked["action"] == "blocked"
    assert any("never passed the gate" in r for r in blocked["reasons"]), blocked["reasons"]
    assert live_image(cluster_server) == f"{IMAGE}:1.0@{DIGEST_A}"  # the running version stays
    warning = [e for e in gate_events(cluster_server) if e.get("reason") == "GateBlocked"]
    assert warning and warning[0]["involvedObject"]["name"] == "web" and "never passed the gate" in warning[0]["message"]
    assert sync_events()[-1].outcome == "blocked"
    assert sync_events()[-1].details["blocked"][0]["object"] == "Deployment/shop/web"


def test_a_decision_signed_by_an_untrusted_key_is_blocked(
    gate: Callable[..., Run], reconcile: Callable[..., Run], cluster_server: EmulatorThread, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, signing_key: tuple[Path, Path],
) -> None:
    rogue, _ = generate_keypair(tmp_path / "rogue")
    monkeypatch.setenv("GATE_SIGNING_KEY", str(rogue))
    evaluate(gate, DIGEST_A)
    monkeypatch.setenv("GATE_SIGNING_KEY", str(signing_key[0]))
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(signing_key[1]))
    run = reconcile("--once", "--format", "json")
    assert run.code == 1 and actions(run)["Deployment/web"] == "blocked"
    assert live(cluster_server) is None
    assert actions(run)["Namespace/shop"] == "apply"  # objects without images are not held hostage


def test_a_waiver_that_has_expired_since_blocks(
    gate: Callable[..., Run], reconcile: Callable[..., Run], cluster_server: EmulatorThread, tmp_path: Path
) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=2)
    decision = evaluate(gate, DIGEST_A, ONE_CRITICAL, "--data", waivers_file(tmp_path, expires))
    assert decision["outcome"] == "allow"
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.5)
    run = reconcile("--once", "--format", "json")
    assert run.code == 1
    reasons = next(o for o in run.json()["objects"] if o["kind"] == "Deployment")["reasons"]
    assert any("W-0042" in r and "expired" in r for r in reasons), reasons
    assert live(cluster_server) is None


def test_a_policy_tightened_after_the_decision_blocks_or_warns_under_effective_on(
    gate: Callable[..., Run], reconcile: Callable[..., Run], cluster_server: EmulatorThread, tmp_path: Path
) -> None:
    evaluate(gate, DIGEST_A)
    strict = reconcile("--once", "--format", "json", "--policy", tightened_bundle(tmp_path / "strict"))
    assert strict.code == 1
    reasons = next(o for o in strict.json()["objects"] if o["kind"] == "Deployment")["reasons"]
    assert any("provenance.required" in r for r in reasons), reasons
    assert live(cluster_server) is None
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    grace = reconcile("--once", "--format", "json", "--policy", tightened_bundle(tmp_path / "grace", effective_on=future))
    assert grace.code == 0, grace.out
    web = next(o for o in grace.json()["objects"] if o["kind"] == "Deployment")
    assert web["action"] == "apply" and any("provenance" in w for w in web["warnings"])
    assert live(cluster_server) is not None


def test_a_tag_instead_of_a_digest_is_blocked(
    gate: Callable[..., Run], reconcile: Callable[..., Run], repo: Remote, cluster_server: EmulatorThread, tmp_path: Path
) -> None:
    person_commit(repo, tmp_path, "apps/prod/web.yaml", deployment(f"{IMAGE}:1.0"), "use the tag")
    run = reconcile("--once", "--format", "json")
    assert run.code == 1
    reasons = next(o for o in run.json()["objects"] if o["kind"] == "Deployment")["reasons"]
    assert any("not pinned by digest" in r for r in reasons), reasons


def test_reverting_a_promotion_applies_the_previous_digest(
    gate: Callable[..., Run], reconcile: Callable[..., Run], repo: Remote, cluster_server: EmulatorThread, tmp_path: Path
) -> None:
    evaluate(gate, DIGEST_A)
    evaluate(gate, DIGEST_B)
    assert reconcile("--once").code == 0
    promoted = person_commit(repo, tmp_path, "apps/prod/web.yaml", deployment(f"{IMAGE}:2.0@{DIGEST_B}"), "promote web 2.0")
    assert reconcile("--once").code == 0
    assert live_image(cluster_server) == f"{IMAGE}:2.0@{DIGEST_B}"
    person_revert(repo, tmp_path, promoted)
    run = reconcile("--once", "--format", "json")
    assert run.code == 0 and actions(run)["Deployment/web"] == "apply"
    assert live_image(cluster_server) == f"{IMAGE}:1.0@{DIGEST_A}"


def test_drift_in_the_cluster_is_detected_and_corrected(
    gate: Callable[..., Run], reconcile: Callable[..., Run], cluster_server: EmulatorThread
) -> None:
    from kubernetes import client

    evaluate(gate, DIGEST_A)
    assert reconcile("--once").code == 0
    apps = client.AppsV1Api(api_client(cluster_server))
    apps.patch_namespaced_deployment("web", "shop", {"spec": {"replicas": 7}})  # someone scales by hand
    assert live(cluster_server)["spec"]["replicas"] == 7  # type: ignore[index]
    run = reconcile("--once", "--format", "json")
    assert run.code == 0
    web = next(o for o in run.json()["objects"] if o["kind"] == "Deployment")
    assert web["action"] == "apply" and web["drift"] is True
    assert live(cluster_server)["spec"]["replicas"] == 2  # type: ignore[index]
    assert sync_events()[-1].details["drift"] == ["Deployment/shop/web"]


def test_prune_deletes_only_what_gate_applied_from_this_repository(
    gate: Callable[..., Run], reconcile: Callable[..., Run], repo: Remote, cluster_server: EmulatorThread, tmp_path: Path
) -> None:
    from kubernetes import client

    evaluate(gate, DIGEST_A)
    assert reconcile("--once").code == 0
    core = client.CoreV1Api(api_client(cluster_server))
    core.create_namespaced_config_map("shop", {"metadata": {"name": "someone-elses"}, "data": {"a": "b"}})
    with person_clone(repo, tmp_path) as work:
        git("rm", "--quiet", "apps/prod/config.yaml", cwd=work)
        git("commit", "--quiet", "-m", "drop the config map", cwd=work)
        git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
    kept = reconcile("--once", "--format", "json")
    assert kept.code == 0 and kept.json()["pruned"] == []  # without --prune nothing is deleted
    run = reconcile("--once", "--prune", "--format", "json")
    assert run.code == 0
    assert [(p["kind"], p["name"], p["action"]) for p in run.json()["pruned"]] == [("ConfigMap", "web-config", "pruned")]
    assert stored(cluster_server, "v1/configmaps", "shop", "web-config") is None
    assert stored(cluster_server, "v1/configmaps", "shop", "someone-elses") is not None  # not gate's: kept
    assert live(cluster_server) is not None


def test_a_webhook_refusal_in_the_dry_run_blocks_with_its_message(
    gate: Callable[..., Run], reconcile: Callable[..., Run], cluster_server: EmulatorThread
) -> None:
    evaluate(gate, DIGEST_A)
    cluster_server.call(lambda: cluster_server.emulator.refuse(
        lambda obj: obj.get("kind") == "Deployment", "[must-have-probes] container <web> has no livenessProbe"))
    run = reconcile("--once", "--format", "json")
    assert run.code == 1
    web = next(o for o in run.json()["objects"] if o["kind"] == "Deployment")
    assert web["action"] == "blocked"
    assert any('admission webhook "validation.gatekeeper.sh" denied the request' in r and "livenessProbe" in r
               for r in web["reasons"]), web["reasons"]
    assert live(cluster_server) is None


def test_plan_verdicts_equal_what_a_real_cycle_does_and_touch_no_cluster(
    gate: Callable[..., Run], reconcile: Callable[..., Run], repo: Remote, cluster_server: EmulatorThread, tmp_path: Path
) -> None:
    evaluate(gate, DIGEST_A)
    files = {"apps/prod/other.yaml": deployment(f"{IMAGE}:9@{DIGEST_B}", name="other")}  # no decision for B
    for path, text in files.items():
        person_commit(repo, tmp_path, path, text, "add other")
    plan = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
                "--once", "--plan", "--format", "json")
    assert plan.code == 1
    body = plan.json()
    assert set(body) >= {"objects", "outcome"} and body["outcome"] == "blocked"
    assert all(set(o) >= {"kind", "name", "namespace", "action", "reasons"} for o in body["objects"])
    assert live(cluster_server) is None and sync_events() == []  # no cluster, nothing recorded
    real = reconcile("--once", "--format", "json")
    assert real.code == 1
    assert actions(real) == actions(plan)
    assert {o["name"]: o["reasons"] for o in real.json()["objects"]} == {o["name"]: o["reasons"] for o in body["objects"]}


def test_health_is_reported_after_the_wait(
    gate: Callable[..., Run], repo: Remote, kubeconfig: Path, cluster_server: EmulatorThread
) -> None:
    evaluate(gate, DIGEST_A)
    run = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
               "--kubeconfig", kubeconfig, "--health-timeout", "0", "--once", "--format", "json")
    web = next(o for o in run.json()["objects"] if o["kind"] == "Deployment")
    assert web["health"] == "progressing"  # no controller has reported yet
    generation = live(cluster_server)["metadata"]["generation"]  # type: ignore[index]
    cluster_server.set_status(DEPLOYMENTS, "shop", "web", {
        "observedGeneration": generation, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2})
    from gate.reconcile.kube import Cluster

    with Cluster(kubeconfig) as cluster:
        assert cluster.rollout_status({"apiVersion": "apps/v1", "kind": "Deployment",
                                       "metadata": {"name": "web", "namespace": "shop"}})[0] == "healthy"


def test_errors_are_exit_2_and_apply_nothing(gate: Callable[..., Run], repo: Remote, tmp_path: Path) -> None:
    unreachable = write_kubeconfig(tmp_path / "dead", "http://127.0.0.1:9")
    run = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
               "--kubeconfig", unreachable, "--once")
    assert run.code == 2 and run.err.startswith("gate: error: ") and len(run.err.strip().splitlines()) == 1
    missing = gate("reconcile", "--repo", (tmp_path / "nope.git").as_uri(), "--path", "apps/prod", "--env", "prod",
                   "--once", "--plan")
    assert missing.code == 2 and "cannot fetch branch main" in missing.err
    broken = tmp_path / "broken"
    (broken / "gate").mkdir(parents=True)
    (broken / "gate" / "x.rego").write_text("package gate.admission.x\n\ndeny contains {")
    bad_policy = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", broken,
                      "--once", "--plan")
    assert bad_policy.code == 2
    assert gate("reconcile", "--repo", repo.url, "--path", "x", "--env", "prod", "--interval", "5", "--plan").code == 2


def test_the_loop_backs_off_on_errors_and_stops_cleanly_on_sigterm(
    gate: Callable[..., Run], repo: Remote, tmp_path: Path, cluster_server: EmulatorThread, decision_store: Path
) -> None:
    """`--interval` with an unreachable API server: each failed cycle is reported and retried after a
    back-off, nothing is applied, and SIGTERM ends the process with exit 0."""
    evaluate(gate, DIGEST_A)
    config = tmp_path / "kubeconfig"
    write_kubeconfig(config, "http://127.0.0.1:9")  # nobody listens: a temporary error
    env = {**os.environ, "GATE_DECISION_STORE": str(decision_store), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gate", "reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod",
         "--policy", str(POLICIES), "--kubeconfig", str(config), "--interval", "0.5", "--health-timeout", "0",
         "--format", "json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    first_errors = []
    try:
        # the loop is running once it reports failed cycles (waiting on them, not on the clock: a loaded
        # machine may take seconds to start): two reported cycles are a retry after the back-off
        while len(first_errors) < 2:
            line = proc.stderr.readline()
            assert line, proc.communicate()
            if line.startswith("gate: error:"):
                first_errors.append(line)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert all("127.0.0.1:9" in line for line in first_errors)  # reported, retried, never an allow
    assert out == ""  # no cycle succeeded against the dead server
    assert live(cluster_server) is None


def test_the_loop_syncs_every_interval_with_leader_election(
    gate: Callable[..., Run], repo: Remote, kubeconfig: Path, cluster_server: EmulatorThread, decision_store: Path, tmp_path: Path
) -> None:
    evaluate(gate, DIGEST_A)
    env = {**os.environ, "GATE_DECISION_STORE": str(decision_store), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gate", "reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod",
         "--policy", str(POLICIES), "--kubeconfig", str(kubeconfig), "--interval", "0.5", "--health-timeout", "0",
         "--leader-elect", "--format", "json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while live(cluster_server) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        lease = cluster_server.emulator.objects["coordination.k8s.io/v1/leases", "gate-system", "gate-reconciler"]
        assert lease["spec"]["holderIdentity"].endswith(f"-{proc.pid}")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    reports = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert reports and reports[0]["outcome"] == "synced"
    assert live(cluster_server) is not None


def test_prune_skips_an_extra_kind_gate_may_not_list_but_not_a_rendered_one(
    gate: Callable[..., Run], reconcile: Callable[..., Run], cluster_server: EmulatorThread
) -> None:
    """Operators narrow gate's role (no Secrets, say): prune skips that kind with a warning; a kind the
    path renders must stay listable, or the cycle is an error."""
    evaluate(gate, DIGEST_A)
    cluster_server.call(lambda: cluster_server.emulator.forbid_list("secrets"))
    run = reconcile("--once", "--prune", "--format", "json")
    assert run.code == 0, run.err
    assert "prune: not looking at Secret" in run.err and "cannot list" in run.err
    cluster_server.call(lambda: cluster_server.emulator.forbid_list("configmaps"))
    refused = reconcile("--once", "--prune")
    assert refused.code == 2 and "403" in refused.err and "configmaps" in refused.err


def test_a_cycle_that_fails_after_applying_is_recorded_as_an_error_sync(
    gate: Callable[..., Run], reconcile: Callable[..., Run], cluster_server: EmulatorThread
) -> None:
    """The API server fails (500) while the Deployment is dry-run: the Namespace and ConfigMap were
    already applied, so the log records an error sync saying so, and the command exits 2."""
    evaluate(gate, DIGEST_A)
    cluster_server.call(lambda: cluster_server.emulator.refuse(
        lambda obj: obj.get("kind") == "Deployment", "etcdserver: request timed out", status=500))
    run = reconcile("--once")
    assert run.code == 2 and "500" in run.err
    [event] = sync_events()
    assert event.outcome == "error" and "500" in event.details["error"]
    assert event.details["applied"] == ["Namespace/shop", "ConfigMap/shop/web-config"]
    assert live(cluster_server) is None


def test_plan_on_the_opa_engine_gives_the_embedded_engines_verdicts(
    gate: Callable[..., Run], repo: Remote, tmp_path: Path
) -> None:
    """``--engine opa --opa-url``: the admission rules and replays run on an OPA server (here the
    OPA test server, ``gate serve``), with the same verdicts; an unreachable server is exit 2."""
    import threading

    from gate.serve import make_server

    evaluate(gate, DIGEST_A)
    person_commit(repo, tmp_path, "apps/prod/other.yaml", deployment(f"{IMAGE}:9@{DIGEST_B}", name="other"), "add other")
    argv = ["reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
            "--once", "--plan", "--format", "json"]
    embedded = gate(*argv)
    assert embedded.code == 1, embedded.err
    server = make_server(port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        opa = gate(*argv, "--engine", "opa", "--opa-url", server.url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert opa.code == 1, opa.err
    assert opa.json()["objects"] == embedded.json()["objects"]
    assert (actions(opa)["Deployment/web"], actions(opa)["Deployment/other"]) == ("apply", "blocked")
    down = gate(*argv, "--engine", "opa", "--opa-url", "http://127.0.0.1:9")
    assert down.code == 2 and "OPA server http://127.0.0.1:9" in down.err and len(down.err.strip().splitlines()) == 1
