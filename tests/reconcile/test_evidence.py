"""gate.reconcile.evidence: choosing the evidence (flag, GATE_EVIDENCE, gate.toml, the default) and the
bounded, cached VSA check. The VSA verdicts here come from a stand-in verifier (``StandinVerifier``,
hand-written: it only returns what a test tells it to) so the cache and the time limit can be tested
alone; real VSAs on the real registry are in test_evidence_vsa.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gate import rfc3339, settings
from gate.decisions.interface import StoreError
from gate.decisions.store import default_store_path, open_store
from gate.errors import RegistryError, UsageError
from gate.reconcile.evidence import (
    DEFAULT_VSA_MAX_AGE,
    Evidence,
    VsaEvidence,
    VsaResult,
    choose,
    parse_max_age,
    vsa_max_age,
)

NOW = datetime(2027, 1, 22, 9, 30, tzinfo=UTC)
REF = "registry.example.com/shop/web@sha256:" + "a1" * 32


@pytest.fixture(autouse=True)
def no_evidence_setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """These tests choose the evidence themselves: no GATE_EVIDENCE, no configuration file."""
    monkeypatch.delenv("GATE_EVIDENCE", raising=False)
    settings.use(None)
    yield
    settings.use(None)


def config_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gate.toml"
    path.write_text(text)
    settings.use(settings.load(str(path)))


# --- choosing ---------------------------------------------------------------------------------------


def test_the_flag_wins_over_the_variable_and_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file(tmp_path, 'evidence = "both"\n')
    monkeypatch.setenv("GATE_EVIDENCE", "log")
    chosen = choose("vsa", lambda: pytest.fail("vsa evidence must not open the log"))
    assert chosen.evidence is Evidence.VSA and chosen.store is None and chosen.why == "--evidence"
    chosen = choose(None, open_store)
    assert chosen.evidence is Evidence.LOG and chosen.why == "GATE_EVIDENCE" and chosen.store is not None
    chosen.store.close()
    monkeypatch.delenv("GATE_EVIDENCE")
    chosen = choose(None, open_store)
    assert chosen.evidence is Evidence.BOTH and chosen.why == f"evidence in {tmp_path / 'gate.toml'}"
    assert chosen.store is not None
    chosen.store.close()


@pytest.mark.parametrize("value", ["VSA", " both ", "Log"])
def test_other_spellings_of_a_mode_are_that_mode(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_EVIDENCE", value)
    chosen = choose(None, open_store)
    assert chosen.evidence.value == value.strip().lower()
    if chosen.store is not None:
        chosen.store.close()


@pytest.mark.parametrize("value", ["none", "", "vsa,log", "off", "logs"])
def test_an_unknown_mode_is_a_usage_error_naming_where_it_came_from(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_EVIDENCE", value)
    with pytest.raises(UsageError, match=r"^GATE_EVIDENCE .*: the evidence must be one of vsa, log, both$"):
        choose(None, open_store)


def test_an_unknown_mode_in_the_file_names_the_file(tmp_path: Path) -> None:
    config_file(tmp_path, 'evidence = "nothing"\n')
    with pytest.raises(UsageError, match=r"evidence in .*gate\.toml 'nothing': the evidence must be one of"):
        choose(None, open_store)


def test_default_is_both_when_a_log_is_configured(decision_store: Path) -> None:
    chosen = choose(None, lambda: open_store(create=False))
    assert chosen.evidence is Evidence.BOTH and chosen.store is not None
    assert chosen.why == "default: a decision log is configured (GATE_DECISION_STORE)"
    chosen.store.close()


def test_default_is_vsa_without_any_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATE_DECISION_STORE")
    assert not default_store_path().exists()
    chosen = choose(None, lambda: pytest.fail("no log is configured: nothing may be opened"))
    assert chosen.evidence is Evidence.VSA and chosen.store is None
    assert chosen.why == "default: no decision log is configured (GATE_DECISION_STORE unset)"


def test_default_is_both_when_the_embedded_log_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATE_DECISION_STORE")
    open_store().close()  # gate evaluate on this machine made it
    chosen = choose(None, lambda: open_store(create=False))
    assert chosen.evidence is Evidence.BOTH and chosen.store is not None
    assert "embedded decision log exists" in chosen.why
    chosen.store.close()


def test_a_configured_log_that_cannot_be_opened_never_steps_down_to_vsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_DECISION_STORE", str(tmp_path / "gone" / "decisions.db"))
    with pytest.raises(StoreError) as caught:
        choose(None, lambda: open_store(create=False))
    message = caught.value.diagnostics()
    assert "gone" in message and "evidence both" in message and "--evidence vsa" in message
    assert "\n" not in message


def test_a_configured_log_in_the_file_that_cannot_be_opened_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATE_DECISION_STORE")
    config_file(tmp_path, 'decision_store = "missing.db"\n')
    with pytest.raises(StoreError, match="decision_store in"):
        choose(None, lambda: open_store(create=False))


def test_explicit_log_evidence_with_an_unreachable_log_is_an_error_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_DECISION_STORE", str(tmp_path / "missing.db"))
    for mode in ("log", "both"):
        with pytest.raises(StoreError):
            choose(mode, lambda: open_store(create=False))
    assert choose("vsa", lambda: open_store(create=False)).store is None


def test_a_store_url_given_to_the_webhook_counts_as_configured(monkeypatch: pytest.MonkeyPatch, decision_store: Path) -> None:
    monkeypatch.delenv("GATE_DECISION_STORE")
    chosen = choose(None, lambda: open_store(str(decision_store), create=False), store_url=str(decision_store))
    assert chosen.evidence is Evidence.BOTH and chosen.store is not None
    chosen.store.close()


# --- the VSA max age ----------------------------------------------------------------------------------


def test_vsa_max_age_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert vsa_max_age(None) == DEFAULT_VSA_MAX_AGE == timedelta(days=30)
    config_file(tmp_path, 'vsa_max_age = "14d"\n')
    assert vsa_max_age(None) == timedelta(days=14)
    monkeypatch.setenv("GATE_VSA_MAX_AGE", "36h")
    assert vsa_max_age(None) == timedelta(hours=36)
    assert vsa_max_age("1d12h") == timedelta(hours=36)
    assert vsa_max_age("7d") == timedelta(days=7)


@pytest.mark.parametrize("value", ["0d", "0h", "thirty days", "-1d", "30", ""])
def test_a_vsa_max_age_that_is_not_a_duration_above_zero_is_refused(value: str) -> None:
    with pytest.raises(UsageError, match="--vsa-max-age"):
        parse_max_age(value)


def test_a_bad_vsa_max_age_in_the_variable_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_VSA_MAX_AGE", "forever")
    with pytest.raises(UsageError, match="^GATE_VSA_MAX_AGE 'forever'"):
        vsa_max_age(None)


# --- the bounded, cached check --------------------------------------------------------------------------


class StandinVerifier:
    """Hand-written stand-in for gate.attestation's verifier: answers what the test queues, counts calls."""

    def __init__(self, *answers: VsaResult | BaseException) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, datetime, timedelta]] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, reference: str, environment: str, trusted: Any, now: datetime, max_age: timedelta) -> VsaResult:
        self.calls.append((reference, environment, now, max_age))
        self.release.wait(30)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def passed(time_verified: datetime = NOW - timedelta(days=1)) -> VsaResult:
    return VsaResult(True, "PASSED", decision_id="d-1", time_verified=rfc3339.format(time_verified),
                     attestation="registry.example.com/shop/web@sha256:" + "0f" * 32)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_pass_is_reused_within_its_ttl_and_checked_again_after() -> None:
    verifier, clock = StandinVerifier(passed()), Clock()
    vsa = VsaEvidence("prod", {}, verifier=verifier, clock=clock, ttl=60)
    assert vsa.check(REF, NOW).passed and vsa.check(REF, NOW).passed
    assert len(verifier.calls) == 1 and verifier.calls[0][:2] == (REF, "prod")
    clock.t += 61
    assert vsa.check(REF, NOW).passed
    assert len(verifier.calls) == 2


