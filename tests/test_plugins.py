"""The plugin system: built-ins and a third-party plugin found through the same entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gate.errors import PluginError
from gate.plugins import plugin_manager
from gate.scanning.registry import ScannerRegistry
from tests.conftest import Run

# A tiny but real third-party plugin: its own package, its own dist-info with an entry point in
# group gate.scanners, found by importlib.metadata exactly as a `pip install gate-example` would be.
EXAMPLE_PLUGIN = '''
"""Reads a made-up "example-scan" JSON format: {"example_scan": [{"id": ..., "level": ...}]}."""
from __future__ import annotations
import json
from gate.hookspecs import hookimpl
from gate.models import Finding, FindingKind, ScanResult, Severity, fingerprint
from gate.scanning.interface import Scanner

class ExampleScanner(Scanner):
    name = "example"
    description = "Example third-party scanner"
    formats = ("example-scan JSON",)

    def detect(self, report):
        return "example-scan" if b'"example_scan"' in report.head else None

    def scan(self, report, fmt):
        items = json.loads(report.path.read_text())["example_scan"]
        findings = [
            Finding(id=fingerprint("example", i["id"]), scanner="example", kind=FindingKind.CODE_ISSUE,
                    rule=i["id"], severity=Severity(i["level"]), title=i["id"])
            for i in items
        ]
        return ScanResult(scanner="example", scanner_version="9.9", format=fmt, report=str(report.path),
                          report_sha256=report.sha256, findings=findings, metrics={"items": len(items)})

@hookimpl
def gate_register_scanners(register):
    register(ExampleScanner())
'''


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install ``gate_example`` (package + dist-info with the entry point) into a folder on sys.path."""
    site = tmp_path / "site"
    (site / "gate_example").mkdir(parents=True)
    (site / "gate_example" / "__init__.py").write_text(EXAMPLE_PLUGIN)
    dist = site / "gate_example-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gate-example\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[gate.scanners]\nexample = gate_example\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("gate_example", None)


def test_builtins_are_listed_with_formats_and_origin(gate: Callable[..., Run]) -> None:
    run = gate("plugins", "list", "--format", "json")
    assert run.code == 0
    scanners = {s["name"]: s for s in run.json()["scanners"]}
    assert {"trivy", "coverage", "sonarqube"} <= set(scanners)
    assert scanners["trivy"]["origin"].startswith("promotion-gate ")
    assert any("CycloneDX" in f for f in scanners["trivy"]["formats"])
    text = gate("plugins", "list").out
    assert text.startswith("NAME")
    assert "trivy" in text and "coverage" in text and "sonarqube" in text


def test_third_party_plugin_is_listed_and_used(
    gate: Callable[..., Run], installed_plugin: Path, tmp_path: Path
) -> None:
    scanners = {s["name"]: s for s in gate("plugins", "list", "--format", "json").json()["scanners"]}
    assert scanners["example"]["origin"] == "gate-example 1.2.3"
    assert scanners["example"]["formats"] == ["example-scan JSON"]
    report = tmp_path / "example.json"
    report.write_text(json.dumps({"example_scan": [{"id": "EX-1", "level": "high"}, {"id": "EX-2", "level": "low"}]}))
    doc = gate("scan", "--report", f"auto={report}", "--format", "json").json()
    assert [f["rule"] for f in doc["findings"]] == ["EX-1", "EX-2"]
    assert doc["scanners"][0]["version"] == "9.9"
    assert doc["scanners"][0]["plugin_version"] == "1.2.3"
    assert doc["metrics"]["example"] == {"items": 2}


def test_plugin_can_be_disabled(
    gate: Callable[..., Run], installed_plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {s["name"] for s in gate("--disable-plugin", "example", "plugins", "list", "--format", "json").json()["scanners"]}
    assert "example" not in names and "trivy" in names
    monkeypatch.setenv("GATE_DISABLE_PLUGINS", "example,trivy")
    names = {s["name"] for s in gate("plugins", "list", "--format", "json").json()["scanners"]}
    assert names.isdisjoint({"example", "trivy"})


def test_third_party_plugin_through_the_console_script(installed_plugin: Path, tmp_path: Path) -> None:
    report = tmp_path / "example.json"
    report.write_text(json.dumps({"example_scan": [{"id": "EX-9", "level": "critical"}]}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed_plugin), os.environ.get("PYTHONPATH", "")])}
    gate_bin = Path(sys.executable).with_name("gate")
    run = subprocess.run([gate_bin, "scan", "--report", f"example={report}", "--format", "json"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["findings"][0]["severity"] == "critical"


def test_broken_plugin_is_a_clear_error(gate: Callable[..., Run], installed_plugin: Path) -> None:
    (installed_plugin / "gate_example" / "__init__.py").write_text("raise ImportError('missing dependency foo')\n")
    run = gate("plugins", "list")
    assert run.code == 2
    assert "failed to load" in run.err and "missing dependency foo" in run.err and "GATE_DISABLE_PLUGINS" in run.err


def test_scanner_name_clash_is_refused(installed_plugin: Path) -> None:
    source = (installed_plugin / "gate_example" / "__init__.py").read_text()
    (installed_plugin / "gate_example" / "__init__.py").write_text(source.replace('name = "example"', 'name = "trivy"'))
    with pytest.raises(PluginError, match="both register a scanner named 'trivy'"):
        ScannerRegistry(plugin_manager())


def test_hook_with_undeclared_argument_is_rejected() -> None:
    from gate.hookspecs import hookimpl

    class Bad:
        @hookimpl
        def gate_register_scanners(self, register, extra):  # type: ignore[no-untyped-def]
            """Asks for an argument the spec does not declare."""

    pm = plugin_manager(load_entry_points=False)
    with pytest.raises(Exception, match="extra"):
        pm.register(Bad(), name="bad")


def test_in_process_registration_is_attributed() -> None:
    from gate.hookspecs import hookimpl
    from gate_trivy import TrivyScanner

    class Local:
        @hookimpl
        def gate_register_scanners(self, register):  # type: ignore[no-untyped-def]
            """Registers the Trivy scanner again, in-process."""
            register(TrivyScanner())

    pm = plugin_manager(load_entry_points=False)
    pm.register(Local(), name="local")
    [info] = ScannerRegistry(pm).infos()
    assert (info.scanner.name, info.plugin, info.origin) == ("trivy", "local", "registered in-process")
