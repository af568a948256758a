"""The ``gate`` command line: the only place that parses arguments, prints results and exits.

The subcommands live in gate.commands (one module per command group); this module builds the
top-level parser, dispatches, and turns every failure into exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from gate import __version__
from gate.commands import (
    attestation, config, decisions, keys, plugins, policy_bundles, policy_test, promote, reconcile, scan_evaluate, serve,
)
from gate.commands.common import ExitCode, Parser
from gate.commands.policy_test import PolicyTestFormat
from gate.commands.scan_evaluate import ScanFormat
from gate.errors import GateError
from gate.output.formats import DecisionFormat

__all__ = ["DecisionFormat", "ExitCode", "PolicyTestFormat", "ScanFormat", "build_parser", "main"]

logger = logging.getLogger("gate")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = Parser(
        prog="gate",
        description=(
            "Policy-centric promotion gate: normalize scanner reports (Trivy, coverage, SonarQube), "
            "let Rego policies decide, record the decision."
        ),
        epilog=(
            "exit codes: 0 ok/allow, 1 deny, 2 error (no decision could be made; never an allow). "
            "Environment: GATE_LOGLEVEL, GATE_DISABLE_PLUGINS, GATE_MAX_REPORT_MB. "
            "Defaults for policy, data, store and keys: gate.toml (docs/configuration.md; `gate config show`)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"gate {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging on stderr (-v gate debug, -vv everything)"
    )
    parser.add_argument(
        "--config", metavar="FILE",
        help="the configuration file (default: GATE_CONFIG, else gate.toml or [tool.gate] in pyproject.toml "
        "found from the current folder up to the repository root; docs/configuration.md)",
    )
    parser.add_argument(
        "--disable-plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="do not load this scanner plugin (repeatable; also GATE_DISABLE_PLUGINS=a,b)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for group in (scan_evaluate, promote, attestation, reconcile, policy_test, decisions, keys, serve, plugins, config):
        group.add_parsers(commands)
    return parser


def _configure_logging(verbosity: int) -> None:
    # Replace, not add: main() may run several times in one process (tests, embedding).
    from gate.redact import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("gate: %(levelname)s: %(message)s"))
    handler.addFilter(RedactingFilter())  # on the handler: it sees the records of every gate.* logger
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(os.environ.get("GATE_LOGLEVEL", "WARNING").upper())
    if verbosity >= 1:
        logger.setLevel(logging.DEBUG)
    if verbosity >= 2:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        for root_handler in logging.getLogger().handlers:  # other libraries' records (git, urllib3, psycopg)
            if not any(isinstance(f, RedactingFilter) for f in root_handler.filters):
                root_handler.addFilter(RedactingFilter())


_COMMANDS: dict[tuple[str | None, str | None], Callable[[argparse.Namespace], ExitCode]] = {
    ("scan", None): scan_evaluate.cmd_scan,
    ("evaluate", None): scan_evaluate.cmd_evaluate,
    ("promote", None): promote.cmd_promote,
    ("attestation", "verify"): attestation.cmd_attestation_verify,
    ("attestation", "show"): attestation.cmd_attestation_show,
    ("attestation", "attach"): attestation.cmd_attestation_attach,
    ("reconcile", None): reconcile.cmd_reconcile,
    ("serve", None): serve.cmd_serve,
    ("policy", "test"): policy_test.cmd_policy_test,
    ("policy", "push"): policy_bundles.cmd_policy_push,
    ("policy", "pull"): policy_bundles.cmd_policy_pull,
    ("decisions", "list"): decisions.cmd_decisions_list,
    ("decisions", "show"): decisions.cmd_decisions_show,
    ("decisions", "verify"): decisions.cmd_decisions_verify,
    ("decisions", "events"): decisions.cmd_decisions_events,
    ("decisions", "export"): decisions.cmd_decisions_export,
    ("decisions", "replay"): decisions.cmd_decisions_replay,
    ("decisions", "stats"): decisions.cmd_decisions_stats,
    ("decisions", "waivers"): decisions.cmd_decisions_waivers,
    ("keys", "generate"): keys.cmd_keys_generate,
    ("keys", "public"): keys.cmd_keys_public,
    ("plugins", "list"): plugins.cmd_plugins_list,
    ("config", "show"): config.cmd_config_show,
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
    from gate import settings  # the configuration file: read only once a command runs (not for --version)

    try:
        settings.use(settings.load(args.config))  # once per call; reset below, so calls in one process never share it
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
        from gate.redact import redact

        print(f"gate: error: internal error: {type(e).__name__}: {redact(str(e))} (run with -v for details)", file=sys.stderr)
        return ExitCode.ERROR
    finally:
        settings.use(None)