def test_a_fail_or_an_error_is_never_reused() -> None:
    failed = VsaResult(False, "newest VSA for prod is FAILED (decision d-2)")
    verifier = StandinVerifier(failed, RegistryError("registry 127.0.0.1:1: connection refused"), passed())
    vsa = VsaEvidence("prod", {}, verifier=verifier, clock=Clock())
    first = vsa.check(REF, NOW)
    assert not first.passed and not first.error and first.reason == failed.reason
    second = vsa.check(REF, NOW)
    assert not second.passed and second.error
    assert second.reason == f"the VSA of {REF} could not be checked: registry 127.0.0.1:1: connection refused"
    assert vsa.check(REF, NOW).passed  # attached since: admitted on the next try
    assert len(verifier.calls) == 3


def test_a_pass_is_never_reused_past_the_moment_it_turns_stale() -> None:
    verifier, clock = StandinVerifier(passed(NOW - timedelta(days=30) + timedelta(seconds=5))), Clock()
    vsa = VsaEvidence("prod", {}, verifier=verifier, clock=clock, ttl=60)
    assert vsa.check(REF, NOW).passed
    clock.t += 6  # within the TTL, but past time_verified + max_age
    vsa.check(REF, NOW)
    assert len(verifier.calls) == 2


def test_a_verifier_that_hangs_blocks_the_image_in_time() -> None:
    verifier = StandinVerifier(passed())
    verifier.release.clear()
    vsa = VsaEvidence("prod", {}, verifier=verifier, timeout=0.2)
    try:
        result = vsa.check(REF, NOW)
    finally:
        verifier.release.set()
    assert not result.passed and result.error
    assert result.reason == f"the VSA of {REF} could not be fetched within 0.2 s"


def test_a_bug_in_the_verifier_blocks_without_a_traceback() -> None:
    vsa = VsaEvidence("prod", {}, verifier=StandinVerifier(KeyError("predicate")))
    result = vsa.check(REF, NOW)
    assert not result.passed and result.error and result.reason.endswith("internal error (KeyError)")


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import gate.reconcile.evidence as evidence

    monkeypatch.setattr(evidence, "CACHE_SIZE", 3)
    verifier = StandinVerifier(passed())
    vsa = VsaEvidence("prod", {}, verifier=verifier, clock=Clock())
    refs = [f"registry.example.com/shop/web@sha256:{i:064x}" for i in range(5)]
    for ref in refs:
        vsa.check(ref, NOW)
    assert len(vsa._passes) == 3 and list(vsa._passes) == refs[2:]


def test_a_hung_fetch_is_joined_not_repeated_and_images_are_fetched_at_once() -> None:
    verifier = StandinVerifier(passed())
    verifier.release.clear()
    vsa = VsaEvidence("prod", {}, verifier=verifier, timeout=0.2)
    other = "registry.example.com/shop/api@sha256:" + "b2" * 32
    try:
        first = vsa.check_all([REF, other, REF], NOW)
        assert list(first) == [REF, other] and all(r.error for r in first.values())
        second = vsa.check(REF, NOW)  # the first fetch of REF still hangs: joined, not started again
        assert second.error and "could not be fetched within 0.2 s" in second.reason
        assert vsa.fetches == 2 and sorted(c[0] for c in verifier.calls) == sorted([REF, other])
    finally:
        verifier.release.set()
