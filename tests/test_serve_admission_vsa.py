"""`gate serve --admission --evidence vsa|both`: the webhook admits by the VSA attached to the image, with no
decision log. Real AdmissionReviews (tests/data/admission), images on the real registry with VSAs gate
signed and attached (tests/reconcile/test_evidence_vsa.py's helpers), the server on a thread of this
process (``make_server``) and once as ``python -m gate serve``. The registry that never answers is a
listening socket that accepts and says nothing (a stand-in for a hung registry, named so)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gate.decisions.interface import StoreError
from gate.decisions.signing import load_trusted_keys
from gate.reconcile.evidence import VsaEvidence
from gate.serve import make_server
from tests.conftest import ROOT, Run
from tests.promote.conftest import docker_config, registry  # noqa: F401 — fixtures used here too
from tests.reconcile.test_evidence_vsa import Image, attest, evaluate, image, promoted  # noqa: F401 — image: fixture
from tests.reconcile.test_admission import ONE_CRITICAL
from tests.test_serve import start
from tests.test_serve_admission import configmap_review, review, sample

pytestmark = pytest.mark.server

POLICIES = ROOT / "policies"


@pytest.fixture(autouse=True)
def trust_the_session_key(monkeypatch: pytest.MonkeyPatch, signing_key: tuple[Path, Path]) -> None:
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(signing_key[1]))


def deployment_review(ref: str, uid: str = "vsa-1") -> dict[str, Any]:
    """The corpus Deployment review, its image set to ``ref``."""
    body = sample("admissionreview-v1-deployment-create-image.json")
    body["request"]["uid"] = uid
    body["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] = ref
    return body


def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No decision log can be reached from here."""
    monkeypatch.setenv("GATE_DECISION_STORE", str(tmp_path / "unreachable" / "decisions.db"))
    monkeypatch.delenv("GATE_EVIDENCE")


def serve_vsa(**checker_options: Any) -> Iterator[httpx.Client]:
    options = {"evidence": "vsa", "checker_options": checker_options}
    return start(make_server(POLICIES, port=0, admission="prod", admission_options=options))


def test_an_air_gapped_webhook_admits_only_a_valid_passed_vsa(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image)
    offline(monkeypatch, tmp_path)
    for client in serve_vsa():
        answer = review(client, deployment_review(image.pinned))
        assert answer["allowed"] is True, answer
        unknown = f"{image.repo}@sha256:{'0' * 64}"
        refused = review(client, deployment_review(unknown, "vsa-2"))
        assert refused["allowed"] is False and refused["status"]["code"] == 403
        assert f"no valid VSA for environment prod is attached to {unknown}" in refused["status"]["message"]
        tagged = review(client, deployment_review(f"{image.repo}:1.0", "vsa-3"))
        assert tagged["allowed"] is False and "is not pinned by digest" in tagged["status"]["message"]
        assert review(client, configmap_review())["allowed"] is True


