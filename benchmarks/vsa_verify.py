"""Benchmark: how long checking an image's attached VSAs takes (what offline admission pays per image).

    python benchmarks/vsa_verify.py [--repeat 20]

- judge: the verdict from envelopes already fetched (DSSE Ed25519 check, statement read, newest wins),
  for 1, 10 and 200 envelopes (200 is the most gate reads for one digest);
- fetch + judge: ``verify_image`` against the real distribution registry on 127.0.0.1 (cosign's .att
  tag: one manifest, one blob GET per envelope), for 1 and 10 envelopes; the registry is started in a
  temporary folder and stopped at the end.

Results (2026-12-07, code of 09:45 UTC, 2 shared cores, --repeat 10; median / p90 ms):
  judge,   1 envelope            0.11 /   6.81
  judge,  10 envelopes           0.86 /   3.33
  judge, 200 envelopes          54.66 /  65.11
  fetch + judge,  1 envelope    49.36 /  72.99   (a new httpx client per call; 4 requests: referrers, tag, manifest, blob)
  fetch + judge, 10 envelopes  101.62 / 153.34
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from gate.attestation import oci, vsa  # noqa: E402
from gate.attestation.verify import judge, verify_image  # noqa: E402
from gate.decisions.signing import Ed25519Signer  # noqa: E402
from tests.attestation.decisions import make_decision  # noqa: E402
from tests.promote.servers import new_repo, push_image, start_registry, stop_registry  # noqa: E402

NOW = datetime.now(UTC)


def timed(run: object, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.9 * len(samples)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    signer = Ed25519Signer(Ed25519PrivateKey.generate())
    trusted = {signer.key_id: signer.public_key()}
    image, digest = "registry.example.com/shop/cart", "sha256:" + "4f" * 32
    for count in (1, 10, 200):
        candidates = [
            oci.Candidate(f"layer {i}", f"sha256:{i:064x}", vsa.sign(vsa.statement(
                make_decision(image, digest), time_verified=NOW - timedelta(minutes=i)), signer))
            for i in range(count)
        ]
        median, p90 = timed(lambda: judge(f"{image}@{digest}", candidates, "prod", trusted, NOW), args.repeat)
        print(f"judge, {count:>3} envelopes           {median:8.2f} / {p90:8.2f} ms")
    with tempfile.TemporaryDirectory(prefix="gate-bench-vsa-") as folder:
        registry = start_registry(Path(folder))
        try:
            for count in (1, 10):
                repo = new_repo("bench")
                pushed = push_image(registry, repo).digest
                ref = f"{registry.host}/{repo}@{pushed}"
                for i in range(count):
                    envelope = vsa.sign(vsa.statement(make_decision(f"{registry.host}/{repo}", pushed),
                                                      time_verified=NOW - timedelta(minutes=i)), signer)
                    oci.attach(ref, envelope, environment="prod", decision_id=f"d{i}", created=NOW)
                median, p90 = timed(lambda: verify_image(ref, "prod", trusted, NOW), args.repeat)
                print(f"fetch + judge, {count:>3} envelopes   {median:8.2f} / {p90:8.2f} ms")
        finally:
            stop_registry(registry)


if __name__ == "__main__":
    main()
