"""Notifications (gate.notify) end to end through the CLI, against a local receiver (tests/receiver.py:
a real HTTP server standing in for a CloudEvents sink and a Slack incoming webhook).

The promotion and reconcile kinds are tested beside their fixtures: tests/promote/test_promote_notify.py
and tests/reconcile/test_reconcile_notify.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gate import notify
from tests.conftest import DIGEST, ROOT, Run
from tests.receiver import Receiver, receiver, start_receiver, stop_receiver  # noqa: F401 - fixture

POLICIES = ROOT / "policies"
REF = f"registry.example.com/shop/cart:1.4.2@{DIGEST}"
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
#: a Slack webhook's path is its credential: it must never be printed
SLACK_PATH = "/services/T0GATE/B0GATE/s3cretHookPathXYZ"
REQUIRED_CLOUDEVENTS = ("specversion", "id", "source", "type")


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-off and timeouts short enough for tests; the retry logic itself is unchanged."""
    monkeypatch.setattr(notify, "BACKOFF_S", 0.01)
    monkeypatch.setattr(notify, "TIMEOUT_S", 0.5)


def evaluate(gate: Callable[..., Run], data: Path, names: tuple[str, ...], *extra: str) -> Run:
    argv: list[str] = []
    for name in names:
        argv += ["--report", f"auto={data / name}"]
    return gate("evaluate", *argv, "--policy", str(POLICIES), "--image", REF, "--env", "prod", "--format", "json", *extra)


def warnings(run: Run) -> list[str]:
    return [line for line in run.err.splitlines() if line.startswith("gate: warning: notification")]


def test_a_deny_sends_a_cloudevent_and_a_slack_message(gate: Callable[..., Run], data: Path, receiver: Receiver) -> None:
    run = evaluate(gate, data, ONE_CRITICAL, "--notify", f"{receiver.url}/events",
                   "--notify", f"slack+{receiver.url}{SLACK_PATH}")
    assert run.code == 1, run.err
    decision = run.json()
    assert not warnings(run), run.err

    (event,) = receiver.bodies("/events")
    headers = next(r.headers for r in receiver.received if r.path == "/events")
    assert headers["content-type"] == "application/cloudevents+json"
    for attribute in REQUIRED_CLOUDEVENTS:
        assert isinstance(event[attribute], str) and event[attribute], attribute
    assert event["specversion"] == "1.0" and event["type"] == "dev.gate.decision.denied"
    datetime.fromisoformat(event["time"].replace("Z", "+00:00"))  # RFC 3339
    assert event["subject"] == REF
    payload = event["data"]
    assert payload["decision_id"] == decision["decision_id"] and payload["outcome"] == "deny"
    assert payload["environment"] == "prod" and payload["image"] == REF
    assert payload["reasons"] and payload["reasons"][0] == decision["violations"][0]["message"]
    assert "input" not in payload  # small: never the input document

    (slack,) = receiver.bodies(SLACK_PATH)
    assert set(slack) == {"text"}
    assert "decision.denied" in slack["text"] and decision["decision_id"] in slack["text"]


def test_an_allow_notifies_nobody(gate: Callable[..., Run], data: Path, receiver: Receiver) -> None:
    run = evaluate(gate, data, CLEAN, "--notify", f"{receiver.url}/events")
    assert run.code == 0, run.err
    assert receiver.received == []


def test_a_receiver_answering_503_twice_gets_it_on_the_third_try(
    gate: Callable[..., Run], data: Path, receiver: Receiver
) -> None:
    receiver.answers[:] = [503, 503]
    receiver.retry_after = "0"
    run = evaluate(gate, data, ONE_CRITICAL, "--notify", f"{receiver.url}/events")
    assert run.code == 1 and not warnings(run), run.err
    bodies = receiver.bodies("/events")
    assert len(bodies) == 3 and len({b["id"] for b in bodies}) == 1  # one event, delivered on the third attempt


def test_a_receiver_that_refuses_is_not_asked_again(gate: Callable[..., Run], data: Path, receiver: Receiver) -> None:
    receiver.answers[:] = [400]
    run = evaluate(gate, data, ONE_CRITICAL, "--notify", f"slack+{receiver.url}{SLACK_PATH}")
    assert run.code == 1
    assert len(receiver.received) == 1
    (line,) = warnings(run)
    assert "HTTP 400" in line and "s3cretHookPathXYZ" not in run.err and "B0GATE" not in run.err


