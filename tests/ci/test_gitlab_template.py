"""ci/gitlab/gate.gitlab-ci.yml, the include-able GitLab CI template, and examples/gitlab/.gitlab-ci.yml.

Both are validated against GitLab's own CI schema (tests/data/gitlab, SOURCES.md there), and so is the
example's evaluate job with ``extends: .gate-evaluate`` resolved as GitLab resolves it (hashes merged
deeply, everything else replaced). Then the template's script runs as the runner runs it — its entries
joined into one shell script, run by ``sh -e`` in the project folder with the job's variables — on real
reports: an allow, a deny and no decision, checking the exit codes, the JUnit report, the code quality
report (GitLab's Code Climate subset) and the dotenv report later jobs read. ``GATE_VERSION: ""`` makes
the job use the gate on PATH, the checkout's, so no network is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from gate.version import __version__
from tests.ci.commands import assert_parses, gate_commands
from tests.conftest import DATA, DIGEST, ROOT

TEMPLATE = ROOT / "ci" / "gitlab" / "gate.gitlab-ci.yml"
EXAMPLE = ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"
SCHEMA = DATA / "gitlab" / "gitlab-ci.schema.json"
VENV_BIN = Path(sys.executable).parent
IMAGE = "registry.example.com/shop/cart"
REF = f"{IMAGE}:1.4.2@{DIGEST}"
COVERAGE = f"coverage={DATA / 'coverage/cobertura-java-cobertura-1.9-maven-example.xml'}"
CLEAN = f"trivy={DATA / 'trivy/trivy-image-alpine-310.json'}\n{COVERAGE}\n"
ONE_CRITICAL = f"  trivy={DATA / 'trivy/trivy-image-spring4shell-jre11-jar.json'}\n\n  {COVERAGE}\n"

#: what GitLab reads of a code quality report (docs: ci/testing/code_quality, "Code Quality report format")
CODE_QUALITY = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "minLength": 1},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "lines": {"type": "object", "required": ["begin"], "properties": {"begin": {"type": "integer", "minimum": 1}}},
                },
            },
        },
    },
}


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from jsonschema import Draft7Validator

    document: dict[str, Any] = json.loads(SCHEMA.read_text())
    Draft7Validator.check_schema(document)
    return document


def errors(schema: dict[str, Any], document: Any, ref: str | None = None) -> list[str]:
    from jsonschema import Draft7Validator

    target = schema
    if ref is not None:  # validate against one definition, keeping the others resolvable
        target = {"$schema": schema["$schema"], "definitions": schema["definitions"], "$ref": f"#/definitions/{ref}"}
    found = Draft7Validator(target).iter_errors(document)
    return [f"{list(e.absolute_path)}: {e.message}" for e in found]


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``extends`` as GitLab merges: hashes deeply, any other value replaced by the extending job's."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def evaluate_job() -> dict[str, Any]:
    """The example's evaluate job with ``extends: .gate-evaluate`` resolved."""
    job = dict(load(EXAMPLE)["evaluate"])
    assert job.pop("extends") == ".gate-evaluate"
    return merge(load(TEMPLATE)[".gate-evaluate"], job)


# --- the schema ---------------------------------------------------------------------------------


def test_the_template_and_the_example_are_valid_gitlab_ci(schema: dict[str, Any]) -> None:
    assert not errors(schema, load(TEMPLATE)), errors(schema, load(TEMPLATE))[:5]
    assert not errors(schema, load(EXAMPLE)), errors(schema, load(EXAMPLE))[:5]
    # the schema lets a hidden key be any YAML anchor, so the hidden job is checked as a job template too
    hidden = load(TEMPLATE)[".gate-evaluate"]
    assert not errors(schema, hidden, "job_template"), errors(schema, hidden, "job_template")[:5]
    # the check bites: a report kind GitLab does not know is an error
    hidden["artifacts"]["reports"]["code_quality"] = "gate-codequality.json"
    assert errors(schema, hidden, "job_template")


def test_the_resolved_evaluate_job_is_a_valid_job_with_the_reports(schema: dict[str, Any]) -> None:
    job = evaluate_job()
    assert not errors(schema, job, "job"), errors(schema, job, "job")[:5]
    assert job["artifacts"]["when"] == "always", "a deny's reports are the ones people need"
    assert job["artifacts"]["reports"] == {"junit": "gate-junit.xml", "codequality": "gate-codequality.json", "dotenv": "gate.env"}
    assert job["variables"]["GATE_VERSION"] == f"promotion-gate=={__version__}"


def test_every_example_job_runs_in_a_declared_stage_in_flow_order() -> None:
    example = load(EXAMPLE)
    assert example["stages"] == ["build", "test", "scan", "evaluate", "promote"]
    jobs = {name: job for name, job in example.items() if isinstance(job, dict) and ("script" in job or "extends" in job)}
    assert {job["stage"] for job in jobs.values()} == set(example["stages"])
    assert example["include"][0]["file"] == "ci/gitlab/gate.gitlab-ci.yml" and example["include"][0]["ref"] == f"v{__version__}"


