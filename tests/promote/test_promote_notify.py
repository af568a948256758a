"""`gate promote --notify`: promotion.done and promotion.refused reach a local receiver (tests/receiver.py,
a real HTTP server standing in for a webhook), after the outcome is recorded; a receiver that is down
changes no exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.promote.servers import Registry
from tests.promote.test_promote_cli import ONE_CRITICAL, App, evaluate, events
from tests.receiver import Receiver, receiver, start_receiver, stop_receiver  # noqa: F401 - fixture


def test_a_done_promotion_sends_promotion_done(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, receiver: Receiver
) -> None:
    app = App(registry, tmp_path)
    decision = evaluate(gate, data, app.source)
    run = app.promote(gate, decision["decision_id"], "--notify", f"{receiver.url}/events",
                      "--notify", f"slack+{receiver.url}/services/T1/B1/s3cretPromote")
    assert run.code == 0, run.err
    (event,) = receiver.bodies("/events")
    assert event["type"] == "dev.gate.promotion.done" and event["subject"] == f"{app.release_name}:1.0"
    assert event["data"]["decision_id"] == decision["decision_id"] and event["data"]["digest"] == app.image.digest
    assert event["data"]["commit"] == app.remote.head()
    (slack,) = receiver.bodies("/services/T1/B1/s3cretPromote")
    assert "promotion.done" in slack["text"]

    again = app.promote(gate, decision["decision_id"], "--notify", f"{receiver.url}/events")
    assert again.code == 0 and len(receiver.bodies("/events")) == 1  # a no-op is no news


def test_a_refused_promotion_sends_promotion_refused_and_a_dead_receiver_keeps_exit_1(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, receiver: Receiver
) -> None:
    app = App(registry, tmp_path)
    decision = evaluate(gate, data, app.source, ONE_CRITICAL)
    run = app.promote(gate, decision["decision_id"], "--notify", f"{receiver.url}/events")
    assert run.code == 1, run.err
    (event,) = receiver.bodies("/events")
    assert event["type"] == "dev.gate.promotion.refused"
    assert any("is deny, not allow" in reason for reason in event["data"]["reasons"])
    assert events(decision["decision_id"]) == ["refused"]  # recorded whatever the receiver does

    down = start_receiver()
    url = f"{down.url}/hook/s3cretRefusedPath"
    stop_receiver(down)
    run = app.promote(gate, decision["decision_id"], "--notify", url)
    assert run.code == 1
    lines = [line for line in run.err.splitlines() if line.startswith("gate: warning: notification promotion.refused")]
    assert len(lines) == 1 and "s3cretRefusedPath" not in run.err
