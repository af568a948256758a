"""One reconcile cycle: fetch, render, re-check every object, dry-run, apply, prune, report.

The order of the checks is the point. An object is applied only when (1) gate's admission rules
allow it — every image pinned, with a verified allow decision for this environment that still passes
today's policy — and (2) the cluster's own admission (webhooks, schema validation) accepts a
server-side dry run of it. A blocked object is not applied: whatever runs stays. Objects go in
dependency order, each dry-run right before its apply, so a Namespace exists before what lives in it.

What counts as a change: gate annotates what it applies with a hash of the object as rendered. A
live object carrying the same hash and still holding every rendered field is unchanged (no request
beyond the read). Same hash but a rendered field changed in the cluster is drift: re-applied and
reported. Any other difference is an update.

``plan`` runs step (1) only, without a cluster: every object is judged as a CREATE.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gate.decisions.events import SYNC, new_event
from gate.decisions.record import canonical_json
from gate.errors import GateError, UsageError
from gate.reconcile.kube import ROLLOUT_KINDS
from gate.reconcile.kube import ref as kube_ref
from gate.reconcile.render import apply_order, object_key, render
from gate.workloads import api_group

if TYPE_CHECKING:
    from gate.reconcile.admission import AdmissionChecker, Verdict
    from gate.reconcile.kube import Cluster
    from gate.reconcile.source import Checkout, GitSource

logger = logging.getLogger(__name__)

#: annotations gate puts on what it applies
COMMIT_ANNOTATION = "gate.dev/commit"
DECISIONS_ANNOTATION = "gate.dev/decisions"
HASH_ANNOTATION = "gate.dev/applied-hash"
SOURCE_ANNOTATION = "gate.dev/source"

#: seconds between two reads of a workload's rollout status while waiting for health
HEALTH_POLL_S = 2.0

#: hears where a health wait stands (wait_for_health)
Progress = Callable[[dict[str, Any]], None]

#: kinds looked at for pruning, besides those the repository renders now
PRUNE_KINDS = (
    ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("v1", "ServiceAccount"), ("v1", "Pod"),
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"), ("batch/v1", "CronJob"), ("networking.k8s.io/v1", "Ingress"),
)


@dataclass
class ObjectResult:
    """What the cycle did with one object."""

    kind: str
    name: str
    namespace: str | None
    #: apply (created or changed), unchanged, blocked; pruned for objects deleted by --prune
    action: str
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    decision_ids: list[str] = field(default_factory=list)
    #: the images its containers run, as written (``image@digest`` when pinned); not in ``as_dict``
    images: list[str] = field(default_factory=list)
    #: the live object had been edited in the cluster and was put back
    drift: bool = False
    #: healthy | progressing | degraded, for applied workloads after the health wait
    health: str | None = None
    health_detail: str | None = None

    @property
    def ref(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind, "name": self.name, "namespace": self.namespace,
            "action": self.action, "reasons": self.reasons,
        }
        if self.warnings:
            out["warnings"] = self.warnings
        if self.decision_ids:
            out["decision_ids"] = self.decision_ids
        if self.drift:
            out["drift"] = True
        if self.health:
            out["health"] = self.health
            if self.health_detail:
                out["health_detail"] = self.health_detail
        return out


@dataclass
class CycleReport:
    """One cycle: the contract's ``{"objects", "outcome"}`` plus what was pruned and where it came from."""

    commit: str
    objects: list[ObjectResult]
    pruned: list[ObjectResult] = field(default_factory=list)
    plan: bool = False
    event_id: str | None = None

    @property
    def outcome(self) -> str:
        return "blocked" if any(o.action == "blocked" for o in self.objects) else "synced"

    def as_dict(self) -> dict[str, Any]:
        return {
            "objects": [o.as_dict() for o in self.objects],
            "outcome": self.outcome,
            "commit": self.commit,
            "plan": self.plan,
            "pruned": [o.as_dict() for o in self.pruned],
            "event_id": self.event_id,
        }


