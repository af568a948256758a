"""`gate evaluate` without the command line: scan, decide under a policy bundle, record.

Fail closed: when the policies cannot give an answer (bundle does not compile, engine fails, no
rule evaluated) the decision is recorded with outcome ``error`` and the error is raised again,
so the caller exits 2. A decision that cannot be recorded raises too: it is never an allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate import rfc3339
from gate.context import ci_context
from gate.decisions.record import Decision, Outcome, PolicyInfo, new_decision_id, sha256_digest, summarize
from gate.decisions.interface import DecisionQuery, DecisionStore
from gate.environments import require_environment
from gate.errors import PolicyError, UsageError
from gate.imageref import ImageRef
from gate.policy.bundle import Bundle, load_data_file, merge_data
from gate.policy.evaluate import PolicyResult, evaluate_promotion
from gate.policy.interface import PolicyEngine
from gate.policy.metadata import RuleMeta, read_metadata
from gate.policy.sources import SHIPPED, as_specs, load_layers
from gate.policy.waivers import validate_waivers
from gate.registry.manifests import ManifestInfo
from gate.scanning.document import ReportSpec, build_input, scan_reports
from gate.scanning.registry import ScannerRegistry

if TYPE_CHECKING:
    from gate.decisions.signing import Signer


@dataclass(frozen=True)
class EvaluationRequest:
    """Everything one evaluation needs."""

    reports: list[ReportSpec]
    image: ImageRef
    environment: str
    #: the ``--policy`` layers, bottom first (gate.policy.sources); empty: the shipped library
    policy: tuple[str, ...] = ()
    data_files: list[str] = field(default_factory=list)
    engine: str = "embedded"
    opa_url: str | None = None
    opa_push: bool = True
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: the image's manifest (``--image-manifest``), already checked against ``image``'s digest
    image_manifest: ManifestInfo | None = None
    #: VEX documents (``--vex``), read into ``input.vex`` as triage
    vex: tuple[str, ...] = ()
    #: refuse a VEX document that is not signed by a trusted key (``vex_require_signed``)
    vex_require_signed: bool = False


@dataclass(frozen=True)
class LoadedPolicy:
    """A bundle with its merged data and rule metadata, compiled into an engine."""

    bundle: Bundle
    data: dict[str, Any]
    metadata: dict[tuple[str, str], RuleMeta]
    engine: PolicyEngine
    #: what the ``--data`` files contributed (recorded in the decision)
    extra_data: dict[str, Any] = field(default_factory=dict)


def make_engine(name: str, opa_url: str | None, opa_push: bool = True) -> PolicyEngine:
    """The engine called ``name``: ``embedded`` (regorus) or ``opa`` (a server at ``opa_url``)."""
    if name == "embedded":
        from gate.policy.embedded import EmbeddedEngine

        return EmbeddedEngine()
    if name == "opa":
        if not opa_url:
            raise UsageError("--engine opa needs --opa-url URL (e.g. http://127.0.0.1:8181)")
        from gate.policy.opa import OpaEngine

        return OpaEngine(opa_url, push=opa_push)
    raise UsageError(f"unknown engine {name!r}: use embedded or opa")


#: a bundle, its data with every ``--data`` file merged in, and what the files contributed
PolicyData = tuple[Bundle, dict[str, Any], dict[str, Any]]
#: what names a policy: the ``--policy`` specs, bottom first, or one spec or bundle directory
PolicySpecs = str | Path | Sequence[str]


def load_policy_data(policy: PolicySpecs, data_files: Sequence[str]) -> PolicyData:
    """The (layered) bundle, its data with every ``--data`` file merged in, and what the files contributed."""
    bundle = load_layers(as_specs(policy))
    extra: dict[str, Any] = {}
    for path in data_files:
        extra = merge_data(extra, load_data_file(path))
    return bundle, merge_data(bundle.data, extra), extra


def load_policy(
    policy: PolicySpecs,
    data_files: Sequence[str],
    engine: PolicyEngine,
    *,
    policy_data: PolicyData | None = None,
) -> LoadedPolicy:
    """Load the bundle, merge ``--data`` files into its data, check waivers, compile. ``policy_data``:
    what ``load_policy_data`` already read for them, so the files are not read a second time."""
    bundle, data, extra = policy_data or load_policy_data(policy, data_files)
    validate_waivers(data)
    engine.load(bundle, data)
    return LoadedPolicy(bundle, data, read_metadata(bundle.policies()), engine, extra)


def policy_info(bundle: Bundle, engine: PolicyEngine, specs: Sequence[str]) -> PolicyInfo:
    """What a decision records about the policy that decided: digest, revision, every layer, the engine."""
    return PolicyInfo(
        digest=bundle.digest,
        engine=engine.name,
        engine_version=engine.version(),
        revision=bundle.revision,
        bundle=", ".join(specs or (SHIPPED,)),
        layers=bundle.layers,
    )


def evaluate(
    request: EvaluationRequest, registry: ScannerRegistry, store: DecisionStore, signer: Signer | None = None
) -> Decision:
    """Scan the reports, decide, record (signed by ``signer``). Raises on error after recording an ``error`` decision."""
    document = build_input(scan_reports(registry, request.reports), request.image, ci_context(), request.image_manifest)
    policy_input = {**document, "environment": request.environment, "now": rfc3339.format(request.now)}
    if request.vex:
        # a VEX document that cannot be used is an error (exit 2) before anything is decided or recorded
        from gate.vex.documents import load_documents, statements_input

        documents = load_documents(request.vex, artifact=document["artifact"], require_signed=request.vex_require_signed)
        policy_input["vex"] = statements_input(documents)
    engine = make_engine(request.engine, request.opa_url, request.opa_push)
    info = PolicyInfo(digest="unknown", engine=engine.name, engine_version="unknown")
    extra: dict[str, Any] | None = None
    try:
        loaded = load_policy(request.policy, request.data_files, engine)
        # An undeclared --env (a typo) is a usage error: nothing is decided or recorded under it.
        require_environment(request.environment, loaded.data)
        extra = loaded.extra_data or None
        info = policy_info(loaded.bundle, engine, request.policy)
        if max_days_fixable_set(loaded.data):
            findings = policy_input["findings"]
            policy_input["first_seen_fixable"] = first_seen_fixable(store, findings, policy_input["now"])
        result = evaluate_promotion(engine, loaded.metadata, policy_input, request.now)
    except PolicyError as e:
        failed = store.append(_decision(request, policy_input, info, None, extra, error=e.diagnostics()), signer)
        raise PolicyError(f"{e.diagnostics()} (recorded as error decision {failed.decision_id})") from e
    return store.append(_decision(request, policy_input, info, result, extra), signer)


def max_days_fixable_set(data: dict[str, Any]) -> bool:
    """Whether any environment's settings (shipped, or ``--data``) set ``max_days_fixable``. Only then
    does the input carry ``first_seen_fixable``: it costs a log query per fixable finding."""
    config = data.get("gate", {}).get("config", {}) if isinstance(data.get("gate"), dict) else {}
    sources = (config.get("thresholds") if isinstance(config, dict) else None, data.get("thresholds"))
    return any(
        isinstance(entry, dict) and entry.get("max_days_fixable") is not None
        for thresholds in sources
        if isinstance(thresholds, dict)
        for entry in thresholds.values()
    )


def _fixed_version(finding: Any) -> str | None:
    package = finding.get("package") if isinstance(finding, dict) else None
    fixed = package.get("fixed_version") if isinstance(package, dict) else None
    return fixed if isinstance(fixed, str) and fixed else None


def first_seen_fixable(store: DecisionStore, findings: list[Any], now: str) -> dict[str, str]:
    """Finding id -> the timestamp of the oldest recorded decision (any image or environment) whose
    input held that id with a fixed version; ``now`` for one the log never saw with a fix.

    One indexed ``--finding`` query per fixable finding, read oldest first and stopped at the first
    record that had the fix. The limit: the log only knows what gate was shown, so a fix released
    before gate first saw it counts from that first sighting, and a record whose stored input cannot
    be read fails the evaluation (UndecodableRecord), as listing it would."""
    seen: dict[str, str] = {}
    for finding in findings:
        finding_id = finding.get("id") if isinstance(finding, dict) else None
        if not isinstance(finding_id, str) or finding_id in seen or _fixed_version(finding) is None:
            continue
        seen[finding_id] = now
        for decision in store.query(DecisionQuery(finding=finding_id, oldest_first=True)):
            recorded = decision.input.get("findings") if isinstance(decision.input, dict) else None
            if any(
                isinstance(old, dict) and old.get("id") == finding_id and _fixed_version(old) is not None
                for old in recorded or ()
            ):
                seen[finding_id] = min(decision.timestamp, now, key=rfc3339.parse)
                break
    return seen


def supersede_undelivered(
    store: DecisionStore, decision: Decision, problem: str, signer: Signer | None = None
) -> Decision:
    """Record an ``error`` decision for ``decision``'s image and environment, saying its result could not
    be written (``problem``). Appended after it, it is the newest decision for that digest and
    environment, so an allow whose result never reached the pipeline cannot be promoted."""
    import msgspec.structs

    superseding = msgspec.structs.replace(
        decision,
        decision_id=new_decision_id(),
        timestamp=rfc3339.format(datetime.now(UTC)),
        outcome=Outcome.ERROR,
        violations=(),
        warnings=(),
        waivers=(),
        stale_waivers=(),
        error=f"the result of decision {decision.decision_id} ({decision.outcome.value}) could not be written: "
        + problem,
        prev_hash=None,
        hash=None,
        signing_key=None,
        signature=None,
    )
    return store.append(superseding, signer)


def _decision(
    request: EvaluationRequest,
    policy_input: dict[str, Any],
    policy: PolicyInfo,
    result: PolicyResult | None,
    data: dict[str, Any] | None = None,
    error: str | None = None,
) -> Decision:
    if result is None:
        outcome = Outcome.ERROR
    else:
        outcome = Outcome.DENY if result.violations else Outcome.ALLOW
    return Decision(
        decision_id=new_decision_id(),
        timestamp=rfc3339.format(datetime.now(UTC)),
        outcome=outcome,
        environment=request.environment,
        artifact=policy_input["artifact"],
        violations=result.violations if result else (),
        warnings=result.warnings if result else (),
        waivers=result.waivers if result else (),
        stale_waivers=result.stale_waivers if result else (),
        summary=summarize(policy_input["findings"]),
        data=data,
        policy=policy,
        input_digest=sha256_digest(policy_input),
        input=policy_input,
        scanners=tuple(
            {"name": s["name"], "version": s["version"], "report_sha256": s["report_sha256"]}
            for s in policy_input["scanners"]
        ),
        context=policy_input["context"],
        error=error,
    )
