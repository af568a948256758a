"""`gate reconcile --notify`: a cycle that blocks objects sends one reconcile.blocked listing them to a
local receiver (tests/receiver.py, a real HTTP server standing in for a webhook); --plan sends none.
Deduplication across cycles (one object and digest announced once per process): tests/test_notify.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Run
from tests.receiver import Receiver, receiver  # noqa: F401 - fixture
from tests.reconcile.test_reconcile_cli import DIGEST_A, IMAGE, cache_home, reconcile, repo  # noqa: F401 - fixtures


def test_a_blocked_cycle_sends_one_reconcile_blocked_listing_the_objects(
    reconcile: Callable[..., Run], receiver: Receiver  # noqa: F811 - the fixture imported above
) -> None:
    # no decision was ever made for the image: the Deployment is blocked, the rest syncs
    run = reconcile("--once", "--format", "json", "--notify", f"{receiver.url}/events")
    assert run.code == 1, run.err
    (event,) = receiver.bodies("/events")
    assert event["type"] == "dev.gate.reconcile.blocked" and event["subject"] == "apps/prod (prod)"
    (blocked,) = event["data"]["objects"]
    assert blocked["object"] == "Deployment/shop/web" and blocked["images"] == [f"{IMAGE}:1.0@{DIGEST_A}"]
    assert blocked["reasons"] and event["data"]["event_id"]


def test_a_plan_notifies_nobody(reconcile: Callable[..., Run], receiver: Receiver) -> None:  # noqa: F811
    run = reconcile("--once", "--plan", "--notify", f"{receiver.url}/events")
    assert run.code == 1, run.err
    assert receiver.received == []
