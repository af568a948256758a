"""``gate promote``: move an approved digest to the release registry and into the GitOps repository.

The order is what makes it safe: first everything that can refuse without changing anything (the
decision's preconditions, a rollback hold), then the registry (copy by digest, or push from a
daemon with the pushed digest checked), then the GitOps commit. Every outcome — done, no-op,
refused, error — is appended to the decision log as an event about the decision, so an auditor sees
what was done with it. ``dry_run`` reads the registry and the repository and reports the operations
and the exact diff, changing and recording nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gate.decisions.events import PROMOTION, new_event
from gate.decisions.record import Decision
from gate.environments import Environments, quoted
from gate.errors import GateError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GitOpsTarget:
    """Where the new reference is written, and how the file is read."""

    repo: str
    path: str
    branch: str = "main"
    #: "push" to the branch, or "branch" to push a promotion branch for a pull request
    mode: str = "push"
    #: auto | kustomize | helm | manifest | setters
    format: str = "auto"
    #: dotted path of the image mapping in Helm values
    values_key: str = "image"
    #: Flux setter marker (``ns:name``) to update
    setter: str | None = None
    message_template: str | None = None
    author_name: str = "gate"
    author_email: str = "gate@localhost"
    #: True forces a signed commit, False forbids one, None follows git's commit.gpgsign
    sign: bool | None = None
    #: a folder to keep the clone in between promotions (default: a temporary clone)
    workdir: Path | None = None


@dataclass(frozen=True)
class PromotionRequest:
    """One ``gate promote``."""

    decision_id: str
    #: REGISTRY/REPO:TAG in the release registry
    target: str
    gitops: GitOpsTarget | None
    max_age: timedelta
    environment: str | None = None
    #: the staging image, REF@sha256:D (default: the decision's artifact)
    source: str | None = None
    from_daemon: bool = False
    docker_host: str | None = None
    override_hold: bool = False
    dry_run: bool = False
    #: the environments the policy data declares: the decision's must be one of them
    environments: Environments | None = None
    #: attach a DSSE-signed SLSA VSA of the decision to the promoted digest (gate.attestation)
    attest: bool = True


@dataclass
class PromotionResult:
    """What happened; ``outcome`` is done, noop, refused, dry-run or error."""

    outcome: str
    decision_id: str
    target: str
    digest: str | None = None
    source: str | None = None
    environment: str | None = None
    reasons: list[str] = field(default_factory=list)
    registry: dict[str, Any] = field(default_factory=dict)
    gitops: dict[str, Any] = field(default_factory=dict)
    #: the VSA attached to the promoted digest (gate.attestation.oci.Attachment.as_dict), or {} when none
    attestation: dict[str, Any] = field(default_factory=dict)
    event_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The result as ``--format json`` prints it."""
        return {
            "outcome": self.outcome,
            "decision_id": self.decision_id,
            "environment": self.environment,
            "source": self.source,
            "target": self.target,
            "digest": self.digest,
            "reasons": self.reasons,
            "registry": self.registry,
            "gitops": self.gitops,
            "attestation": self.attestation,
            "event_id": self.event_id,
        }


def promote(request: PromotionRequest, store: Any, signer: Any, trusted: dict[str, Any],
            now: datetime | None = None) -> PromotionResult:
    """Carry out ``request``; the result says done, noop, refused or dry-run. Errors raise GateError
    after the error is recorded as an event (when the log can still be written)."""
    from gate.promote.preconditions import Expectation, refusals

    now = now or datetime.now(UTC)
    # References first: a malformed one, or one carrying credentials, is refused before anything is
    # read or recorded (an event would keep the credential for good).
    _target_parts(request.target)
    if request.source:
        _digest_of(request.source)
    decision = store.get(request.decision_id)
    result = PromotionResult("refused", request.decision_id, request.target, environment=request.environment)
    source = request.source or _decision_source(decision)
    digest = _digest_of(source) if source else None
    result.source, result.digest = source, digest
    if decision is not None:
        result.environment = request.environment or decision.environment
    expect = Expectation(environment=request.environment, digest=digest, max_age=request.max_age, now=now)
    result.reasons = refusals(decision, request.decision_id, expect, trusted, store)
    if decision is not None and request.environments is not None:
        result.reasons += _undeclared(decision, request.environments)
    if not result.reasons and source is None:
        result.reasons = [f"decision {request.decision_id} names no image: give --source REF@sha256:D"]
    with _shared_clone(request) as request:
        return _carry_out(request, store, signer, decision, result, source, digest)


