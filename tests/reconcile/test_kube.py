"""gate's Cluster against the emulated API server (tests/reconcile/emulator.py says what is emulated)."""

from __future__ import annotations

import copy
import datetime
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gate import workloads
from gate.errors import GateError, ReconcileError
from gate.reconcile.kube import AdmissionRefused, Cluster, ClusterUnavailable
from tests.reconcile.emulator import EmulatorThread, write_kubeconfig

pytestmark = pytest.mark.server

DATA = Path(__file__).resolve().parent.parent / "data" / "gitops"
DEPLOYMENTS = "apps/v1/deployments"


def _podinfo(namespace: str = "shop") -> dict[str, Any]:
    """The real podinfo frontend Deployment, placed in ``namespace``."""
    [obj] = [d for d in yaml.safe_load_all((DATA / "k8s-deployment-podinfo-frontend.yaml").read_text()) if d]
    obj["metadata"]["namespace"] = namespace
    return obj


def test_apply_creates_then_updates_bumping_generation_only_on_spec_change(
    cluster: Cluster, cluster_server: EmulatorThread
) -> None:
    dep = _podinfo()
    assert cluster.get(dep) is None
    created = cluster.apply(dep)
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "gate"
    stored = cluster_server.emulator.objects[DEPLOYMENTS, "shop", "frontend"]
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.14.1"

    again = cluster.apply(dep)
    assert again["metadata"]["generation"] == 1 and again["metadata"]["uid"] == meta["uid"]

    changed = copy.deepcopy(dep)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/stefanprodan/podinfo:6.15.0"
    updated = cluster.apply(changed)
    assert updated["metadata"]["generation"] == 2
    assert int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    live = cluster.get(dep)
    assert live is not None and workloads.of(live).images[0][1].endswith(":6.15.0")


def test_dry_run_returns_the_would_be_object_and_persists_nothing(
    cluster: Cluster, cluster_server: EmulatorThread
) -> None:
    dep = _podinfo()
    would_be = cluster.dry_run_apply(dep)
    assert would_be["metadata"]["name"] == "frontend" and would_be["metadata"]["generation"] == 1
    assert cluster.get(dep) is None
    assert ("apps/v1/deployments", "shop", "frontend") not in cluster_server.emulator.objects

    cluster.apply(dep)
    changed = copy.deepcopy(dep)
    changed["spec"]["replicas"] = 7
    assert cluster.dry_run_apply(changed)["metadata"]["generation"] == 2
    live = cluster.get(dep)
    assert live is not None and live["spec"].get("replicas") != 7 and live["metadata"]["generation"] == 1


def test_webhook_refusal_surfaces_the_servers_message(cluster: Cluster, cluster_server: EmulatorThread) -> None:
    cluster_server.emulator.refuse(
        lambda obj: any(":6.14.1" in image for _, image in workloads.of(obj).images),
        "[gate-deny-tag] image ghcr.io/stefanprodan/podinfo:6.14.1 has no allow decision",
    )
    dep = _podinfo()
    for attempt in (cluster.dry_run_apply, cluster.apply):
        with pytest.raises(AdmissionRefused) as e:
            attempt(dep)
        assert e.value.status == 403
        assert e.value.message == (
            'admission webhook "validation.gatekeeper.sh" denied the request: '
            "[gate-deny-tag] image ghcr.io/stefanprodan/podinfo:6.14.1 has no allow decision"
        )
        assert e.value.diagnostics().startswith("Deployment shop/frontend: refused by the cluster (403): admission")
        assert isinstance(e.value, GateError)
    assert cluster.get(dep) is None
    allowed = copy.deepcopy(dep)
    allowed["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/stefanprodan/podinfo:6.15.0"
    assert cluster.dry_run_apply(allowed)["metadata"]["name"] == "frontend"


def test_namespaces_list_managed_and_delete(cluster: Cluster, cluster_server: EmulatorThread) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    cluster.apply(namespace)
    assert cluster_server.emulator.objects["v1/namespaces", None, "shop"]["metadata"]["uid"]
    cluster.apply(_podinfo())
    # a Deployment somebody else made, not labelled as gate's: never listed, so never pruned
    cluster_server.call(lambda: cluster_server.emulator.objects.__setitem__(
        (DEPLOYMENTS, "shop", "theirs"),
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "theirs", "namespace": "shop"}},
    ))
    managed = cluster.list_managed([("apps/v1", "Deployment"), ("v1", "Namespace"), ("example.com/v1", "Widget")])
    assert sorted((o["kind"], o["metadata"]["name"]) for o in managed) == [("Deployment", "frontend"), ("Namespace", "shop")]

    assert cluster.delete(_podinfo()) is True
    assert cluster.get(_podinfo()) is None
    assert cluster.delete(_podinfo()) is False
    assert cluster.delete(namespace) is True
    assert cluster.get(namespace) is None
    assert [o["metadata"]["name"] for o in cluster.list_managed([("apps/v1", "Deployment")])] == []


