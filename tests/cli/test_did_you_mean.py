"""Did-you-mean (issue 12): a mistyped command, subcommand, flag, choice or environment is answered
with the closest spelling, on the one exit-2 error line, pointing to the help of the command that
was typed at. A suggestion is only ever a hint: what is accepted does not change.

Through the CLI (``main()``), with the shipped policies for the environment cases.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.cli.test_scan import one_error_line
from tests.conftest import DATA, DIGEST, ROOT, Run

POLICIES = ROOT / "policies"
IMAGE = f"registry.example.com/shop/cart:1.0@{DIGEST}"
REPORT = f"auto={DATA / 'trivy/trivy-image-alpine-310.json'}"


# --- commands and subcommands, every level ------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "meant", "help_of"),
    [
        (["evalute"], "'evaluate'", "gate"),
        (["reconcle"], "'reconcile'", "gate"),
        (["decisions", "lst"], "'list'", "gate decisions"),
        (["decisions", "verfy"], "'verify'", "gate decisions"),
        (["policy", "tset"], "'test'", "gate policy"),
        (["keys", "generat"], "'generate'", "gate keys"),
        (["plugins", "lsit"], "'list'", "gate plugins"),
    ],
)
def test_a_mistyped_command_suggests_the_closest(gate: Callable[..., Run], argv: list[str], meant: str, help_of: str) -> None:
    line = one_error_line(gate(*argv))
    assert f"invalid choice: {argv[-1]!r}, did you mean {meant}?" in line
    assert line.endswith(f"(see `{help_of} --help`)")


@pytest.mark.parametrize(
    ("argv", "one_of_them"),
    [([], "evaluate"), (["decisions"], "list"), (["policy"], "test"), (["keys"], "generate"), (["plugins"], "list")],
)
def test_a_missing_command_names_the_commands_and_points_to_its_groups_help(
    gate: Callable[..., Run], argv: list[str], one_of_them: str
) -> None:
    line = one_error_line(gate(*argv))
    assert "choose a command: " in line and one_of_them in line
    assert line.endswith(f"(see `{' '.join(['gate', *argv])} --help`)")


# --- flags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "typed", "meant", "help_of"),
    [
        # the unknown flag is named before the missing required ones (--image, --env)
        (["evaluate", "--polcy", "p"], "--polcy", "--policy", "gate evaluate"),
        (["evaluate", "--polcy=p"], "--polcy=p", "--policy", "gate evaluate"),
        (["evaluate", "--image", IMAGE, "--env", "prod", "--report", REPORT, "--fromat", "json"], "--fromat", "--format",
         "gate evaluate"),
        (["decisions", "list", "--outcme", "allow"], "--outcme", "--outcome", "gate decisions list"),
        (["decisions", "verify", "--fromat", "json"], "--fromat", "--format", "gate decisions verify"),
        (["policy", "test", "--fromat", "json"], "--fromat", "--format", "gate policy test"),
        (["--verbsoe", "plugins", "list"], "--verbsoe", "--verbose", "gate"),
    ],
)
def test_a_mistyped_flag_suggests_the_closest(
    gate: Callable[..., Run], argv: list[str], typed: str, meant: str, help_of: str
) -> None:
    line = one_error_line(gate(*argv))
    assert f"unrecognized arguments: {typed} (did you mean {meant}?)" in line
    assert line.endswith(f"(see `{help_of} --help`)")


def test_a_stray_argument_points_to_the_subcommands_help(gate: Callable[..., Run]) -> None:
    line = one_error_line(gate("decisions", "list", "extra"))
    assert "unrecognized arguments: extra" in line and "did you mean" not in line
    assert line.endswith("(see `gate decisions list --help`)")


# --- choice values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "typed", "meant"),
    [
        (["--format", "jsn"], "jsn", "json"),
        (["--format", "JSON"], "JSON", "json"),
        (["--engine", "opaa"], "opaa", "opa"),
        (["--engine", "embeded"], "embeded", "embedded"),
    ],
)
def test_a_mistyped_choice_suggests_the_closest(gate: Callable[..., Run], argv: list[str], typed: str, meant: str) -> None:
    line = one_error_line(gate("evaluate", "--image", IMAGE, "--env", "prod", "--report", REPORT, *argv))
    assert f"invalid choice: {typed!r}, did you mean {meant!r}? (choose from " in line
    assert line.endswith("(see `gate evaluate --help`)")


def test_a_mistyped_choice_of_a_subcommand_points_to_its_help(gate: Callable[..., Run]) -> None:
    line = one_error_line(gate("decisions", "list", "--format", "cvs"))
    assert "invalid choice: 'cvs', did you mean 'csv'?" in line
    assert line.endswith("(see `gate decisions list --help`)")


# --- environments: a hint on the refusal, never an acceptance ------------------------------------


def test_a_mistyped_environment_suggests_the_declared_one_and_is_still_refused(gate: Callable[..., Run]) -> None:
    line = one_error_line(gate("evaluate", "--policy", POLICIES, "--image", IMAGE, "--env", "prdo", "--report", REPORT))
    assert 'environment "prdo" is not declared in the policy data; declared: dev, prod, staging' in line
    assert line.endswith('(did you mean "prod"?)')
    assert gate("decisions", "list", "--format", "json").json() == {"decisions": []}  # nothing decided


# --- no close match: no suggestion ------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["zzzz"],
        ["decisions", "qqqq"],
        ["evaluate", "--zzzz"],
        ["decisions", "list", "--xyzzy", "1"],
        ["evaluate", "--image", IMAGE, "--env", "prod", "--report", REPORT, "--format", "qqqq"],
        ["evaluate", "--image", IMAGE, "--env", "prod", "--report", REPORT, "--engine", "wasm"],
        ["evaluate", "--policy", str(POLICIES), "--image", IMAGE, "--env", "zzzz", "--report", REPORT],
    ],
    ids=["command", "subcommand", "flag", "subcommand-flag", "format", "engine", "environment"],
)
def test_no_close_match_no_suggestion(gate: Callable[..., Run], argv: list[str]) -> None:
    line = one_error_line(gate(*argv))
    assert "did you mean" not in line
    assert "zzzz" in line or "qqqq" in line or "xyzzy" in line or "wasm" in line