def _carry_out(request: PromotionRequest, store: Any, signer: Any, decision: Decision | None,
               result: PromotionResult, source: str | None, digest: str | None) -> PromotionResult:
    """The hold check, the registry and the GitOps write-back, once the preconditions are known."""
    try:
        if not result.reasons and decision is not None and request.gitops is not None:
            result.reasons = _binding_refusals(request, request.gitops, decision)
        if not result.reasons and request.gitops is not None:
            hold = _hold(request, digest)
            if hold is not None and not request.override_hold:
                result.reasons = [f"rollback hold: {hold.reason}; promote with --override-hold to re-promote it anyway"]
        if not result.reasons and decision is not None and source is not None and not request.from_daemon:
            from gate.promote.platforms import index_refusals

            result.reasons = index_refusals(decision, source)
        if result.reasons:
            return _record(result, request, store, signer, known=decision is not None)
        assert decision is not None and source is not None and digest is not None
        result.registry = _registry(request, source, digest)
        if request.attest:
            # before the GitOps commit: a promotion whose VSA cannot be attached stops here (exit 2)
            result.attestation = _attest(request, signer, decision, digest)
        if request.gitops is not None:
            # the log's head now, kept in the commit: a copy outside the log that `decisions verify` checks
            result.gitops = _write_back(request, request.gitops, decision, digest, log_head=store.head(),
                                        attestation=result.attestation.get("reference"))
    except GateError as e:
        result.outcome = "error"
        result.reasons = [e.diagnostics()]
        _record(result, request, store, signer, known=decision is not None)
        raise
    changed = (not result.registry.get("already_present") or result.gitops.get("status") == "committed"
               or (bool(result.attestation) and not result.attestation.get("already_present")))
    result.outcome = "dry-run" if request.dry_run else ("done" if changed else "noop")
    return _record(result, request, store, signer, known=decision is not None)


@contextlib.contextmanager
def _shared_clone(request: PromotionRequest) -> Iterator[PromotionRequest]:
    """The request with a clone folder the hold check and the write-back share (one clone; each
    still fetches), temporary unless the caller keeps one (GitOpsTarget.workdir)."""
    if request.gitops is None or request.gitops.workdir is not None:
        yield request
        return
    with tempfile.TemporaryDirectory(prefix="gate-promote-") as folder:
        yield dataclasses.replace(request, gitops=dataclasses.replace(request.gitops, workdir=Path(folder)))


def _undeclared(decision: Decision, environments: Environments) -> list[str]:
    """A decision made for an environment the policy data does not declare (a typo, or one
    declared no more) is refused: it was never judged under that environment's settings."""
    if decision.environment in environments.declared:
        return []
    return [f"decision {decision.decision_id} is for environment {quoted(decision.environment)}, which is not "
            f"declared in the policy data (declared: {', '.join(environments.names)})"]


def _binding_refusals(request: PromotionRequest, gitops: GitOpsTarget, decision: Decision) -> list[str]:
    """The GitOps repository's gate-environments.yaml must bind --gitops-path to the decision's environment.

    No binding file: a warning, and the promotion goes on. A malformed file, or one binding a path to
    an undeclared environment, is an error (exit 2)."""
    from gate.environments import read_bindings, unbound_warning
    from gate.gitrepo import read_at_head

    bindings = read_at_head(gitops.repo, read_bindings, branch=gitops.branch, workdir=gitops.workdir)
    if bindings is None:
        logger.warning(unbound_warning(gitops.path))
        return []
    if request.environments is not None:
        bindings.check_declared(request.environments)
    problem = bindings.disagreement(gitops.path, decision.environment)
    if problem is None:
        return []
    if bindings.environment_for(gitops.path) is None:
        return [problem]
    return [f"decision {decision.decision_id} is for environment {decision.environment}, but {problem}"]


def _decision_source(decision: Decision | None) -> str | None:
    artifact = (decision.artifact or {}) if decision else {}
    image, digest = artifact.get("image"), artifact.get("digest")
    return f"{image}@{digest}" if image and digest else None


def _digest_of(source: str) -> str:
    from gate.imageref import require_digest

    digest = require_digest(source, "--source").digest
    assert digest is not None
    return digest


def _target_parts(target: str) -> tuple[str, str]:
    """``(repository, tag)`` of REGISTRY/REPO:TAG."""
    from gate.imageref import require_tag

    ref = require_tag(target, "--target")
    assert ref.tag is not None
    return ref.name, ref.tag


def _hold(request: PromotionRequest, digest: str | None) -> Any:
    from gate.promote.gitops import find_hold

    gitops = request.gitops
    assert gitops is not None and digest is not None
    return find_hold(gitops.repo, gitops.path, digest, branch=gitops.branch, workdir=gitops.workdir)


def _registry(request: PromotionRequest, source: str, digest: str) -> dict[str, Any]:
    """Copy (or push from the daemon) and say what was done."""
    if request.from_daemon:
        if request.dry_run:
            return {"operations": [f"push {source} from the Docker daemon as {request.target}, expecting {digest}"],
                    "already_present": False}
        from gate.promote.daemon import push_from_daemon

        copied = push_from_daemon(source, request.target, digest, docker_host=request.docker_host)
    else:
        from gate.promote.registry import copy_image

        copied = copy_image(source, request.target, dry_run=request.dry_run)
    return {"operations": list(copied.operations), "already_present": copied.already_present}


