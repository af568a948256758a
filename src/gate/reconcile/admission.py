"""The admission re-check of ``gate reconcile``: may this object be applied to this environment?

Before the reconciler applies an object from the GitOps repository, gate builds an
AdmissionReview-shaped input for it (policies/README.md, "Admission input") and evaluates the
``gate.admission`` rules of the same policy bundle on it. What gate adds under ``input.gate`` is
what the rules cannot find out themselves: for every container image, whether it is pinned by
digest, and the newest decisions for that digest in this environment from the decision log —
each with its record hash and Ed25519 signature verified against the trusted keys, its age, its
waivers, and (for the newest, when it is an allow) the outcome of replaying its stored input under
today's ``gate.promotion`` policy.

Fail closed: a bundle that does not compile, an engine failure or no admission rule evaluated is a
``PolicyError``; a decision log that cannot be read is a ``StoreError``. The caller blocks the
object in either case. A replay that fails is not an error of the check: it is data
(``replay.outcome == "error"``), and the shipped rules deny on it.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import msgspec

from gate.decisions.record import Decision, Outcome, Violation, rfc3339, sha256_digest
from gate.decisions.replay import input_at
from gate.decisions.verify import hash_problem, input_problem
from gate.decisions.signing import TrustedKeys, load_trusted_keys, verify_signature
from gate.decisions.store import DecisionQuery, DecisionStore, StoreError
from gate.errors import GateError, PolicyError
from gate.evaluation import LoadedPolicy, load_policy
from gate.models import Severity
from gate.policy.bundle import merge_data
from gate.policy.embedded import EmbeddedEngine, policy_timeout, regorus_message, run_with_deadline
from gate.policy.interface import PROMOTION_ROOT
from gate.policy.waivers import validate_waivers
from gate.reconcile.images import workload_images

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

logger = logging.getLogger(__name__)

#: The document every admission verdict is read from.
ADMISSION_ROOT = "gate.admission"
#: Who applies the objects, as the request's userInfo says (the reconciler's service account).
DEFAULT_USER: dict[str, Any] = {"username": "system:serviceaccount:gate-system:gate"}
#: Decisions looked up per image digest (newest first); the newest is the one that counts.
DECISIONS_PER_IMAGE = 5

_PINNED = re.compile(r"@(sha256:[0-9a-f]{64})$")
_SEVERITIES = {s.value for s in Severity}
_RANK = {s.value: s.rank for s in Severity}
#: evaluate replays without postponing any deny: whether a rule is in force is the admission policy's call
_NEVER = datetime.max.replace(tzinfo=UTC)
#: the replay of a record whose stored input was edited: an edited input is never evaluated
_NOT_REPLAYED: dict[str, Any] = {
    "outcome": "error",
    "violations": [],
    "warnings": [],
    "error": "its stored input no longer hashes to its input_digest: not replayed",
}


@dataclass(frozen=True)
class Verdict:
    """What the admission rules said about one object."""

    #: ``apply`` or ``blocked``
    action: str
    #: the deny messages (none when the object may be applied)
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    #: the newest decision of each image, in image order (for annotations and the sync record)
    decision_ids: tuple[str, ...]
    #: per container: ``container``, ``image``, ``digest`` (None when unpinned), ``decision_id`` (None when none)
    images: tuple[dict[str, Any], ...]
    #: the deny results behind ``reasons``, with rule ids, severities and solutions
    violations: tuple[Violation, ...] = ()
    #: the warn results behind ``warnings``
    warning_results: tuple[Violation, ...] = ()

    @property
    def blocked(self) -> bool:
        """True when the object must not be applied."""
        return self.action == "blocked"


class AdmissionChecker:
    """Re-checks objects for one environment against one policy bundle and one decision log.

    The bundle is compiled once (twice: one engine for the admission rules with today's data, one
    for replays, whose data changes with each record's own ``--data``). Replays are cached by the
    record's input digest, its data and the minute they are judged at, so hundreds of workloads
    running one image cost one replay. Decisions are looked up afresh on every ``check``.
    """

    def __init__(
        self,
        policy_dir: Path,
        environment: str,
        store: DecisionStore,
        *,
        data_files: Sequence[Path] = (),
        trusted_keys: TrustedKeys | dict[str, Ed25519PublicKey] | None = None,
        now: datetime | None = None,
        user: dict[str, Any] | None = None,
    ) -> None:
        self.environment = environment
        self._store = store
        if trusted_keys is None:
            trusted_keys = load_trusted_keys()
        self._trusted = trusted_keys.keys if isinstance(trusted_keys, TrustedKeys) else dict(trusted_keys)
        self._now = now
        self._user = dict(user) if user is not None else dict(DEFAULT_USER)
        #: decision lookups made (one per distinct image digest per check)
        self.lookups = 0
        #: replays evaluated (cache misses)
        self.replays = 0
        self._policy: LoadedPolicy = load_policy(Path(policy_dir), [str(p) for p in data_files], EmbeddedEngine())
        self._replayer = EmbeddedEngine()
        self._replayer.load(self._policy.bundle, self._policy.data)
        self._replay_data_key = sha256_digest({})
        self._replays: dict[tuple[str, str, str], dict[str, Any]] = {}
        #: replays waiting for the next _run_replays: key -> (decision, time, entries to fill)
        self._queued: dict[tuple[str, str, str], tuple[Decision, datetime, list[dict[str, Any]]]] = {}

    @property
    def policy_digest(self) -> str:
        """The digest of the bundle the checks run under."""
        return self._policy.bundle.digest

    # --- entry points ---------------------------------------------------------------------------

    def check(self, obj: dict[str, Any], old_obj: dict[str, Any] | None = None, commit: dict[str, Any] | None = None) -> Verdict:
        """The verdict on applying ``obj`` (replacing ``old_obj``, when the cluster has it) from ``commit``."""
        return self.verdict(self.input_for(obj, old_obj, commit))

    def check_many(
        self, objects: Sequence[tuple[dict[str, Any], dict[str, Any] | None]], commit: dict[str, Any] | None = None
    ) -> list[Verdict]:
        """The verdicts on applying each ``(obj, old_obj)`` of one commit, in order.

        Same answers as ``check`` one by one, but the decisions for each digest are read once for
        the batch, and every object is judged in one engine run: the embedded engine forks a child
        per run (so a runaway policy can be killed), and the fork costs more than judging an object.
        """
        now = self._moment()
        found: dict[str, list[dict[str, Any]]] = {}  # one time and one lookup per digest for the whole batch
        inputs = [
            {"request": self.request_for(obj, old_obj), "gate": self._gate_part(obj, now, commit, found)}
            for obj, old_obj in objects
        ]
        self._run_replays()
        return self.verdicts(inputs)

    def input_for(
        self, obj: dict[str, Any], old_obj: dict[str, Any] | None = None, commit: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The admission input for applying ``obj``: what ``check`` evaluates."""
        document = {"request": self.request_for(obj, old_obj), "gate": self._gate_part(obj, self._moment(), commit)}
        self._run_replays()
        return document

    def review_input(self, request: dict[str, Any], commit: dict[str, Any] | None = None) -> dict[str, Any]:
        """The admission input for the ``request`` of an AdmissionReview a webhook received."""
        obj = request.get("object")
        obj = obj if isinstance(obj, dict) else {}
        if "kind" not in obj:  # bare requests may carry the kind beside the object only
            kind = request.get("kind")
            if isinstance(kind, dict) and isinstance(kind.get("kind"), str):
                obj = {**obj, "kind": kind["kind"]}
        document = {"request": request, "gate": self._gate_part(obj, self._moment(), commit)}
        self._run_replays()
        return document

    def check_review(self, request: dict[str, Any], commit: dict[str, Any] | None = None) -> Verdict:
        """The verdict on the ``request`` of an AdmissionReview."""
        return self.verdict(self.review_input(request, commit))

    def request_for(self, obj: dict[str, Any], old_obj: dict[str, Any] | None = None) -> dict[str, Any]:
        """The AdmissionRequest the API server would send for applying ``obj``."""
        api_version = str(obj.get("apiVersion") or "")
        group, _, version = api_version.rpartition("/")
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        return {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": str(obj.get("kind") or "")},
            "namespace": metadata.get("namespace"),
            "name": metadata.get("name"),
            "operation": "UPDATE" if old_obj is not None else "CREATE",
            "object": obj,
            "oldObject": old_obj,
            "userInfo": self._user,
            "dryRun": False,
        }

    # --- input.gate -------------------------------------------------------------------------------

    def _moment(self) -> datetime:
        return self._now if self._now is not None else datetime.now(UTC)

    def _gate_part(
        self,
        obj: dict[str, Any],
        now: datetime,
        commit: dict[str, Any] | None,
        found: dict[str, list[dict[str, Any]]] | None = None,
    ) -> dict[str, Any]:
        """``input.gate`` for ``obj``; ``found`` shares decision lookups by digest between objects."""
        found = {} if found is None else found
        images = []
        for container, ref in workload_images(obj):
            match = _PINNED.search(ref)
            digest = match.group(1) if match else None
            decisions: list[dict[str, Any]] = []
            if digest is not None:
                if digest not in found:
                    found[digest] = self._decisions(digest, now)
                decisions = found[digest]
            images.append({"container": container, "image": ref, "pinned": digest is not None, "digest": digest, "decisions": decisions})
        return {"environment": self.environment, "now": rfc3339(now), "commit": commit, "images": images}

    def _decisions(self, digest: str, now: datetime) -> list[dict[str, Any]]:
        """The newest decisions for ``digest`` in this environment, as the rules see them."""
        self.lookups += 1
        query = DecisionQuery(digest=digest, environment=self.environment, limit=DECISIONS_PER_IMAGE)
        records = self._store.query(query)
        try:
            stored = list(_read(records, self._store.location))
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()
        entries = []
        for index, decision in enumerate(stored):
            # The record hash covers input_digest; the input itself is re-hashed for the newest
            # decision only, the one that is replayed and relied on.
            input_ok = index > 0 or input_problem(decision) is None
            problem = hash_problem(decision) or (None if input_ok else input_problem(decision)) or verify_signature(
                decision, self._trusted
            )
            trusted_key = bool(decision.signing_key) and decision.signing_key in self._trusted
            entry = _entry(decision, now, problem, trusted_key)
            if index == 0 and decision.outcome is Outcome.ALLOW:
                if input_ok:
                    self._replay_later(decision, now, entry)
                else:
                    entry["replay"] = _NOT_REPLAYED
            entries.append(entry)
        return entries

    # --- replay under today's policy ----------------------------------------------------------------

    def _replay_later(self, decision: Decision, now: datetime, entry: dict[str, Any]) -> None:
        """Fill ``entry["replay"]`` with ``decision``'s stored input re-decided under today's promotion
        policy at ``now``: from the cache, or by the next ``_run_replays``.

        Data: the bundle's, then the ``--data`` the record was decided with (its waivers and
        thresholds), then this checker's ``data_files`` (today's word wins).
        """
        at = now if self._now is not None else now.replace(second=0, microsecond=0)
        recorded = decision.data or {}
        key = (decision.input_digest, sha256_digest(recorded), rfc3339(at))
        if self._replays and key[2] != next(iter(self._replays))[2]:
            self._replays.clear()  # judged at another time: those entries can never be hit again
        cached = self._replays.get(key)
        if cached is not None:
            entry["replay"] = cached
            return
        if key not in self._queued:
            self._queued[key] = (decision, at, [])
        self._queued[key][2].append(entry)

    def _run_replays(self) -> None:
        """Evaluate the queued replays: one engine run per set of recorded data (most share one), since
        the embedded engine forks a child per run and the fork costs more than a replay."""
        queued, self._queued = self._queued, {}
        groups: dict[str, list[tuple[tuple[str, str, str], Decision, datetime]]] = {}
        for key, (decision, at, _) in queued.items():
            groups.setdefault(key[1], []).append((key, decision, at))  # key[1]: the recorded data's digest
        for data_key, jobs in groups.items():
            for key, replay in zip([k for k, _, _ in jobs], self._replay_group(data_key, jobs)):
                self._replays[key] = replay
                for entry in queued[key][2]:
                    entry["replay"] = replay

    def _replay_group(self, data_key: str, jobs: list[tuple[tuple[str, str, str], Decision, datetime]]) -> list[dict[str, Any]]:
        """Replays of decisions recorded with the same data, in one engine run (each on its own on failure,
        so one bad record cannot fail the others)."""
        self.replays += len(jobs)
        try:
            if data_key != self._replay_data_key:
                recorded = jobs[0][1].data or {}
                data = merge_data(merge_data(self._policy.bundle.data, recorded), self._policy.extra_data)
                validate_waivers(data)
                self._replayer.set_data(data)
                self._replay_data_key = data_key
            inputs = [input_at(decision, at)[0] for _, decision, at in jobs]
            documents = _evaluate_all(self._replayer, inputs, PROMOTION_ROOT)
            return [self._replayed(document, at) for document, (_, _, at) in zip(documents, jobs)]
        except (GateError, TypeError) as e:  # TypeError: a rule's effective_on the engine cannot compare
            self._replay_data_key = ""  # the engine's data is unknown after a failure
            if len(jobs) > 1:
                return [self._replay_group(data_key, [job])[0] for job in jobs]
            problem = e.diagnostics() if isinstance(e, GateError) else f"policy evaluation failed: {e}"
            logger.debug("replay of %s failed: %s", jobs[0][1].decision_id, problem)
            return [{"outcome": "error", "violations": [], "warnings": [], "error": problem}]

    def _replayed(self, document: Any, at: datetime) -> dict[str, Any]:
        """A replay's outcome from the promotion document the engine returned."""
        from gate.policy.evaluate import promotion_result

        # _NEVER: every deny stays a violation, with its rule's effective_on for the admission rules to judge
        result = promotion_result(document, self._policy.metadata, _NEVER)
        violations = [_violation_entry(v) for v in result.violations]
        in_force = any(not _pending(v.get("effective_on"), at) for v in violations)
        return {
            "outcome": Outcome.DENY.value if in_force else Outcome.ALLOW.value,
            "violations": violations,
            "warnings": [_violation_entry(v) for v in result.warnings],
            "error": None,
        }

    # --- the admission rules ------------------------------------------------------------------------

    def verdict(self, policy_input: dict[str, Any]) -> Verdict:
        """Evaluate the ``gate.admission`` rules on an admission input (``input_for``, ``review_input``)."""
        return self.verdicts([policy_input])[0]

    def verdicts(self, inputs: Sequence[dict[str, Any]]) -> list[Verdict]:
        """``verdict`` of each input, evaluated in one engine run."""
        if not inputs:
            return []
        documents = _evaluate_all(cast(EmbeddedEngine, self._policy.engine), [dict(i) for i in inputs])
        return [self._verdict(policy_input, document) for policy_input, document in zip(inputs, documents, strict=True)]

    def _verdict(self, policy_input: dict[str, Any], document: Any) -> Verdict:
        gate = policy_input.get("gate") if isinstance(policy_input.get("gate"), dict) else {}
        now = _parse_time(gate.get("now")) or self._moment()
        packages = _rule_packages(document, ADMISSION_ROOT) if isinstance(document, dict) else []
        if not any("deny" in node or "warn" in node for _, node in packages):
            raise PolicyError(
                f"policy bundle {self._policy.bundle.root}: no deny or warn rule under data.{ADMISSION_ROOT} was evaluated: refusing to admit"
            )
        violations: list[Violation] = []
        warnings: list[Violation] = []
        for package, node in packages:
            for kind in ("deny", "warn"):
                results = node.get(kind, [])
                if not isinstance(results, list):
                    raise PolicyError(f"data.{package}.{kind} must be a set, got {type(results).__name__}")
                for raw in results:
                    v = self._result(raw, package, kind)
                    if kind == "deny" and _pending(v.effective_on, now):
                        warnings.append(msgspec.structs.replace(v, message=f"{v.message} (blocks from {v.effective_on})"))
                    else:
                        (violations if kind == "deny" else warnings).append(v)
        violations.sort(key=_order)
        warnings.sort(key=_order)
        images = tuple(
            {
                "container": image.get("container"),
                "image": image.get("image"),
                "digest": image.get("digest"),
                "decision_id": image["decisions"][0]["decision_id"] if image.get("decisions") else None,
            }
            for image in gate.get("images") or ()
            if isinstance(image, dict)
        )
        ids = tuple(dict.fromkeys(i["decision_id"] for i in images if i["decision_id"]))
        return Verdict(
            action="blocked" if violations else "apply",
            reasons=tuple(v.message for v in violations),
            warnings=tuple(v.message for v in warnings),
            decision_ids=ids,
            images=images,
            violations=tuple(violations),
            warning_results=tuple(warnings),
        )

    def _result(self, raw: Any, package: str, kind: str) -> Violation:
        """One deny/warn result as a Violation, with its rule's annotations."""
        if isinstance(raw, str):
            raw = {"msg": raw}
        if not isinstance(raw, dict) or not isinstance(raw.get("msg"), str):
            raise PolicyError(f"data.{package}.{kind}: each result must be a string or an object with a msg string")
        rule = str(raw.get("rule") or f"{package}.{kind}")
        meta = self._policy.metadata.get((package, rule))
        default = Severity.HIGH.value if kind == "deny" else Severity.MEDIUM.value
        severity = str(raw.get("severity") or (meta.severity if meta else None) or default).lower()
        if severity not in _SEVERITIES:
            raise PolicyError(f"data.{package}.{kind}: rule {rule} has unknown severity {severity!r}")
        return Violation(
            rule=rule,
            message=raw["msg"],
            severity=severity,
            title=(meta.title if meta else None) or raw.get("title"),
            solution=raw.get("solution") or (meta.solution if meta else None),
            package=package,
            effective_on=_normalized_time(meta.effective_on) if meta and meta.effective_on else None,
        )


# --- helpers ----------------------------------------------------------------------------------------


def _evaluate_all(engine: EmbeddedEngine, inputs: list[dict[str, Any]], root: str = ADMISSION_ROOT) -> list[Any]:
    """``data.<root>`` for each input, in one forked run within GATE_POLICY_TIMEOUT
    (``EmbeddedEngine.evaluate`` does one input per fork)."""
    raw = engine.raw
    encoded = [msgspec.json.encode(i).decode() for i in inputs]

    def work() -> str:
        answers = []
        for text in encoded:
            try:
                raw.set_input_json(text)
                answers.append(str(raw.eval_query_as_json(f"data.{root}")))
            except RuntimeError as e:
                raise PolicyError(f"policy evaluation failed: {regorus_message(e)}") from None
        return "[" + ",".join(answers) + "]"

    documents = []
    for answer in json.loads(run_with_deadline(work, policy_timeout())):
        results = answer.get("result") or []
        documents.append(results[0]["expressions"][0]["value"] if results else None)
    return documents


def _read(records: Iterator[Decision], location: str) -> Iterator[Decision]:
    """The records, with an undecodable (edited) one reported as a store error."""
    count = 0
    while True:
        try:
            decision = next(records, None)
        except msgspec.DecodeError as e:
            raise StoreError(
                f"decision log {location}: a record after the {count} read cannot be decoded ({e}); run gate decisions verify"
            ) from None
        if decision is None:
            return
        count += 1
        yield decision


def _entry(decision: Decision, now: datetime, problem: str | None, trusted_key: bool) -> dict[str, Any]:
    """What the admission rules see of one stored decision."""
    decided = _parse_time(decision.timestamp)
    artifact = decision.artifact or {}
    signed = bool(decision.signature and decision.signing_key)
    return {
        "decision_id": decision.decision_id,
        "outcome": decision.outcome.value,
        "timestamp": decision.timestamp,
        "age_seconds": (now - decided).total_seconds() if decided is not None else None,
        "image": artifact.get("image"),
        "signed": signed,
        "signature_valid": problem is None,  # no problem implies signed by a trusted key
        "trusted_key": trusted_key,
        "signature_problem": problem,
        "signing_key": decision.signing_key,
        "policy_digest": decision.policy.digest,
        "policy_revision": decision.policy.revision,
        "waivers": [
            {"id": w.id, "rule": w.rule, "expires": w.expires, "expired": _expired(w.expires, now)} for w in decision.waivers
        ],
        "replay": None,
    }


def _violation_entry(v: Violation) -> dict[str, Any]:
    entry: dict[str, Any] = {"rule": v.rule, "message": v.message, "severity": v.severity}
    if v.effective_on:
        entry["effective_on"] = _normalized_time(v.effective_on)
    return entry


def _parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time (a bare date is midnight UTC); None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _normalized_time(text: str) -> str:
    """``effective_on`` as RFC 3339 (``2027-03-01`` becomes ``2027-03-01T00:00:00.000000Z``); kept as is when unreadable."""
    moment = _parse_time(text)
    return rfc3339(moment) if moment is not None else text


def _pending(effective_on: str | None, now: datetime) -> bool:
    """True when a rule with this ``effective_on`` is not in force at ``now`` (an unreadable date is in force)."""
    moment = _parse_time(effective_on)
    return moment is not None and moment > now


def _expired(expires: str, now: datetime) -> bool:
    """A waiver with an unreadable expiry counts as expired: it can waive nothing."""
    moment = _parse_time(expires)
    return moment is None or moment <= now


def _rule_packages(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every package (nested mapping) under ``path`` that defines ``deny`` or ``warn``."""
    found = []
    if "deny" in node or "warn" in node:
        found.append((path, node))
    for key, child in node.items():
        if isinstance(child, dict) and key not in ("deny", "warn"):
            found.extend(_rule_packages(child, f"{path}.{key}"))
    return found


def _order(v: Violation) -> tuple[int, str, str]:
    return (-_RANK.get(v.severity, 0), v.rule, v.message)
