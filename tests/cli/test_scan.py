"""`gate scan` end to end through the CLI: documents, detection, and every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DIGEST, Run

TRIVY_REPORTS = sorted(p.name for p in (Path(__file__).parent.parent / "data" / "trivy").glob("*.json") if "sarif" not in p.name)
IMAGE = f"registry.example.com/shop/cart:1.4.2@{DIGEST}"


def one_error_line(run: Run) -> str:
    """A failed run: exit 2, nothing on stdout, exactly one line on stderr, no traceback."""
    assert run.code == 2, run
    assert run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("gate: error: ")
    assert "Traceback" not in run.err
    return lines[0]


@pytest.mark.parametrize("name", TRIVY_REPORTS)
def test_every_trivy_report_gives_a_valid_document(
    gate: Callable[..., Run], data: Path, validate_input: Callable[[Any], None], name: str
) -> None:
    run = gate("scan", "--report", f"auto={data / 'trivy' / name}", "--image", IMAGE, "--format", "json")
    assert run.code == 0, run.err
    doc = run.json()
    validate_input(doc)
    [scanner] = doc["scanners"]
    assert scanner["name"] == "trivy"
    assert scanner["report_sha256"] == __import__("hashlib").sha256((data / "trivy" / name).read_bytes()).hexdigest()
    assert scanner["findings"] == len(doc["findings"])
    assert doc["artifact"] == {"image": "registry.example.com/shop/cart", "digest": DIGEST, "tag": "1.4.2"}


def test_juice_shop_document_counts(gate: Callable[..., Run], data: Path) -> None:
    run = gate("scan", "--report", f"trivy={data / 'trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json'}", "--format", "json")
    doc = run.json()
    vulns = [f for f in doc["findings"] if f["kind"] == "vulnerability"]
    assert len(vulns) == 182
    assert sum(f["severity"] == "critical" for f in vulns) == 28
    assert doc["metrics"]["trivy"]["counts"]["vulnerability"] == {"critical": 28, "high": 100, "medium": 48, "low": 6}
    assert doc["artifact"] is None


def test_text_output_is_a_readable_summary(gate: Callable[..., Run], data: Path) -> None:
    run = gate("scan", "--report", f"trivy={data / 'trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json'}")
    assert run.code == 0
    assert "SCANNER  KIND" in run.out
    assert "trivy    vulnerability  28        100   48      6" in run.out
    assert "Top findings (20 of 185)" in run.out


def test_secrets_are_never_printed(gate: Callable[..., Run], data: Path) -> None:
    report = data / "trivy/trivy-fs-secrets.json"
    assert b"ghp_" in report.read_bytes()  # the report does hold a (fake) token
    for fmt in ("json", "text"):
        run = gate("scan", "--report", f"trivy={report}", "--format", fmt)
        assert run.code == 0
        assert "ghp_" not in run.out + run.err


def test_output_file(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    target = tmp_path / "input.json"
    run = gate("scan", "--report", f"auto={data / 'trivy/trivy-image-alpine-310.json'}", "--format", "json", "-o", target)
    assert run.code == 0 and run.out == ""
    assert f"wrote {target}" in run.err
    assert len(json.loads(target.read_text())["findings"]) == 4


def test_ci_context_is_recorded(gate: Callable[..., Run], data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SHA", "0123abc")
    monkeypatch.setenv("GITHUB_REPOSITORY", "shop/cart")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    monkeypatch.setenv("GITHUB_ACTOR", "alice")
    doc = gate("scan", "--report", f"auto={data / 'trivy/trivy-image-alpine-310.json'}", "--format", "json").json()
    assert doc["context"] == {
        "git_commit": "0123abc",
        "pipeline_url": "https://github.com/shop/cart/actions/runs/42",
        "actor": "alice",
    }


# --- bad input: exit 2, one line naming the file and the problem -------------------------------


def test_missing_report(gate: Callable[..., Run], tmp_path: Path) -> None:
    line = one_error_line(gate("scan", "--report", f"trivy={tmp_path / 'nope.json'}"))
    assert line == f"gate: error: {tmp_path / 'nope.json'}: no such file"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "report is empty"),
        (b"  \n\t\n", "only whitespace"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "format not recognized"),
        (b"hello, world\n", "format not recognized"),
        (b'{"SchemaVersion": 2, "Results": [{"Target": "x", "Vulnerabilities": [', "JSON is truncated"),
        (b'{"SchemaVersion": 2, "Results": [}', "malformed"),
        (b'{"SchemaVersion": "two"}', "Expected `int`, got `str`"),
    ],
)
def test_unreadable_reports(gate: Callable[..., Run], tmp_path: Path, content: bytes, problem: str) -> None:
    report = tmp_path / "report.json"
    report.write_bytes(content)
    line = one_error_line(gate("scan", "--report", f"auto={report}"))
    assert str(report) in line
    assert problem in line


def test_truncated_real_report(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    full = (data / "trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json").read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(full[: len(full) // 2])
    line = one_error_line(gate("scan", "--report", f"trivy={cut}"))
    assert "JSON is truncated" in line


def test_trivy_sarif_is_refused_with_advice(gate: Callable[..., Run], data: Path) -> None:
    line = one_error_line(gate("scan", "--report", f"auto={data / 'trivy/trivy-image-alpine-310.sarif.json'}"))
    assert "Trivy SARIF is not read" in line and "--format json" in line


def test_report_too_large(gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b"[" + b" " * (2 * 1024 * 1024) + b"]")
    monkeypatch.setenv("GATE_MAX_REPORT_MB", "1")
    line = one_error_line(gate("scan", "--report", f"trivy={big}"))
    assert "over the limit" in line and "GATE_MAX_REPORT_MB" in line


def test_directory_is_not_a_report(gate: Callable[..., Run], tmp_path: Path) -> None:
    assert "not a regular file" in one_error_line(gate("scan", "--report", f"auto={tmp_path}"))


def test_named_scanner_that_does_not_read_the_report(gate: Callable[..., Run], tmp_path: Path) -> None:
    report = tmp_path / "coverage.xml"
    report.write_text('<?xml version="1.0" ?>\n<coverage line-rate="0.5" lines-valid="2" lines-covered="1"><packages/></coverage>\n')
    line = one_error_line(gate("scan", "--report", f"trivy={report}"))
    assert "not a trivy report" in line
    assert "--report coverage=" in line


def test_unknown_scanner_lists_installed_ones(gate: Callable[..., Run], data: Path) -> None:
    line = one_error_line(gate("scan", "--report", f"grype={data / 'trivy/trivy-image-alpine-310.json'}"))
    assert "no scanner named 'grype'" in line and "trivy" in line


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--report", "trivy.json"], "expected NAME=PATH"),
        (["--report", "auto=x.json", "--image", "registry.example.com/app:1.0"], "not pinned by digest"),
        (["--report", "auto=x.json", "--image", "registry.example.com/app@sha256:abc"], "64 lowercase hex"),
        (["--report", "auto=x.json", "--image", f"Registry/UPPER@{DIGEST}"], "invalid repository name"),
        (["--format", "xml", "--report", "auto=x.json"], "invalid choice"),
    ],
)
def test_usage_errors(gate: Callable[..., Run], argv: list[str], problem: str) -> None:
    assert problem in one_error_line(gate("scan", *argv))


def test_no_report_is_a_usage_error(gate: Callable[..., Run]) -> None:
    assert "--report" in one_error_line(gate("scan"))


def test_hostile_xml_is_refused(gate: Callable[..., Run], tmp_path: Path) -> None:
    laughs = tmp_path / "laughs.xml"
    entities = "".join(f'<!ENTITY l{i} "{"&l%d;" % (i - 1) * 10}">' for i in range(1, 10))
    laughs.write_text(f'<?xml version="1.0"?><!DOCTYPE coverage [<!ENTITY l0 "lol">{entities}]><coverage line-rate="1">&l9;</coverage>')
    xxe = tmp_path / "xxe.xml"
    xxe.write_text('<?xml version="1.0"?><!DOCTYPE coverage [<!ENTITY x SYSTEM "file:///etc/passwd">]><coverage line-rate="1">&x;</coverage>')
    for report in (laughs, xxe):
        line = one_error_line(gate("scan", "--report", f"coverage={report}"))
        assert str(report) in line and "root:" not in line


# --- the console script itself -----------------------------------------------------------------


def test_console_script_version_and_help() -> None:
    gate_bin = Path(sys.executable).with_name("gate")
    version = subprocess.run([gate_bin, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip().startswith("gate ")
    helped = subprocess.run([gate_bin, "scan", "--help"], capture_output=True, text=True, check=True)
    assert "NAME=PATH" in helped.stdout and "auto" in helped.stdout
    bare = subprocess.run([gate_bin], capture_output=True, text=True)
    assert bare.returncode == 2 and "scan" in bare.stderr


def test_console_script_exit_code_on_error(tmp_path: Path) -> None:
    gate_bin = Path(sys.executable).with_name("gate")
    run = subprocess.run(
        [gate_bin, "scan", "--report", f"auto={tmp_path / 'missing.json'}"],
        capture_output=True,
        text=True,
        env={**os.environ, "RUST_BACKTRACE": "1"},
    )
    assert run.returncode == 2
    assert run.stderr.strip() == f"gate: error: {tmp_path / 'missing.json'}: no such file"
