"""Progress lines while reconcile waits on health (issue 12): a workload that never becomes healthy
is named on stderr at a steady interval, never minutes of silence.

On the Kubernetes API emulator (tests/reconcile/emulator.py): the cadence with an injected clock (the
wait itself reads the emulator), and end to end through ``gate reconcile`` with a small interval.
No timed asserts: what the lines say and in which order, not how long anything took.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gate.output.reconcile_text import progress_line
from gate.reconcile.cycle import ObjectResult, wait_for_health
from gate.reconcile.kube import Cluster
from tests.conftest import Run
from tests.promote.gitrepo import Remote
from tests.reconcile.emulator import EmulatorThread
from tests.reconcile.test_kube import DEPLOYMENTS, _podinfo
from tests.reconcile.test_reconcile_cli import DIGEST_A, POLICIES, evaluate, repo  # noqa: F401  (fixture)

pytestmark = pytest.mark.server


class FakeTime:
    """A clock that moves only when the wait sleeps: the cadence is checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


def applied(obj: dict[str, Any]) -> ObjectResult:
    meta = obj["metadata"]
    return ObjectResult(kind=obj["kind"], name=meta["name"], namespace=meta["namespace"], action="apply")


def test_a_workload_that_never_becomes_healthy_is_named_every_interval_until_the_limit(
    cluster: Cluster, cluster_server: EmulatorThread
) -> None:
    stuck = _podinfo()
    stuck["spec"]["replicas"] = 2
    ready = copy.deepcopy(stuck)
    ready["metadata"]["name"] = "backend"
    cluster.apply(stuck)
    generation = cluster.apply(ready)["metadata"]["generation"]
    cluster_server.set_status(DEPLOYMENTS, "shop", "backend", {
        "observedGeneration": generation, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2})
    heard: list[dict[str, Any]] = []
    time = FakeTime()
    results = [applied(stuck), applied(ready)]

    wait_for_health(cluster, [stuck, ready], results, 120.0, progress=heard.append, progress_interval=10.0,
                    clock=time.clock, sleep=time.sleep)

    # from the start of the wait to its limit, one line every 10 s: never two silent minutes
    assert [round(p["waited_s"]) for p in heard] == list(range(0, 120, 10))
    for p in heard:
        assert p["limit_s"] == 120.0 and p["total"] == 2 and p["healthy"] == 1
        assert [w["object"] for w in p["waiting"]] == ["Deployment shop/frontend"]
    line = progress_line(heard[1])
    assert line == ("waiting for workloads to roll out: 1 of 2 healthy, 10s of 120s; still progressing: "
                    "Deployment shop/frontend (waiting for the controller to observe generation 1)")
    assert [r.health for r in results] == ["progressing", "healthy"]


def test_no_line_when_nothing_is_left_to_wait_for(cluster: Cluster, cluster_server: EmulatorThread) -> None:
    dep = _podinfo()
    generation = cluster.apply(dep)["metadata"]["generation"]
    heard: list[dict[str, Any]] = []
    time = FakeTime()
    # a zero limit reports the state at once, silently
    wait_for_health(cluster, [dep], [applied(dep)], 0.0, progress=heard.append, clock=time.clock, sleep=time.sleep)
    assert heard == []
    # a rollout already done is not waited for
    cluster_server.set_status(DEPLOYMENTS, "shop", "frontend", {
        "observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1})
    wait_for_health(cluster, [dep], [applied(dep)], 120.0, progress=heard.append, clock=time.clock, sleep=time.sleep)
    assert heard == []


def test_a_line_names_at_most_a_few_workloads_and_counts_the_rest() -> None:
    waiting = [{"object": f"Deployment shop/w{i}", "detail": "0 of 1\nreplicas updated"} for i in range(7)]
    line = progress_line({"waiting": waiting, "healthy": 0, "total": 7, "waited_s": 30.4, "limit_s": 120.0})
    assert "0 of 7 healthy, 30s of 120s" in line
    assert "Deployment shop/w4 (0 of 1 replicas updated), 2 more" in line and "w5" not in line
    assert "\n" not in line


def test_reconcile_prints_progress_lines_while_a_deployment_is_not_healthy(
    gate: Callable[..., Run], repo: Remote, kubeconfig: Path, cluster_server: EmulatorThread  # noqa: F811
) -> None:
    evaluate(gate, DIGEST_A)
    run = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
               "--kubeconfig", kubeconfig, "--once", "--format", "json", "--health-timeout", "1",
               "--progress-interval", "0.05")
    assert run.code == 0, run.err
    web = next(o for o in run.json()["objects"] if o["kind"] == "Deployment")
    assert web["health"] == "progressing"  # no controller in the emulator: it never rolls out
    lines = [line for line in run.err.splitlines() if "waiting for workloads to roll out" in line]
    assert lines, run.err
    waited = []
    for line in lines:
        assert line.startswith("gate: waiting for workloads to roll out: 0 of 1 healthy, ")
        assert line.endswith("still progressing: Deployment shop/web (waiting for the controller to observe generation 1)")
        found = re.search(r"healthy, (\d+)s of 1s;", line)
        assert found is not None, line
        waited.append(int(found.group(1)))
    assert waited == sorted(waited) and waited[0] == 0  # the first line when the wait begins, then in order


def test_a_progress_interval_must_be_positive(gate: Callable[..., Run], repo: Remote) -> None:  # noqa: F811
    run = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--once",
               "--progress-interval", "0")
    assert run.code == 2
    assert "--progress-interval 0: give a number of seconds above 0" in run.err
