"""Which attached VSA counts for an image in an environment, and whether it lets the image through.

Rules (``judge``), for the image ``REPO@sha256:D`` and environment E:

1. every envelope found is checked with gate.dsse against the trusted keys; unreadable, untrusted or
   badly signed ones are ignored (and counted in the reason when nothing valid is left);
2. the statement must be an in-toto Statement v1 with an SLSA VSA v1 predicate carrying gate's decision;
3. its subject digest must be D and its ``resourceUri`` must name REPO@D (a tag beside the digest is
   fine): a VSA copied from another image, or from another repository, does not count;
4. its verifier id must be the one gate is configured with;
5. its environment must be exactly E (``dev`` is not ``Dev``);
6. of what is left, the **newest** (``timeVerified``) decides — a newer FAILED supersedes an older
   PASSED; on a tie FAILED wins — and it must be PASSED, dated no later than now (plus a small clock
   skew), no older than ``max_age`` and, when the decision rested on waivers, not past the earliest of
   their expiries (``triageExpires``).

No VSA left: not passed, and the reason says so. The registry unreachable: ``verify_image`` raises
(RegistryError): callers block.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate import dsse, rfc3339
from gate.attestation.oci import Candidate
from gate.attestation.vsa import FAILED, PASSED, AttestationError, VsaFacts, configured_verifier_id, read_statement
from gate.environments import NAME as ENVIRONMENT_NAME
from gate.environments import quoted
from gate.errors import UsageError
from gate.imageref import canonical, parse, require_digest

#: a VSA older than this does not count, unless the caller says otherwise
DEFAULT_MAX_AGE = timedelta(days=30)
#: how far in the future a timeVerified may be (clocks of signer and verifier differ a little)
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class VsaCheck:
    """The verdict on one image for one environment, from its attached VSAs."""

    passed: bool
    #: one line: why (passed or not)
    reason: str
    image: str
    environment: str
    decision_id: str | None = None
    #: the trusted key that signed the deciding VSA
    key_id: str | None = None
    #: RFC 3339
    time_verified: str | None = None
    #: PASSED or FAILED: the deciding VSA's verificationResult
    result: str | None = None
    policy_digest: str | None = None
    #: where the deciding VSA was found (referrer manifest, or .att tag and layer)
    attestation: str | None = None
    #: envelopes found attached to the image
    found: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The check as ``--format json`` prints it."""
        return asdict(self)


@dataclass(frozen=True)
class _Valid:
    facts: VsaFacts
    key_id: str
    where: str


def verify_image(
    reference: str,
    environment: str,
    trusted: Mapping[str, Ed25519PublicKey],
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    *,
    verifier_id: str | None = None,
    timeout: float | None = None,
) -> VsaCheck:
    """Fetch the envelopes attached to ``reference`` (``REPO@sha256:D``) and ``judge`` them (each registry
    request within ``timeout`` seconds, when given).

    Raises UsageError for a reference that is not pinned by digest or an environment that is not an
    environment name, RegistryError when the registry cannot be read, AttestationError when it holds
    more attestations than a verifier reads."""
    from gate.attestation.oci import fetch

    require_digest(reference, "image")
    _require_environment(environment)
    return judge(reference, fetch(reference, timeout), environment, trusted, now, max_age, verifier_id=verifier_id)


def _require_environment(environment: str) -> None:
    if not isinstance(environment, str) or not ENVIRONMENT_NAME.fullmatch(environment):
        raise UsageError(f"environment {quoted(str(environment))} is not an environment name")


def judge(
    reference: str,
    candidates: Sequence[Candidate],
    environment: str,
    trusted: Mapping[str, Ed25519PublicKey],
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    *,
    verifier_id: str | None = None,
) -> VsaCheck:
    """The verdict on ``reference`` for ``environment`` from envelopes already fetched (``oci.fetch``,
    or a cache of them): the rules in this module's docstring. ``verifier_id`` None: the configured one
    (gate.attestation.vsa.configured_verifier_id). Pure: no registry, no clock unless ``now`` is None."""
    ref = require_digest(reference, "image")
    _require_environment(environment)
    now = now or datetime.now(UTC)
    verifier_id = verifier_id or configured_verifier_id()
    ignored: Counter[str] = Counter()
    valid: list[_Valid] = []
    for candidate in candidates:
        if candidate.problem is not None or candidate.envelope is None:
            ignored["unreadable"] += 1
            continue
        try:
            payload, key_id = dsse.verify(candidate.envelope, trusted)
        except dsse.EnvelopeError:
            ignored["not signed by a trusted key"] += 1
            continue
        try:
            facts = read_statement(payload)
        except AttestationError:
            ignored["not a gate VSA"] += 1
            continue
        if facts.subject_digest != ref.digest or not _names(facts, ref.name, ref.digest):
            ignored["about another image"] += 1
            continue
        if facts.verifier_id != verifier_id:
            ignored["by another verifier"] += 1
            continue
        if facts.environment != environment:
            ignored["for another environment"] += 1
            continue
        valid.append(_Valid(facts, key_id, candidate.where))
    base = VsaCheck(False, "", reference, environment, found=len(candidates))
    if not valid:
        why = f"no valid VSA for environment {environment} is attached to {ref.name}@{ref.digest}"
        return replace(base, reason=why + _ignored(ignored))
    # newest first; on equal times FAILED first
    valid.sort(key=lambda v: (v.facts.time_verified, v.facts.result == FAILED), reverse=True)
    newest = valid[0]
    facts = newest.facts
    at = rfc3339.format(facts.time_verified)
    deciding = replace(
        base, decision_id=facts.decision_id, key_id=newest.key_id, time_verified=at, result=facts.result,
        policy_digest=facts.policy_digest, attestation=newest.where,
    )
    about = f"the newest VSA for {environment} (decision {facts.decision_id}, verified {at})"
    if facts.result != PASSED:
        return replace(deciding, reason=f"{about} is {facts.result}")
    if facts.time_verified > now + CLOCK_SKEW:
        return replace(deciding, reason=f"{about} is dated in the future")
    if now - facts.time_verified > max_age:
        age = int((now - facts.time_verified).total_seconds() // 86400)
        return replace(deciding, reason=f"{about} is {age} day(s) old, older than {_days(max_age)}")
    if facts.triage_expires is not None and now >= facts.triage_expires:
        expired = rfc3339.format(facts.triage_expires, microseconds=False)
        return replace(deciding, reason=f"{about} rests on a waiver that expired at {expired}")
    return replace(deciding, passed=True, reason=f"{about} is PASSED, signed by {newest.key_id}")


def _names(facts: VsaFacts, name: str, digest: str | None) -> bool:
    """Whether the VSA's subject name and resourceUri name the repository ``name`` at ``digest``."""
    if canonical(facts.subject_name) != name:
        return False
    try:
        uri = parse(facts.resource_uri, "resourceUri")
    except UsageError:
        return False
    return uri.name == name and uri.digest == digest


def _ignored(counts: Counter[str]) -> str:
    if not counts:
        return ""
    return " (ignored: " + ", ".join(f"{n} {why}" for why, n in sorted(counts.items())) + ")"


def _days(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds}s"


__all__ = ["CLOCK_SKEW", "DEFAULT_MAX_AGE", "VsaCheck", "judge", "verify_image"]
