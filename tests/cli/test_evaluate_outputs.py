"""`gate evaluate --output FORMAT=FILE`: every rendering from the ONE recorded decision, and
`gate decisions show ID --format` re-rendering a stored decision byte for byte."""

from __future__ import annotations

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_evaluate import JUICE, POLICIES, evaluate
from tests.conftest import Run


def recorded(decision_store: Path) -> list[str]:
    with sqlite3.connect(decision_store) as db:
        return [json.loads(record)["decision_id"] for (record,) in db.execute("select record from decisions")]


def junit_cases(junit_xml: str) -> set[str | None]:
    return {case.get("name") for case in ET.fromstring(junit_xml).iter("testcase")}


def test_one_evaluate_writes_five_renderings_and_records_one_decision(
    gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path
) -> None:
    out = {fmt: tmp_path / f"gate.{fmt}" for fmt in ("text", "json", "sarif", "junit", "markdown")}
    run = evaluate(gate, data, JUICE, "prod", *[a for fmt, path in out.items() for a in ("--output", f"{fmt}={path}")])
    assert run.code == 1, run.err
    [decision_id] = recorded(decision_store)
    decision = json.loads(out["json"].read_text())
    assert decision["decision_id"] == decision_id and decision["outcome"] == "deny"
    assert json.loads(out["sarif"].read_text())["runs"][0]["properties"]["decision_id"] == decision_id
    junit = ET.parse(out["junit"]).getroot()
    assert {p.get("name"): p.get("value") for p in junit.iter("property")}["decision_id"] == decision_id
    assert out["text"].read_text().startswith("DENY ") and decision_id in out["text"].read_text()
    assert out["markdown"].read_text().startswith("## ❌ gate: DENY ") and decision_id in out["markdown"].read_text()
    # stdout still has the --format rendering (text); each file is announced on stderr
    assert run.out.startswith("DENY ")
    assert all(f"gate: wrote {path}" in run.err for path in out.values())


def test_an_unwritable_output_records_nothing_and_writes_nothing(
    gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path
) -> None:
    ok = tmp_path / "gate.json"
    missing = tmp_path / "missing" / "gate.sarif"
    run = evaluate(gate, data, JUICE, "prod", "--output", f"json={ok}", "--output", f"sarif={missing}")
    assert run.code == 2
    assert f"cannot write --output {missing}" in run.err and run.out == ""
    assert recorded(decision_store) == [] and not ok.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary left either


@pytest.mark.parametrize(
    ("outputs", "says"),
    [
        (["jsn=x.json"], "unknown format 'jsn', did you mean 'json'?"),
        (["json=a.json", "json=b.json"], "format 'json' is named twice"),
        (["json=a.out", "sarif=./a.out"], "./a.out is named twice"),
        (["a.out", "sarif=a.out"], "a.out is named twice"),
        (["a.txt", "b.txt"], "only one --output FILE without FORMAT="),
        (["a.txt", "text=b.txt"], "format 'text' (--format) is named twice"),
        (["json="], "no file after '='"),
    ],
)
def test_a_wrong_output_is_a_usage_error_before_anything_is_recorded(
    gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path, outputs: list[str], says: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    run = evaluate(gate, data, JUICE, "prod", *[a for value in outputs for a in ("--output", value)])
    assert run.code == 2 and says in run.err and len(run.err.strip().splitlines()) == 1
    assert recorded(decision_store) == [] and list(tmp_path.iterdir()) == []


def test_output_file_alone_keeps_its_meaning_beside_named_ones(
    gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path
) -> None:
    """`-o FILE` is the --format rendering instead of stdout; a path with '=' is written ./like=this."""
    plain, named = tmp_path / "like=this.json", tmp_path / "gate.md"
    run = evaluate(gate, data, JUICE, "prod", "--format", "json", "-o", f"{plain}", "--output", f"markdown={named}")
    assert run.code == 1, run.err
    [decision_id] = recorded(decision_store)
    assert run.out == "" and json.loads(plain.read_text())["decision_id"] == decision_id
    assert decision_id in named.read_text()
    assert "gate: DENY" in run.err and f"decision {decision_id}" in run.err  # the summary, as with -o alone


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "markdown", "github", "codequality"])
def test_decisions_show_renders_a_stored_decision_as_evaluate_wrote_it(
    gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path, fmt: str
) -> None:
    written = tmp_path / f"gate.{fmt}"
    assert evaluate(gate, data, JUICE, "prod", "--output", f"{fmt}={written}").code == 1
    [decision_id] = recorded(decision_store)
    shown = gate("decisions", "show", decision_id, "--format", fmt)
    assert shown.code == 0, shown.err
    assert shown.out.encode() == written.read_bytes()


