"""``gate scan`` and ``gate evaluate``: read reports into the input document, and decide on it."""

from __future__ import annotations

import argparse
import os
import re
import sys
from enum import StrEnum
from typing import Any, assert_never

from gate.commands.common import ExitCode, Output, add_engine_arguments, add_policy_argument, data_files, emit, policy_specs
from gate.commands.notifications import add_notify_argument, notify_decision, notify_error, notify_targets
from gate.errors import GateError, UsageError, closest_spelling
from gate.output.formats import DecisionFormat, render_decision


class ScanFormat(StrEnum):
    """Output formats of ``gate scan``."""

    TEXT = "text"
    JSON = "json"


IMAGE_MANIFEST_HELP = (
    "the image's manifest: a FILE with its exact bytes (crane manifest, oras manifest fetch, skopeo inspect "
    "--raw, docker buildx imagetools inspect --raw), or 'registry' to fetch it from the image's registry; its "
    "sha256 must be the --image digest. For an image index the reports must cover every platform it carries "
    "(docs/evidence.md)"
)


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
    scan.add_argument("--image-manifest", metavar="FILE|registry", help=IMAGE_MANIFEST_HELP + "; needs --image")
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
            "  gate evaluate --report trivy=amd64.json --report trivy=arm64.json --image REPO@sha256:<index> \\\n"
            "                --image-manifest registry --env prod   # an image index: every platform needs a report\n"
            "  gate evaluate ... --vex vendor.openvex.json --vex cart.cdx.json   # VEX statements as triage\n"
            "  gate evaluate ... --output json=gate.json --output sarif=gate.sarif \\\n"
            "                --output markdown=\"$GITHUB_STEP_SUMMARY\"   # one decision, three renderings\n"
            "environment: GATE_DECISION_STORE (a path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB; "
            "default: a SQLite file in the user's state folder)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument(
        "--report", action="append", default=[], metavar="NAME=PATH", help="a report, as for gate scan; repeatable"
    )
    evaluate.add_argument("--image", required=True, metavar="REF@sha256:D", help="the image to decide on, pinned by digest")
    evaluate.add_argument("--image-manifest", metavar="FILE|registry", help=IMAGE_MANIFEST_HELP)
    evaluate.add_argument("--env", required=True, metavar="ENV", help="target environment, declared in the policy data (shipped: dev, staging, prod)")
    add_policy_argument(evaluate)
    evaluate.add_argument(
        "--vex", action="append", default=None, metavar="FILE",
        help=(
            "an OpenVEX v0.2.0 or CycloneDX VEX document (or a DSSE envelope signing one) whose not_affected "
            "and fixed statements triage matching findings like waivers; repeatable; newer statements supersede "
            "older ones (default: the vex of gate.toml; vex_require_signed / GATE_VEX_REQUIRE_SIGNED refuses "
            "unsigned documents)"
        ),
    )
    add_engine_arguments(evaluate, no_push=True)
    evaluate.add_argument("--format", choices=[f.value for f in DecisionFormat], default=DecisionFormat.TEXT.value)
    evaluate.add_argument(
        "--output", "-o", action="append", default=[], metavar="[FORMAT=]FILE",
        help=(
            "FORMAT=FILE: write the decision rendered as FORMAT (" + ", ".join(DecisionFormat) + ") to FILE, "
            "repeatable, all from the one recorded decision; FILE alone: the --format rendering to FILE "
            "instead of stdout (a summary goes to stderr). Write ./NAME=… for a file whose name has '='"
        ),
    )
    add_notify_argument(evaluate, what="on a deny or an error decision (decision.denied, decision.error)")


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
    manifest = None
    if args.image_manifest is not None:
        if artifact is None:
            raise UsageError("--image-manifest needs --image REF@sha256:D: the manifest is checked against its digest")
        from gate.scanning.platforms import read_image_manifest

        manifest = read_image_manifest(args.image_manifest, artifact)
    results = scan_reports(scanner_registry(args), specs)
    document = build_input(results, artifact, ci_context(), manifest)
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


def vex_files(args: argparse.Namespace) -> list[str]:
    """The ``--vex`` files, else gate.toml's ``vex``."""
    if args.vex:
        return list(args.vex)
    from gate import settings

    value = settings.current().value("vex")
    return list(value) if isinstance(value, tuple) else []


