"""Benchmark: what VEX triage costs the policy evaluation (regorus, shipped policies, in process).

    python benchmarks/vex.py [--vulns 1000,20000] [--statements 0,100,1000] [--runs 3]

A Trivy report of N vulnerabilities (scan_trivy.make_report: the real juice-shop scan's entries
repeated) is scanned once; then data.gate.promotion is evaluated on its input with S OpenVEX
statements (normalized by gate.vex from a file: not_affected, about the image digest with one
subcomponent purl each, one per distinct (CVE, package) of the report, so each matches its findings)
and the minimum of the runs is printed, next to reading the file with gate.vex.

Measured at commit time on 2 cores shared with other sessions' test runs (load average 5-10: wall
times are 2-5x what an idle machine gives); 1,000: min of 2 runs, 20,000: one run:

    vulns   statements   findings triaged   evaluate   read VEX file
    1,000        0              0            0.05 s
    1,000      100            744            0.26 s     <0.01 s
    1,000    1,000          1,000            0.42 s      0.01 s
   20,000        0              0            1.40 s
   20,000      100         13,640            6.51 s      0.01 s
   20,000    1,000         20,000            7.52 s      0.01 s

The cost grows with the findings whose CVE a statement names (each one's purl is parsed once, then
looked up by package among the claims of its CVE) and with the findings triaged (the most specific
triage entry is picked per finding, as for waivers): about 0.3 ms per triaged finding on regorus
here; not statements x findings (before the package index and the per-statement index of applied
positions: 17.1 s for 20,000 / 1,000, 8.3 s for 1,000 / 1,000 with 10 claims per finding). The
synthetic report repeats each CVE+package many times, so 100 statements triage 13,640 findings; a
real image's VEX documents triage tens.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan_trivy import ROOT, make_report  # noqa: E402

IMAGE = "registry.example.com/shop/cart:1.0@sha256:" + "ab" * 32


def vex_document(findings: list[dict[str, object]], statements: int) -> dict[str, object]:
    """An OpenVEX document with ``statements`` not_affected statements about the report's vulnerabilities."""
    seen: set[tuple[object, object]] = set()
    chosen = []
    for f in findings:  # one statement per (CVE, package): each matches its own findings
        package = f.get("package")
        if f.get("kind") != "vulnerability" or not isinstance(package, dict) or not package.get("purl"):
            continue
        if (f["rule"], package["purl"]) not in seen and len(chosen) < statements:
            seen.add((f["rule"], package["purl"]))
            chosen.append(f)
    return {
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/bench", "author": "bench",
        "timestamp": "2027-01-01T00:00:00Z", "version": 1,
        "statements": [
            {
                "vulnerability": {"name": f["rule"]},
                "products": [{
                    "@id": "pkg:oci/cart@sha256%3A" + "ab" * 32 + "?repository_url=registry.example.com/shop/cart",
                    "subcomponents": [{"@id": f["package"]["purl"]}],  # type: ignore[index]
                }],
                "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
            }
            for f in chosen if f["package"].get("purl")  # type: ignore[union-attr]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vulns", default="1000,20000")
    parser.add_argument("--statements", default="0,100,1000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from gate.context import ci_context
    from gate.evaluation import load_policy, make_engine
    from gate.imageref import parse_pinned
    from gate.plugins import plugin_manager
    from gate.policy.evaluate import evaluate_promotion
    from gate.scanning.document import ReportSpec, build_input, scan_reports
    from gate.scanning.registry import ScannerRegistry
    from gate.vex.documents import load_documents, statements_input

    engine = make_engine("embedded", None)
    loaded = load_policy(str(ROOT / "policies"), [], engine)
    now = datetime(2027, 1, 22, tzinfo=UTC)
    print(f"{'vulns':>7} {'statements':>11} {'triaged':>8} {'evaluate':>10} {'load VEX file':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for vulns in (int(v) for v in args.vulns.split(",")):
            report = Path(tmp) / f"trivy-{vulns}.json"
            make_report(vulns, report)
            results = scan_reports(ScannerRegistry(plugin_manager()), [ReportSpec("trivy", str(report))])
            document = build_input(results, parse_pinned(IMAGE), ci_context())
            base = {**document, "environment": "prod", "now": "2027-01-22T00:00:00.000000Z"}
            for statements in (int(s) for s in args.statements.split(",")):
                policy_input = dict(base)
                load_time = ""
                if statements:
                    path = Path(tmp) / f"vex-{vulns}-{statements}.json"
                    path.write_text(json.dumps(vex_document(document["findings"], statements)))
                    start = time.perf_counter()
                    documents = load_documents([str(path)], artifact=document["artifact"])
                    load_time = f"{time.perf_counter() - start:.2f} s"
                    policy_input["vex"] = statements_input(documents)
                times = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    result = evaluate_promotion(engine, loaded.metadata, policy_input, now)
                    times.append(time.perf_counter() - start)
                triaged = sum(len(w.finding_ids) for w in result.waivers if w.is_vex)
                print(f"{vulns:>7,} {statements:>11,} {triaged:>8,} {min(times):>8.2f} s {load_time:>14}")


if __name__ == "__main__":
    main()
