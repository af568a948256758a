"""The ``gate`` command line: the only place that parses arguments, prints results and exits."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, NoReturn, assert_never

from gate import __version__
from gate.errors import GateError

logger = logging.getLogger("gate")


class ExitCode(IntEnum):
    """What ``gate`` exits with (DESIGN.md's CLI contract)."""

    #: allowed / done / nothing wrong
    OK = 0
    #: denied by policy, or a check found a problem
    DENIED = 1
    #: no decision could be made: usage, bad input, engine, store or plugin failure (fail closed)
    ERROR = 2


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


class PolicyTestFormat(StrEnum):
    """Output formats of ``gate policy test``."""

    TEXT = "text"
    JSON = "json"


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.ERROR, f"gate: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(
        prog="gate",
        description=(
            "Policy-centric promotion gate: normalize scanner reports (Trivy, coverage, SonarQube), "
            "let Rego policies decide, record the decision."
        ),
        epilog=(
            "exit codes: 0 ok/allow, 1 deny, 2 error (no decision could be made; never an allow). "
            "Environment: GATE_LOGLEVEL, GATE_DISABLE_PLUGINS, GATE_MAX_REPORT_MB."
        ),
    )
    parser.add_argument("--version", action="version", version=f"gate {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging on stderr (-v gate debug, -vv everything)"
    )
    parser.add_argument(
        "--disable-plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="do not load this scanner plugin (repeatable; also GATE_DISABLE_PLUGINS=a,b)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

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
            "Exit 0 allow, 1 deny, 2 no decision could be made (fail closed: never an allow)."
        ),
        epilog=(
            "example:\n"
            "  gate evaluate --report trivy=trivy.json --report coverage=coverage.xml --policy policies \\\n"
            "                --image registry.example.com/shop/cart@sha256:<64 hex> --env prod --data waivers.yaml\n"
            "environment: GATE_DECISION_STORE (a path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB; "
            "default: a SQLite file in the user's state folder)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument(
        "--report", action="append", default=[], metavar="NAME=PATH", help="a report, as for gate scan; repeatable"
    )
    evaluate.add_argument("--policy", default="policies", metavar="DIR", help="policy bundle directory (default: policies)")
    evaluate.add_argument("--image", required=True, metavar="REF@sha256:D", help="the image to decide on, pinned by digest")
    evaluate.add_argument("--env", required=True, metavar="ENV", help="target environment, e.g. prod, staging")
    evaluate.add_argument(
        "--data", action="append", default=[], metavar="FILE",
        help="JSON or YAML whose top-level keys merge into data (waivers, thresholds); repeatable",
    )
    evaluate.add_argument("--engine", choices=["embedded", "opa"], default="embedded")
    evaluate.add_argument(
        "--opa-url", metavar="URL", help="OPA server for --engine opa (bearer token from GATE_OPA_TOKEN)"
    )
    evaluate.add_argument(
        "--opa-no-push", action="store_true",
        help="with --engine opa: expect the policies and data on the server instead of uploading them",
    )
    evaluate.add_argument("--format", choices=[f.value for f in DecisionFormat], default=DecisionFormat.TEXT.value)
    evaluate.add_argument("--output", "-o", metavar="FILE", help="write the result to FILE; a summary goes to stderr")

    promote = commands.add_parser(
        "promote",
        help="copy an approved digest to the release registry and commit it to the GitOps repo (0 done, 1 refused, 2 error)",
        description=(
            "Check the decision (exists, allow, hash and signature by a trusted key, this digest and environment, "
            "younger than --max-age, no waiver expired since) and the GitOps history (a human rollback holds the "
            "digest), then copy the image by digest to --target (or push it from a Docker daemon) and commit the "
            "pinned reference to the GitOps file with Gate-Decision and Gate-Image-Digest trailers. Every outcome "
            "is recorded in the decision log as an event. Exit 0 done or already done, 1 refused (nothing "
            "changed), 2 error."
        ),
        epilog=(
            "example:\n"
            "  gate promote --decision 0193... --target registry.example.com/release/cart:1.4.3 \\\n"
            "               --gitops-repo https://git.example.com/ops/deploy.git --gitops-path apps/cart/kustomization.yaml\n"
            "registry credentials: ~/.docker/config.json (auths, credHelpers, credsStore) or $DOCKER_CONFIG;\n"
            "environment: GATE_PROMOTE_MAX_AGE (default 7d), GATE_TRUSTED_KEYS, GATE_DECISION_STORE"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    promote.add_argument("--decision", required=True, metavar="ID", help="the allow decision to promote")
    promote.add_argument("--target", required=True, metavar="REF:TAG", help="release repository and tag, e.g. reg/app:1.2")
    promote.add_argument("--env", metavar="ENV", help="the environment promoted to; must be the decision's (default: the decision's)")
    promote.add_argument("--source", metavar="REF@sha256:D", help="staging image (default: the decision's image and digest)")
    promote.add_argument("--from-daemon", action="store_true", help="push the image from a Docker-API daemon (DOCKER_HOST) instead of copying")
    promote.add_argument("--docker-host", metavar="URL", help="daemon address for --from-daemon (default: DOCKER_HOST)")
    promote.add_argument("--gitops-repo", metavar="URL", help="the GitOps repository (any URL git clones)")
    promote.add_argument("--gitops-path", metavar="PATH", help="the file in it that pins the image")
    promote.add_argument("--gitops-branch", default="main", metavar="BRANCH", help="branch to commit on (default main)")
    promote.add_argument(
        "--pr-branch", action="store_true",
        help="push to a branch gate/promote-<hash of target and change> for a pull request, instead of to --gitops-branch",
    )
    promote.add_argument(
        "--file-format", choices=["auto", "kustomize", "helm", "manifest", "setters"], default="auto",
        help="how the GitOps file names the image (default: detect)",
    )
    promote.add_argument("--values-key", default="image", metavar="KEY", help="Helm values: dotted path of the image mapping (default image)")
    promote.add_argument("--setter", metavar="NS:NAME", help='Flux setter marker to update ({"$imagepolicy": "NS:NAME"})')
    promote.add_argument("--message-template", metavar="FILE", help="commit message template (fields {image} {old} {new} {environment} {decision_id} ...)")
    promote.add_argument("--author", default="gate <gate@localhost>", metavar="'NAME <EMAIL>'", help="commit author and committer")
    promote.add_argument("--sign", action=argparse.BooleanOptionalAction, default=None, help="sign the commit (default: as git's commit.gpgsign says)")
    promote.add_argument("--max-age", metavar="DURATION", help="refuse decisions older than this (default GATE_PROMOTE_MAX_AGE or 7d)")
    promote.add_argument("--override-hold", action="store_true", help="re-promote a digest a person rolled back (recorded in the commit)")
    promote.add_argument("--dry-run", action="store_true", help="print the registry operations and the file diff; change and record nothing")
    promote.add_argument("--format", choices=["text", "json"], default="text")

    reconcile = commands.add_parser(
        "reconcile",
        help="re-check policy for every object of a GitOps path, then sync it to Kubernetes (0 synced, 1 blocked, 2 error)",
        description=(
            "Fetch the GitOps repository (a local mirror kept between cycles), render PATH (plain YAML, "
            "kustomize, Helm when helm is on PATH) and judge every object with the gate.admission rules: every "
            "image pinned by digest, with a verified, signed allow decision for ENV that is not too old, relied "
            "on no expired waiver, and still passes today's promotion policy. Objects that pass are dry-run "
            "server-side (the cluster's webhooks speak) and then applied server-side (field manager gate), "
            "Namespaces and CRDs first. Blocked objects are not applied: what runs stays, and the block is "
            "reported here, as a Kubernetes Event and in the decision log. Exit 0 all synced, 1 something "
            "blocked, 2 error (nothing more is applied). See docs/reconcile.md."
        ),
        epilog=(
            "examples:\n"
            "  gate reconcile --repo https://git.example.com/ops/deploy.git --path apps/prod --env prod --once\n"
            "  gate reconcile --repo URL --path apps/prod --env prod --plan --format json   # pre-merge check\n"
            "  gate reconcile --repo URL --path apps/prod --env prod --interval 60 --prune --leader-elect\n"
            "environment: GATE_DECISION_STORE, GATE_TRUSTED_KEYS, KUBECONFIG (in a pod: its service account)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reconcile.add_argument("--repo", required=True, metavar="URL", help="the GitOps repository (any URL git fetches)")
    reconcile.add_argument("--branch", default="main", metavar="BRANCH", help="branch to follow (default main)")
    reconcile.add_argument("--path", required=True, metavar="PATH", help="folder or file in the repository to sync")
    reconcile.add_argument("--env", required=True, metavar="ENV", help="the environment this cluster is")
    how = reconcile.add_mutually_exclusive_group(required=True)
    how.add_argument("--once", action="store_true", help="run one cycle and exit with its outcome")
    how.add_argument("--interval", type=float, metavar="S", help="run a cycle every S seconds until SIGTERM")
    reconcile.add_argument("--plan", action="store_true", help="judge only, without a cluster (every object a CREATE); exit 1 if anything would be blocked")
    reconcile.add_argument("--prune", action="store_true", help="delete objects gate applied from this repository that git no longer declares")
    reconcile.add_argument("--kubeconfig", metavar="FILE", help="cluster to sync (default: in-cluster config, then KUBECONFIG)")
    reconcile.add_argument("--context", metavar="NAME", help="kubeconfig context")
    reconcile.add_argument("--policy", default="policies", metavar="DIR", help="policy bundle with the gate.admission rules (default: policies)")
    reconcile.add_argument("--data", action="append", default=[], metavar="FILE", help="data files (thresholds, max decision age); repeatable")
    reconcile.add_argument("--helm-values", action="append", default=[], metavar="FILE", help="values file in the repository for a Helm chart path; repeatable")
    reconcile.add_argument("--health-timeout", type=float, default=120.0, metavar="S", help="wait up to S seconds for applied workloads to roll out (default 120; 0 reports at once)")
    reconcile.add_argument("--cache-dir", metavar="DIR", help="where the repository mirror is kept (default: $XDG_CACHE_HOME/gate/reconcile)")
    reconcile.add_argument("--leader-elect", action="store_true", help="take the coordination.k8s.io Lease first, so only one replica syncs")
    reconcile.add_argument("--lease-name", default="gate-reconciler", metavar="NAME")
    reconcile.add_argument("--lease-namespace", default="gate-system", metavar="NS")
    reconcile.add_argument("--format", choices=["text", "json"], default="text")

    policy = commands.add_parser("policy", help="work with policy bundles")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="COMMAND", parser_class=_Parser)
    policy_test = policy_commands.add_parser(
        "test",
        help="run a bundle's Rego unit tests, as opa test does (exit 0 all pass, 1 a test failed, 2 error)",
        description=(
            "Load every .rego file of the bundle (tests included) and its data into the embedded engine "
            "and evaluate every rule named test_*: it passes when it is true. Exit 0 when all pass, 1 when "
            "any fails, 2 when a policy does not compile or the bundle has no tests."
        ),
    )
    policy_test.add_argument(
        "dir", nargs="?", default="policies", metavar="DIR", help="the policy bundle directory (default: policies)"
    )
    policy_test.add_argument(
        "--coverage", action="store_true", help="also report line coverage of each policy file (tests excluded)"
    )
    policy_test.add_argument(
        "-v", "--verbose-tests", action="store_true", dest="verbose_tests", help="list every test, not only failures"
    )
    policy_test.add_argument(
        "--format", choices=[f.value for f in PolicyTestFormat], default=PolicyTestFormat.TEXT.value
    )
    policy_test.add_argument("--output", "-o", metavar="FILE", help="write the result to FILE instead of stdout")

    decisions = commands.add_parser(
        "decisions",
        help="query, verify, export and replay the decision log",
        description="The decision log (GATE_DECISION_STORE: a path, sqlite:///PATH or postgresql://...).",
    )
    decision_commands = decisions.add_subparsers(dest="decisions_command", metavar="COMMAND", parser_class=_Parser)

    def add_filters(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--digest", metavar="sha256:D", help="only decisions about this image digest")
        sub.add_argument("--image", metavar="REPO", help="only this image repository (any tag or digest)")
        sub.add_argument("--env", metavar="ENV", help="only this environment")
        sub.add_argument("--outcome", choices=["allow", "deny", "error"])
        sub.add_argument("--rule", metavar="RULE", help="a policy rule id or a finding rule (CVE id) a violation names")
        sub.add_argument("--waiver", metavar="ID", help="only decisions that applied this waiver")
        sub.add_argument("--since", metavar="TIME", help="RFC 3339 time or date, or a duration ago: 30d, 12h")
        sub.add_argument("--until", metavar="TIME", help="RFC 3339 time or date, or a duration ago (exclusive)")
        sub.add_argument("--policy-digest", metavar="sha256:D", help="only decisions made under this policy bundle")

    def add_waiver_expired(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--waived", action="store_true", help="only decisions that applied at least one waiver")
        sub.add_argument(
            "--waiver-expired", action="store_true",
            help="only decisions that applied a waiver which has expired since (with --waiver: that waiver)",
        )

    listing_d = decision_commands.add_parser(
        "list",
        help="decisions matching the filters, newest first",
        description=(
            "Decisions matching every filter given, newest first. --format json prints one document, "
            '{"decisions": [...]}, each record without its input (gate decisions show ID --format json has it); '
            "--format csv has one row per decision with fixed columns. Auditors' questions: docs/audit.md."
        ),
    )
    add_filters(listing_d)
    add_waiver_expired(listing_d)
    listing_d.add_argument("--limit", type=int, metavar="N", help="at most N decisions")
    listing_d.add_argument("--format", choices=["text", "json", "csv"], default="text")

    show = decision_commands.add_parser("show", help="one decision: the whole record, its input, violations, waivers")
    show.add_argument("decision_id", metavar="ID")
    show.add_argument("--format", choices=["text", "json"], default="text")

    verify = decision_commands.add_parser(
        "verify",
        help="re-hash every record and check the chain and every signature (exit 0 intact, 1 tampered)",
        description=(
            "Recompute every record's input digest and hash, check each prev_hash links to the record "
            "before it, and check every signature against GATE_TRUSTED_KEYS; then the same for the chain of "
            "events (promotions, syncs). Exit 1 naming the first bad record on any edit, reordering or deletion."
        ),
    )
    verify.add_argument("--format", choices=["text", "json"], default="text")

    events = decision_commands.add_parser(
        "events",
        help="what happened after decisions: promotions (done, refused, no-op) and reconciler syncs, newest first",
    )
    events.add_argument("--decision", metavar="ID", help="only events about this decision")
    events.add_argument("--type", choices=["promotion", "sync"])
    events.add_argument("--env", metavar="ENV", help="only this environment")
    events.add_argument("--digest", metavar="sha256:D", help="only events about this image digest")
    events.add_argument("--limit", type=int, metavar="N", help="at most N events")
    events.add_argument("--format", choices=["text", "json"], default="text")

    export = decision_commands.add_parser("export", help="write records as JSON lines, or as OPA decision-log events")
    add_filters(export)
    add_waiver_expired(export)
    export.add_argument("--format", choices=["jsonl", "opa"], default="jsonl")
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")

    replay = decision_commands.add_parser(
        "replay",
        help="re-decide stored inputs under another policy bundle and show what would flip (records nothing)",
        description=(
            "Evaluate the stored input of every matching decision under the policy bundle DIR, each as at "
            "its own decision time (waiver expiry, effective_on), and list the decisions that would flip "
            "allow→deny or deny→allow with the violations that appear or go. Nothing is recorded. Exit 0; "
            "2 when the bundle does not compile or no matching decision could be replayed."
        ),
    )
    add_filters(replay)
    replay.add_argument("--policy", required=True, metavar="DIR", help="the policy bundle to replay under")
    replay.add_argument(
        "--data", action="append", default=[], metavar="FILE",
        help="data files (waivers, thresholds) to judge every record with; repeatable. Default: each record's own recorded --data",
    )
    replay.add_argument("--format", choices=["text", "json"], default="text")

    stats = decision_commands.add_parser(
        "stats", help="counts by outcome, top blocking rules and CVEs, waivers used and expiring"
    )
    add_filters(stats)
    add_waiver_expired(stats)
    stats.add_argument("--top", type=int, default=10, metavar="N", help="rules and findings listed (default 10)")
    stats.add_argument("--format", choices=["text", "json"], default="text")

    keys = commands.add_parser("keys", help="signing keys for the decision log")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND", parser_class=_Parser)
    generate = key_commands.add_parser(
        "generate", help="write a new Ed25519 key pair (private key PEM 0600, public key PEM)"
    )
    key_commands.add_parser(
        "public",
        help="print the public key of the signing key gate uses (GATE_SIGNING_KEY, or the local key), for verifiers",
    )
    generate.add_argument("--out", default=".", metavar="DIR", help="folder to write gate-signing.pem and gate-signing.pub.pem")

    serve = commands.add_parser(
        "serve",
        help="serve the policies over OPA's Data API (embedded engine), for admission controllers and OPA clients",
        description=(
            "An HTTP server speaking the subset of OPA's REST API that clients use: GET /health, "
            "GET|POST /v1/data/{path} with {\"input\": ...}, PUT|DELETE /v1/data/{path}, "
            "GET|PUT|DELETE /v1/policies/{id}. Evaluation uses the embedded regorus engine."
        ),
        epilog=(
            "environment: GATE_SERVE_TOKEN requires that bearer token on every endpoint but /health and the "
            "admission endpoints; with --admission, GATE_DECISION_STORE and GATE_TRUSTED_KEYS as for reconcile"
        ),
    )
    serve.add_argument("--policy", metavar="DIR", help="policy bundle to load at start (optional: clients may upload)")
    serve.add_argument("--data", action="append", default=[], metavar="FILE", help="data file(s) to load at start")
    serve.add_argument("--addr", default="127.0.0.1:8181", metavar="HOST:PORT", help="where to listen")
    serve.add_argument(
        "--admission",
        action="store_true",
        help="also answer Kubernetes AdmissionReviews at POST /v1/admission (and /validate) with the bundle's "
        "admission rules and the decision log: a ValidatingAdmissionWebhook (needs --policy and --env)",
    )
    serve.add_argument("--env", metavar="ENV", help="with --admission: the environment this cluster is")
    serve.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM; webhooks need HTTPS)")
    serve.add_argument("--tls-key", metavar="FILE", help="the private key (PEM) of --tls-cert")

    plugins = commands.add_parser("plugins", help="inspect scanner plugins")
    plugin_commands = plugins.add_subparsers(dest="plugins_command", metavar="COMMAND", parser_class=_Parser)
    listing = plugin_commands.add_parser(
        "list", help="the scanners found, the formats each reads, and which package provides it"
    )
    listing.add_argument("--format", choices=[f.value for f in ScanFormat], default=ScanFormat.TEXT.value)
    return parser


def _configure_logging(verbosity: int) -> None:
    # Replace, not add: main() may run several times in one process (tests, embedding).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("gate: %(levelname)s: %(message)s"))
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(os.environ.get("GATE_LOGLEVEL", "WARNING").upper())
    if verbosity >= 1:
        logger.setLevel(logging.DEBUG)
    if verbosity >= 2:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)


def _emit(data: bytes | str, output: str | None) -> None:
    """Write a result to stdout, or to ``output`` (opened only now, so failures write nothing)."""
    payload = data.encode() if isinstance(data, str) else data
    if output is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
        return
    try:
        Path(output).write_bytes(payload)
    except OSError as e:
        raise GateError(f"cannot write --output {output}: {e.strerror}") from None
    print(f"gate: wrote {output}", file=sys.stderr)


def _emit_stream(chunks: Any, output: str | None) -> None:
    """Write a result produced in chunks (bytes or str): to stdout as it comes, or to ``output``
    through a temporary file renamed into place at the end, so a failure leaves no partial file."""
    if output is None:
        try:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk.encode() if isinstance(chunk, str) else chunk)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped (| head): not an error of ours
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return
    import tempfile

    target = Path(output)
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    except OSError as e:
        raise GateError(f"cannot write --output {output}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk.encode() if isinstance(chunk, str) else chunk)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temp, 0o666 & ~mask)  # as a plainly created file would be (mkstemp makes 0600)
        os.replace(temp, target)
    except OSError as e:
        Path(temp).unlink(missing_ok=True)
        raise GateError(f"cannot write --output {output}: {e.strerror}") from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    print(f"gate: wrote {output}", file=sys.stderr)


def _registry(args: argparse.Namespace) -> Any:
    from gate.plugins import ScannerRegistry, disabled_from_env, plugin_manager

    return ScannerRegistry(plugin_manager(disabled=[*args.disable_plugin, *disabled_from_env()]))


def _cmd_scan(args: argparse.Namespace) -> ExitCode:
    from gate.context import ci_context
    from gate.imageref import parse_pinned
    from gate.scanning.document import ReportSpec, build_input, scan_reports

    specs = [ReportSpec.parse(text) for text in args.report]
    artifact = parse_pinned(args.image) if args.image else None
    results = scan_reports(_registry(args), specs)
    document = build_input(results, artifact, ci_context())
    fmt = ScanFormat(args.format)
    if fmt is ScanFormat.JSON:
        from gate.output import json as json_output

        _emit(json_output.render(document), args.output)
    elif fmt is ScanFormat.TEXT:
        from gate.output import text

        _emit(text.render_scan(document), args.output)
    else:
        assert_never(fmt)
    return ExitCode.OK


def _cmd_evaluate(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.record import Outcome
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store
    from gate.evaluation import EvaluationRequest, evaluate
    from gate.imageref import parse_pinned
    from gate.scanning.document import ReportSpec

    request = EvaluationRequest(
        reports=[ReportSpec.parse(text) for text in args.report],
        image=parse_pinned(args.image),
        environment=args.env,
        policy_dir=Path(args.policy),
        data_files=args.data,
        engine=args.engine,
        opa_url=args.opa_url,
        opa_push=not args.opa_no_push,
    )
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
        decision = evaluate(request, _registry(args), store, signer=signer)
    finally:
        store.close()
    fmt = DecisionFormat(args.format)
    if fmt is DecisionFormat.TEXT:
        from gate.output import decision_text

        rendered: bytes | str = decision_text.render(decision)
    elif fmt is DecisionFormat.JSON:
        from gate.output import json as json_output

        rendered = json_output.render(decision)
    elif fmt is DecisionFormat.SARIF:
        from gate.output import sarif

        rendered = sarif.render(decision)
    elif fmt is DecisionFormat.JUNIT:
        from gate.output import junit

        from gate.policy.bundle import load_bundle
        from gate.policy.metadata import read_metadata

        # Every rule of the bundle becomes a testcase, so passing rules show up too.
        rules = {m.rule_id: m.package for m in read_metadata(load_bundle(args.policy).policies()).values()}
        rendered = junit.render(decision, rules)
    else:
        assert_never(fmt)
    _emit(rendered, args.output)
    if args.output or fmt is not DecisionFormat.TEXT:
        print(
            f"gate: {decision.outcome.value.upper()} {len(decision.violations)} violation(s), "
            f"{len(decision.warnings)} warning(s); decision {decision.decision_id}",
            file=sys.stderr,
        )
    return ExitCode.OK if decision.outcome is Outcome.ALLOW else ExitCode.DENIED


def _cmd_promote(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.signing import load_signer, load_trust
    from gate.decisions.store import open_store
    from gate.decisions.timefilter import parse_duration
    from gate.errors import UsageError
    from gate.promote.preconditions import DEFAULT_MAX_AGE
    from gate.promote.promotion import GitOpsTarget, PromotionRequest, promote

    if bool(args.gitops_repo) != bool(args.gitops_path):
        raise UsageError("--gitops-repo and --gitops-path go together")
    author = re.fullmatch(r"\s*(.+?)\s*<([^<>]+)>\s*", args.author)
    if author is None:
        raise UsageError(f"--author {args.author!r}: give 'NAME <EMAIL>'")
    template = None
    if args.message_template:
        try:
            template = Path(args.message_template).read_text()
        except OSError as e:
            raise UsageError(f"--message-template {args.message_template}: {e.strerror}") from None
    gitops = None
    if args.gitops_repo:
        gitops = GitOpsTarget(
            repo=args.gitops_repo, path=args.gitops_path, branch=args.gitops_branch,
            mode="branch" if args.pr_branch else "push", format=args.file_format, values_key=args.values_key,
            setter=args.setter, message_template=template,
            author_name=author.group(1), author_email=author.group(2), sign=args.sign,
        )
    max_age = args.max_age or os.environ.get("GATE_PROMOTE_MAX_AGE") or DEFAULT_MAX_AGE
    request = PromotionRequest(
        decision_id=args.decision, target=args.target, gitops=gitops,
        max_age=parse_duration(max_age, "--max-age"), environment=args.env, source=args.source,
        from_daemon=args.from_daemon, docker_host=args.docker_host,
        override_hold=args.override_hold, dry_run=args.dry_run,
    )
    trust = load_trust()
    signer = None if args.dry_run else load_signer()
    store = open_store()
    try:
        result = promote(request, store, signer, trust.keys).as_dict()
    finally:
        store.close()
    if args.format == "json":
        from gate.output import json as json_output

        _emit(json_output.render(result), None)
    else:
        from gate.output import promotion_text

        _emit(promotion_text.render(result), None)
    return ExitCode.DENIED if result["outcome"] == "refused" else ExitCode.OK


def _cmd_reconcile(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store
    from gate.errors import UsageError
    from gate.reconcile.admission import AdmissionChecker
    from gate.reconcile.cycle import CycleOptions, run_cycle
    from gate.reconcile.source import GitSource

    if args.plan and args.interval is not None:
        raise UsageError("--plan runs once: use it with --once")
    if args.interval is not None and args.interval <= 0:
        raise UsageError(f"--interval {args.interval:g}: give a number of seconds above 0")
    options = CycleOptions(
        path=args.path, environment=args.env, plan=args.plan, prune=args.prune,
        health_timeout=max(0.0, args.health_timeout), helm_values=tuple(args.helm_values),
    )
    source = GitSource(args.repo, args.branch, Path(args.cache_dir) if args.cache_dir else None)
    store = open_store()
    try:
        checker = AdmissionChecker(Path(args.policy), args.env, store, data_files=[Path(d) for d in args.data])
        cluster = None
        if not args.plan:
            from gate.reconcile.kube import Cluster

            cluster = Cluster(args.kubeconfig, context=args.context)
        signer = None if args.plan else load_signer()

        def record(event: Any) -> str:
            return str(store.append_event(event, signer).event_id)

        def show(report: Any) -> None:
            document = report.as_dict()
            if args.format == "json":
                from gate.output import json as json_output

                _emit(json_output.render(document), None)
            else:
                from gate.output import reconcile_text

                _emit(reconcile_text.render(document), None)

        def cycle() -> Any:
            return run_cycle(source, checker, cluster, options, record=record)

        if args.interval is None:
            report = cycle()
            show(report)
            return ExitCode.DENIED if report.outcome == "blocked" else ExitCode.OK
        return _reconcile_forever(args, cycle, show, cluster)
    finally:
        store.close()


def _reconcile_forever(args: argparse.Namespace, cycle: Callable[[], Any], show: Callable[[Any], None], cluster: Any) -> ExitCode:
    import socket
    import threading

    from gate.reconcile.loop import run_loop, stop_on_signals

    stop = threading.Event()
    stop_on_signals(stop)
    identity = f"{socket.gethostname()}-{os.getpid()}"
    lease_seconds = int(max(15, 3 * args.interval))

    def is_leader() -> bool:
        return bool(cluster.acquire_lease(args.lease_name, args.lease_namespace, identity, lease_seconds))

    def on_error(error: GateError) -> None:
        print(f"gate: error: {error.diagnostics()}", file=sys.stderr, flush=True)

    try:
        run_loop(cycle, args.interval, stop, show, on_error, is_leader if args.leader_elect else None)
    finally:
        if args.leader_elect:
            with contextlib.suppress(GateError):
                cluster.release_lease(args.lease_name, args.lease_namespace, identity)
    return ExitCode.OK


def _cmd_policy_test(args: argparse.Namespace) -> ExitCode:
    from gate.policy.bundle import load_bundle
    from gate.policy.testing import run_tests

    report = run_tests(load_bundle(args.dir), coverage=args.coverage)
    fmt = PolicyTestFormat(args.format)
    if fmt is PolicyTestFormat.JSON:
        from gate.output import json as json_output

        _emit(json_output.render(report.as_dict()), args.output)
    elif fmt is PolicyTestFormat.TEXT:
        from gate.output import policy_tests

        _emit(policy_tests.render(report, verbose=args.verbose_tests), args.output)
    else:
        assert_never(fmt)
    return ExitCode.OK if report.ok else ExitCode.DENIED


def _cmd_decisions_replay(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.replay import replay
    from gate.decisions.store import open_store

    query = _decision_query(args)
    store = open_store()
    try:
        report = replay(store, query, Path(args.policy), args.data)
    finally:
        store.close()
    if args.format == "json":
        from gate.output import json as json_output

        _emit(json_output.render(report.as_dict()), None)
    else:
        from gate.output import replay_text

        _emit(replay_text.render(report), None)
    if report.replayed and not report.decided:
        print(f"gate: error: none of the {report.replayed} decision(s) could be replayed", file=sys.stderr)
        return ExitCode.ERROR
    return ExitCode.OK


def _decision_query(args: argparse.Namespace, **overrides: Any) -> Any:
    """The filter flags of a ``gate decisions`` command as a DecisionQuery (times as the log stores them)."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from gate.decisions.record import rfc3339
    from gate.decisions.store import DecisionQuery
    from gate.decisions.timefilter import time_range
    from gate.errors import UsageError

    now = datetime.now(UTC)
    since, until = time_range(args.since, args.until, now)
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 0:
        raise UsageError(f"--limit {limit}: give 0 or more")
    query = DecisionQuery(
        digest=args.digest,
        image=args.image,
        environment=args.env,
        outcome=args.outcome,
        rule=args.rule,
        waiver=args.waiver,
        since=since,
        until=until,
        policy_digest=args.policy_digest,
        waived=getattr(args, "waived", False),
        waiver_expired_before=rfc3339(now) if getattr(args, "waiver_expired", False) else None,
        limit=limit,
    )
    return replace(query, **overrides)


@contextlib.contextmanager
def _queried(query: Any) -> Iterator[Any]:
    """The decisions ``query`` selects, streamed from the store; closed before the store is."""
    from gate.decisions.store import open_store

    store = open_store()
    try:
        decisions = store.query(query)
        try:
            yield decisions
        finally:
            close = getattr(decisions, "close", None)
            if close is not None:  # a reader that stopped early: release the cursor while the store is open
                close()
    finally:
        store.close()


def _cmd_decisions_list(args: argparse.Namespace) -> ExitCode:
    with _queried(_decision_query(args)) as decisions:
        if args.format == "json":
            from gate.output import decisions_json

            _emit_stream(decisions_json.render_list(decisions), None)
        elif args.format == "csv":
            from gate.output import decisions_csv

            _emit_stream(decisions_csv.render_list(decisions), None)
        else:
            from gate.output import decisions_text

            _emit_stream([decisions_text.render_list(decisions)], None)
    return ExitCode.OK


def _cmd_decisions_show(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.store import open_store

    from gate.decisions.events import EventQuery

    store = open_store()
    try:
        decision = store.get(args.decision_id)
        location = store.location
        events = list(store.events(EventQuery(decision_id=args.decision_id, oldest_first=True))) if decision else []
    finally:
        store.close()
    if decision is None:
        raise GateError(f"no decision {args.decision_id!r} in the decision log {location}")
    if args.format == "json":
        from gate.output import json as json_output

        _emit(json_output.render(decision), None)  # the record itself: `decisions events --decision ID` has the rest
    else:
        from gate.output import decisions_text, events_text

        _emit(decisions_text.render_show(decision) + "\nEvents:\n" + events_text.render_list(events), None)
    return ExitCode.OK


def _cmd_decisions_events(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.events import EventQuery
    from gate.decisions.store import open_store
    from gate.errors import UsageError

    if args.limit is not None and args.limit < 0:
        raise UsageError(f"--limit {args.limit}: give 0 or more")
    query = EventQuery(decision_id=args.decision, type=args.type, environment=args.env, digest=args.digest, limit=args.limit)
    store = open_store()
    try:
        events = list(store.events(query))
    finally:
        store.close()
    if args.format == "json":
        from gate.output import json as json_output

        _emit(json_output.render({"events": events}), None)
    else:
        from gate.output import events_text

        _emit(events_text.render_list(events), None)
    return ExitCode.OK


def _cmd_decisions_export(args: argparse.Namespace) -> ExitCode:
    from gate.decisions import export

    with _queried(_decision_query(args, oldest_first=True)) as decisions:
        lines = export.opa_events(decisions, __version__) if args.format == "opa" else export.jsonl(decisions)
        _emit_stream(lines, args.output)
    return ExitCode.OK


def _cmd_decisions_stats(args: argparse.Namespace) -> ExitCode:
    from datetime import UTC, datetime

    from gate.decisions.stats import compute
    from gate.errors import UsageError

    if args.top < 0:
        raise UsageError(f"--top {args.top}: give 0 or more")
    query = _decision_query(args)
    with _queried(query) as decisions:
        stats = compute(decisions, datetime.now(UTC), query.since, query.until, top=args.top).as_dict()
    if args.format == "json":
        from gate.output import json as json_output

        _emit(json_output.render(stats), None)
    else:
        from gate.output import decisions_text

        _emit(decisions_text.render_stats(stats), None)
    return ExitCode.OK


def _cmd_decisions_verify(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.events import verify_events
    from gate.decisions.signing import load_trust
    from gate.decisions.store import open_store
    from gate.decisions.verify import verify_log

    trust = load_trust()
    store = open_store()
    try:
        report = verify_log(store, trust.keys)
        events = verify_events(store, trust.keys)
        location = store.location
    finally:
        store.close()
    if not trust.configured:
        print(f"gate: note: {trust.source}", file=sys.stderr)
    if args.format == "json":
        from dataclasses import asdict

        from gate.output import json as json_output

        document = {**report.as_dict(), "events": asdict(events), "log": location, "trusted_keys": trust.source}
        _emit(json_output.render(document), None)
    else:
        if report.ok:
            head = report.head_hash or "none (the log is empty)"
            text = f"{report.count} records intact; chain head {head}\n"
        else:
            where = report.first_bad.describe() if report.first_bad else "the log"
            text = f"verify failed at {where}: {report.problem}; {report.count} intact before it\n"
        if events.ok and events.count:
            text += f"{events.count} events intact\n"
        elif not events.ok:
            text += f"events verify failed at {events.problem}; {events.count} intact before it\n"
        _emit(text, None)
    return ExitCode.OK if report.ok and events.ok else ExitCode.DENIED


def _cmd_keys_generate(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.signing import generate_keypair, key_id, load_public_key

    private_path, public_path = generate_keypair(args.out)
    _emit(
        f"private key: {private_path} (mode 0600: keep it secret; sign with GATE_SIGNING_KEY={private_path})\n"
        f"public key:  {public_path} (give it to verifiers: GATE_TRUSTED_KEYS)\n"
        f"key id:      {key_id(load_public_key(public_path))}\n",
        None,
    )
    return ExitCode.OK


def _cmd_keys_public(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.signing import load_signer

    signer = load_signer()
    if signer.created:
        print(f"gate: created a local signing key at {signer.path}", file=sys.stderr)
    _emit(signer.public_pem(), None)
    print(f"gate: key id {signer.key_id} ({signer.path}); verifiers list this file in GATE_TRUSTED_KEYS", file=sys.stderr)
    return ExitCode.OK


def _cmd_serve(args: argparse.Namespace) -> ExitCode:
    from gate.errors import UsageError
    from gate.serve import parse_addr, serve

    if args.admission and not args.env:
        raise UsageError("serve --admission needs --env ENV: the environment whose decisions admit images")
    if args.env and not args.admission:
        raise UsageError("serve --env is for --admission: add --admission to answer AdmissionReviews")
    host, port = parse_addr(args.addr)
    serve(
        args.policy,
        args.data,
        host,
        port,
        ready_callback=lambda server: print(f"gate: serving on {server.url}", file=sys.stderr, flush=True),
        token=os.environ.get("GATE_SERVE_TOKEN") or None,
        admission=args.env if args.admission else None,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    return ExitCode.OK


def _cmd_plugins_list(args: argparse.Namespace) -> ExitCode:
    rows = [
        {
            "name": info.scanner.name,
            "plugin": info.plugin,
            "version": info.version,
            "description": info.scanner.description,
            "formats": list(info.scanner.formats),
            "origin": info.origin,
        }
        for info in _registry(args).infos()
    ]
    if args.format == ScanFormat.JSON:
        from gate.output import json as json_output

        _emit(json_output.render({"scanners": rows}), None)
    else:
        from gate.output import text

        _emit(text.render_plugins(rows), None)
    return ExitCode.OK


_COMMANDS: dict[tuple[str | None, str | None], Callable[[argparse.Namespace], ExitCode]] = {
    ("scan", None): _cmd_scan,
    ("evaluate", None): _cmd_evaluate,
    ("promote", None): _cmd_promote,
    ("reconcile", None): _cmd_reconcile,
    ("serve", None): _cmd_serve,
    ("policy", "test"): _cmd_policy_test,
    ("decisions", "list"): _cmd_decisions_list,
    ("decisions", "show"): _cmd_decisions_show,
    ("decisions", "verify"): _cmd_decisions_verify,
    ("decisions", "events"): _cmd_decisions_events,
    ("decisions", "export"): _cmd_decisions_export,
    ("decisions", "replay"): _cmd_decisions_replay,
    ("decisions", "stats"): _cmd_decisions_stats,
    ("keys", "generate"): _cmd_keys_generate,
    ("keys", "public"): _cmd_keys_public,
    ("plugins", "list"): _cmd_plugins_list,
}


def _subcommand(args: argparse.Namespace) -> str | None:
    """The second word of a two-word command (``decisions list``), None for one-word commands."""
    return getattr(args, f"{args.command}_command", None) if args.command else None


def main(argv: list[str] | None = None) -> int:
    """Run ``gate``; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors: argparse already printed
        return int(e.code or 0)
    _configure_logging(args.verbose)
    try:
        command = _COMMANDS.get((args.command, _subcommand(args)))
        if command is not None:
            return command(args)
        parser.print_help(sys.stderr)
        return ExitCode.ERROR
    except GateError as e:
        print(f"gate: error: {e.diagnostics()}", file=sys.stderr)
        return ExitCode.ERROR
    except KeyboardInterrupt:
        print("gate: error: interrupted; no result", file=sys.stderr)
        return ExitCode.ERROR
    except Exception as e:  # fail closed: an unexpected failure is an error, never an allow
        if args.verbose:
            logger.exception("internal error")
        print(f"gate: error: internal error: {type(e).__name__}: {e} (run with -v for details)", file=sys.stderr)
        return ExitCode.ERROR
