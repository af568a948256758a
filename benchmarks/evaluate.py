"""Benchmark: `gate evaluate` on a Trivy report with 20,000 vulnerabilities plus coverage and
SonarQube reports, embedded engine, shipped policies, whole process — and where the time goes.

    python benchmarks/evaluate.py [--vulns 20000] [--runs 5]

Prints wall time and peak memory (max RSS of the child) of the whole command, then one in-process
run split into phases: parse + normalize (scanner plugins), input document, policy load + compile,
evaluation (regorus), decision record + log append, output rendering.
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
from scan_trivy import GATE, ROOT, run_once  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vulns", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trivy = Path(tmp) / "trivy.json"
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("scan_trivy.py")), "--vulns", str(args.vulns), "--make", str(trivy)],
            check=True,
        )
        env_store = str(Path(tmp) / "decisions.db")
        os.environ["GATE_DECISION_STORE"] = env_store
        argv = [
            str(GATE), "evaluate", "--policy", str(ROOT / "policies"), "--env", "prod", "--image", IMAGE,
            "--report", f"trivy={trivy}", "--report", f"coverage={COVERAGE}", "--report", f"sonarqube={SONAR}",
            "--format", "json", "--output", str(Path(tmp) / "decision.json"),
        ]
        run_once(argv, ok_codes=(0, 1))
        runs = [run_once(argv, ok_codes=(0, 1)) for _ in range(args.runs)]
        walls = [w for w, _ in runs]
        print(f"reports: trivy {args.vulns} vulnerabilities ({trivy.stat().st_size / 1e6:.1f} MB), "
              f"coverage.py JSON ({COVERAGE.stat().st_size / 1e3:.0f} kB), SonarQube quality gate")
        print(f"gate evaluate (embedded, shipped policies, --format json): wall median {statistics.median(walls):.3f} s "
              f"(min {min(walls):.3f}, max {max(walls):.3f}) over {args.runs} runs; peak RSS {max(m for _, m in runs):.0f} MiB")
        split = phases(trivy, Path(tmp) / "phases.db")
        total = sum(t for _, t in split)
        print("in-process split: " + ", ".join(f"{name} {t:.3f} s" for name, t in split) + f" (total {total:.3f} s)")


if __name__ == "__main__":
    main()