def test_emit_event_records_the_involved_object(cluster: Cluster, cluster_server: EmulatorThread) -> None:
    dep = cluster.apply(_podinfo())
    cluster.emit_event(dep, "PolicyBlocked", "image has no allow decision for prod")
    events = [
        o for (res, ns, _), o in cluster_server.emulator.objects.items()
        if res.plural == "events" and ns == "shop" and not o.deleted
    ]
    assert len(events) == 1
    event = events[0]
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "frontend", "namespace": "shop",
        "uid": dep["metadata"]["uid"],
    }
    assert (event["reason"], event["type"], event["reportingComponent"]) == ("PolicyBlocked", "Warning", "gate")
    assert event["message"] == "image has no allow decision for prod"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, "progressing"),
        ({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}, "progressing"),
        ({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}, "healthy"),
        (
            {
                "observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                "message": 'ReplicaSet "frontend-7d9" has timed out progressing.'}],
            },
            "degraded",
        ),
    ],
)
def test_rollout_status_reads_the_controllers_status(
    cluster: Cluster, cluster_server: EmulatorThread, status: dict[str, Any], expected: str
) -> None:
    dep = _podinfo()
    dep["spec"]["replicas"] = 2
    cluster.apply(dep)
    if status:
        cluster_server.set_status(DEPLOYMENTS, "shop", "frontend", status)
    health, detail = cluster.rollout_status(dep)
    assert health == expected
    if expected == "degraded":
        assert "timed out progressing" in detail
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}}
    assert cluster.rollout_status(configmap) == ("healthy", "")


def test_lease_is_exclusive_until_it_expires(cluster_server: EmulatorThread) -> None:
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    now = {"t": start}
    a = Cluster(host=cluster_server.url, clock=lambda: now["t"])
    b = Cluster(host=cluster_server.url, clock=lambda: now["t"])
    try:
        assert a.acquire_lease("gate-reconcile", "gate-system", "a", 15) is True
        assert b.acquire_lease("gate-reconcile", "gate-system", "b", 15) is False
        now["t"] = start + datetime.timedelta(seconds=10)
        assert a.renew_lease("gate-reconcile", "gate-system", "a") is True
        now["t"] = start + datetime.timedelta(seconds=20)  # 10 s after a's renewal: still a's
        assert b.acquire_lease("gate-reconcile", "gate-system", "b", 15) is False
        now["t"] = start + datetime.timedelta(seconds=26)  # a stopped renewing 16 s ago
        assert b.acquire_lease("gate-reconcile", "gate-system", "b", 15) is True
        assert a.renew_lease("gate-reconcile", "gate-system", "a") is False
        lease = cluster_server.emulator.objects["coordination.k8s.io/v1/leases", "gate-system", "gate-reconcile"]
        assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
        assert b.release_lease("gate-reconcile", "gate-system", "b") is True
        assert a.acquire_lease("gate-reconcile", "gate-system", "a", 15) is True
    finally:
        a.close()
        b.close()


