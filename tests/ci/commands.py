"""The `gate …` command lines of a CI file or a doc, and whether gate's own parser accepts them.

CI files and docs are not run by the suite, so a renamed flag would break them silently; parsing every
gate command they hold with ``gate.cli.build_parser()`` catches that here (as tests/reconcile/test_deploy.py
does for deploy/). Shell variables stay as literal words: the parser only needs the shape.
"""

from __future__ import annotations

import re
import shlex

from gate.cli import build_parser

#: where a shell command line ends before its redirections, pipes and exit-code handling
_GATE = re.compile(r"^(?:[\w.-]*/)*gate\s")
_COMMAND_END = re.compile(r"\s+(?:\|\||&&|\||>>?|2>&1|;)\s*|\s+#")


def gate_commands(script: str) -> list[list[str]]:
    """argv (without ``gate``) of every line of ``script`` that runs gate, continuation lines joined."""
    commands = []
    for line in re.sub(r"\\\n\s*", " ", script).splitlines():
        line = re.sub(r"^\s*(?:-\s+)?(?:run:\s*|script:\s*)?(?:[A-Z_]+=\S+\s+)*", "", line)
        line = re.sub(r"^(?:if\s+!?\s*|!\s*)", "", line)
        if not _GATE.match(line):  # gate, or gate by its path (.venv/bin/gate)
            continue
        commands.append(shlex.split(_COMMAND_END.split(line, maxsplit=1)[0])[1:])
    return commands


def assert_parses(argv: list[str], where: str) -> str:
    """Parse ``gate ARGV`` with gate's parser; returns the command name. Fails naming ``where``."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help exits 0
        assert e.code == 0, f"{where}: gate {shlex.join(argv)} does not parse (exit {e.code})"
        return argv[0]
    return str(args.command)