def test_junit_of_a_stored_decision_lists_the_passing_rules_only_while_its_bundle_is_unchanged(
    gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path
) -> None:
    """JUnit's passing testcases come from the recorded policy layers; an edited bundle (another digest)
    lends no rules to an old decision: only the rules with results are listed then."""
    import shutil

    from tests.cli.test_evaluate import REF, reports

    policy = tmp_path / "policies"
    shutil.copytree(POLICIES, policy)
    written = tmp_path / "gate.xml"
    run = gate("evaluate", *reports(data, *JUICE), "--policy", policy, "--image", REF, "--env", "prod",
               "--output", f"junit={written}")
    assert run.code == 1, run.err
    [decision_id] = recorded(decision_store)
    shown = gate("decisions", "show", decision_id, "--format", "junit")
    assert shown.out.encode() == written.read_bytes()
    decision = json.loads(gate("decisions", "show", decision_id, "--format", "json").out)
    with_results = {v["rule"] for v in decision["violations"] + decision["warnings"]}
    waived = {w["rule"] for w in decision["waivers"]}
    assert junit_cases(shown.out) > with_results | waived  # passing rules too
    next(policy.rglob("*.rego")).open("a").write("\n# edited after the decision\n")
    edited = gate("decisions", "show", decision_id, "--format", "junit")
    assert edited.code == 0 and junit_cases(edited.out) == with_results | waived


def test_report_text_cannot_inject_into_the_github_or_markdown_renderings(
    gate: Callable[..., Run], data: Path, tmp_path: Path
) -> None:
    """A package name in a scanner report is untrusted: through a policy's message it reaches the
    workflow commands and the job summary, and must stay one line of text in each."""
    from tests.cli.test_evaluate_fail_closed import DENY_CRITICAL, IMAGE, bundle

    hostile = "lib\n::set-output name=allowed::true%0A::add-mask::x | <script>alert(1)</script>"
    report = json.loads((data / "trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json").read_text())
    vulns = [v for r in report["Results"] for v in r.get("Vulnerabilities") or () if v.get("Severity") == "CRITICAL"]
    vulns[0]["PkgName"] = hostile
    (tmp_path / "trivy.json").write_text(json.dumps(report))
    out_github, out_markdown = tmp_path / "gate.github", tmp_path / "gate.md"
    run = gate("evaluate", "--report", f"trivy={tmp_path / 'trivy.json'}", "--policy", bundle(tmp_path, ("vulns.rego", DENY_CRITICAL)),
               "--image", IMAGE, "--env", "prod", "--output", f"github={out_github}", "--output", f"markdown={out_markdown}")
    assert run.code == 1, run.err
    lines = out_github.read_text().splitlines()
    assert all(re.match(r"^::(error|notice) [^:]*::", line) for line in lines), lines
    [injected] = [line for line in lines if "set-output" in line]
    assert injected.startswith("::error title=vulns.critical (critical)::") and "%0A::set-output" in injected
    assert "%250A" in injected
    document = out_markdown.read_text()
    assert "<script" not in document and "\n::set-output" not in document
    [row] = [line for line in document.splitlines() if "set-output" in line]
    assert len(re.split(r"(?<!\\)\|", row)) == 4 + 2  # four cells: the message's `|` split nothing