def test_lease_update_with_a_stale_resource_version_loses(cluster: Cluster, cluster_server: EmulatorThread) -> None:
    assert cluster.acquire_lease("l", "gate-system", "a", 15) is True
    stale = cluster.get({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": "l", "namespace": "gate-system"}})
    assert stale is not None
    assert cluster.renew_lease("l", "gate-system", "a") is True  # moves resourceVersion on
    assert cluster._update_lease(stale, {"holderIdentity": "intruder"}) is False
    assert cluster_server.emulator.objects["coordination.k8s.io/v1/leases", "gate-system", "l"]["spec"][
        "holderIdentity"] == "a"


def _free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_is_cluster_unavailable() -> None:
    with Cluster(host=f"http://127.0.0.1:{_free_port()}", timeout_s=5) as c:
        with pytest.raises(ClusterUnavailable) as e:
            c.apply(_podinfo())
    assert isinstance(e.value, ReconcileError)
    assert "unreachable" in e.value.diagnostics() and "\n" not in e.value.diagnostics()


def test_errors_never_show_the_token(tmp_path: Path, cluster_server: EmulatorThread) -> None:
    token = "s3cr3t-bearer-token-value"
    for url in (f"http://127.0.0.1:{_free_port()}", cluster_server.url):
        config = write_kubeconfig(tmp_path / "kubeconfig", url, token=token)
        with Cluster(config, timeout_s=5) as c:
            with pytest.raises(ReconcileError) as e:
                c.apply({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
        assert token not in e.value.diagnostics() and token not in repr(e.value.args)


def test_api_errors_name_the_object(cluster: Cluster) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "shop"}}
    assert cluster.get(widget) is None
    with pytest.raises(ReconcileError, match=r"^Widget shop/w: the cluster does not serve this kind"):
        cluster.apply(widget)


def test_kubeconfig_file_reaches_the_server(kubeconfig: Path, cluster_server: EmulatorThread) -> None:
    with Cluster(kubeconfig) as c:
        c.apply(_podinfo())
    assert cluster_server.emulator.objects[DEPLOYMENTS, "shop", "frontend"]["metadata"]["generation"] == 1


def test_broken_kubeconfig_is_a_reconcile_error(tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n", encoding="utf-8")
    with pytest.raises(ReconcileError, match=rf"^{bad}: cannot load: "):
        Cluster(bad)


def test_standalone_emulator_serves_a_subprocess_client(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.reconcile.emulator", "0", "--deny-image", ":6.14.1"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready "):
            proc.kill()
            pytest.fail(f"emulator did not start: {line!r} {proc.communicate()[1][-2000:]}")
        with Cluster(host=line.split()[1]) as c:
            with pytest.raises(AdmissionRefused, match="image ':6.14.1' is not allowed"):
                c.dry_run_apply(_podinfo())
            c.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_emulator_applies_label_selectors_on_list(cluster: Cluster, cluster_server: EmulatorThread) -> None:
    import httpx

    for name, labels in (("a", {"tier": "web", "team": "x"}), ("b", {"tier": "db"}), ("c", {})):
        cluster_server.call(lambda n=name, l=labels: cluster_server.emulator.objects.__setitem__(
            ("v1/configmaps", "shop", n),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "namespace": "shop", "labels": l}},
        ))

    def names(selector: str) -> list[str]:
        r = httpx.get(f"{cluster_server.url}/api/v1/namespaces/shop/configmaps", params={"labelSelector": selector})
        return sorted(i["metadata"]["name"] for i in r.json()["items"])

    assert names("tier=web") == ["a"]
    assert names("tier!=web") == ["b", "c"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c"]
    assert names("tier==web,team=x") == ["a"]
