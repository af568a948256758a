"""docs/promote.md cannot drift from the CLI: every flag it shows exists on the command it is shown with,
every flag it names in prose is a `gate promote` flag, and every `gate promote` flag is documented."""

from __future__ import annotations

import argparse
import re

from tests.conftest import ROOT

DOC = ROOT / "docs" / "promote.md"
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_SPAN = re.compile(r"`([^`\n]+)`")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings if s.startswith("--")} - {"--help"}


def _command(words: list[str]) -> tuple[str, argparse.ArgumentParser]:
    """The (sub)command ``gate WORDS...`` names, and its parser: as deep as the words go."""
    from gate.cli import build_parser

    parser, name = build_parser(), "gate"
    for word in words:
        sub = _subparsers(parser)
        if word not in sub:
            break
        parser, name = sub[word], f"{name} {word}"
    return name, parser


def _invocations(text: str) -> list[str]:
    """Every ``gate ...`` command in the doc's code blocks and inline code, continuation lines joined."""
    found = []
    for block in _FENCE.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            found += [m.group(0) for m in re.finditer(r"(?<![\w/-])gate [a-z].*", line)]
    found += [span for span in _SPAN.findall(_FENCE.sub("", text)) if re.match(r"gate [a-z]", span)]
    return found


def _prose_flags(text: str) -> set[str]:
    """Flags named outside code blocks, except inside inline commands (``gate …``, ``git …``)."""
    prose = _FENCE.sub("", text)
    prose = _SPAN.sub(lambda m: "" if re.match(r"(gate|git|docker) ", m.group(1)) else m.group(1), prose)
    return set(_FLAG.findall(prose))


def test_every_flag_shown_with_a_command_exists_on_that_command() -> None:
    text = DOC.read_text()
    invocations = _invocations(text)
    assert sum(1 for i in invocations if i.startswith("gate promote ")) >= 3
    wrong = []
    for line in invocations:
        name, parser = _command(line.split()[1:])
        options = {s for a in parser._actions for s in a.option_strings}
        wrong += [f"{name}: {flag}" for flag in _FLAG.findall(line) if flag not in options]
    assert not wrong, f"docs/promote.md shows flags the parser does not have: {wrong}"


def test_every_flag_named_in_the_prose_is_a_gate_promote_flag() -> None:
    _, promote = _command(["promote"])
    unknown = _prose_flags(DOC.read_text()) - _flags(promote)
    assert not unknown, f"docs/promote.md names flags `gate promote` does not have: {sorted(unknown)}"


def test_every_gate_promote_flag_is_documented() -> None:
    _, promote = _command(["promote"])
    text = DOC.read_text()
    documented = _prose_flags(text) | {f for line in _invocations(text) for f in _FLAG.findall(line)}
    missing = _flags(promote) - documented
    assert not missing, f"`gate promote` flags missing from docs/promote.md: {sorted(missing)}"
