"""Benchmark: admission by attached VSA (``--evidence vsa``) on the local registry.

    python benchmarks/admission_vsa.py [--images 20] [--workloads 100] [--repeat 3]

A distribution registry (Debian ``docker-registry``) on 127.0.0.1 holds --images images, each with one
gate-signed PASSED VSA for prod under cosign's ``.att`` tag (what ``gate promote`` leaves on a registry
without the referrers API). An ``AdmissionChecker`` with VSA evidence (no decision log) judges
--workloads Deployments spread over those images in one batch, as one reconcile cycle does:

- cold: a new checker (nothing cached): every image fetched and verified, all at once;
- warm: the same checker again (the passes cached for PASS_TTL);
- one image, cold: a new checker judging one Deployment (the webhook's first request for an image).

Figures are wall times on this machine (2 shared cores): medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import msgspec
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.promote.servers import push_image, start_registry, stop_registry  # noqa: E402

CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")


def deployment(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "bench"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--workloads", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ["XDG_STATE_HOME"] = str(Path(tmp) / "state")
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        os.environ["DOCKER_CONFIG"] = str(Path(tmp) / "docker")
        os.environ["GATE_DECISION_STORE"] = str(Path(tmp) / "decisions.db")
        from gate.attestation import oci, vsa
        from gate.cli import main as gate
        from gate.decisions.signing import load_signer, load_trusted_keys
        from gate.decisions.store import open_store
        from gate.reconcile.admission import AdmissionChecker

        registry = start_registry(Path(tmp) / "registry")
        try:
            refs = []
            first = push_image(registry, "bench/app0", content=b"bench 0\n")
            argv = ["evaluate", "--image", f"{registry.host}/bench/app0@{first.digest}", "--env", "prod",
                    "--output", f"json={Path(tmp) / 'decision.json'}"]
            for report in CLEAN:
                argv += ["--report", f"auto={ROOT / 'tests' / 'data' / report}"]
            code = gate(argv)
            assert code == 0, code
            import json

            decision_id = json.loads((Path(tmp) / "decision.json").read_text())["decision_id"]
            store = open_store(create=False)
            decision = store.get(decision_id)
            store.close()
            assert decision is not None
            signer = load_signer()
            now = datetime.now(UTC)
            for n in range(args.images):
                pushed = first if n == 0 else push_image(registry, f"bench/app{n}", content=f"bench {n}\n".encode())
                repo = f"{registry.host}/bench/app{n}"
                copy = msgspec.structs.replace(decision, artifact={"image": repo, "digest": pushed.digest})
                statement = vsa.statement(copy, time_verified=now - timedelta(hours=1))
                oci.attach(f"{repo}@{pushed.digest}", vsa.sign(statement, signer), environment="prod",
                           decision_id=decision_id, created=now)
                refs.append(f"{repo}:1.0@{pushed.digest}")
            objects = [(deployment(f"w{i}", refs[i % len(refs)]), None) for i in range(args.workloads)]
            trusted = load_trusted_keys()

            def checker() -> AdmissionChecker:
                return AdmissionChecker(["gate:library"], "prod", None, evidence="vsa", trusted_keys=trusted)

            cold, warm, single = [], [], []
            for _ in range(args.repeat):
                c = checker()
                t = time.perf_counter()
                verdicts = c.check_many(objects)
                cold.append(time.perf_counter() - t)
                assert all(not v.blocked for v in verdicts), verdicts[0].reasons
                t = time.perf_counter()
                c.check_many(objects)
                warm.append(time.perf_counter() - t)
                one = checker()
                t = time.perf_counter()
                assert not one.check(deployment("one", refs[0])).blocked
                single.append(time.perf_counter() - t)
            med = statistics.median
            print(f"{args.workloads} workloads over {args.images} images, evidence vsa, no decision log:")
            print(f"  cold batch (every image fetched and verified): {med(cold):.3f} s")
            print(f"  warm batch (passes cached):                    {med(warm):.3f} s")
            print(f"  one workload, cold (webhook first request):    {med(single) * 1000:.0f} ms")
        finally:
            stop_registry(registry)


if __name__ == "__main__":
    main()
