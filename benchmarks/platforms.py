"""Benchmark: multi-arch completeness on a large image index, in process.

Builds an OCI image index of N per-platform entries (near the registry's 4 MiB manifest limit at the
default) and times what `gate evaluate --image-manifest FILE` adds: reading the manifest against its
digest (gate.registry.manifests.read_manifest) and the gate.promotion.platforms rules on an input whose
artifact carries the index's platforms, with one report per platform (embedded engine, the library).

    python benchmarks/platforms.py                 # 15,000 entries, 40 platforms
    python benchmarks/platforms.py --entries 1000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_index(entries: int, platforms: int) -> bytes:
    """An OCI index of ``entries`` manifests spread over ``platforms`` linux architectures."""
    manifests = [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{i:064x}", "size": 1000,
         "platform": {"os": "linux", "architecture": f"arch{i % platforms}"}}
        for i in range(entries)
    ]
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": manifests}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=15_000)
    parser.add_argument("--platforms", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from gate.evaluation import load_policy
    from gate.policy.embedded import EmbeddedEngine
    from gate.policy.evaluate import evaluate_promotion
    from gate.registry.manifests import read_manifest

    raw = make_index(args.entries, args.platforms)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    reads = []
    for _ in range(args.runs):
        start = time.perf_counter()
        info = read_manifest(raw, digest, "index")
        reads.append(time.perf_counter() - start)
    print(f"read_manifest: {len(raw) / 1e6:.1f} MB, {args.entries} entries, {len(info.platforms)} platforms: "
          f"median {statistics.median(reads) * 1000:.1f} ms over {args.runs} runs")

    scanner = {"name": "trivy", "version": "dev", "plugin_version": "0", "format": "json", "report": "r.json",
               "report_sha256": "0" * 64, "findings": 0}
    document = {
        "schema_version": 1, "gate_version": "bench", "context": {}, "findings": [],
        "metrics": {"coverage": {"line_rate": 0.9, "branch_rate": None}},
        "artifact": {"image": "registry.example.com/app", "digest": digest, **info.artifact_fields()},
        "scanners": [{**scanner, "name": "coverage"}]
        + [{**scanner, "report": f"{p}.json", "platform": p} for p in info.platforms[1:]],
        "environment": "prod", "now": "2027-01-22T00:00:00Z",
    }
    from datetime import UTC, datetime

    loaded = load_policy(ROOT / "policies", [], EmbeddedEngine())
    runs = []
    for _ in range(args.runs):
        start = time.perf_counter()
        result = evaluate_promotion(loaded.engine, loaded.metadata, document, datetime(2027, 1, 22, tzinfo=UTC))
        runs.append(time.perf_counter() - start)
    missing = [v for v in result.violations if v.rule == "platforms.missing"]
    print(f"promotion rules, whole library, artifact with {args.entries} manifests: median "
          f"{statistics.median(runs) * 1000:.1f} ms over {args.runs} runs ({len(missing)} platform missing, as built)")


if __name__ == "__main__":
    main()
