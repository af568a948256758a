"""Benchmark: `gate scan` of a large Trivy report, whole process (start-up, parse, normalize, output).

Builds a Trivy JSON report of N vulnerabilities by repeating the real juice-shop scan's entries
(tests/data/trivy) with distinct package names, then runs `gate scan --format json` several times
and prints wall time and peak memory (max RSS of the child process). Also times `gate --version`.

    python benchmarks/scan_trivy.py                 # 20,000 vulnerabilities
    python benchmarks/scan_trivy.py --vulns 60000   # about 200 MB of JSON
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "data" / "trivy" / "trivy-image-juice-shop-v12.10.2-many-vulns.json"
GATE = Path(sys.executable).with_name("gate")


def make_report(vulns: int, path: Path) -> None:
    """A schema-2 Trivy report with ``vulns`` vulnerabilities spread over two Results."""
    base = json.loads(SOURCE.read_text())
    samples = [v for r in base["Results"] for v in r.get("Vulnerabilities") or []]
    half = vulns // 2
    results = []
    for index, (target, count) in enumerate((("os", half), ("Node.js", vulns - half))):
        items = []
        for i in range(count):
            v = copy.deepcopy(samples[i % len(samples)])
            v["PkgName"] = f"{v['PkgName']}-{index}-{i}"
            items.append(v)
        results.append({"Target": target, "Class": "lang-pkgs", "Type": "node-pkg", "Vulnerabilities": items})
    base["Results"] = results
    path.write_text(json.dumps(base, indent=2))


def run_once(argv: list[str], ok_codes: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process (its output discarded)."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in ok_codes:
        raise SystemExit(f"{' '.join(argv)} failed")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vulns", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--make", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_report(args.vulns, Path(args.make))
        return
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "trivy.json"
        # Built in a child process: a child's max RSS counts what it inherited before exec,
        # so this process must stay small while it measures.
        subprocess.run([sys.executable, __file__, "--vulns", str(args.vulns), "--make", str(report)], check=True)
        out = Path(tmp) / "input.json"
        argv = [str(GATE), "scan", "--report", f"trivy={report}", "--format", "json", "--output", str(out)]
        run_once(argv)  # warm the page cache and .pyc files
        runs = [run_once(argv) for _ in range(args.runs)]
        walls = [w for w, _ in runs]
        peak = max(m for _, m in runs)
        findings = len(json.loads(out.read_text())["findings"])
        version = [run_once([str(GATE), "--version"])[0] for _ in range(args.runs)]
        print(f"report: {args.vulns} vulnerabilities, {report.stat().st_size / 1e6:.1f} MB; {findings} findings out")
        print(f"gate scan --format json: wall median {statistics.median(walls):.3f} s "
              f"(min {min(walls):.3f}, max {max(walls):.3f}) over {args.runs} runs; peak RSS {peak:.0f} MiB")
        print(f"gate --version: wall median {statistics.median(version) * 1000:.0f} ms")
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
