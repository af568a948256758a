"""Which evidence admits an image: the decision log, the VSA attached to the image, or both.

``gate reconcile`` and ``gate serve --admission`` judge every image by its evidence
(``--evidence``, ``GATE_EVIDENCE``, ``evidence`` in gate.toml):

- ``log``: the newest trusted allow decision for (digest, environment) in the decision log,
  replayed under today's policy (gate.decisions.trust; the behaviour before VSAs);
- ``vsa``: the SLSA Verification Summary Attestation gate promote attached to the image in its
  registry (gate.attestation): valid, signed by a trusted key, for this environment, PASSED and
  fresh. No decision log is needed or opened: an air-gapped cluster;
- ``both``: both must pass; either failing blocks with its reason.

The default (:func:`choose`) is decided once, at start, never per image: ``both`` when a decision
log is configured (GATE_DECISION_STORE or ``decision_store`` in gate.toml) or gate's embedded log
exists on this machine; ``vsa`` when there is no log at all. A configured log that cannot be
opened is an error (exit 2), never a silent step down to ``vsa``: whoever runs a cluster without
the log says so with ``--evidence vsa``. :class:`VsaEvidence` verifies attached VSAs with a bounded
wait and a short cache of passes.
"""

from __future__ import annotations

import functools

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from gate.errors import GateError, UsageError

if TYPE_CHECKING:
    from gate.decisions.interface import DecisionStore

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_VSA_MAX_AGE", "DEFAULT_VSA_MAX_AGE_TEXT", "Evidence", "EvidenceChoice", "VsaEvidence", "VsaResult", "choose", "parse_max_age", "vsa_max_age",
]

#: how old a VSA may be: 30 days, as the shipped max_decision_age for prod (720h) bounds a decision
DEFAULT_VSA_MAX_AGE_TEXT = "30d"
DEFAULT_VSA_MAX_AGE = timedelta(days=30)
#: seconds one image's VSA may take to fetch and verify (the API server's webhook timeout is 10 s by default)
VSA_TIMEOUT = 8.0
#: seconds a verified PASSED VSA is reused for the same image (a fail or an error is never reused)
PASS_TTL = 60.0
#: images whose passes are kept at most
CACHE_SIZE = 4096


class Evidence(StrEnum):
    """What an image must show to be admitted."""

    VSA = "vsa"
    LOG = "log"
    BOTH = "both"

    @property
    def uses_log(self) -> bool:
        """The decision log is consulted (and must admit)."""
        return self in (Evidence.LOG, Evidence.BOTH)

    @property
    def uses_vsa(self) -> bool:
        """The attached VSA is consulted (and must admit)."""
        return self in (Evidence.VSA, Evidence.BOTH)


@dataclass(frozen=True)
class EvidenceChoice:
    """The evidence mode in force, the store it reads (None for ``vsa``), and why it was chosen."""

    evidence: Evidence
    store: DecisionStore | None
    #: one line: "--evidence", "GATE_EVIDENCE", "evidence in /x/gate.toml", or the default's reason
    why: str


def parse(value: str, source: str) -> Evidence:
    """``value`` as an evidence mode; a ``UsageError`` naming ``source`` for anything else."""
    try:
        return Evidence(value.strip().lower())
    except ValueError:
        choices = ", ".join(e.value for e in Evidence)
        raise UsageError(f"{source} {value!r}: the evidence must be one of {choices}") from None


def parse_max_age(value: str, source: str = "--vsa-max-age") -> timedelta:
    """``30d``, ``720h``, ``1d12h`` as a duration above zero (gate's one duration spelling)."""
    from gate.decisions.timefilter import parse_duration

    age = parse_duration(value, source)
    if age <= timedelta(0):
        raise UsageError(f"{source} {value!r}: give a duration above zero such as 30d or 720h")
    return age


def vsa_max_age(flag: str | None) -> timedelta:
    """``--vsa-max-age``, else GATE_VSA_MAX_AGE, else ``vsa_max_age`` in gate.toml, else 30 days."""
    from gate import settings

    if flag is not None:
        return parse_max_age(flag)
    configured = settings.current()
    value = configured.env("GATE_VSA_MAX_AGE")
    if value is None:
        return DEFAULT_VSA_MAX_AGE
    return parse_max_age(value, configured.source("GATE_VSA_MAX_AGE"))


