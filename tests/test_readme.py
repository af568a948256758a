"""The README's commands do what the README says (run in-process, from the repository root)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

import pytest

from tests.conftest import ROOT, Run

README = (ROOT / "README.md").read_text()
GATE_COMMANDS = [line.split(".venv/bin/gate ", 1)[1] for line in re.findall(r"^.*\.venv/bin/gate .*$", README, re.MULTILINE)]


def test_readme_starts_with_install_and_test_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.DOTALL)
    assert "pip install ." in blocks[0] and ".venv/bin/gate evaluate" in blocks[0]
    assert "python -m pytest" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert blocks[1].strip() in ci, ".ci/run must run the README's test command"


@pytest.mark.parametrize("expected", [1, 0], ids=["quickstart-deny", "second-example-allow"])
def test_quickstart_commands(gate: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, expected: int) -> None:
    monkeypatch.chdir(ROOT)
    evaluations = [c for c in GATE_COMMANDS if c.startswith("evaluate")]
    assert len(evaluations) == 2
    run = gate(*shlex.split(evaluations[0 if expected == 1 else 1]))
    assert run.code == expected, run.err
    assert run.out.startswith("DENY" if expected else "ALLOW")
    if expected:
        assert "coverage.line_rate" in run.out and "quality_gate.status" in run.out