def _attest(request: PromotionRequest, signer: Any, decision: Decision, digest: str) -> dict[str, Any]:
    """Sign the decision's VSA for the release repository and attach it to the promoted digest there.

    ``timeVerified`` is the decision's time, so a re-run signs the same envelope (Ed25519 signatures are
    deterministic) and attaching it again changes nothing. A dry run signs and attaches nothing."""
    from gate import rfc3339
    from gate.attestation import oci, vsa

    repository, _ = _target_parts(request.target)
    image = f"{repository}@{digest}"
    if request.dry_run:
        return {"mode": None, "reference": None, "manifest_digest": None, "envelope_digest": None,
                "operations": [f"sign the decision's VSA and attach it to {image} "
                               f"(OCI referrer, or the {oci.att_tag(digest)} tag)"],
                "dry_run": True}
    statement = vsa.statement(decision, time_verified=rfc3339.parse(decision.timestamp), image=image)
    envelope = vsa.sign(statement, signer)
    attached = oci.attach(image, envelope, environment=decision.environment, decision_id=decision.decision_id,
                          created=datetime.now(UTC))
    logger.info("VSA of decision %s attached as %s", decision.decision_id, attached.reference)
    return {**attached.as_dict(), "key_id": signer.key_id}


def _write_back(request: PromotionRequest, gitops: GitOpsTarget, decision: Decision, digest: str,
                log_head: str | None = None, attestation: str | None = None) -> dict[str, Any]:
    """Edit the GitOps file to the pinned reference and commit it (or, dry-run, show the diff);
    the commit carries ``log_head`` (the decision log's head) as its Gate-Log-Head trailer and
    ``attestation`` (the manifest holding the VSA) as its Gate-Attestation trailer."""
    from gate.promote.edit import update_image
    from gate.gitrepo import LOG_HEAD_TRAILER
    from gate.promote.gitops import ATTESTATION_TRAILER, CommitSpec, build_message, write_back
    from gate.redact import redact_url

    trailers = {"Gate-Override-Hold": "true"} if request.override_hold else {}
    if log_head is not None:
        trailers[LOG_HEAD_TRAILER] = log_head
    if attestation:
        trailers[ATTESTATION_TRAILER] = attestation

    repository, tag = _target_parts(request.target)
    new_ref = f"{repository}:{tag}@{digest}"
    seen: dict[str, Any] = {}

    def edit(text: str) -> tuple[str, bool]:
        edited = update_image(
            text, path=gitops.path, image=repository, digest=digest, tag=tag,
            format=gitops.format, values_key=gitops.values_key, setter=gitops.setter,
        )
        seen["changes"] = edited.changes
        seen["format"] = edited.format
        return edited.text, bool(edited.changes)

    # The message needs the old value, which only the edit sees: build it lazily from what it saw.
    def message() -> str:
        changes = seen.get("changes") or ()
        return build_message(
            gitops.message_template, image=repository, old=changes[0].old if changes else None, new=new_ref,
            environment=decision.environment, decision_id=decision.decision_id,
            policy_revision=decision.policy.revision, digest=digest, path=gitops.path,
            extra_trailers=trailers,
        )

    spec = CommitSpec(message=message, author_name=gitops.author_name, author_email=gitops.author_email)
    written = write_back(
        gitops.repo, gitops.path, edit, spec, branch=gitops.branch, mode=gitops.mode,
        change_key=f"{request.target}@{digest}", workdir=gitops.workdir, dry_run=request.dry_run, sign=gitops.sign,
    )
    changes = seen.get("changes") or ()
    return {
        "repo": redact_url(gitops.repo),
        "path": gitops.path,
        "format": seen.get("format"),
        "status": written.status,
        "commit": written.commit,
        "branch": written.branch,
        "attempts": written.attempts,
        "old": changes[0].old if changes else None,
        "new": new_ref,
        "diff": written.diff,
    }


def _record(result: PromotionResult, request: PromotionRequest, store: Any, signer: Any, *, known: bool) -> PromotionResult:
    """Append the promotion to the decision log (not for a dry run: nothing happened); ``known``: the
    log holds the decision (``store.get`` found it)."""
    if request.dry_run:
        return result
    from gate.context import ci_context

    details: dict[str, Any] = {"reasons": result.reasons}
    if result.registry:
        details["registry"] = result.registry
    if result.attestation:
        details["attestation"] = {k: v for k, v in result.attestation.items() if k != "operations"}
    if result.gitops:
        details["gitops"] = {k: v for k, v in result.gitops.items() if k != "diff"}
        if result.gitops.get("commit"):
            details["commit"] = result.gitops["commit"]
    # An event names only decisions of the log (verify fails an event naming a missing one, which is
    # what a cut tail leaves); a refusal of an id the log never held keeps the id in its details.
    named = (result.decision_id,) if known else ()
    if not known:
        details["unknown_decision_id"] = result.decision_id
    event = new_event(
        PROMOTION, result.outcome, result.environment or "",
        decision_ids=named,
        artifact={"source": result.source, "digest": result.digest, "target": result.target},
        details=details,
        context=ci_context(),
    )
    result.event_id = store.append_event(event, signer).event_id
    return result
