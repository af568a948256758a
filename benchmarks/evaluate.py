"""Benchmark: `gate evaluate` (embedded engine, shipped policies, whole process) on Trivy reports of
1,000 and 20,000 vulnerabilities plus coverage and SonarQube reports, against the floor of Python
json.load-ing the same Trivy report; and the README example. Where the time goes, too.

    python benchmarks/evaluate.py [--vulns 1000,20000] [--runs 5] [--waivers N] [--no-phases]

Reports are made by repeating the real juice-shop scan's entries (tests/data/trivy) with distinct
package names (scan_trivy.py). For each size: wall and CPU time (user + system of gate and its
policy child) of the whole command, interleaved run by run with the floor (json.load in a fresh
interpreter, timed around the call), and the ratios; then one in-process run split into phases:
parse + normalize (scanner plugins), input document, policy load + compile, evaluation (regorus),
decision record + log append, output rendering. gate runs with .pyc files (PYTHONDONTWRITEBYTECODE
is dropped) and an empty cache folder that the first (untimed) run fills, as on a CI runner that
keeps ~/.cache.

Issue 11 (targets: 20,000 findings within 3x the json.load floor, 1,000 within 0.5 s). Measured on
2 cores shared with other sessions' test runs (load average 6-8; at load 10 wall was 3-6x CPU time,
so CPU time is given too); min of 3-5 runs interleaved with the floor. Before: commit 67cc9b9
(issue 10); after: this tree.

                          wall before -> after   CPU before -> after   json.load floor   wall ratio
    README example         0.591 -> 0.547 s       0.463 -> 0.349 s
    1,000 vulns (3.4 MB)    0.523 -> 0.449 s       0.493 -> 0.428 s      0.030 s
    20,000 vulns (67 MB)    3.98 -> 3.33 s         3.58 -> 2.99 s        0.634 s           6.3x -> 5.3x

regorus on data.gate.promotion (20k, CPU, same input): 1.48 s -> 0.96 s; set_input_json 0.25 s.
With 30 waivers (--waivers 30; 20,080 findings): 6.67 s -> 0.96 s, as a waiver's findings are now
looked up by rule (gate.lib.waivers.positions) instead of every finding being scanned three times
per waiver.
Where 20k still goes (CPU): scan 0.6 s (decode 0.26, normalize 0.31), input dicts (to_builtins)
0.23 s, regorus 1.2 s (the 14,066 deny results cost ~50 us each to build; the filter alone 0.2 s),
collect 0.08 s, record + append 0.18-0.29 s, start-up + imports + argument parser + plugins ~0.3 s.
The 1,000-finding target is met; the 3x target at 20,000 is missed (5.3x): the policy child runs
while the parent waits, so wall time is about CPU time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan_trivy import GATE, ROOT  # noqa: E402

COVERAGE = ROOT / "tests" / "data" / "coverage" / "coveragepy-7.8.0-branch.json"
SONAR = ROOT / "tests" / "data" / "sonarqube" / "sonarqube-api-qualitygates-project_status-example.json"
IMAGE = "registry.example.com/shop/cart:1.0@sha256:" + "ab" * 32


def phases(trivy: Path, store: Path) -> list[tuple[str, float]]:
    """One evaluation in this process, timed step by step (the same steps gate.evaluation takes)."""
    os.environ["GATE_DECISION_STORE"] = str(store)
    marks = [("start", time.perf_counter())]

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter()))

    from gate.context import ci_context
    from gate.decisions.store import open_store
    from gate.evaluation import EvaluationRequest, _decision, load_policy, make_engine
    from gate.imageref import parse_pinned
    from gate.output import json as json_output
    from gate.plugins import plugin_manager
    from gate.scanning.registry import ScannerRegistry
    from gate.policy.evaluate import evaluate_promotion
    from gate.scanning.document import ReportSpec, build_input, scan_reports

    mark("imports")
    specs = [ReportSpec("trivy", str(trivy)), ReportSpec("coverage", str(COVERAGE)), ReportSpec("sonarqube", str(SONAR))]
    request = EvaluationRequest(specs, parse_pinned(IMAGE), "prod", ROOT / "policies")
    results = scan_reports(ScannerRegistry(plugin_manager()), specs)
    mark("parse + normalize")
    document = build_input(results, request.image, ci_context())
    now = datetime.now(UTC)
    policy_input = {**document, "environment": "prod", "now": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    mark("input document")
    engine = make_engine("embedded", None)
    loaded = load_policy(request.policy_dir, [], engine)
    mark("policy load + compile")
    result = evaluate_promotion(engine, loaded.metadata, policy_input, now)
    mark("evaluate (regorus)")
    from gate.decisions.record import PolicyInfo

    info = PolicyInfo(digest=loaded.bundle.digest, engine="embedded", engine_version=engine.version())
    store = open_store()
    decision = store.append(_decision(request, policy_input, info, result))
    store.close()
    mark("record + append")
    json_output.render(decision)
    mark("output (json)")
    return [(name, t - marks[i][1]) for i, (name, t) in enumerate(marks[1:])]


#: json.load of a report in a fresh interpreter, timed around the call only: the floor the ratio is against
FLOOR = (
    "import json, sys, time\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    t, c = time.perf_counter(), time.process_time(); json.load(f)\n"
    "    print(time.perf_counter() - t, time.process_time() - c)\n"
)
README_REPORTS = [
    "auto=examples/reports/trivy-image-alpine-310.json",
    "auto=examples/reports/cobertura-coveragepy-6.3.2-multi-package.xml",
    "auto=examples/reports/sonarqube-api-qualitygates-project_status-example.json",
]


def floor(report: Path) -> tuple[float, float]:
    """Wall and CPU seconds ``json.load`` takes on ``report`` (the file is read inside the timed call)."""
    out = subprocess.run([sys.executable, "-c", FLOOR, str(report)], check=True, capture_output=True, text=True)
    wall, cpu = out.stdout.split()
    return float(wall), float(cpu)


def run(argv: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, the policy child included) and peak RSS (MiB) of one
    ``gate`` process, its output discarded. CPU time hardly moves with the machine's load; wall does."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measure(argv: list[str], report: Path | None, runs: int) -> dict[str, list[float]]:
    """Wall and CPU times of ``argv`` and of the floor, interleaved run by run (both see the same
    machine load), and the peak RSS (MiB) of ``argv``."""
    run(argv)  # warm the page cache and the .pyc files
    seen: dict[str, list[float]] = {"wall": [], "cpu": [], "rss": [], "floor_wall": [], "floor_cpu": []}
    for _ in range(runs):
        for key, value in zip(("wall", "cpu", "rss"), run(argv)):
            seen[key].append(value)
        if report is not None:
            for key, value in zip(("floor_wall", "floor_cpu"), floor(report)):
                seen[key].append(value)
    return seen


def waivers_file(trivy: Path, count: int, path: Path) -> Path:
    """A --data file of ``count`` waivers naming CVEs of ``trivy``: a third expired, a third expiring
    within the warning window, a third far off (every waiver path of the policies is taken)."""
    import json
    from datetime import timedelta

    report = json.loads(trivy.read_text())
    cves = sorted({v["VulnerabilityID"] for r in report["Results"] for v in r.get("Vulnerabilities") or []})
    now = datetime.now(UTC)
    expiries = [now - timedelta(days=30), now + timedelta(days=3), now + timedelta(days=365)]
    waivers = [
        {"id": f"W-{i}", "rule": cve, "reason": "benchmark", "approved_by": "bench",
         "expires": expiries[i % 3].strftime("%Y-%m-%dT%H:%M:%SZ")}
        for i, cve in enumerate(cves[:count])
    ]
    path.write_text(json.dumps({"waivers": waivers}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vulns", default="1000,20000", help="comma-separated report sizes (default 1000,20000)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-phases", action="store_true", help="skip the in-process split")
    parser.add_argument("--waivers", type=int, default=0, help="also pass N waivers (--data) naming the report's CVEs")
    args = parser.parse_args()
    # as a user's shell runs gate: with .pyc files (kept outside the tree)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "gate-bench-pycache"))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GATE_DECISION_STORE"] = str(Path(tmp) / "decisions.db")
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        readme = [str(GATE), "evaluate", "--policy", "policies", "--env", "prod", "--image", IMAGE]
        for spec in README_REPORTS:
            readme += ["--report", spec]
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            seen = measure(readme, None, args.runs)
        finally:
            os.chdir(cwd)
        print(f"README example (alpine 3.10 Trivy + Cobertura + SonarQube): wall median {statistics.median(seen['wall']):.3f} s "
              f"(min {min(seen['wall']):.3f}), CPU median {statistics.median(seen['cpu']):.3f} s; "
              f"peak RSS {max(seen['rss']):.0f} MiB")
        for vulns in (int(v) for v in args.vulns.split(",")):
            trivy = Path(tmp) / f"trivy-{vulns}.json"
            subprocess.run(
                [sys.executable, str(Path(__file__).with_name("scan_trivy.py")), "--vulns", str(vulns), "--make", str(trivy)],
                check=True,
            )
            argv = [
                str(GATE), "evaluate", "--policy", str(ROOT / "policies"), "--env", "prod", "--image", IMAGE,
                "--report", f"trivy={trivy}", "--report", f"coverage={COVERAGE}", "--report", f"sonarqube={SONAR}",
                "--format", "json", "--output", str(Path(tmp) / "decision.json"),
            ]
            if args.waivers:
                argv += ["--data", str(waivers_file(trivy, args.waivers, Path(tmp) / f"waivers-{vulns}.json"))]
            seen = measure(argv, trivy, args.runs)
            wall, base = statistics.median(seen["wall"]), statistics.median(seen["floor_wall"])
            cpu, base_cpu = statistics.median(seen["cpu"]), statistics.median(seen["floor_cpu"])
            print(f"{vulns} vulnerabilities ({trivy.stat().st_size / 1e6:.1f} MB Trivy JSON + coverage.py JSON + "
                  f"SonarQube quality gate{f', {args.waivers} waivers' if args.waivers else ''}): gate evaluate wall median {wall:.3f} s (min {min(seen['wall']):.3f}, "
                  f"max {max(seen['wall']):.3f}), json.load floor {base:.3f} s: ratio {wall / base:.1f}x; "
                  f"CPU {cpu:.3f} s against {base_cpu:.3f} s: ratio {cpu / base_cpu:.1f}x; "
                  f"peak RSS {max(seen['rss']):.0f} MiB")
            if not args.no_phases:
                split = phases(trivy, Path(tmp) / f"phases-{vulns}.db")
                total = sum(t for _, t in split)
                print("  in-process split: " + ", ".join(f"{name} {t:.3f} s" for name, t in split)
                      + f" (total {total:.3f} s)")
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
