"""``gate policy test``: run a bundle's Rego unit tests."""

from __future__ import annotations

import argparse
from enum import StrEnum
from typing import assert_never

from gate.commands import policy_bundles
from gate.commands.common import ExitCode, Parser, add_policy_argument, data_files, emit, policy_specs


class PolicyTestFormat(StrEnum):
    """Output formats of ``gate policy test``."""

    TEXT = "text"
    JSON = "json"


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate policy test``."""
    policy = commands.add_parser("policy", help="work with policy bundles")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="COMMAND", parser_class=Parser)
    policy_bundles.add_parsers(policy_commands)  # push, pull: bundles in OCI registries
    policy_test = policy_commands.add_parser(
        "test",
        help="run a bundle's Rego unit tests, as opa test does (exit 0 all pass, 1 a test failed, 2 error)",
        description=(
            "Load every .rego file of the bundle (tests included) and its data, with every --data file "
            "merged in as gate evaluate merges them, into the embedded engine and evaluate every rule "
            "named test_*: it passes when it is true. With several --policy layers, every layer's tests "
            "run against the layered bundle (an organization's tests can use the library's helpers). "
            "A failed test shows the expression it stopped at, what was expected and what came, and "
            "what it printed. Exit 0 when all pass, 1 when any fails, 2 when a policy does not compile "
            "or there are no tests."
        ),
    )
    policy_test.add_argument(
        "dir", nargs="?", default=None, metavar="DIR",
        help="a policy bundle directory: the same as --policy DIR (default: as --policy)",
    )
    add_policy_argument(policy_test, purpose=" whose tests run", data_help=(
        "JSON or YAML whose top-level keys merge into the data the tests see (thresholds, waivers); repeatable"
    ))
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
    import dataclasses

    from gate.errors import UsageError
    from gate.evaluation import load_policy_data
    from gate.policy.testing import run_tests
    from gate.policy.waivers import validate_waivers

    if args.dir is not None and args.policy:
        raise UsageError("gate policy test: give the bundle as DIR or as --policy, not both")
    specs = [args.dir] if args.dir is not None else policy_specs(args)
    bundle, data, _ = load_policy_data(specs, data_files(args))
    validate_waivers(data)  # as gate evaluate: malformed waivers are refused, not tested around
    report = run_tests(dataclasses.replace(bundle, data=data), coverage=args.coverage)
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
