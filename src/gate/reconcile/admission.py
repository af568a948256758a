"""The admission re-check of ``gate reconcile``: may this object be applied to this environment?

Before the reconciler applies an object from the GitOps repository, gate builds an
AdmissionReview-shaped input for it (policies/README.md, "Admission input") and evaluates the
``gate.admission`` rules of the same policy bundle on it. What gate adds under ``input.gate`` is
what the rules cannot find out themselves: for every container image, whether it is pinned by
digest, and the newest decisions for that digest in this environment from the decision log —
each checked by ``gate.decisions.trust`` (record hash, input digest, Ed25519 signature by a trusted
key, age, expired waivers: the same checks ``gate promote`` makes), and (for the newest, when it is
an allow) the outcome of replaying its stored input under today's ``gate.promotion`` policy. The
deny/warn results are read by ``gate.policy.evaluate.collect_results``, as promotion's are, on
either engine (embedded regorus or an OPA server).

Which evidence counts is the checker's ``evidence`` (gate.reconcile.evidence): ``log`` (the above),
``vsa`` (the SLSA VSA gate promote attached to the image, verified by gate.attestation; no decision
log is read: ``input.gate.images[].vsa`` holds the verdict, with no ``decisions``) or ``both``.
``input.gate.evidence`` tells the rules which; whatever the rules say, an image whose required
evidence does not pass is blocked (gate.decisions.trust and gate.attestation are the authorities).

Fail closed: a bundle that does not compile, an engine failure or no admission rule evaluated is a
``PolicyError``; a decision log that cannot be read is a ``StoreError``. The caller blocks the
object in either case. A record or document that is edited or missing blocks only the images whose
decisions it holds (``admission.decisions.untrusted``, naming the record). A replay that fails is not an error of the check: it is data
(``replay.outcome == "error"``), and the shipped rules deny on it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate import imageref, rfc3339, workloads
from gate.decisions.record import Decision, Outcome, Violation, sha256_digest
from gate.decisions.replay import input_at
from gate.decisions.signing import TrustedKeys, load_trusted_keys
from gate.decisions.trust import DecisionCheck, decision_trust
from gate.decisions.interface import DecisionStore, UndecodableRecord
from gate.environments import declared_environments
from gate.errors import GateError, PolicyError, UsageError
from gate.evaluation import LoadedPolicy, PolicySpecs, load_policy, make_engine
from gate.models import Severity
from gate.policy.bundle import merge_data
from gate.policy.evaluate import collect_results, effective_from, promotion_result
from gate.policy.interface import ADMISSION_ROOT, PROMOTION_ROOT, PolicyEngine
from gate.policy.waivers import validate_waivers
from gate.reconcile.evidence import DEFAULT_VSA_MAX_AGE, Evidence, VsaEvidence

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

logger = logging.getLogger(__name__)

__all__ = ["ADMISSION_ROOT", "DEFAULT_USER", "AdmissionChecker", "Evidence", "Verdict"]

#: Who applies the objects, as the request's userInfo says (the reconciler's service account).
DEFAULT_USER: dict[str, Any] = {"username": "system:serviceaccount:gate-system:gate"}
#: Decisions looked up per image digest (newest first); the newest is the one that counts.
DECISIONS_PER_IMAGE = 5

#: the replayer's data key when it holds the admission rules' own data (a record with no recorded data)
_ADMISSION_DATA = sha256_digest({})
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
    #: per container: ``container``, ``image``, ``digest`` (None when unpinned), ``decision_id`` (None when none;
    #: with ``vsa`` evidence, the decision the VSA names), and with VSA evidence ``vsa``: the attestation that passed
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

    The bundle is compiled once (twice on the embedded engine: one engine for the admission rules
    with today's data, one for replays, whose data changes with each record's own ``--data``; an OPA
    server holds one data document, so there the data is switched back before the admission rules
    run). Replays are cached by the record's input digest, its data and the minute they are judged
    at, so hundreds of workloads running one image cost one replay. Decisions are looked up afresh
    on every ``check``.
    """

    def __init__(
        self,
        policy: PolicySpecs,
        environment: str,
        store: DecisionStore | None,
        *,
        evidence: Evidence | str = Evidence.LOG,
        vsa_max_age: timedelta = DEFAULT_VSA_MAX_AGE,
        vsa: VsaEvidence | None = None,
        data_files: Sequence[Path] = (),
        trusted_keys: TrustedKeys | dict[str, Ed25519PublicKey] | None = None,
        now: datetime | None = None,
        user: dict[str, Any] | None = None,
        engine: str = "embedded",
        opa_url: str | None = None,
    ) -> None:
        """``policy``: the ``--policy`` layers (gate.policy.sources) or one bundle directory. ``engine``:
        ``embedded`` (regorus, in process) or ``opa`` (the server at ``opa_url``; the bundle and data
        are pushed to it, as ``gate evaluate --engine opa`` does). ``evidence``: what admits an image
        (gate.reconcile.evidence); ``store`` is needed for ``log`` and ``both`` only, and ``vsa_max_age``
        (or ``vsa``, a ready VsaEvidence) is how old a VSA may be."""
        self.environment = environment
        self.evidence = Evidence(evidence)
        if self.evidence.uses_log and store is None:
            raise UsageError(f"evidence {self.evidence.value} reads the decision log, but no decision store was given")
        self._store = store
        if trusted_keys is None:
            trusted_keys = load_trusted_keys()
        self._trusted = trusted_keys.keys if isinstance(trusted_keys, TrustedKeys) else dict(trusted_keys)
        self._vsa: VsaEvidence | None = None
        if self.evidence.uses_vsa:
            self._vsa = vsa if vsa is not None else VsaEvidence(environment, self._trusted, max_age=vsa_max_age)
        self._now = now
        self._user = dict(user) if user is not None else dict(DEFAULT_USER)
        #: decision lookups made (one per distinct image digest per check)
        self.lookups = 0
        #: replays evaluated (cache misses)
        self.replays = 0
        #: VSA checks made (one per distinct image reference per check; VsaEvidence may answer from its cache)
        self.vsa_checks = 0
        self._policy: LoadedPolicy = load_policy(policy, [str(p) for p in data_files], make_engine(engine, opa_url))
        #: the environments the policy data declares; this checker's must be one (never a typo)
        self.environments = declared_environments(self._policy.data)
        self.environments.require(environment)
        self._engine: PolicyEngine = self._policy.engine
        if engine == "embedded":
            self._replayer: PolicyEngine = make_engine(engine, opa_url)
            self._replayer.load(self._policy.bundle, self._policy.data)
        else:
            self._replayer = self._engine  # one server, one data document: switched per run
        #: the digest of the recorded data the replayer holds ("" when unknown after a failure)
        self._replay_data_key = _ADMISSION_DATA
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
        attested = self._attest_all([obj for obj, _ in objects], now)  # and the VSA checks of all images at once
        inputs = [
            {"request": self.request_for(obj, old_obj), "gate": self._gate_part(obj, now, commit, found, attested)}
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

    def review_input(
        self, request: dict[str, Any], commit: dict[str, Any] | None = None, attested: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The admission input for the ``request`` of an AdmissionReview a webhook received; ``attested``:
        its VSA checks made beforehand (``attest_review``), else they are made here."""
        obj = _reviewed_object(request)
        document = {"request": request, "gate": self._gate_part(obj, self._moment(), commit, None, attested)}
        self._run_replays()
        return document

    def check_review(
        self, request: dict[str, Any], commit: dict[str, Any] | None = None, attested: dict[str, dict[str, Any]] | None = None,
    ) -> Verdict:
        """The verdict on the ``request`` of an AdmissionReview (``attested`` as for ``review_input``)."""
        return self.verdict(self.review_input(request, commit, attested))

    def attest_review(self, request: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
        """The VSA checks of the images of an AdmissionReview's ``request`` (None without VSA evidence).

        Safe from any thread (it touches no engine and no store): the webhook makes them on the request's
        own thread, so a slow registry holds that request only, not the one thread that runs the rules."""
        if self._vsa is None:
            return None
        return self._attest_all([_reviewed_object(request)], self._moment())

    def request_for(self, obj: dict[str, Any], old_obj: dict[str, Any] | None = None) -> dict[str, Any]:
        """The AdmissionRequest the API server would send for applying ``obj``."""
        api_version = str(obj.get("apiVersion") or "")
        group, _, version = api_version.rpartition("/")
        raw_metadata = obj.get("metadata")
        metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
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
        obj: Any,
        now: datetime,
        commit: dict[str, Any] | None,
        found: dict[str, list[dict[str, Any]]] | None = None,
        attested: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``input.gate`` for ``obj``; ``found`` shares decision lookups by digest between objects, ``attested``
        VSA checks by image reference.
        ``problems``: why gate.workloads cannot read the object's containers (each blocks it)."""
        found = {} if found is None else found
        attested = self._attest_all([obj], now) if attested is None else attested
        workload = workloads.of(obj)
        images = []
        for container in workload.containers:
            digest = imageref.digest_of(container.image)  # None: not pinned, or not a valid reference at all
            decisions: list[dict[str, Any]] = []
            if digest is not None and self.evidence.uses_log:
                if digest not in found:
                    found[digest] = self._decisions(digest, now)
                decisions = found[digest]
            image: dict[str, Any] = {"container": container.path, "image": container.image, "pinned": digest is not None,
                                     "digest": digest, "decisions": decisions}
            if self._vsa is not None:
                image["vsa"] = self._attested(container.image, now, attested) if digest is not None else None
            images.append(image)
        return {"environment": self.environment, "evidence": self.evidence.value, "now": rfc3339.format(now),
                "commit": commit, "images": images, "problems": list(workload.problems)}

    def _attest_all(self, objects: Sequence[Any], now: datetime) -> dict[str, dict[str, Any]]:
        """The VSA checks of every pinned image of ``objects``, made at once (with VSA evidence; else none)."""
        if self._vsa is None:
            return {}
        references = [_pinned(c.image) for obj in objects for c in workloads.of(obj).containers]
        wanted = list(dict.fromkeys(r for r in references if r is not None))
        self.vsa_checks += len(wanted)
        return {ref: result.as_input() for ref, result in self._vsa.check_all(wanted, now).items()}

    def _attested(self, image: str, now: datetime, attested: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """What the rules see of the VSA attached to ``image`` (pinned), from its own repository."""
        assert self._vsa is not None
        pinned = _pinned(image)
        assert pinned is not None  # digest_of found its digest
        if pinned not in attested:  # _attest_all saw every image of the object; this is only a safety net
            self.vsa_checks += 1
            attested[pinned] = self._vsa.check(pinned, now).as_input()
        return dict(attested[pinned])

    def _decisions(self, digest: str, now: datetime) -> list[dict[str, Any]]:
        """The newest decisions for ``digest`` in this environment, as the rules see them."""
        self.lookups += 1
        assert self._store is not None  # uses_log: the constructor required one
        try:
            trust = decision_trust(self._store, digest, self.environment, self._trusted, now, history=DECISIONS_PER_IMAGE)
        except UndecodableRecord as e:  # an edited or missing record or document: this image is blocked, the rest judged
            return [_unreadable_decisions(e)]
        entries = []
        for index, check in enumerate(trust.checks):
            entry = _entry(check)
            if index == 0 and check.decision.outcome is Outcome.ALLOW:
                if check.integrity_problem is None:
                    self._replay_later(check.decision, now, entry)
                else:  # an edited record or input is never evaluated
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
        key = (decision.input_digest, sha256_digest(recorded), rfc3339.format(at))
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
        """Replays of decisions recorded with the same data, in one engine run; a record that fails (its
        input, the policy on it, the time limit) is an error replay of its own and the others go on."""
        self.replays += len(jobs)
        try:
            if data_key != self._replay_data_key:
                recorded = jobs[0][1].data or {}
                data = merge_data(merge_data(self._policy.bundle.data, recorded), self._policy.extra_data)
                validate_waivers(data)
                self._replay_data_key = ""  # unknown until set: a failure must not leave the old data claimed
                self._replayer.set_data(data)
                self._replay_data_key = data_key
        except GateError as e:
            return [_replay_error(decision, e) for _, decision, _ in jobs]
        replays: list[dict[str, Any] | None] = [None] * len(jobs)
        judged: list[tuple[int, dict[str, Any], datetime]] = []
        for index, (_, decision, at) in enumerate(jobs):
            try:
                judged.append((index, input_at(decision, at)[0], at))
            except GateError as e:
                replays[index] = _replay_error(decision, e)
        answers = self._replayer.evaluate_each(PROMOTION_ROOT, [policy_input for _, policy_input, _ in judged])
        for (index, _, at), answer in zip(judged, answers, strict=True):
            try:
                if isinstance(answer, GateError):
                    raise answer
                replays[index] = self._replayed(answer, at)
            except GateError as e:
                replays[index] = _replay_error(jobs[index][1], e)
        done = [r for r in replays if r is not None]
        assert len(done) == len(jobs)  # each job failed before the run or was answered by it
        return done

    def _replayed(self, document: Any, at: datetime) -> dict[str, Any]:
        """A replay's outcome from the promotion document the engine returned."""
        # _NEVER: every deny stays a violation, with its rule's effective_on for the admission rules to judge
        result = promotion_result(document, self._policy.metadata, _NEVER)
        violations = [_violation_entry(v) for v in result.violations]
        in_force = any(not v.effective_on or effective_from(v.effective_on, v.package or PROMOTION_ROOT) <= at for v in result.violations)
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
        """``verdict`` of each input, evaluated in one engine call."""
        if not inputs:
            return []
        if self._replayer is self._engine and self._replay_data_key != _ADMISSION_DATA:
            self._replay_data_key = ""  # unknown until set: a failure must not leave it claimed
            self._engine.set_data(self._policy.data)
            self._replay_data_key = _ADMISSION_DATA
        documents = self._engine.evaluate_many(ADMISSION_ROOT, [dict(i) for i in inputs])
        return [self._verdict(policy_input, document) for policy_input, document in zip(inputs, documents, strict=True)]

    def _verdict(self, policy_input: dict[str, Any], document: Any) -> Verdict:
        raw_gate = policy_input.get("gate")
        gate: dict[str, Any] = raw_gate if isinstance(raw_gate, dict) else {}
        try:
            results = collect_results(
                document, ADMISSION_ROOT, self._policy.metadata, _judged_at(gate.get("now"), self._moment()),
                refusal="refusing to admit", rule_ids_under="gate",
            )
        except PolicyError as e:
            raise PolicyError(f"policy bundle {self._policy.bundle.name}: {e}") from None
        # an object whose containers cannot be read is blocked whatever the rules say
        unreadable = tuple(_unreadable(problem) for problem in gate.get("problems") or ())
        violations = unreadable + _unreadable_log(gate.get("images")) + results.violations
        if not violations:  # gate.decisions.trust and gate.attestation are the authorities; the rules only explain
            violations = (_untrusted(gate.get("images"), self.environment) if self.evidence.uses_log else ()) + (
                _unattested(gate.get("images"), self.environment) if self.evidence.uses_vsa else ()
            )
        images = tuple(_image_summary(image) for image in gate.get("images") or () if isinstance(image, dict))
        ids = tuple(dict.fromkeys(i["decision_id"] for i in images if i["decision_id"]))
        return Verdict(
            action="blocked" if violations else "apply",
            reasons=tuple(v.message for v in violations),
            warnings=tuple(v.message for v in results.warnings),
            decision_ids=ids,
            images=images,
            violations=violations,
            warning_results=results.warnings,
        )


# --- helpers ----------------------------------------------------------------------------------------


def _replay_error(decision: Decision, error: GateError) -> dict[str, Any]:
    """A replay that could not be made: data for the rules, which deny on it (fail closed)."""
    problem = error.diagnostics()
    logger.debug("replay of %s failed: %s", decision.decision_id, problem)
    return {"outcome": "error", "violations": [], "warnings": [], "error": problem}


def _reviewed_object(request: dict[str, Any]) -> Any:
    """The object of an AdmissionRequest, with the kind and apiVersion a bare request carries beside it
    filled in; anything but a mapping is passed on as it is (gate.workloads blocks it)."""
    obj, kind = request.get("object"), request.get("kind")
    if not isinstance(obj, dict) or not isinstance(kind, dict):
        return obj
    if "kind" not in obj and isinstance(kind.get("kind"), str):
        obj = {**obj, "kind": kind["kind"]}
    version, group = kind.get("version"), kind.get("group")
    if "apiVersion" not in obj and isinstance(version, str) and version:
        obj = {**obj, "apiVersion": f"{group}/{version}" if isinstance(group, str) and group else version}
    return obj


def _unreadable(problem: Any) -> Violation:
    """The deny for an object whose containers cannot be read (gate.workloads), independent of the rules."""
    return Violation(
        rule="admission.workload.unreadable",
        message=f"{problem}: blocked, since an image that cannot be read cannot be judged",
        severity=Severity.CRITICAL.value,
        title="Containers cannot be read",
        solution="Give every container list as a list of containers, each a mapping with an image string",
        package=ADMISSION_ROOT,
    )


def _entry(check: DecisionCheck) -> dict[str, Any]:
    """What the admission rules see of one stored decision (checked by gate.decisions.trust)."""
    decision = check.decision
    artifact = decision.artifact or {}
    expired = {w.id for w in check.expired_waivers}
    return {
        "decision_id": decision.decision_id,
        "outcome": decision.outcome.value,
        "timestamp": decision.timestamp,
        "age_seconds": check.age.total_seconds() if check.age is not None else None,
        "image": artifact.get("image"),
        "signed": bool(decision.signature and decision.signing_key),
        "signature_valid": check.record_problem is None,  # no problem implies signed by a trusted key
        "trusted_key": check.trusted_key,
        "signature_problem": check.record_problem,
        "signing_key": decision.signing_key,
        "policy_digest": decision.policy.digest,
        "policy_revision": decision.policy.revision,
        "waivers": [{"id": w.id, "rule": w.rule, "expires": w.expires, "expired": w.id in expired} for w in decision.waivers if not w.is_vex],
        "replay": None,
        #: gate.decisions.trust's reasons not to rely on it (age aside: max_decision_age is the rules')
        "problems": list(check.problems),
    }


def _unreadable_decisions(error: UndecodableRecord) -> dict[str, Any]:
    """What the admission rules see when the newest decisions cannot be read (an edited or missing
    record or document): an error, not signed, not trusted, not replayed, with the reason; marked
    ``readable: false``, which blocks the object whatever the rules say."""
    problem = f"{error.describe()} cannot be read: {error.reason}"
    return {
        "decision_id": error.record_id, "outcome": Outcome.ERROR.value, "timestamp": None, "age_seconds": None,
        "image": None, "signed": False, "signature_valid": False, "trusted_key": False,
        "signature_problem": problem, "signing_key": None, "policy_digest": None, "policy_revision": None,
        "waivers": [], "replay": _NOT_REPLAYED, "problems": [problem], "readable": False,
    }


def _unreadable_log(images: Any) -> tuple[Violation, ...]:
    """The denies for images whose newest decisions could not be read, independent of the rules."""
    return tuple(
        _distrust(f"container {image.get('container')}: {'; '.join(image['decisions'][0]['problems'])}")
        for image in images if isinstance(image, dict) and image.get("decisions")
        and image["decisions"][0].get("readable") is False
    ) if isinstance(images, list) else ()


def _untrusted(images: Any, environment: str) -> tuple[Violation, ...]:
    """The denies of gate.decisions.trust, whatever the admission rules said: an image not pinned by a
    valid digest, without a decision, or whose newest decision cannot be relied on is never admitted."""
    if not isinstance(images, list):
        return (_distrust("input.gate.images is not a list: the object's images cannot be judged"),)
    found: list[Violation] = []
    for image in images:
        if not isinstance(image, dict):
            found.append(_distrust("an entry of input.gate.images is not a mapping: it cannot be judged"))
            continue
        container, ref, decisions = image.get("container"), image.get("image"), image.get("decisions")
        if not image.get("pinned") or not isinstance(image.get("digest"), str):
            found.append(_distrust(f"container {container}: image {ref} is not pinned by a valid sha256 digest"))
        elif not isinstance(decisions, list) or not decisions:
            found.append(_distrust(f"container {container}: no gate decision for {image['digest']} in {environment}: "
                                   "it never passed the gate"))
        else:
            problems = decisions[0].get("problems") if isinstance(decisions[0], dict) else None
            if not isinstance(problems, list):
                found.append(_distrust(f"container {container}: the trust of its newest decision is unknown"))
            elif problems:
                found.append(_distrust(f"container {container}: {'; '.join(str(p) for p in problems)}"))
    return tuple(found)


def _pinned(image: str) -> str | None:
    """``REPO@sha256:D`` of a valid reference pinned by digest (its tag dropped): where its VSA is attached."""
    digest = imageref.digest_of(image)
    return None if digest is None else str(imageref.parse(image).with_digest(digest))


def _image_summary(image: dict[str, Any]) -> dict[str, Any]:
    """One container of a verdict: its image, digest, the decision it was admitted on (the log's newest,
    else the one the VSA names) and, when a VSA was verified, where it was found."""
    decisions, vsa = image.get("decisions"), image.get("vsa")
    decision_id = decisions[0].get("decision_id") if isinstance(decisions, list) and decisions and isinstance(decisions[0], dict) else None
    summary = {"container": image.get("container"), "image": image.get("image"), "digest": image.get("digest"),
               "decision_id": decision_id}
    if isinstance(vsa, dict):
        if summary["decision_id"] is None and isinstance(vsa.get("decision_id"), str):
            summary["decision_id"] = vsa["decision_id"]
        summary["vsa"] = vsa.get("attestation") if vsa.get("passed") is True else None
    return summary


def _unattested(images: Any, environment: str) -> tuple[Violation, ...]:
    """The denies of gate.attestation, whatever the admission rules said: with VSA evidence, an image not
    pinned by a valid digest, or whose attached VSA for this environment does not pass, is never admitted."""
    if not isinstance(images, list):
        return (_unverified("input.gate.images is not a list: the object's images cannot be judged"),)
    found: list[Violation] = []
    for image in images:
        if not isinstance(image, dict):
            found.append(_unverified("an entry of input.gate.images is not a mapping: it cannot be judged"))
            continue
        container, ref, vsa = image.get("container"), image.get("image"), image.get("vsa")
        if not image.get("pinned") or not isinstance(image.get("digest"), str):
            found.append(_unverified(f"container {container}: image {ref} is not pinned by a valid sha256 digest, "
                                     "so no VSA can be looked up for it"))
        elif not isinstance(vsa, dict):
            found.append(_unverified(f"container {container}: no VSA verdict for {ref} in {environment}"))
        elif vsa.get("passed") is not True or vsa.get("error") is not False:
            found.append(_unverified(f"container {container}: {vsa.get('reason') or 'its VSA did not pass'}"))
    return tuple(found)


def _unverified(message: str) -> Violation:
    return Violation(
        rule="admission.vsa.not_passed",
        message=f"{message}: blocked (gate.attestation)",
        severity=Severity.CRITICAL.value,
        title="No valid PASSED VSA",
        solution="Deploy only images gate promote attached a signed, fresh PASSED VSA for this environment to",
        package=ADMISSION_ROOT,
    )


def _distrust(message: str) -> Violation:
    return Violation(
        rule="admission.decisions.untrusted",
        message=f"{message}: blocked (gate.decisions.trust)",
        severity=Severity.CRITICAL.value,
        title="No trusted allow",
        solution="Deploy only images pinned by digest whose newest gate decision in this environment is a trusted allow",
        package=ADMISSION_ROOT,
    )


def _violation_entry(v: Violation) -> dict[str, Any]:
    entry: dict[str, Any] = {"rule": v.rule, "message": v.message, "severity": v.severity}
    if v.effective_on:  # as RFC 3339 for the rules (2027-03-01 becomes 2027-03-01T00:00:00.000000Z)
        entry["effective_on"] = rfc3339.format(effective_from(v.effective_on, v.package or PROMOTION_ROOT))
    return entry


def _judged_at(now: Any, fallback: datetime) -> datetime:
    """``input.gate.now``, the time the rules judge at (``fallback`` when an input given to ``verdict`` has none)."""
    try:
        return rfc3339.parse(now)
    except rfc3339.TimeFormatError:
        return fallback
