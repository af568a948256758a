"""Benchmark: `gate promote` — APPS promotions (default 100) into one GitOps repository with APPS apps.

    python benchmarks/promote.py [--apps 100] [--concurrency 10] [--breakdown 5]

Setup (not timed): a CNCF distribution registry on 127.0.0.1 (tests/promote/servers.py), APPS small
staging images (one layer each), one allow decision per digest recorded by the real evaluation
(gate.evaluation, shipped policies, clean Trivy + Cobertura reports; signed with a fresh key, trusted
through GATE_TRUSTED_KEYS), and bare GitOps repositories over file:// whose ``main`` holds
``apps/appN/kustomization.yaml`` for every app.

Timed, each promotion a fresh ``python -m gate promote ... --format json`` process (what CI runs):

(a) sequential: APPS promotions one after another into repository A — total wall, latency
    median / p95 / max;
(b) concurrent: the same APPS decisions promoted into repository B (other release repositories)
    by CONCURRENCY processes at a time — total wall, latency, and the distribution of push attempts
    (``gitops.attempts``: a push that lost the race is re-applied on the new head and pushed again);
(c) one promotion in this process split into its steps (the steps gate.promote.promotion takes):
    decision read + preconditions, rollback-hold check (a clone fetch), registry copy, GitOps
    write-back (a second clone fetch, edit, commit, push), event append — the median over
    --breakdown promotions into repository C; plus the import cost of a cold process;
(d) no-op: the APPS promotions of (a) run again (registry tag and file already current).
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
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.promote.gitrepo import KUSTOMIZATION, make_remote  # noqa: E402
from tests.promote.servers import Registry, push_image, start_registry, stop_registry  # noqa: E402

REPORTS = (ROOT / "tests" / "data" / "trivy" / "trivy-image-alpine-310.json",
           ROOT / "tests" / "data" / "coverage" / "cobertura-java-cobertura-1.9-maven-example.xml")


@dataclass
class App:
    """One app: its staging image, its allow decision and its file in the GitOps repository."""

    index: int
    source: str
    digest: str
    decision_id: str = ""

    @property
    def path(self) -> str:
        return f"apps/app{self.index}/kustomization.yaml"


@dataclass
class Run:
    """One ``gate promote`` process."""

    seconds: float
    code: int
    result: dict[str, Any] = field(default_factory=dict)
    err: str = ""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(runs: list[Run]) -> str:
    ms = [r.seconds * 1000 for r in runs]
    return f"median {statistics.median(ms):,.0f} ms, p95 {percentile(ms, 0.95):,.0f} ms, max {max(ms):,.0f} ms"


def outcomes(runs: list[Run]) -> str:
    counted = Counter(r.result.get("outcome", f"exit {r.code}") for r in runs)
    return ", ".join(f"{n} {o}" for o, n in counted.most_common())


# --- setup ---------------------------------------------------------------------------------------


def push_staging(registry: Registry, count: int) -> list[App]:
    apps = []
    for i in range(count):
        repo = f"staging/app{i}"
        image = push_image(registry, repo, "1.0", content=f"app {i}\n".encode(), layers=1)
        apps.append(App(i, f"{registry.host}/{repo}:1.0@{image.digest}", image.digest))
    return apps


def decide(apps: list[App]) -> float:
    """One allow decision per app through gate.evaluation (the path `gate evaluate` takes); seconds."""
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store
    from gate.evaluation import EvaluationRequest, evaluate
    from gate.imageref import parse_pinned
    from gate.plugins import plugin_manager
    from gate.scanning.registry import ScannerRegistry
    from gate.scanning.document import ReportSpec

    specs = [ReportSpec("auto", str(p)) for p in REPORTS]
    scanners = ScannerRegistry(plugin_manager())
    store = open_store()
    signer = load_signer()
    t = time.perf_counter()
    try:
        for app in apps:
            request = EvaluationRequest(specs, parse_pinned(app.source), "prod", ROOT / "policies")
            decision = evaluate(request, scanners, store, signer)
            if decision.outcome.value != "allow":
                raise SystemExit(f"setup: the decision for {app.source} is {decision.outcome.value}, not allow")
            app.decision_id = decision.decision_id
    finally:
        store.close()
    return time.perf_counter() - t


def gitops_repo(root: Path, name: str, registry: Registry, release: str, apps: list[App]) -> Path:
    files = {app.path: KUSTOMIZATION.format(release=f"{registry.host}/{release}/app{app.index}") for app in apps}
    return make_remote(root, files, name=name).bare


# --- measuring -----------------------------------------------------------------------------------


def promote_argv(app: App, registry: Registry, release: str, repo: Path) -> list[str]:
    return [sys.executable, "-m", "gate", "promote", "--decision", app.decision_id,
            "--target", f"{registry.host}/{release}/app{app.index}:1.0",
            "--gitops-repo", repo.as_uri(), "--gitops-path", app.path, "--format", "json"]


def run_promote(argv: list[str], env: dict[str, str]) -> Run:
    t = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    seconds = time.perf_counter() - t
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        result = {}
    return Run(seconds, done.returncode, result, (done.stderr.strip().splitlines() or [""])[-1])


def many(argvs: list[list[str]], env: dict[str, str], concurrency: int) -> tuple[float, list[Run]]:
    t = time.perf_counter()
    if concurrency <= 1:
        runs = [run_promote(argv, env) for argv in argvs]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            runs = list(pool.map(lambda argv: run_promote(argv, env), argvs))
    return time.perf_counter() - t, runs


def failures(runs: list[Run]) -> str:
    bad = [r for r in runs if r.code != 0]
    return f" — {len(bad)} failed, e.g.: {bad[0].err}" if bad else ""


def breakdown(app: App, registry: Registry, release: str, repo: Path) -> dict[str, float]:
    """One promotion in this process, step by step, as gate.promote.promotion.promote takes them."""
    from datetime import UTC, datetime

    from gate.decisions.signing import load_signer, load_trust
    from gate.decisions.store import open_store
    from gate.decisions.timefilter import parse_duration
    from gate.promote.gitops import find_hold
    from gate.promote.preconditions import Expectation, refusals
    from gate.promote.promotion import GitOpsTarget, PromotionRequest, PromotionResult, _record, _write_back
    from gate.promote.registry import copy_image

    marks: list[tuple[str, float]] = [("start", time.perf_counter())]

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter()))

    target = f"{registry.host}/{release}/app{app.index}:1.0"
    gitops = GitOpsTarget(repo=repo.as_uri(), path=app.path)
    request = PromotionRequest(app.decision_id, target, gitops, parse_duration("7d", "--max-age"))
    trust, signer, store = load_trust(), load_signer(), open_store()
    try:
        mark("keys + open the decision log")
        decision = store.get(app.decision_id)
        reasons = refusals(decision, app.decision_id, Expectation(None, app.digest, request.max_age, datetime.now(UTC)),
                           trust.keys)
        if reasons:
            raise SystemExit(f"breakdown: refused: {reasons}")
        mark("read decision + preconditions")
        if find_hold(gitops.repo, gitops.path, app.digest, branch=gitops.branch) is not None:
            raise SystemExit("breakdown: unexpected rollback hold")
        mark("rollback-hold check (fetch + history)")
        copied = copy_image(app.source, target)
        mark("registry copy (mount + manifest put)")
        assert decision is not None
        written = _write_back(request, gitops, decision, app.digest)
        if written["status"] != "committed":
            raise SystemExit(f"breakdown: write-back {written['status']}")
        mark("GitOps write-back (fetch, edit, commit, push)")
        result = PromotionResult("done", app.decision_id, target, app.digest, app.source, decision.environment,
                                 registry={"operations": copied.operations, "already_present": copied.already_present},
                                 gitops=written)
        _record(result, request, store, signer)
        mark("event append (signed)")
    finally:
        store.close()
    return {name: end - start for (_, start), (name, end) in zip(marks, marks[1:])}


def cold_imports(env: dict[str, str]) -> dict[str, float]:
    """Seconds to import what a promote process loads, in a fresh interpreter (median of 3)."""
    code = (
        "import time\n"
        "t=time.perf_counter(); import gate.cli; a=time.perf_counter()\n"
        "import gate.promote.promotion, gate.promote.preconditions, gate.decisions.store, gate.decisions.signing\n"
        "b=time.perf_counter(); import gate.promote.registry; c=time.perf_counter()\n"
        "import gate.promote.gitops, git; d=time.perf_counter()\n"
        "import gate.promote.edit, gate.promote.formats.kustomize, ruamel.yaml; e=time.perf_counter()\n"
        "print(a-t, b-a, c-b, d-c, e-d)\n"
    )
    samples = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
        samples.append([float(x) for x in out.stdout.split()])
    names = ["gate.cli", "decision log + preconditions", "registry (httpx)", "gitops (GitPython)", "edit (ruamel.yaml)"]
    return {name: statistics.median(s[i] for s in samples) for i, name in enumerate(names)}


def process_baseline(env: dict[str, str]) -> float:
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gate", "--version"], env=env, capture_output=True, check=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class Table:
    """Figures as they are measured, and again at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def add(self, name: str, value: str) -> None:
        self.rows.append((name, value))
        print(f"  {name:<50} {value}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100, help="apps (= promotions per run) in the repository (default 100)")
    parser.add_argument("--concurrency", type=int, default=10, help="processes at once in run (b) (default 10)")
    parser.add_argument("--breakdown", type=int, default=5, help="in-process promotions to split into steps (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (registry, repositories, log)")
    args = parser.parse_args()
    if args.apps < 1 or args.concurrency < 1:
        parser.error("--apps and --concurrency must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="gate-promote-bench-"))
    from gate.decisions.signing import generate_keypair

    private, public = generate_keypair(work / "keys")
    (work / "docker").mkdir()
    settings = {
        "GATE_DECISION_STORE": str(work / "decisions.db"), "GATE_SIGNING_KEY": str(private),
        "GATE_TRUSTED_KEYS": str(public), "XDG_STATE_HOME": str(work / "state"),
        "DOCKER_CONFIG": str(work / "docker"),  # never the user's registry credentials
    }
    os.environ.update(settings)
    env = {**os.environ}
    table = Table()
    registry = None
    print(f"gate promote benchmark: {args.apps} apps in one GitOps repository, concurrency {args.concurrency}; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    try:
        registry = start_registry(work / "registry")
        t = time.perf_counter()
        apps = push_staging(registry, args.apps)
        print(f"  setup: {args.apps} staging images pushed in {time.perf_counter() - t:.1f} s", flush=True)
        seconds = decide(apps)
        print(f"  setup: {args.apps} allow decisions (gate.evaluation) in {seconds:.1f} s", flush=True)
        repo_a = gitops_repo(work, "a.git", registry, "release-a", apps)
        repo_b = gitops_repo(work, "b.git", registry, "release-b", apps)
        repo_c = gitops_repo(work, "c.git", registry, "release-c", apps)

        print("\n(a) sequential", flush=True)
        wall, runs = many([promote_argv(a, registry, "release-a", repo_a) for a in apps], env, 1)
        table.add(f"(a) {args.apps} sequential processes: total", f"{wall:,.1f} s ({outcomes(runs)}){failures(runs)}")
        table.add("(a) per promotion", latency(runs))

        print(f"\n(b) {args.concurrency} at once", flush=True)
        load = os.getloadavg()[0]
        wall, runs = many([promote_argv(a, registry, "release-b", repo_b) for a in apps], env, args.concurrency)
        table.add(f"(b) {args.apps} promotions, {args.concurrency} at once: total",
                  f"{wall:,.1f} s = {args.apps / wall:.1f}/s ({outcomes(runs)}){failures(runs)}")
        table.add("(b) per promotion", latency(runs))
        attempts = Counter(r.result.get("gitops", {}).get("attempts") for r in runs if r.code == 0)
        table.add("(b) push attempts (attempts: promotions)",
                  ", ".join(f"{k}: {v}" for k, v in sorted(attempts.items(), key=lambda kv: kv[0] or 0)))
        commits = subprocess.run(["git", "rev-list", "--count", "main"], cwd=repo_b, capture_output=True, text=True,
                                 check=True).stdout.strip()
        table.add("(b) commits on main of repository B", f"{commits} (1 initial + {args.apps} expected)")
        print(f"  load average before (b): {load:.2f}, after: {os.getloadavg()[0]:.2f}", flush=True)

        print("\n(c) one promotion, step by step (in process)", flush=True)
        steps: dict[str, list[float]] = {}
        for app in apps[: max(1, args.breakdown)]:
            for name, s in breakdown(app, registry, "release-c", repo_c).items():
                steps.setdefault(name, []).append(s)
        n = len(next(iter(steps.values())))
        total = sum(statistics.median(v) for v in steps.values())
        for name, values in steps.items():
            table.add(f"(c) {name}", f"{statistics.median(values) * 1000:,.0f} ms (median of {n})")
        table.add("(c) sum of the steps", f"{total * 1000:,.0f} ms")
        table.add("(c) cold process: python -m gate --version", f"{process_baseline(env) * 1000:,.0f} ms")
        for name, s in cold_imports(env).items():
            table.add(f"(c) cold import: {name}", f"{s * 1000:,.0f} ms")

        print("\n(d) the same promotions again (no-op)", flush=True)
        wall, runs = many([promote_argv(a, registry, "release-a", repo_a) for a in apps], env, 1)
        table.add(f"(d) {args.apps} sequential no-op processes: total", f"{wall:,.1f} s ({outcomes(runs)}){failures(runs)}")
        table.add("(d) per promotion", latency(runs))
    finally:
        if registry is not None:
            stop_registry(registry)
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nsummary (load average at the end {os.getloadavg()[0]:.2f})")
    for name, value in table.rows:
        print(f"  {name:<50} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
