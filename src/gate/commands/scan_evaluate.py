"""``gate scan`` and ``gate evaluate``: read reports into the input document, and decide on it."""

from __future__ import annotations

import argparse
import sys
from enum import StrEnum
from typing import Any, assert_never

from gate.commands.common import ExitCode, Output, add_engine_arguments, add_policy_argument, data_files, emit, policy_specs
from gate.errors import GateError


class ScanFormat(StrEnum):
    """Output formats of ``gate scan``."""

    TEXT = "text"
    JSON = "json"


class DecisionFormat(StrEnum):
    """Output formats of ``gate evaluate``."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate scan`` and ``gate evaluate``."""
    scan = commands.add_parser(
        "scan",
        help="normalize scanner reports into the input document policies see",
        description=(
            "Read each report with its scanner plugin and print the normalized input document: "
            "artifact, context, findings, metrics (e.g. metrics.coverage.line_rate) and scanners "
            "(with each report's sha256). Any report that cannot be read is an error (exit 2)."
        ),
        epilog=(
            "examples:\n"
            "  gate scan --report trivy=trivy.json --report coverage=coverage.xml \\\n"
            "            --image registry.example.com/shop/cart@sha256:<64 hex> --format json\n"
            "  gate scan --report auto=report.json\n"
            "  SONAR_TOKEN=... gate scan --report sonarqube=.scannerwork/report-task.txt"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument(
        "--report",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a report and its scanner plugin (trivy, coverage, sonarqube, ...) or auto to detect; repeatable",
    )
    scan.add_argument("--image", metavar="REF@sha256:D", help="the image the reports are about, pinned by digest")
    scan.add_argument("--format", choices=[f.value for f in ScanFormat], default=ScanFormat.TEXT.value)
    scan.add_argument("--output", "-o", metavar="FILE", help="write the result to FILE instead of stdout")

    evaluate = commands.add_parser(
        "evaluate",
        help="scan reports, let the Rego policies decide, record the decision (exit 0 allow, 1 deny, 2 error)",
        description=(
            "Scan the reports, evaluate every gate.promotion policy of the bundle on the input "
            "document (plus environment and time), record the decision in the decision log and print it. "
            "Without --policy the library installed with gate decides (gate:library; ./policies is used only "
            "when named); the output names the policy's digest, revision and layers. "
            "Exit 0 allow, 1 deny, 2 no decision could be made (fail closed: never an allow)."
        ),
        epilog=(
            "examples:\n"
            "  gate evaluate --report trivy=trivy.json --report coverage=coverage.xml \\\n"
            "                --image registry.example.com/shop/cart@sha256:<64 hex> --env prod --data waivers.yaml\n"
            "  gate evaluate ... --policy gate:library --policy ./org-policies   # the library plus an org layer\n"
            "environment: GATE_DECISION_STORE (a path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB; "
            "default: a SQLite file in the user's state folder)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument(
        "--report", action="append", default=[], metavar="NAME=PATH", help="a report, as for gate scan; repeatable"
    )
    evaluate.add_argument("--image", required=True, metavar="REF@sha256:D", help="the image to decide on, pinned by digest")
    evaluate.add_argument("--env", required=True, metavar="ENV", help="target environment, declared in the policy data (shipped: dev, staging, prod)")
    add_policy_argument(evaluate)
    add_engine_arguments(evaluate, no_push=True)
    evaluate.add_argument("--format", choices=[f.value for f in DecisionFormat], default=DecisionFormat.TEXT.value)
    evaluate.add_argument("--output", "-o", metavar="FILE", help="write the result to FILE; a summary goes to stderr")


def scanner_registry(args: argparse.Namespace) -> Any:
    from gate.plugins import disabled_from_env, plugin_manager
    from gate.scanning.registry import ScannerRegistry

    return ScannerRegistry(plugin_manager(disabled=[*args.disable_plugin, *disabled_from_env()]))


def cmd_scan(args: argparse.Namespace) -> ExitCode:
    from gate.context import ci_context
    from gate.imageref import parse_pinned
    from gate.scanning.document import ReportSpec, build_input, scan_reports

    specs = [ReportSpec.parse(text) for text in args.report]
    artifact = parse_pinned(args.image) if args.image else None
    results = scan_reports(scanner_registry(args), specs)
    document = build_input(results, artifact, ci_context())
    fmt = ScanFormat(args.format)
    if fmt is ScanFormat.JSON:
        from gate.output import json as json_output

        emit(json_output.render(document), args.output)
    elif fmt is ScanFormat.TEXT:
        from gate.output import text

        emit(text.render_scan(document), args.output)
    else:
        assert_never(fmt)
    return ExitCode.OK


def cmd_evaluate(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.record import Outcome
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store
    from gate.evaluation import EvaluationRequest, evaluate, supersede_undelivered
    from gate.imageref import parse_pinned
    from gate.scanning.document import ReportSpec

    request = EvaluationRequest(
        reports=[ReportSpec.parse(text) for text in args.report],
        image=parse_pinned(args.image),
        environment=args.env,
        policy=tuple(policy_specs(args)),
        data_files=data_files(args),
        engine=args.engine,
        opa_url=args.opa_url,
        opa_push=not args.opa_no_push,
    )
    fmt = DecisionFormat(args.format)
    # Fail-closed order: open where the result goes (-o FILE or stdout) first, so an unwritable
    # destination records nothing; then decide and record; then write. If the write still fails, a
    # recorded allow is superseded by a newer error decision: the newest decision is never an allow
    # whose result nobody received.
    output = Output(args.output)
    try:
        # Every decision is signed: no key, no decision (exit 2), never an unsigned allow.
        signer = load_signer()
        if signer.created:
            print(
                f"gate: created a local signing key at {signer.path} (key id {signer.key_id}); "
                "set GATE_SIGNING_KEY to use your CI's key",
                file=sys.stderr,
            )
        store = open_store()
        try:
            decision = evaluate(request, scanner_registry(args), store, signer=signer)
            try:
                output.write([_render_decision(decision, fmt, request.policy)])
            except Exception as e:  # noqa: BLE001 - any failure after recording: see above
                problem = e.diagnostics() if isinstance(e, GateError) else f"{type(e).__name__}: {e}"
                if decision.outcome is not Outcome.ALLOW:
                    recorded = f"decision {decision.decision_id} ({decision.outcome.value}) is recorded"
                    raise GateError(f"{problem}; {recorded}") from None
                superseding = supersede_undelivered(store, decision, problem, signer)
                raise GateError(
                    f"{problem}; decision {decision.decision_id} (allow) is superseded by error decision "
                    f"{superseding.decision_id}"
                ) from None
        finally:
            store.close()
    finally:
        output.discard()
    if args.output or fmt is not DecisionFormat.TEXT:
        print(
            f"gate: {decision.outcome.value.upper()} {len(decision.violations)} violation(s), "
            f"{len(decision.warnings)} warning(s); decision {decision.decision_id}",
            file=sys.stderr,
        )
    return ExitCode.OK if decision.outcome is Outcome.ALLOW else ExitCode.DENIED


def _render_decision(decision: Any, fmt: DecisionFormat, policy: tuple[str, ...]) -> bytes | str:
    """The decision in ``fmt``."""
    if fmt is DecisionFormat.TEXT:
        from gate.output import decision_text

        return decision_text.render(decision)
    if fmt is DecisionFormat.JSON:
        from gate.output import json as json_output

        return json_output.render(decision)
    if fmt is DecisionFormat.SARIF:
        from gate.output import sarif

        return sarif.render(decision)
    if fmt is DecisionFormat.JUNIT:
        from gate.output import junit
        from gate.policy.metadata import read_metadata
        from gate.policy.sources import load_layers

        # Every rule of every layer becomes a testcase, so passing rules show up too; the layers as
        # recorded (an OCI tag pinned to the digest that decided), so the list is of the deciding bundle.
        layers = [layer.source for layer in decision.policy.layers] or list(policy)
        rules = {m.rule_id: m.package for m in read_metadata(load_layers(layers).policies()).values()}
        return junit.render(decision, rules)
    assert_never(fmt)
