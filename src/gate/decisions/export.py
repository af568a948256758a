"""``gate decisions export``: records as JSON lines, or as OPA decision-log events.

Both formats are streamed one record at a time (a log of a million decisions is never held in
memory) in chain order, oldest first, so a consumer that stops part-way has a prefix of the log.

``jsonl``: each line is the full stored record (input, hash, prev_hash, signature included), so
``record_hash`` of a line equals its ``hash`` and the lines can be re-verified as a chain when no
filter was applied.

``opa``: each line is an event shaped as OPA's decision logs (what OPA sends to a decision-log
service or prints with ``decision_logs.console``), so a pipeline built for OPA ingests it::

    {"decision_id": ..., "path": "gate/promotion", "input": {the input document},
     "result": {"outcome": ..., "violations": [...], "warnings": [...], "waivers": [...]},
     "bundles": {"<bundle name>": {"revision": "<.manifest revision>"}},
     "timestamp": "2026-11-26T18:57:08.471657Z",
     "labels": {"id": ..., "version": "<gate version>", "app": "gate", "environment": ...,
                "policy_digest": ..., "engine": ...},
     "requested_by": "<context.actor>", "error": {"code", "message"}}

``requested_by`` is present when the CI context named an actor, ``error`` only for outcome
``error``. OPA's own ``metrics`` (evaluation timers) are not recorded by gate, and OPA omits the
field when it has none, so it is omitted here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import PurePath
from typing import Any

import msgspec

from gate.decisions.record import Decision, Outcome

#: the decision's "path" in OPA terms: the package the promotion rules live in
OPA_PATH = "gate/promotion"
#: bundle name used when a decision does not say which directory its bundle came from
DEFAULT_BUNDLE = "gate"


def jsonl(decisions: Iterable[Decision]) -> Iterator[bytes]:
    """One full record per line."""
    encoder = msgspec.json.Encoder()
    for decision in decisions:
        yield encoder.encode(decision) + b"\n"


def opa_events(decisions: Iterable[Decision], version: str) -> Iterator[bytes]:
    """One OPA decision-log event per line; ``version`` is gate's, as OPA puts its own in labels."""
    encoder = msgspec.json.Encoder()
    for decision in decisions:
        yield encoder.encode(opa_event(decision, version)) + b"\n"


def opa_event(decision: Decision, version: str) -> dict[str, Any]:
    """The OPA decision-log event for ``decision``."""
    policy = decision.policy
    labels = {
        # OPA's instance id; for gate the key that signed the record identifies who produced it
        "id": decision.signing_key or "unsigned",
        "version": version,
        "app": "gate",
        "environment": decision.environment,
        "policy_digest": policy.digest,
        "engine": f"{policy.engine} {policy.engine_version}",
    }
    event: dict[str, Any] = {
        "decision_id": decision.decision_id,
        "path": OPA_PATH,
        "input": decision.input,
        "result": {
            "outcome": decision.outcome.value,
            "violations": decision.violations,
            "warnings": decision.warnings,
            "waivers": decision.waivers,
        },
        "bundles": {bundle_name(decision): {"revision": policy.revision or ""}},
        "timestamp": decision.timestamp,
        "labels": labels,
    }
    actor = decision.context.get("actor")
    if actor:
        event["requested_by"] = str(actor)
    if decision.outcome is Outcome.ERROR:
        event["error"] = {"code": "evaluation_error", "message": decision.error or "no decision could be made"}
    return event


def bundle_name(decision: Decision) -> str:
    """The bundle's directory name (``policies``), as OPA names a bundle by its configured name."""
    if decision.policy.bundle:
        name = PurePath(decision.policy.bundle.replace("\\", "/")).name
        if name:
            return name
    return DEFAULT_BUNDLE