def test_a_receiver_that_is_down_leaves_the_deny_and_prints_one_line_without_the_secret(
    gate: Callable[..., Run], data: Path,
) -> None:
    down = start_receiver()
    url = f"slack+{down.url}{SLACK_PATH}"
    stop_receiver(down)  # nothing listens on its port any more
    run = evaluate(gate, data, ONE_CRITICAL, "--notify", url)
    assert run.code == 1  # the deny stays a deny
    assert run.json()["outcome"] == "deny"
    (line,) = warnings(run)
    assert "decision.denied" in line and "3 attempts" in line and "unchanged" in line
    assert "s3cretHookPathXYZ" not in run.err and "/services/" not in run.err


def test_a_receiver_that_hangs_leaves_the_deny_and_the_log_intact(
    gate: Callable[..., Run], data: Path, receiver: Receiver
) -> None:
    receiver.hang = True
    run = evaluate(gate, data, ONE_CRITICAL, "--notify", f"{receiver.url}/hook?token=s3cretQueryToken")
    assert run.code == 1
    (line,) = warnings(run)
    assert "s3cretQueryToken" not in run.err
    assert gate("decisions", "verify").code == 0


def test_notify_in_gate_toml_reads_the_url_from_the_environment_and_filters_kinds(
    gate: Callable[..., Run], data: Path, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "gate.toml"
    config.write_text(
        '[notify]\nslack = ["env:GATE_TEST_SLACK"]\non = ["decision.denied"]\n'
        'webhooks = ["http://127.0.0.1:9/hook/s3cretInFilePath"]\n'
    )
    monkeypatch.setenv("GATE_TEST_SLACK", f"{receiver.url}{SLACK_PATH}")
    monkeypatch.setenv("GATE_CONFIG", str(config))
    run = evaluate(gate, data, ONE_CRITICAL)
    assert run.code == 1, run.err
    (slack,) = receiver.bodies(SLACK_PATH)
    assert "decision.denied" in slack["text"]
    (line,) = warnings(run)  # nothing listens on port 9: one line, without the URL's path
    assert "http://127.0.0.1:9/…" in line and "s3cretInFilePath" not in run.err
    shown = gate("config", "show")
    assert shown.code == 0, shown.err
    assert "env:GATE_TEST_SLACK" in shown.out and "s3cretHookPathXYZ" not in shown.out
    assert "s3cretInFilePath" not in shown.out


def test_a_bad_notify_target_is_exit_2_before_anything_is_recorded(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = evaluate(gate, data, ONE_CRITICAL, "--notify", "ftp://example.com/x")
    assert run.code == 2 and "--notify" in run.err and "not an http(s) URL" in run.err
    config = tmp_path / "gate.toml"
    config.write_text('[notify]\non = ["decision.deny"]\n')
    monkeypatch.setenv("GATE_CONFIG", str(config))
    run = evaluate(gate, data, ONE_CRITICAL)
    assert run.code == 2 and "unknown kind 'decision.deny'" in run.err
    assert gate("decisions", "list", "--format", "json").json()["decisions"] == []


def waivers_file(tmp_path: Path) -> Path:
    now = datetime.now(UTC)
    soon = (now + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "waivers.yaml"
    path.write_text(
        "waivers:\n"
        f"  - {{id: W-SOON, rule: CVE-2022-22965, reason: patch pending, approved_by: sec@example.com, expires: '{soon}', environment: prod}}\n"
        f"  - {{id: W-LATER, rule: CVE-2021-44228, reason: vendor fix, approved_by: sec@example.com, expires: '{later}'}}\n"
    )
    return path


def test_decisions_waivers_lists_what_expires_within_the_window_and_notifies_once(
    gate: Callable[..., Run], receiver: Receiver, tmp_path: Path
) -> None:
    waivers = waivers_file(tmp_path)
    run = gate("decisions", "waivers", "--expiring", "14d", "--policy", POLICIES, "--data", waivers)
    assert run.code == 0, run.err
    assert "W-SOON" in run.out and "W-LATER" not in run.out
    assert receiver.received == []

    run = gate("decisions", "waivers", "--expiring", "14d", "--env", "prod", "--policy", POLICIES, "--data", waivers,
               "--format", "json", "--notify", f"{receiver.url}/events")
    assert run.code == 0, run.err
    assert [w["id"] for w in run.json()["waivers"]] == ["W-SOON"]
    (event,) = receiver.bodies("/events")
    assert event["type"] == "dev.gate.waiver.expiring"
    assert [w["id"] for w in event["data"]["waivers"]] == ["W-SOON"]

    assert gate("decisions", "waivers", "--expiring", "60d", "--policy", POLICIES, "--data", waivers,
                "--env", "dev", "--format", "json").json()["waivers"][0]["id"] == "W-LATER"  # W-SOON is prod's
    assert gate("decisions", "waivers", "--policy", POLICIES, "--data", waivers, "--env", "prdo").code == 2


def test_a_failed_waiver_notification_leaves_exit_0(gate: Callable[..., Run], tmp_path: Path) -> None:
    down = start_receiver()
    url = f"{down.url}/hook/s3cretPathSegment"
    stop_receiver(down)
    run = gate("decisions", "waivers", "--expiring", "14d", "--policy", POLICIES, "--data", waivers_file(tmp_path),
               "--notify", url)
    assert run.code == 0 and "W-SOON" in run.out
    (line,) = warnings(run)
    assert "waiver.expiring" in line and "s3cretPathSegment" not in run.err


def test_blocked_objects_are_announced_once_per_object_and_digest(receiver: Receiver) -> None:
    from gate.commands.notifications import BlockedObjects
    from gate.reconcile.cycle import CycleReport, ObjectResult

    def report(*images: str) -> CycleReport:
        return CycleReport("c0ffee", [
            ObjectResult("Deployment", f"web{i}", "shop", "blocked", ["never passed the gate"], images=[image])
            for i, image in enumerate(images)
        ])

    blocked = BlockedObjects(notify.targets([f"{receiver.url}/events"]), "prod", "apps/prod")
    blocked.cycle(report("web@sha256:" + "a" * 64))
    blocked.cycle(report("web@sha256:" + "a" * 64))  # the same block again: no news
    blocked.cycle(report("web@sha256:" + "b" * 64))  # another digest: news
    blocked.cycle(CycleReport("c0ffee", []))  # synced
    blocked.cycle(report("web@sha256:" + "b" * 64))  # blocked again after a sync: news
    events = receiver.bodies("/events")
    assert [e["data"]["objects"][0]["images"] for e in events] == [
        ["web@sha256:" + "a" * 64], ["web@sha256:" + "b" * 64], ["web@sha256:" + "b" * 64],
    ]
    assert all(e["type"] == "dev.gate.reconcile.blocked" for e in events)


def test_an_error_decision_sends_decision_error_and_stays_exit_2(
    gate: Callable[..., Run], data: Path, receiver: Receiver, tmp_path: Path
) -> None:
    root = tmp_path / "bundle"
    (root / "gate" / "config").mkdir(parents=True)
    (root / "gate" / "config" / "data.json").write_text('{"environments": {"prod": {}}}')
    (root / "vulns.rego").write_text("package gate.promotion.vulns\nimport rego.v1\ndeny contains x if {\n")
    run = gate("evaluate", "--report", f"auto={data / CLEAN[0]}", "--policy", root, "--image", REF, "--env", "prod",
               "--notify", f"{receiver.url}/events")
    assert run.code == 2 and "does not compile" in run.err
    (event,) = receiver.bodies("/events")
    assert event["type"] == "dev.gate.decision.error" and event["subject"] == REF
    assert "does not compile" in event["data"]["reasons"][0] and "recorded as error decision" in event["data"]["reasons"][0]


@pytest.mark.parametrize(("answer", "retry_after", "told"), [
    (302, None, "HTTP 302"),  # a redirect is not followed: urllib would re-send the POST as a bodiless GET
    (503, "120", "retry after 120s"),  # longer than the 30 s gate waits at most
])
def test_a_redirect_or_a_long_retry_after_ends_delivery_after_one_request(
    gate: Callable[..., Run], data: Path, receiver: Receiver, answer: int, retry_after: str | None, told: str,
) -> None:
    receiver.answers[:] = [answer]
    receiver.retry_after = retry_after
    run = evaluate(gate, data, ONE_CRITICAL, "--notify", f"{receiver.url}/events")
    assert run.code == 1
    assert len(receiver.received) == 1 and receiver.bodies("/elsewhere") == []
    (line,) = warnings(run)
    assert told in line
