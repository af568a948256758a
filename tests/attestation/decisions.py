"""Decisions to attest in the VSA tests (as ``gate evaluate`` records them)."""

from __future__ import annotations

from typing import Any

from gate.decisions.record import AppliedWaiver, Decision, Outcome, PolicyInfo, new_decision_id, sha256_digest

POLICY_DIGEST = "sha256:" + "0c" * 32
TRIVY_SHA = "sha256:" + "7e" * 32
COVERAGE_SHA = "sha256:" + "c0" * 32


def make_decision(
    image: str, digest: str, *, outcome: str = "allow", environment: str = "prod", waivers: tuple[AppliedWaiver, ...] = ()
) -> Decision:
    """A decision as ``gate evaluate`` records it (two scanner reports), signed hash included."""
    scanners = [
        {"name": "trivy", "version": "0.50.1", "report": "reports/trivy.json", "report_sha256": TRIVY_SHA},
        {"name": "coverage", "version": "7.4", "report": "reports/coverage.xml", "report_sha256": COVERAGE_SHA},
    ]
    policy_input: dict[str, Any] = {
        "artifact": {"image": image, "digest": digest}, "findings": [], "metrics": {}, "scanners": scanners,
    }
    return Decision(
        decision_id=new_decision_id(),
        timestamp="2026-12-07T09:00:00.000000Z",
        outcome=Outcome(outcome),
        environment=environment,
        artifact={"image": image, "digest": digest},
        violations=(),
        warnings=(),
        waivers=waivers,
        summary={},
        policy=PolicyInfo(digest=POLICY_DIGEST, engine="embedded", engine_version="test", revision="r7",
                          bundle="gate:library"),
        input_digest=sha256_digest(policy_input),
        input=policy_input,
        scanners=tuple({k: s[k] for k in ("name", "version", "report_sha256")} for s in scanners),
        context={"actor": "tests"},
        hash="sha256:" + "ee" * 32,
    )
