"""A small decision log for the web view's tests, made through the real CLI (``gate evaluate`` on the
shipped policies and real reports from tests/data), with hostile strings where an attacker could put
them: a rule message (a policy layer), a waiver reason (policy data) and an image name.

``gate evaluate`` refuses an image reference holding ``<`` or ``"``, so the record with a hostile image
is a copy of a real one with its artifact rewritten, appended through the store API (hand-made, named
so: it stands for a log written by another tool or a tampered row). The promotion event is appended
with ``gate.decisions.events.new_event``, the function ``gate promote`` records with, rather than by a
promotion against a registry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gate import rfc3339

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CART = "registry.example.com/shop/cart"
PAYMENTS = "registry.example.com/shop/payments"
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
#: strings that run script if a page forgets to escape them; window.__xss stays undefined when escaped
HOSTILE = '<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">'
HOSTILE_IMAGE = 'registry.example.com/shop/<script>window.__xss=3</script>" onmouseover="window.__xss=4'
HOSTILE_RULE = '''package gate.promotion.hostile

import rego.v1

deny contains {
\t"msg": "%s",
\t"rule": "hostile.rule",
\t"severity": "low",
} if {
\tinput.environment == "staging"
}
''' % HOSTILE.replace('"', '\\"')


def digest(byte: str) -> str:
    return "sha256:" + byte * 32


def seed(main: Callable[[list[str]], int], work: Path) -> dict[str, str]:
    """Decisions and one event in the log GATE_DECISION_STORE names; returns decision ids by name:
    allow (clean, prod), deny (a critical CVE, prod), waived (the same CVE waived by W-0042 whose
    reason is hostile), soon (waived by W-SOON expiring in 5 days, payments), hostile (staging: a
    rule whose message is hostile), hostile_image (hand-made, see the module docstring)."""
    from gate.decisions.events import PROMOTION, new_event
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store
    import msgspec

    hostile_policy = work / "hostile-policy"
    hostile_policy.mkdir(exist_ok=True)
    (hostile_policy / "hostile.rego").write_text(HOSTILE_RULE)
    now = datetime.now(UTC)
    plan: list[tuple[str, tuple[str, ...], str, str, str, tuple[str, int] | None, list[str]]] = [
        ("allow", CLEAN, CART, "11", "prod", None, []),
        ("deny", ONE_CRITICAL, CART, "22", "prod", None, []),
        ("waived", ONE_CRITICAL, CART, "33", "prod", ("W-0042", 60), []),
        ("soon", ONE_CRITICAL, PAYMENTS, "44", "prod", ("W-SOON", 5), []),
        ("hostile", CLEAN, CART, "55", "staging", None, ["--policy", "gate:library", "--policy", str(hostile_policy)]),
    ]
    ids: dict[str, str] = {}
    for name, reports, image, byte, env, waiver, extra in plan:
        argv = ["evaluate", "--env", env, "--image", f"{image}:1.0@{digest(byte)}", *extra]
        for report in reports:
            argv += ["--report", f"auto={DATA / report}"]
        if waiver:
            data = work / f"{name}-waivers.json"
            data.write_text(json.dumps({"waivers": [{
                "id": waiver[0], "rule": "CVE-2022-22965", "reason": f"not reachable {HOSTILE}",
                "approved_by": "secops@example.com", "expires": rfc3339.format(now + timedelta(days=waiver[1])),
            }]}))
            argv += ["--data", str(data)]
        out = work / f"{name}.json"
        argv += ["--output", f"json={out}"]
        code = main(argv)
        assert code in (0, 1), (name, code)
        ids[name] = json.loads(out.read_text())["decision_id"]
    store = open_store()
    try:
        signer = load_signer()
        base = store.get(ids["allow"])
        assert base is not None
        artifact = {**(base.artifact or {}), "image": HOSTILE_IMAGE, "digest": digest("66")}
        copy = msgspec.structs.replace(
            base, decision_id=base.decision_id[:-4] + "beef", artifact=artifact,
            timestamp=rfc3339.format(datetime.now(UTC)),
        )
        ids["hostile_image"] = store.append(copy, signer).decision_id
        store.append_event(new_event(
            PROMOTION, "done", "prod", decision_ids=(ids["waived"],),
            artifact={"source": f"{CART}@{digest('33')}", "digest": digest("33"), "target": f"{CART}:1.0"},
            details={"reasons": [], "commit": "ab" * 20, "gitops": {"commit": "ab" * 20, "path": "apps/cart"}},
            context={"actor": "alice"},
        ), signer)
    finally:
        store.close()
    return ids


def write(path: Path, payload: Any) -> None:
    """An example payload, pretty-printed (tests/ui/payloads)."""
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