def test_every_gate_command_in_the_template_and_the_example_parses() -> None:
    found = []
    for path in (TEMPLATE, EXAMPLE):
        for job in load(path).values():
            if isinstance(job, dict):
                for line in job.get("script", []):
                    # the template's evaluate call builds its argv with `set --`: give it the shape it ends up with
                    line = line.replace('gate "$@"', f"gate evaluate --image {REF} --env prod --report trivy=t.json")
                    found += [(path, argv) for argv in gate_commands(line)]
    assert {argv[0] for _, argv in found} == {"evaluate", "promote"}
    for path, argv in found:
        assert_parses(argv, path.name)


# --- the template's script, run as the runner runs it ---------------------------------------------


def run_job(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    job = evaluate_job()
    project = tmp_path / "project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "RUNNER_"))}
    env |= {k: str(v) for k, v in job["variables"].items()}
    env |= {"CI": "true", "GITLAB_CI": "true", "CI_PROJECT_DIR": str(project), "GATE_VERSION": "", **variables}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    (project / "waivers.yaml").write_text("waivers: []\n")  # the example's GATE_DATA
    script = project.parent / "job.sh"
    script.write_text("\n".join(job["script"]) + "\n")
    shell = shutil.which("sh")
    assert shell
    return subprocess.run([shell, "-e", str(script)], cwd=project, env=env, capture_output=True, text=True, check=False, timeout=600)


def dotenv(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_an_allow_passes_with_the_junit_codequality_and_dotenv_reports(tmp_path: Path) -> None:
    from jsonschema import Draft7Validator

    run = run_job(tmp_path, GATE_IMAGE=REF, GATE_REPORTS=CLEAN)
    project = tmp_path / "project"
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ALLOW" in run.stdout  # the text rendering in the job log
    decision = json.loads((project / "gate-decision.json").read_text())
    assert dotenv(project / "gate.env") == {"GATE_OUTCOME": "allow", "GATE_DECISION_ID": decision["decision_id"]}
    suite = ET.parse(project / "gate-junit.xml").getroot()
    assert suite.iter("testcase") and not list(suite.iter("failure"))
    quality = json.loads((project / "gate-codequality.json").read_text())
    assert quality == [] and not list(Draft7Validator(CODE_QUALITY).iter_errors(quality))
    assert (project / "gate.md").read_text().lstrip().startswith("#")


def test_a_deny_fails_the_job_with_exit_1_and_reports_the_finding(tmp_path: Path) -> None:
    from jsonschema import Draft7Validator

    run = run_job(tmp_path, GATE_IMAGE=REF, GATE_REPORTS=ONE_CRITICAL)
    project = tmp_path / "project"
    assert run.returncode == 1, run.stdout + run.stderr
    assert "may not be promoted" in run.stderr
    assert dotenv(project / "gate.env")["GATE_OUTCOME"] == "deny"
    failures = list(ET.parse(project / "gate-junit.xml").getroot().iter("failure"))
    assert any("CVE-2022-22965" in (f.get("message", "") + (f.text or "")) for f in failures)
    quality = json.loads((project / "gate-codequality.json").read_text())
    assert not list(Draft7Validator(CODE_QUALITY).iter_errors(quality)), quality
    [issue] = [q for q in quality if "CVE-2022-22965" in q["description"]]
    assert issue["check_name"] == "vulnerabilities.severity" and issue["severity"] == "blocker"
    assert issue["location"]["path"].endswith("spring-beans-5.3.15.jar")
    assert len({q["fingerprint"] for q in quality}) == len(quality)


def test_vex_lines_triage_the_finding_and_a_foreign_manifest_fails_closed(tmp_path: Path) -> None:
    vex = DATA / "vex" / "authored-spring4shell-not_affected.openvex.json"
    for attempt in ("a", "b"):
        (tmp_path / attempt).mkdir()
    run = run_job(tmp_path / "a", GATE_IMAGE=REF, GATE_REPORTS=ONE_CRITICAL, GATE_VEX=f"\n  {vex}\n")
    assert run.returncode == 0, run.stdout + run.stderr
    decision = json.loads((tmp_path / "a" / "project" / "gate-decision.json").read_text())
    assert [w.get("kind") for w in decision["waivers"]] == ["vex"]
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"schemaVersion": 2}')  # not the bytes of the image's manifest: its digest differs
    run = run_job(tmp_path / "b", GATE_IMAGE=REF, GATE_REPORTS=CLEAN, GATE_IMAGE_MANIFEST=str(manifest))
    assert run.returncode == 2 and dotenv(tmp_path / "b" / "project" / "gate.env")["GATE_OUTCOME"] == "error"


def test_a_deny_with_fail_on_deny_false_passes(tmp_path: Path) -> None:
    run = run_job(tmp_path, GATE_IMAGE=REF, GATE_REPORTS=ONE_CRITICAL, GATE_FAIL_ON_DENY="false")
    assert run.returncode == 0, run.stdout + run.stderr
    assert dotenv(tmp_path / "project" / "gate.env")["GATE_OUTCOME"] == "deny"


@pytest.mark.parametrize("fail_on_deny", ["true", "false"])
def test_no_decision_is_exit_2_and_never_passes(tmp_path: Path, fail_on_deny: str) -> None:
    run = run_job(tmp_path, GATE_IMAGE=f"{IMAGE}:1.4.2", GATE_REPORTS=CLEAN, GATE_FAIL_ON_DENY=fail_on_deny)
    assert run.returncode == 2, run.stdout + run.stderr
    assert dotenv(tmp_path / "project" / "gate.env") == {"GATE_OUTCOME": "error", "GATE_DECISION_ID": ""}