@dataclass(frozen=True)
class CycleOptions:
    """How a cycle runs."""

    path: str
    environment: str
    plan: bool = False
    prune: bool = False
    #: seconds to wait for applied workloads to roll out (0: report their state right away)
    health_timeout: float = 0.0
    #: seconds between progress lines while waiting for health (a long wait is never silent)
    progress_interval: float = 10.0
    helm_values: tuple[str, ...] = ()


def rendered_hash(obj: dict[str, Any]) -> str:
    """sha256 of the object as rendered from git: what an unchanged live object carries."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()[:32]


def holds(desired: Any, live: Any) -> bool:
    """Whether ``live`` still has every field ``desired`` sets, with the same value (the server may add more)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(holds(v, live.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(desired) == len(live) and all(map(holds, desired, live))
    return desired == live or (desired is None and live in ({}, [], None))


def run_cycle(source: GitSource, checker: AdmissionChecker, cluster: Cluster | None, options: CycleOptions,
              record: Callable[[Any], str] | None = None, progress: Progress | None = None) -> CycleReport:
    """Fetch, render and judge every object; unless planning, dry-run and apply what passes.

    ``record`` appends the sync event to the decision log (not for plans: nothing happened). A cycle
    that fails once it may have changed the cluster is recorded too, as an ``error`` sync with what
    it had done, and the error is raised. ``progress`` hears where the health wait stands (``wait_for_health``).
    """
    checkout = source.sync()
    _check_binding(checkout, options, checker)
    objects = apply_order(render(checkout.root, options.path, helm_values=options.helm_values))
    report = CycleReport(checkout.commit, [], plan=options.plan)
    owner = f"{source.shown}#{source.branch}:{options.path}"
    try:
        managed = [] if cluster is None or options.plan else cluster.list_managed(_kinds(objects))
        lives = [None] * len(objects) if cluster is None or options.plan else _live_objects(cluster, objects, managed)
        verdicts = checker.check_many(list(zip(objects, lives)), commit=checkout.as_input())
        for obj, live, verdict in zip(objects, lives, verdicts):
            result = _judged(obj, verdict)
            if not verdict.blocked and not options.plan:
                assert cluster is not None
                _sync_object(cluster, obj, live, verdict, checkout, owner, result)
            if result.action == "blocked" and cluster is not None and not options.plan:
                _tell_cluster(cluster, live or obj, result)
            report.objects.append(result)  # after its sync: a failed apply is not reported as applied
        if cluster is not None and not options.plan:
            if options.prune:
                report.pruned = _prune(cluster, objects, managed, owner, options.path)
            wait_for_health(cluster, objects, report.objects, options.health_timeout,
                            progress=progress, progress_interval=options.progress_interval)
    except GateError as e:
        if record is not None and not options.plan and any(o.action == "apply" for o in report.objects):
            record(_sync_event(report, options, source, error=e.diagnostics()))
        raise
    if record is not None and not options.plan:
        report.event_id = record(_sync_event(report, options, source))
    return report


def _check_binding(checkout: Checkout, options: CycleOptions, checker: AdmissionChecker) -> None:
    """The repository's gate-environments.yaml must bind the path to this environment (exit 2 when
    it binds it to another, or not at all); without the file, a warning."""
    from gate.environments import read_bindings, unbound_warning

    bindings = read_bindings(checkout.root)
    if bindings is None:
        logger.warning(unbound_warning(options.path))
        return
    bindings.check_declared(checker.environments)
    problem = bindings.disagreement(options.path, options.environment)
    if problem is not None:
        raise UsageError(f"{problem}: refusing to reconcile {options.path} as {options.environment}")


def _kinds(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The ``(apiVersion, kind)`` pairs among ``objects``."""
    return sorted({(str(o["apiVersion"]), str(o["kind"])) for o in objects})


def _live_objects(cluster: Cluster, objects: list[dict[str, Any]],
                  listed: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """The live version of each object: from ``listed`` (gate's objects of the rendered kinds, one list
    per kind), else a GET for objects not among them (new ones, or ones gate does not own yet) — a
    no-change cycle makes a handful of requests, not one per object."""
    managed = {object_key(live): live for live in listed}
    found: list[dict[str, Any] | None] = []
    for obj in objects:
        group, kind, namespace, name = object_key(obj)
        live = managed.get((group, kind, namespace, name))
        if live is None and not namespace:  # namespaced objects without one go to "default"
            live = managed.get((group, kind, "default", name))
        found.append(live if live is not None else cluster.get(obj))
    return found


def _judged(obj: dict[str, Any], verdict: Verdict) -> ObjectResult:
    meta = obj.get("metadata") or {}
    return ObjectResult(
        kind=str(obj.get("kind")), name=str(meta.get("name")), namespace=meta.get("namespace"),
        action="blocked" if verdict.blocked else "apply",
        reasons=list(verdict.reasons), warnings=list(verdict.warnings), decision_ids=list(verdict.decision_ids),
        images=[str(i.get("image")) for i in verdict.images],
    )


def _sync_object(cluster: Cluster, obj: dict[str, Any], live: dict[str, Any] | None, verdict: Verdict,
                 checkout: Checkout, owner: str, result: ObjectResult) -> None:
    """Apply ``obj`` unless the live object already is it; the cluster's own admission speaks first."""
    from gate.reconcile.kube import AdmissionRefused

    digest = rendered_hash(obj)
    if live is not None:
        annotations = (live.get("metadata") or {}).get("annotations") or {}
        if annotations.get(HASH_ANNOTATION) == digest:
            if holds(obj, live):
                result.action = "unchanged"
                return
            result.drift = True  # same source, edited in the cluster: put it back
    body = _annotated(obj, digest, checkout, verdict, owner)
    try:
        cluster.dry_run_apply(body)
    except AdmissionRefused as e:
        result.action = "blocked"
        result.reasons.append(f"refused by the cluster's admission: {e.message}")
        return
    cluster.apply(body)


def _annotated(obj: dict[str, Any], digest: str, checkout: Checkout, verdict: Verdict, owner: str) -> dict[str, Any]:
    """The object with gate's annotations: source commit, decisions relied on, rendered hash, and owner
    (repository, branch and path: what --prune may delete)."""
    body = copy.deepcopy(obj)
    meta = body.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations[COMMIT_ANNOTATION] = checkout.commit
    annotations[HASH_ANNOTATION] = digest
    annotations[SOURCE_ANNOTATION] = owner
    if verdict.decision_ids:
        annotations[DECISIONS_ANNOTATION] = ",".join(verdict.decision_ids)
    meta["annotations"] = annotations
    return body


def _tell_cluster(cluster: Cluster, obj: dict[str, Any], result: ObjectResult) -> None:
    """A Warning Event on the object, so ``kubectl describe`` shows why its new version is not running."""
    message = "gate blocked this version: " + "; ".join(result.reasons)
    try:
        cluster.emit_event(obj, "GateBlocked", message)
    except GateError as e:  # the block stands either way; the event is a courtesy
        logger.warning("%s: cannot record the block as an Event: %s", result.ref, e.diagnostics())


def _prune(cluster: Cluster, objects: list[dict[str, Any]], listed: list[dict[str, Any]], owner: str,
           path: str) -> list[ObjectResult]:
    """Delete what gate applied from this repository, branch and path earlier and git no longer declares.

    ``listed`` holds gate's objects of the kinds rendered now (which must be listable); the other kinds
    looked at (PRUNE_KINDS) are skipped with a warning when RBAC forbids listing them, so operators can
    narrow gate's role (Secrets, say).
    """
    from gate.reconcile.kube import Forbidden

    wanted: set[tuple[str, str, str, str]] = set()
    for obj in objects:
        group, kind, namespace, name = object_key(obj)
        wanted.add((group, kind, namespace, name))
        if not namespace:  # applied to the default namespace, or cluster-scoped
            wanted.add((group, kind, "default", name))
    managed = list(listed)
    for api_kind in sorted(set(PRUNE_KINDS) - set(_kinds(objects))):
        try:
            managed += cluster.list_managed([api_kind])
        except Forbidden as e:
            logger.warning("prune: not looking at %s: %s", api_kind[1], e.diagnostics())
    pruned: list[ObjectResult] = []
    for live in managed:
        meta = live.get("metadata") or {}
        if (meta.get("annotations") or {}).get(SOURCE_ANNOTATION) != owner:
            continue  # applied by gate from another repository, branch or path: not ours to delete
        key = (api_group(str(live.get("apiVersion"))), str(live.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name")))
        if key in wanted:
            continue
        if cluster.delete(live):
            pruned.append(ObjectResult(str(live.get("kind")), str(meta.get("name")), meta.get("namespace"), "pruned",
                                       reasons=[f"no longer declared in {path}"]))
    return pruned


def wait_for_health(
    cluster: Cluster, objects: list[dict[str, Any]], results: list[ObjectResult], timeout: float, *,
    progress: Progress | None = None, progress_interval: float = 10.0,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll applied workloads until each is healthy or degraded, or ``timeout`` seconds pass.

    While some are still progressing, ``progress`` is told where the wait stands when it begins and
    then every ``progress_interval`` seconds (``{"waiting": [{"object", "detail"}], "healthy",
    "total", "waited_s", "limit_s"}``): a two-minute wait is never two silent minutes.
    ``clock`` and ``sleep`` are injectable so the cadence can be tested without waiting.
    """
    watched = [(o, r) for o, r in zip(objects, results) if r.action == "apply" and r.kind in ROLLOUT_KINDS]
    pending = watched
    start = clock()
    deadline = start + timeout
    next_line = start
    while pending:
        still = []
        for obj, result in pending:
            result.health, result.health_detail = cluster.rollout_status(obj)
            if result.health == "progressing":
                still.append((obj, result))
        pending = still
        now = clock()
        if not pending or now >= deadline:
            return
        if progress is not None and now >= next_line:
            progress({
                "waiting": [{"object": kube_ref(obj), "detail": result.health_detail or ""} for obj, result in pending],
                "healthy": sum(r.health == "healthy" for _, r in watched),
                "total": len(watched),
                "waited_s": now - start,
                "limit_s": timeout,
            })
            while next_line <= now:  # a steady cadence from the start, even when a poll was slow
                next_line += max(progress_interval, 0.001)
        wake = min(now + HEALTH_POLL_S, deadline, next_line if progress is not None else deadline)
        sleep(max(0.0, wake - now))


def _sync_event(report: CycleReport, options: CycleOptions, source: GitSource, error: str | None = None) -> Any:
    decision_ids = sorted({d for o in report.objects for d in o.decision_ids})
    details = {
        "commit": report.commit,
        "repo": source.shown,
        "branch": source.branch,
        "path": options.path,
        "applied": [o.ref for o in report.objects if o.action == "apply"],
        "unchanged": sum(o.action == "unchanged" for o in report.objects),
        "blocked": [{"object": o.ref, "reasons": o.reasons} for o in report.objects if o.action == "blocked"],
        "drift": [o.ref for o in report.objects if o.drift],
        "pruned": [o.ref for o in report.pruned],
        "health": {o.ref: o.health for o in report.objects if o.health},
    }
    if error is not None:
        details["error"] = error
    outcome = "error" if error is not None else report.outcome
    return new_event(SYNC, outcome, options.environment, decision_ids=tuple(decision_ids), details=details)
