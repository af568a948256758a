"""docs/ci.md stays true: every gate command on it parses, its input table is action.yml's, and the
variables, files and reports it names are the ones the integrations have."""

from __future__ import annotations

import re
from typing import Any

import yaml

from gate.output.formats import DecisionFormat
from tests.ci.commands import assert_parses
from tests.conftest import ROOT
from tests.reconcile.test_deploy import doc_commands

DOC = ROOT / "docs" / "ci.md"


def load(relative: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / relative).read_text())
    return document


def test_every_gate_command_in_docs_ci_parses() -> None:
    commands = doc_commands(DOC)
    assert [c[0] for c in commands].count("promote") >= 3 and "evaluate" in [c[0] for c in commands]
    for argv in commands:
        assert_parses(argv, "docs/ci.md")


def test_the_action_inputs_table_is_action_yml() -> None:
    text = DOC.read_text()
    section = text[text.index("## GitHub Actions") : text.index("## GitLab CI")]
    rows = re.findall(r"^\| `([\w-]+)` \| (.+?) \|", section, flags=re.M)
    inputs = load("action.yml")["inputs"]
    assert [name for name, _ in rows] == list(inputs)
    for name, default in rows:
        spec = inputs[name]
        if spec.get("required"):
            assert default == "(required)", name
        else:
            documented = re.match(r'`"?(.*?)"?`', default)
            assert documented and documented.group(1) == spec["default"], (name, default)
    for output in load("action.yml")["outputs"]:
        assert f"`{output}`" in section


def test_the_docs_name_the_templates_variables_reports_and_every_format() -> None:
    text = DOC.read_text()
    job = load("ci/gitlab/gate.gitlab-ci.yml")[".gate-evaluate"]
    for variable in job["variables"]:
        assert f"`{variable}`" in text, variable
    for kind, path in job["artifacts"]["reports"].items():
        assert f"artifacts:reports:{kind}" in text and path in text
    for fmt in DecisionFormat:
        assert f"| `{fmt.value}` |" in text, f"docs/ci.md's format table has no {fmt.value}"
    for linked in re.findall(r"\]\(\.\./([^)]+)\)", text):
        assert (ROOT / linked).is_file(), linked
