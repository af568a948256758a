"""The VSA gate signs for each decision: an in-toto Statement v1, predicate SLSA VSA v1, in DSSE.

The statement (https://slsa.dev/spec/v1.0/verification_summary):

- ``subject``: the image, ``[{"name": "<registry>/<repository>", "digest": {"sha256": "<hex>"}}]``;
- ``predicate.verifier``: ``{"id": <verifier id>, "version": {"promotion-gate": <gate's version>}}``;
- ``timeVerified`` (RFC 3339, gate.rfc3339), ``resourceUri`` (``<registry>/<repository>@sha256:<hex>``);
- ``policy``: ``{"uri": <the --policy layers>, "digest": {"sha256": <bundle digest hex>}}``;
- ``inputAttestations``: one per scanner report, ``{"uri": "<scanner>:<report>", "digest": {"sha256": ...}}``;
- ``verificationResult``: ``PASSED`` for an allow, ``FAILED`` for a deny or an error;
- ``verifiedLevels``: ``["PROMOTION_GATE_ALLOW"]`` (a custom level: the spec reserves ``SLSA_`` for its own),
  or ``["FAILED"]``;
- gate's decision as an extension field named by a URI (the spec lets producers add fields so named, and
  consumers ignore fields they do not know): ``decisionId``, ``environment``, ``outcome``, ``recordHash``,
  ``policyRevision`` and, when the decision applied waivers, ``triageExpires``: the earliest of their
  expiries. The environment is read back from here: verifiers check it, and a PASSED VSA does not pass
  after ``triageExpires`` (an allow that rests on a waiver ends with it, even where the log is not seen).

The in-toto-attestation package's protobuf model of the VSA still types ``verifiedLevels`` as one string
(in-toto/attestation#425; its maintainers hold the specification authoritative), so gate follows the
specification: an array.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gate import dsse, rfc3339
from gate.decisions.record import Decision, Outcome
from gate.environments import NAME as ENVIRONMENT_NAME
from gate.errors import GateError
from gate.imageref import DIGEST, parse
from gate.version import __version__

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1"
#: who verified, unless gate is configured otherwise (verifiers compare it exactly)
DEFAULT_VERIFIER_ID = "https://github.com/promotion-gate/gate"
#: the extension field carrying gate's decision (a URI, as the VSA's parsing rules ask of extensions)
DECISION_FIELD = "https://github.com/promotion-gate/gate/vsa/decision/v1"
PASSED = "PASSED"
FAILED = "FAILED"
#: the level a PASSED VSA states: a custom one (not SLSA_*): gate judges policy, not SLSA build levels
PASSED_LEVEL = "PROMOTION_GATE_ALLOW"


class AttestationError(GateError):
    """A VSA cannot be built, signed, attached or read."""


@dataclass(frozen=True)
class VsaFacts:
    """What a signed VSA statement says, read back and checked for shape (not for trust)."""

    subject_name: str
    #: ``sha256:<hex>``
    subject_digest: str
    resource_uri: str
    verifier_id: str
    time_verified: datetime
    #: PASSED or FAILED
    result: str
    environment: str
    decision_id: str
    #: ``sha256:<hex>`` of the policy bundle
    policy_digest: str | None
    record_hash: str | None
    #: the earliest expiry of the waivers the decision applied: the VSA does not pass from then on
    triage_expires: datetime | None = None


def configured_verifier_id() -> str:
    """The verifier id of this installation: GATE_VSA_VERIFIER_ID, else ``attestation.verifier_id`` in
    gate.toml, else DEFAULT_VERIFIER_ID."""
    from gate import settings

    configured = settings.current().env("GATE_VSA_VERIFIER_ID")
    if configured is None:
        return DEFAULT_VERIFIER_ID
    if not configured.strip() or any(c.isspace() for c in configured):
        raise AttestationError(
            f"{settings.current().source('GATE_VSA_VERIFIER_ID')}: the verifier id must be a URI without spaces"
        )
    return configured


def _hex(digest: str, what: str) -> str:
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise AttestationError(f"{what} {digest!r} is not sha256:<64 hex digits>")
    return digest.split(":", 1)[1]


def statement(
    decision: Decision,
    *,
    verifier_id: str | None = None,
    time_verified: datetime,
    image: str | None = None,
) -> dict[str, Any]:
    """The in-toto Statement v1 with the VSA v1 predicate for ``decision``; ``verifier_id`` None: the
    configured one (``configured_verifier_id``).

    ``image`` (``REPO@sha256:D``, default the decision's artifact) is the repository the VSA names —
    promote passes the release repository; its digest must be the decision's.
    """
    artifact = decision.artifact or {}
    if image is None:
        if not artifact.get("image") or not artifact.get("digest"):
            raise AttestationError(f"decision {decision.decision_id} names no image: a VSA needs one")
        image = f"{artifact['image']}@{artifact['digest']}"
    ref = parse(image, "VSA image")
    if ref.digest is None:
        raise AttestationError(f"VSA image {image!r} is not pinned by digest")
    if artifact.get("digest") and artifact["digest"] != ref.digest:
        raise AttestationError(
            f"decision {decision.decision_id} is about {artifact['digest']}, not {ref.digest}: no VSA for another digest"
        )
    hex_digest = _hex(ref.digest, "image digest")
    policy: dict[str, Any] = {"uri": decision.policy.bundle or "gate:library"}
    if decision.policy.digest and DIGEST.fullmatch(decision.policy.digest):
        policy["digest"] = {"sha256": _hex(decision.policy.digest, "policy digest")}
    inputs = _inputs(decision)
    passed = decision.outcome == Outcome.ALLOW
    extension: dict[str, Any] = {
        "decisionId": decision.decision_id,
        "environment": decision.environment,
        "outcome": str(decision.outcome),
    }
    if decision.hash:
        extension["recordHash"] = decision.hash
    if decision.policy.revision:
        extension["policyRevision"] = decision.policy.revision
    expiries = [rfc3339.parse(w.expires) for w in decision.waivers if w.expires and not w.is_vex]
    if expiries:
        extension["triageExpires"] = rfc3339.format(min(expiries))
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": ref.name, "digest": {"sha256": hex_digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verifier": {"id": verifier_id or configured_verifier_id(), "version": {"promotion-gate": __version__}},
            "timeVerified": rfc3339.format(time_verified),
            "resourceUri": f"{ref.name}@{ref.digest}",
            "policy": policy,
            "inputAttestations": inputs,
            "verificationResult": PASSED if passed else FAILED,
            "verifiedLevels": [PASSED_LEVEL] if passed else [FAILED],
            DECISION_FIELD: extension,
        },
    }


def _inputs(decision: Decision) -> list[dict[str, Any]]:
    """One input attestation per scanner report: ``<scanner>:<report>`` (the report's name as the input
    document keeps it) and its sha256."""
    reports: dict[str, str] = {}
    scanners = decision.input.get("scanners") if isinstance(decision.input, dict) else None
    for entry in scanners if isinstance(scanners, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("report_sha256"), str) and entry.get("report"):
            reports.setdefault(entry["report_sha256"], str(entry["report"]))
    inputs = []
    for scanner in decision.scanners:
        report = scanner.get("report_sha256")
        if not isinstance(report, str) or not report:
            continue
        value = report.split(":", 1)[1] if report.startswith("sha256:") else report
        name = str(scanner.get("name") or "report")
        where = reports.get(report)
        inputs.append({"uri": f"{name}:{where}" if where else name, "digest": {"sha256": value}})
    return inputs


def payload(statement_: Mapping[str, Any]) -> bytes:
    """The statement's bytes as signed: compact JSON, keys sorted, UTF-8."""
    return json.dumps(statement_, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(statement_: Mapping[str, Any], signer: Any) -> dict[str, Any]:
    """A DSSE envelope (payload type in-toto) carrying ``statement_``, signed by ``signer``
    (gate.decisions.signing.Ed25519Signer: ``key_id`` and ``sign_bytes``)."""
    return dsse.sign(payload(statement_), dsse.IN_TOTO, signer.key_id, signer.sign_bytes)


def envelope_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The envelope as stored in a registry: compact JSON."""
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _field(mapping: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise AttestationError(f"VSA: {what} is missing or not a {'string' if kind is str else 'JSON object'}")
    return value


def read_statement(data: bytes) -> VsaFacts:
    """The facts of a VSA statement (the payload of a verified envelope); AttestationError when it is
    not a one-subject in-toto Statement v1 with an SLSA VSA v1 predicate carrying gate's decision."""
    if len(data) > dsse.MAX_ENVELOPE_BYTES:
        raise AttestationError("VSA: statement is too large")
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise AttestationError("VSA: statement is not JSON") from None
    if not isinstance(document, dict):
        raise AttestationError("VSA: statement is not a JSON object")
    if document.get("_type") != STATEMENT_TYPE:
        raise AttestationError(f"VSA: statement type is {str(document.get('_type'))[:80]!r}, expected {STATEMENT_TYPE}")
    if document.get("predicateType") != PREDICATE_TYPE:
        raise AttestationError(f"VSA: predicate type is {str(document.get('predicateType'))[:80]!r}, expected {PREDICATE_TYPE}")
    subjects = document.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise AttestationError("VSA: statement must have exactly one subject")
    subject = subjects[0]
    name = _field(subject, "name", str, "subject name")
    digests = _field(subject, "digest", dict, "subject digest")
    hex_digest = digests.get("sha256")
    if not isinstance(hex_digest, str) or not DIGEST.fullmatch(f"sha256:{hex_digest}"):
        raise AttestationError("VSA: subject has no sha256 digest")
    predicate = _field(document, "predicate", dict, "predicate")
    verifier = _field(predicate, "verifier", dict, "verifier")
    verifier_id = _field(verifier, "id", str, "verifier.id")
    try:
        time_verified = rfc3339.parse(_field(predicate, "timeVerified", str, "timeVerified"))
    except rfc3339.TimeFormatError as e:
        raise AttestationError(f"VSA: timeVerified: {e}") from None
    resource_uri = _field(predicate, "resourceUri", str, "resourceUri")
    result = predicate.get("verificationResult")
    if result not in (PASSED, FAILED):
        raise AttestationError(f"VSA: verificationResult is {str(result)[:40]!r}, expected PASSED or FAILED")
    extension = _field(predicate, DECISION_FIELD, dict, f"{DECISION_FIELD} (gate's decision)")
    environment = _field(extension, "environment", str, "the decision's environment")
    if not ENVIRONMENT_NAME.fullmatch(environment):
        raise AttestationError(f"VSA: environment {environment[:80]!r} is not an environment name")
    decision_id = _field(extension, "decisionId", str, "the decision id")
    policy = predicate.get("policy")
    policy_digest = None
    if isinstance(policy, dict) and isinstance(policy.get("digest"), dict):
        value = policy["digest"].get("sha256")
        if isinstance(value, str) and DIGEST.fullmatch(f"sha256:{value}"):
            policy_digest = f"sha256:{value}"
    record_hash = extension.get("recordHash")
    triage_expires = None
    if "triageExpires" in extension:
        try:
            triage_expires = rfc3339.parse(_field(extension, "triageExpires", str, "the waivers' earliest expiry"))
        except rfc3339.TimeFormatError as e:
            raise AttestationError(f"VSA: triageExpires: {e}") from None
    return VsaFacts(
        subject_name=name,
        subject_digest=f"sha256:{hex_digest}",
        resource_uri=resource_uri,
        verifier_id=verifier_id,
        time_verified=time_verified,
        result=str(result),
        environment=environment,
        decision_id=decision_id[:200],
        policy_digest=policy_digest,
        record_hash=record_hash if isinstance(record_hash, str) else None,
        triage_expires=triage_expires,
    )


__all__ = [
    "DECISION_FIELD",
    "DEFAULT_VERIFIER_ID",
    "FAILED",
    "PASSED",
    "PASSED_LEVEL",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "AttestationError",
    "VsaFacts",
    "configured_verifier_id",
    "envelope_bytes",
    "payload",
    "read_statement",
    "sign",
    "statement",
]
