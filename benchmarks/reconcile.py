"""Benchmark: `gate reconcile --once` on a repository rendering 1,000 objects (300 workloads).

    python benchmarks/reconcile.py [--workloads 300] [--objects 1000] [--namespaces 10] [--repeat 3]

The cluster is the Kubernetes API emulator the tests use (tests/reconcile/emulator.py, kmock with
server-side apply, dry-run, namespaces and label selectors emulated), run as its own process on
127.0.0.1, and each cycle is a real `gate reconcile --once` process on a file:// GitOps remote, as
an operator would run it. The repository holds, per namespace, a Namespace, then Deployments
(one image each, pinned by digest), a Service and a ConfigMap per Deployment, and ServiceAccounts
up to --objects. Every digest has its own signed allow decision in a SQLite decision log: one real
`gate evaluate` decision on the example reports, its record copied per digest (same input size).

Reported: wall time of the first sync (everything created), a no-change cycle (everything
unchanged), and a cycle after one image changed (one Deployment applied); per cycle, the decision
lookups it made and lookups per second of cycle time. Target: the no-change cycle under 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
IMAGE = "registry.example.com/bench/app"


def digest_of(n: int) -> str:
    return "sha256:" + f"{n:08x}" * 8


def write_repo(work: Path, workloads: int, objects: int, namespaces: int) -> tuple[Path, int]:
    """A bare remote whose ``apps/prod`` renders ``objects`` objects; returns (remote, objects written)."""
    from tests.promote.gitrepo import make_remote

    files: dict[str, str] = {}
    count = 0
    for ns in range(namespaces):
        files[f"apps/prod/ns{ns}/namespace.yaml"] = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team{ns}\n"
        count += 1
    for i in range(workloads):
        ns = f"team{i % namespaces}"
        files[f"apps/prod/ns{i % namespaces}/app{i}.yaml"] = _app(i, ns)
        count += 3
    extra = 0
    while count < objects:
        ns = f"team{extra % namespaces}"
        files[f"apps/prod/ns{extra % namespaces}/sa{extra}.yaml"] = (
            f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa{extra}\n  namespace: {ns}\n"
        )
        extra += 1
        count += 1
    return make_remote(work, files).bare, count


def _app(i: int, ns: str, digest: str | None = None) -> str:
    image = f"{IMAGE}{i}:1.0@{digest or digest_of(i)}"
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app{i}\n  namespace: {ns}\nspec:\n  replicas: 2\n"
        f"  selector:\n    matchLabels:\n      app: app{i}\n  template:\n    metadata:\n      labels:\n        app: app{i}\n"
        f"    spec:\n      containers:\n      - name: app\n        image: {image}\n        ports:\n        - containerPort: 8080\n"
        f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app{i}\n  namespace: {ns}\nspec:\n  selector:\n    app: app{i}\n"
        f"  ports:\n  - port: 80\n    targetPort: 8080\n"
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app{i}\n  namespace: {ns}\ndata:\n  LOG_LEVEL: info\n"
    )


def make_decisions(env: dict[str, str], count: int) -> None:
    """One real `gate evaluate` allow, then its record copied for each digest (signed, chained)."""
    import msgspec

    from gate.decisions.record import new_decision_id, sha256_digest
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store

    argv = [sys.executable, "-m", "gate", "evaluate", "--policy", str(ROOT / "policies"), "--env", "prod",
            "--image", f"{IMAGE}0:1.0@{digest_of(0)}", "--format", "json"]
    for report in CLEAN:
        argv += ["--report", f"auto={ROOT / 'tests' / 'data' / report}"]
    real = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    template = json.loads(real.stdout)
    store = open_store(env["GATE_DECISION_STORE"])
    signer = load_signer()
    try:
        base = store.get(template["decision_id"])
        assert base is not None
        for i in range(1, count):
            artifact = {"image": f"{IMAGE}{i}", "digest": digest_of(i), "tag": "1.0"}
            policy_input = {**base.input, "artifact": artifact}
            copy = msgspec.structs.replace(
                base, decision_id=new_decision_id(), artifact=artifact, input=policy_input,
                input_digest=sha256_digest(policy_input), prev_hash=None, hash=None, signature=None, signing_key=None,
            )
            store.append(copy, signer)
    finally:
        store.close()


def lookup_rate(count: int) -> tuple[float, float]:
    """In-process: (decision lookups per second, lookups + signature checks per second) over ``count``
    digests — the indexed query the admission check makes per image digest."""
    from gate.decisions.signing import load_trusted_keys, verify_signature
    from gate.decisions.interface import DecisionQuery
    from gate.decisions.store import open_store

    store = open_store()
    trusted = load_trusted_keys()
    try:
        started = time.perf_counter()
        found = [list(store.query(DecisionQuery(digest=digest_of(i), environment="prod", limit=5))) for i in range(count)]
        queried = time.perf_counter() - started
        assert all(found), "every digest has a decision"
        for decisions in found:
            assert verify_signature(decisions[0], trusted) is None
        checked = time.perf_counter() - started
    finally:
        store.close()
    return count / queried, count / checked


def start_emulator(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.reconcile.emulator", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("ready "):
        proc.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return proc, line.split()[1]


def cycle(env: dict[str, str], remote: Path, kubeconfig: Path, profile: Path | None = None) -> tuple[float, dict[str, Any]]:
    """One `gate reconcile --once` process; under py-spy (flame graph to ``profile``) when given."""
    spy = [str(Path(sys.executable).with_name("py-spy")), "record", "-o", str(profile), "-f", "raw", "--"] if profile else []
    argv = [*spy, sys.executable, "-m", "gate", "reconcile", "--repo", remote.as_uri(), "--path", "apps/prod", "--env", "prod",
            "--policy", str(ROOT / "policies"), "--kubeconfig", str(kubeconfig), "--once", "--health-timeout", "0",
            "--format", "json"]
    started = time.perf_counter()
    run = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if run.returncode not in (0, 1):
        raise SystemExit(f"gate reconcile failed ({run.returncode}): {run.stderr.strip()}")
    return seconds, json.loads(run.stdout)


def change_one_image(remote: Path, work: Path, namespaces: int, env: dict[str, str]) -> None:
    from tests.promote.gitrepo import git, person_clone

    with person_clone(type("R", (), {"url": remote.as_uri()})(), work) as clone:  # type: ignore[arg-type]
        (clone / f"apps/prod/ns0/app0.yaml").write_text(_app(0, "team0", digest=digest_of(1)))
        git("commit", "--quiet", "-am", "promote app0", cwd=clone)
        git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=clone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", type=int, default=300)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="no-change cycles to run (median reported)")
    parser.add_argument("--profile", type=Path, metavar="FILE", help="also record one no-change cycle with py-spy (raw format)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gate-bench-reconcile-"))
    env = {**os.environ, "GATE_DECISION_STORE": str(work / "decisions.db"), "XDG_STATE_HOME": str(work / "state"),
           "XDG_CACHE_HOME": str(work / "cache"), "PYTHONPATH": str(ROOT)}
    os.environ.update({k: env[k] for k in ("GATE_DECISION_STORE", "XDG_STATE_HOME")})
    emulator = None
    try:
        t0 = time.perf_counter()
        remote, count = write_repo(work, args.workloads, args.objects, args.namespaces)
        make_decisions(env, args.workloads)
        print(f"setup: {count} objects, {args.workloads} workloads, {args.workloads} signed decisions "
              f"in {time.perf_counter() - t0:.1f}s")
        emulator, url = start_emulator(env)
        from tests.reconcile.emulator import write_kubeconfig

        kubeconfig = write_kubeconfig(work / "kubeconfig", url)
        rows = []
        seconds, report = cycle(env, remote, kubeconfig)
        rows.append(("first sync", seconds, report))
        quiet = [cycle(env, remote, kubeconfig) for _ in range(args.repeat)]
        median = statistics.median(s for s, _ in quiet)
        rows.append((f"no change (median of {args.repeat})", median, quiet[-1][1]))
        if args.profile:
            cycle(env, remote, kubeconfig, args.profile)
        change_one_image(remote, work, args.namespaces, env)
        seconds, report = cycle(env, remote, kubeconfig)
        rows.append(("one image changed", seconds, report))
        print(f"{'cycle':<26} {'wall s':>7} {'apply':>6} {'unchanged':>9} {'blocked':>7}")
        for name, secs, rep in rows:
            actions = [o["action"] for o in rep["objects"]]
            print(f"{name:<26} {secs:7.2f} {actions.count('apply'):6d} {actions.count('unchanged'):9d} "
                  f"{actions.count('blocked'):7d}")
        queries, verified = lookup_rate(args.workloads)
        print(f"decision lookups per cycle: {args.workloads} (one per digest); in process: {queries:,.0f} lookups/s, "
              f"{verified:,.0f}/s with the signature check; per second of no-change cycle wall time: "
              f"{args.workloads / median:.0f}")
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