def cmd_evaluate(args: argparse.Namespace) -> ExitCode:
    from gate import settings
    from gate.decisions.record import Outcome
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store
    from gate.errors import PolicyError
    from gate.evaluation import EvaluationRequest, evaluate, supersede_undelivered
    from gate.imageref import parse_pinned
    from gate.scanning.document import ReportSpec

    image = parse_pinned(args.image)
    manifest = None
    if args.image_manifest is not None:
        from gate.scanning.platforms import read_image_manifest

        manifest = read_image_manifest(args.image_manifest, image)
    request = EvaluationRequest(
        reports=[ReportSpec.parse(text) for text in args.report],
        image=image,
        image_manifest=manifest,
        environment=args.env,
        policy=tuple(policy_specs(args)),
        data_files=data_files(args),
        engine=args.engine,
        opa_url=args.opa_url,
        opa_push=not args.opa_no_push,
        vex=tuple(vex_files(args)),
        vex_require_signed=settings.current().flag("GATE_VEX_REQUIRE_SIGNED"),
    )
    fmt = DecisionFormat(args.format)
    destinations = output_destinations(args.output, fmt)
    targets = notify_targets(args)  # a bad --notify or [notify] is exit 2 before anything is recorded
    # Fail-closed order: open where the result goes (stdout and every --output) first, so an unwritable
    # destination records nothing; then decide and record ONE decision; then render it in each format
    # and write. If a write still fails, a recorded allow is superseded by a newer error decision: the
    # newest decision is never an allow whose result nobody received.
    outputs: list[tuple[DecisionFormat, Output]] = []
    try:
        for path, dest_fmt in destinations.items():
            outputs.append((dest_fmt, Output(path)))
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
            try:
                decision = evaluate(request, scanner_registry(args), store, signer=signer)
            except PolicyError as e:  # recorded as an error decision, then raised: exit 2
                notify_error(args.image, args.env, e.diagnostics(), targets)
                raise
            try:
                rendered = [render_decision(decision, dest_fmt) for dest_fmt, _ in outputs]
                for (_, output), data in zip(outputs, rendered):
                    output.write([data])
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
        for _, output in outputs:
            output.discard()
    if None not in destinations or fmt is not DecisionFormat.TEXT:
        print(
            f"gate: {decision.outcome.value.upper()} {len(decision.violations)} violation(s), "
            f"{len(decision.warnings)} warning(s); decision {decision.decision_id}",
            file=sys.stderr,
        )
    notify_decision(decision, targets)  # after the decision is recorded and written; never changes the exit code
    return ExitCode.OK if decision.outcome is Outcome.ALLOW else ExitCode.DENIED


#: ``FORMAT=FILE``: a lowercase word before the first ``=`` (a path like ``./a=b`` is a plain FILE)
_NAMED_OUTPUT = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)=(.*)$", re.DOTALL)


def output_destinations(values: list[str], fmt: DecisionFormat) -> dict[str | None, DecisionFormat]:
    """Where each rendering goes (``None``: stdout), from ``--output`` values and ``--format``.

    ``FORMAT=FILE`` names a rendering; ``FILE`` alone is the ``--format`` rendering instead of stdout.
    Stdout carries the ``--format`` rendering unless a plain FILE took it. A format or a file named
    twice, an unknown format or an empty file name is a usage error (exit 2) before anything is opened.
    """
    named: dict[str, DecisionFormat] = {}
    plain: list[str] = []
    for value in values:
        match = _NAMED_OUTPUT.match(value)
        if match is None:
            plain.append(value)
            continue
        name, path = match.groups()
        try:
            dest_fmt = DecisionFormat(name)
        except ValueError:
            meant = closest_spelling(name, [f.value for f in DecisionFormat])
            hint = f", did you mean {meant!r}?" if meant is not None else ""
            raise UsageError(
                f"--output {value}: unknown format {name!r}{hint} "
                f"(choose from {', '.join(repr(f.value) for f in DecisionFormat)}; write ./{value} for a file of that name)"
            ) from None
        if not path:
            raise UsageError(f"--output {value}: no file after '='")
        if dest_fmt in named.values():
            raise UsageError(f"--output {value}: format {name!r} is named twice")
        named[path] = dest_fmt
    if len(plain) > 1:
        raise UsageError(f"--output {plain[1]}: only one --output FILE without FORMAT= (the --format rendering)")
    # one file, two renderings: one would silently replace the other (a.out and ./a.out are one file)
    seen: set[str] = set()
    for path in [*plain, *named]:
        if os.path.abspath(path) in seen:
            raise UsageError(f"--output: {path} is named twice")
        seen.add(os.path.abspath(path))
    destinations: dict[str | None, DecisionFormat] = {}
    if plain:
        if fmt in named.values():
            raise UsageError(f"--output {plain[0]}: format {fmt.value!r} (--format) is named twice")
        destinations[plain[0]] = fmt
    else:
        destinations[None] = fmt
    destinations.update(named)
    return destinations
