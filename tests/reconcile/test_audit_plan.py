"""The auditor's question "which images running in environment E have no valid decision today?" is
one command: `gate reconcile --plan` over the environment's GitOps path (docs/audit.md). Every image
without a valid decision today is a blocked object naming it: never evaluated, denied, a decision
too old for the environment, an allow that relied on a waiver expired since — on both stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gate import rfc3339
from gate.decisions.interface import DecisionQuery
from gate.decisions.record import Decision
from gate.decisions.signing import load_signer
from gate.decisions.store import open_store
from tests.conftest import ROOT, Run
from tests.promote.gitrepo import make_remote
from tests.reconcile.test_admission import CLEAN, ONE_CRITICAL, waivers_file
from tests.reconcile.test_reconcile_cli import IMAGE, deployment, evaluate

POLICIES = ROOT / "policies"
DIGESTS = {name: "sha256:" + byte * 32 for name, byte in
           (("valid", "a1"), ("stale", "b2"), ("lapsed", "c3"), ("never", "d4"), ("denied", "e5"))}


def _redated(gate: Callable[..., Run], tmp_path: Path, name: str, reports: tuple[str, ...], *extra: Any) -> Decision:
    """A real decision made in a scratch log (the full form read back), to be re-dated before it is
    appended to the test's log."""
    scratch = f"sqlite://{tmp_path / (name + '.db')}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GATE_DECISION_STORE", scratch)
        evaluate(gate, DIGESTS[name], reports, *extra)
    log = open_store(scratch)
    try:
        [decision] = list(log.query(DecisionQuery()))
    finally:
        log.close()
    return decision


def test_reconcile_plan_names_every_image_without_a_valid_decision_today(
    gate: Callable[..., Run], store_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    evaluate(gate, DIGESTS["valid"])  # a fresh allow: the only image that may run today
    assert evaluate(gate, DIGESTS["denied"], ONE_CRITICAL)["outcome"] == "deny"
    # an allow made 40 days ago: prod accepts decisions at most 720h old
    stale = _redated(gate, tmp_path, "stale", CLEAN)
    stale = msgspec.structs.replace(stale, timestamp=rfc3339.format(now - timedelta(days=40)))
    # an allow that relied on a waiver, which expired an hour ago
    lapsed = _redated(gate, tmp_path, "lapsed", ONE_CRITICAL, "--data",
                      waivers_file(tmp_path, now + timedelta(days=2)))
    assert lapsed.outcome.value == "allow" and [w.id for w in lapsed.waivers] == ["W-0042"]
    expired = rfc3339.format(now - timedelta(hours=1))
    lapsed = msgspec.structs.replace(
        lapsed,
        waivers=tuple(msgspec.structs.replace(w, expires=expired) for w in lapsed.waivers),
        data={**(lapsed.data or {}), "waivers": [{**w, "expires": expired} for w in (lapsed.data or {})["waivers"]]},
    )
    store = open_store(store_url)
    try:
        signer = load_signer()
        store.append(stale, signer)
        store.append(lapsed, signer)
    finally:
        store.close()
    repo = make_remote(tmp_path, {
        "gate-environments.yaml": "paths:\n  apps/prod: prod\n",
        **{f"apps/prod/{name}.yaml": deployment(f"{IMAGE}:1.0@{digest}", name=name) for name, digest in DIGESTS.items()},
    })

    # the one command (docs/audit.md)
    run = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
               "--once", "--plan", "--format", "json")

    assert run.code == 1, run.err  # something would be blocked
    objects = {o["name"]: o for o in run.json()["objects"] if o["kind"] == "Deployment"}
    assert {name: o["action"] for name, o in objects.items()} == {
        "valid": "apply", "stale": "blocked", "lapsed": "blocked", "never": "blocked", "denied": "blocked",
    }
    for name in ("stale", "lapsed", "never", "denied"):  # each block names the image
        assert any(DIGESTS[name] in reason for reason in objects[name]["reasons"]), (name, objects[name]["reasons"])
    reasons = {name: " ".join(o["reasons"]) for name, o in objects.items()}
    assert "it never passed the gate" in reasons["never"]
    assert "720h" in reasons["stale"]
    assert "W-0042" in reasons["lapsed"] and "expired" in reasons["lapsed"]
    # a plan records nothing
    assert gate("decisions", "events", "--kind", "sync", "--format", "json").json() == {"events": []}