def choose(
    flag: str | None, open_store: Callable[[], DecisionStore], *, store_url: str | None = None,
) -> EvidenceChoice:
    """The evidence mode and, when it uses the log, the opened store (``open_store()``).

    ``flag`` (``--evidence``) wins over GATE_EVIDENCE, which wins over ``evidence`` in gate.toml.
    Without any of them: ``both`` when a log is configured (``store_url``, GATE_DECISION_STORE,
    ``decision_store``) or the embedded default log exists, else ``vsa``. A log that the mode needs
    and that cannot be opened raises its ``StoreError`` (with a hint when it was only the default).
    """
    from gate import settings
    from gate.decisions.store import default_store_path

    configured = settings.current()
    if flag is not None:
        evidence, why = parse(flag, "--evidence"), "--evidence"
    elif configured.env("GATE_EVIDENCE") is not None:
        source = configured.source("GATE_EVIDENCE")
        evidence, why = parse(configured.env("GATE_EVIDENCE") or "", source), source
    elif store_url or configured.env("GATE_DECISION_STORE"):
        where = "the decision store given" if store_url else configured.source("GATE_DECISION_STORE")
        evidence, why = Evidence.BOTH, f"default: a decision log is configured ({where})"
        return EvidenceChoice(evidence, _open(open_store, why), why)
    elif default_store_path().exists():
        evidence, why = Evidence.BOTH, f"default: gate's embedded decision log exists ({default_store_path()})"
        return EvidenceChoice(evidence, _open(open_store, why), why)
    else:
        evidence, why = Evidence.VSA, "default: no decision log is configured (GATE_DECISION_STORE unset)"
    return EvidenceChoice(evidence, open_store() if evidence.uses_log else None, why)


def _open(open_store: Callable[[], DecisionStore], why: str) -> DecisionStore:
    """The default ``both``'s store; when it cannot be opened, the error says how to go without it."""
    from gate.decisions.interface import StoreError

    try:
        return open_store()
    except StoreError as e:
        raise StoreError(
            f"{e.diagnostics()} (evidence both, {why}); the log is never skipped silently: "
            "give --evidence vsa (or GATE_EVIDENCE=vsa) to admit by attached VSAs alone"
        ) from None


@dataclass(frozen=True)
class VsaResult:
    """What admission saw of one image's attached VSA (``input.gate.images[].vsa``)."""

    passed: bool
    #: one line: why it passed or did not
    reason: str
    #: the check could not be made (registry unreachable, timeout, bad reference): not a verdict on the image
    error: bool = False
    decision_id: str | None = None
    key_id: str | None = None
    time_verified: str | None = None
    policy_digest: str | None = None
    #: where the VSA that decided was found (``REPO@sha256:…`` of the attestation, or the .att tag)
    attestation: str | None = None

    def as_input(self) -> dict[str, Any]:
        """The mapping the admission rules see."""
        return {
            "passed": self.passed, "reason": self.reason, "error": self.error, "decision_id": self.decision_id,
            "key_id": self.key_id, "time_verified": self.time_verified, "policy_digest": self.policy_digest,
            "attestation": self.attestation,
        }


#: verify(reference, environment, trusted keys, now, max_age) -> VsaResult; gate.attestation by default
Verifier = Callable[[str, str, Any, datetime, timedelta], VsaResult]