def test_a_miss_is_never_cached_and_a_newer_failed_vsa_denies(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decision_id = evaluate(gate, image)
    for client in serve_vsa():
        assert review(client, deployment_review(image.pinned, "before"))["allowed"] is False
        attest(decision_id, image, at=datetime.now(UTC) - timedelta(hours=1))
        assert review(client, deployment_review(image.pinned, "after"))["allowed"] is True  # the miss was not kept
    denied = promoted(gate, image, ONE_CRITICAL)  # newer and FAILED
    for client in serve_vsa():  # a new webhook (a running one reuses its pass for at most PASS_TTL)
        answer = review(client, deployment_review(image.pinned, "failed"))
        assert answer["allowed"] is False and f"(decision {denied}," in answer["status"]["message"]
        assert "is FAILED" in answer["status"]["message"]


def test_a_pass_is_reused_for_the_same_image(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted(gate, image)
    offline(monkeypatch, tmp_path)
    checker = VsaEvidence("prod", load_trusted_keys())
    for client in serve_vsa(vsa=checker):
        for n in range(5):
            assert review(client, deployment_review(image.pinned, f"r{n}"))["allowed"] is True
    assert checker.fetches == 1


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """Stand-in for a hung registry: a socket that accepts connections and never answers. Yields host:port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_registry_that_never_answers_denies_within_the_bound(
    silent_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline(monkeypatch, tmp_path)
    checker = VsaEvidence("prod", load_trusted_keys(), timeout=0.5)
    ref = f"{silent_registry}/shop/web@sha256:{'a1' * 32}"
    for client in serve_vsa(vsa=checker):
        answer = review(client, deployment_review(ref))
        assert answer["allowed"] is False
        assert f"the VSA of {ref} could not be fetched within 0.5 s" in answer["status"]["message"]


def test_both_needs_the_log_and_the_vsa(gate: Callable[..., Run], image: Image) -> None:
    evaluate(gate, image)
    options = {"evidence": "both"}
    for client in start(make_server(POLICIES, port=0, admission="prod", admission_options=options)):
        answer = review(client, deployment_review(image.pinned))
        assert answer["allowed"] is False and "no valid VSA for environment prod" in answer["status"]["message"]


def test_the_default_with_an_unreachable_configured_log_does_not_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_DECISION_STORE", str(tmp_path / "gone.db"))
    monkeypatch.delenv("GATE_EVIDENCE")
    with pytest.raises(StoreError, match="--evidence vsa"):
        make_server(POLICIES, port=0, admission="prod")


def test_the_cli_refuses_evidence_without_admission(gate: Callable[..., Run]) -> None:
    run = gate("serve", "--evidence", "vsa", "--policy", POLICIES, "--addr", "127.0.0.1:0")
    assert run.code == 2 and "serve --evidence/--vsa-max-age are for --admission" in run.err
    run = gate("serve", "--admission", "--env", "prod", "--evidence", "vsa", "--vsa-max-age", "0d",
               "--policy", POLICIES, "--addr", "127.0.0.1:0")
    assert run.code == 2 and "--vsa-max-age '0d'" in run.err


def test_gate_serve_admission_evidence_vsa_as_a_process(
    gate: Callable[..., Run], image: Image, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m gate serve --admission --env prod --evidence vsa`` with no decision log at all."""
    promoted(gate, image)
    env = {k: v for k, v in os.environ.items() if k not in ("GATE_DECISION_STORE", "GATE_EVIDENCE")}
    argv = [sys.executable, "-m", "gate", "serve", "--admission", "--env", "prod", "--evidence", "vsa",
            "--policy", str(POLICIES), "--addr", "127.0.0.1:0"]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    lines: list[str] = []
    listening = threading.Event()

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.startswith("gate: serving on "):
                listening.set()
        listening.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        listening.wait(60)
        serving = [line for line in lines if line.startswith("gate: serving on ")]
        assert serving, "".join(lines)
        assert "gate: admission evidence vsa (--evidence)\n" in lines
        with httpx.Client(base_url=serving[0].removeprefix("gate: serving on ").strip(), timeout=60) as client:
            assert review(client, deployment_review(image.pinned))["allowed"] is True
            assert review(client, deployment_review(f"{image.repo}@sha256:{'0' * 64}", "x"))["allowed"] is False
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        reader.join(10)


def test_a_hung_registry_holds_only_its_own_review(
    gate: Callable[..., Run], image: Image, silent_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The VSAs are fetched on the request's thread, not on the one thread that runs the rules: while one
    review waits for a registry that never answers, others are answered."""
    promoted(gate, image)
    offline(monkeypatch, tmp_path)
    checker = VsaEvidence("prod", load_trusted_keys(), timeout=10)
    hung_ref = f"{silent_registry}/shop/web@sha256:{'a1' * 32}"
    for client in serve_vsa(vsa=checker):
        answers: list[dict[str, Any]] = []
        hung = threading.Thread(target=lambda: answers.append(review(client, deployment_review(hung_ref, "hung"))))
        hung.start()
        try:
            while checker.fetches == 0:  # the hung review has started its fetch
                threading.Event().wait(0.01)
            assert review(client, configmap_review())["allowed"] is True
            assert review(client, deployment_review(image.pinned, "other"))["allowed"] is True
            assert hung.is_alive() and not answers  # still waiting for its registry
        finally:
            hung.join(60)
        assert answers and answers[0]["allowed"] is False
        assert "could not be fetched within 10 s" in answers[0]["status"]["message"]
