"""``gate policy test``: run a bundle's Rego unit tests."""

from __future__ import annotations

import argparse
from enum import StrEnum
from typing import assert_never

from gate.commands.common import ExitCode, Parser, emit


class PolicyTestFormat(StrEnum):
    """Output formats of ``gate policy test``."""

    TEXT = "text"
    JSON = "json"


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate policy test``."""
    policy = commands.add_parser("policy", help="work with policy bundles")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="COMMAND", parser_class=Parser)
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


def cmd_policy_test(args: argparse.Namespace) -> ExitCode:
    from gate.policy.bundle import load_bundle
    from gate.policy.testing import run_tests

    report = run_tests(load_bundle(args.dir), coverage=args.coverage)
    fmt = PolicyTestFormat(args.format)
    if fmt is PolicyTestFormat.JSON:
        from gate.output import json as json_output

        emit(json_output.render(report.as_dict()), args.output)
    elif fmt is PolicyTestFormat.TEXT:
        from gate.output import policy_tests

        emit(policy_tests.render(report, verbose=args.verbose_tests), args.output)
    else:
        assert_never(fmt)
    return ExitCode.OK if report.ok else ExitCode.DENIED