class VsaEvidence:
    """Verifies the VSA attached to an image (``REPO@sha256:…``) for one environment.

    Each image is verified on a thread of its own, the images of a batch at once, and waited for at most
    ``timeout`` seconds in all: a registry that hangs blocks the image ("could not be fetched within"),
    never the webhook. A PASSED result is
    reused for ``ttl`` seconds (never past the moment the VSA turns stale); a fail or an error is
    never reused, so an image whose VSA is attached a moment later is admitted on the next try.
    """

    def __init__(
        self,
        environment: str,
        trusted: Any,
        *,
        max_age: timedelta = DEFAULT_VSA_MAX_AGE,
        timeout: float = VSA_TIMEOUT,
        ttl: float = PASS_TTL,
        verifier: Verifier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.environment = environment
        self.max_age = max_age
        self._trusted = trusted
        self._timeout = timeout
        self._ttl = ttl
        # each registry request bounded a little past the wait: the wait's own reason wins the race, and a
        # fetch no longer waited for ends a second later instead of running on for minutes
        self._verifier = verifier or functools.partial(verify_attached, timeout=timeout + 1.0)
        self._clock = clock
        self._passes: OrderedDict[str, tuple[float, VsaResult]] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[VsaResult]] = {}
        #: VSA verifications started (cache misses not joining one in flight)
        self.fetches = 0

    def check(self, reference: str, now: datetime) -> VsaResult:
        """The VSA verdict for ``reference`` (an image pinned by digest) at ``now``."""
        return self.check_all([reference], now)[reference]

    def check_all(self, references: Sequence[str], now: datetime) -> dict[str, VsaResult]:
        """The verdicts for ``references``: passes from the cache, the others fetched at once (a thread each;
        a reference already being fetched joins that fetch, so a hung registry holds one thread per image,
        not one per request), all waited for within one ``timeout``."""
        results: dict[str, VsaResult] = {}
        pending: dict[str, Future[VsaResult]] = {}
        with self._lock:
            for reference in dict.fromkeys(references):
                cached = self._passes.get(reference)
                if cached is not None and cached[0] > self._clock():
                    self._passes.move_to_end(reference)
                    results[reference] = cached[1]
                    continue
                self._passes.pop(reference, None)
                future = self._inflight.get(reference)
                if future is None or future.done():  # a finished fetch is never reused: only passes are
                    future = self._inflight[reference] = self._start(reference, now)
                pending[reference] = future
        deadline = time.monotonic() + self._timeout
        for reference, future in pending.items():
            result = self._outcome(reference, future, max(0.0, deadline - time.monotonic()))
            if result.passed and not result.error:
                self._remember(reference, result, now)
            results[reference] = result
        return {reference: results[reference] for reference in references}

    def _start(self, reference: str, now: datetime) -> Future[VsaResult]:
        """Fetch and verify ``reference`` on a thread of its own; its future."""
        self.fetches += 1
        future: Future[VsaResult] = Future()

        def run() -> None:
            try:
                future.set_result(self._verifier(reference, self.environment, self._trusted, now, self.max_age))
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread, which fails closed
                future.set_exception(e)
            finally:
                with self._lock:
                    if self._inflight.get(reference) is future:
                        del self._inflight[reference]

        threading.Thread(target=run, name="gate-vsa-fetch", daemon=True).start()
        return future

    def _outcome(self, reference: str, future: Future[VsaResult], wait: float) -> VsaResult:
        """The fetch's verdict, or a not-passed error result: it failed, or took longer than ``wait``."""
        try:
            return future.result(wait)
        except FutureTimeout:
            return VsaResult(False, f"the VSA of {reference} could not be fetched within {self._timeout:g} s", error=True)
        except GateError as e:
            return VsaResult(False, f"the VSA of {reference} could not be checked: {e.diagnostics()}", error=True)
        except Exception as e:  # noqa: BLE001 - a bug in a verifier must block, not admit
            logger.debug("VSA check of %s failed", reference, exc_info=e)
            return VsaResult(False, f"the VSA of {reference} could not be checked: internal error ({type(e).__name__})",
                             error=True)

    def _remember(self, reference: str, result: VsaResult, now: datetime) -> None:
        ttl = self._ttl
        if result.time_verified is not None:  # never reuse a pass past the moment it turns stale
            from gate import rfc3339

            try:
                left = (rfc3339.parse(result.time_verified) + self.max_age - now).total_seconds()
            except rfc3339.TimeFormatError:
                return
            ttl = min(ttl, left)
        if ttl <= 0:
            return
        with self._lock:
            self._passes[reference] = (self._clock() + ttl, result)
            while len(self._passes) > CACHE_SIZE:
                self._passes.popitem(last=False)


def verify_attached(
    reference: str, environment: str, trusted: Any, now: datetime, max_age: timedelta, timeout: float = VSA_TIMEOUT
) -> VsaResult:
    """gate.attestation's verdict on the VSA attached to ``reference``, as admission sees it."""
    from gate.attestation.verify import verify_image

    check = verify_image(reference, environment, trusted, now, max_age, timeout=timeout)
    return VsaResult(
        passed=bool(check.passed), reason=str(check.reason), decision_id=check.decision_id, key_id=check.key_id,
        time_verified=_text(check.time_verified), policy_digest=check.policy_digest,
        attestation=_text(check.attestation),
    )


def _text(value: Any) -> str | None:
    """A string field of a check, a datetime as RFC 3339; None stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        from gate import rfc3339

        return rfc3339.format(value)
    return str(value)
