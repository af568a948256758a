"""The OPA-server engine through opa-python-client, against ``gate serve`` on 127.0.0.1.

An OPA binary cannot be installed on these machines, so the server here is ``gate serve``: a
stand-in speaking OPA's REST API, evaluating with regorus. These tests therefore prove the client
side (push, data, queries, errors, tokens) and that both engines reach identical answers through
it; OPA's own Rego semantics are tested in test_opa_portability.py with OPA's Go evaluator.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from gate.errors import PolicyError, UsageError
from gate.policy.bundle import Bundle, load_bundle, merge_data
from gate.policy.embedded import EmbeddedEngine
from gate.policy.opa import OpaEngine
from gate.serve import GateServer, make_server
from tests.conftest import DIGEST, ROOT, Run

pytestmark = pytest.mark.server

DEMO = """package gate.promotion.demo

import rego.v1

import data.gate.zlib.helpers

# METADATA
# title: No critical findings
# custom:
#   rule_id: demo.critical
#   severity: critical
deny contains {"msg": helpers.describe(f), "rule": "demo.critical", "finding_ids": [f.id]} if {
	some f in input.findings
	f.severity == "critical"
	not helpers.waived(f)
}

warn contains sprintf("%v high findings (limit %v)", [n, max_high]) if {
	n := count([f | some f in input.findings; f.severity == "high"])
	n > max_high
}

max_high := helpers.at_least_one(data.gate.config.max_high)
"""
# Sorts after the package that calls it: the engine must upload in an order OPA's compiler accepts.
HELPERS = """package gate.zlib.helpers

import rego.v1

describe(f) := sprintf("%v (%v) in %v", [f.rule, f.severity, f["package"].name])

at_least_one(n) := max([n, 1])

waived(f) if {
	some w in data.waivers
	w.rule == f.rule
}
"""
DEMO_TEST = """package gate.promotion.demo_test

import rego.v1

test_nothing if true
"""
FINDINGS = [
    {"id": "f1", "rule": "CVE-2023-0286", "severity": "critical", "package": {"name": "libssl3"}},
    {"id": "f2", "rule": "CVE-2023-52425", "severity": "critical", "package": {"name": "libexpat"}},
    {"id": "f3", "rule": "CVE-2022-25883", "severity": "high", "package": {"name": "semver"}},
    {"id": "f4", "rule": "CVE-2022-24999", "severity": "high", "package": {"name": "qs"}},
]
WAIVERS = {"waivers": [{"id": "W-0042", "rule": "CVE-2023-52425"}]}


@pytest.fixture
def server() -> Iterator[GateServer]:
    """An empty ``gate serve`` on a free port, stopped after the test."""
    srv = make_server(port=0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def demo(tmp_path: Path) -> Bundle:
    """A tiny bundle: a deny and a warn rule, a helper package, a test file and bundle data."""
    for rel, text in {
        "gate/promotion/demo/demo.rego": DEMO,
        "gate/promotion/demo/demo_test.rego": DEMO_TEST,
        "gate/zlib/helpers.rego": HELPERS,
        "gate/config/data.json": json.dumps({"max_high": 1}),
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return load_bundle(tmp_path)


def embedded(bundle: Bundle, data: dict[str, Any]) -> EmbeddedEngine:
    engine = EmbeddedEngine()
    engine.load(bundle, data)
    return engine


def test_push_then_evaluate_matches_the_embedded_engine(server: GateServer, demo: Bundle) -> None:
    data = merge_data(demo.data, WAIVERS)
    engine = OpaEngine(server.url)
    engine.load(demo, data)
    # policies under gate/<path in bundle>, tests left out; data keys written where OPA would have them
    assert sorted(server.policy_set.policies()) == [
        "gate/gate/promotion/demo/demo.rego",
        "gate/gate/zlib/helpers.rego",
    ]
    expected = {
        "demo": {
            "deny": [{"msg": "CVE-2023-0286 (critical) in libssl3", "rule": "demo.critical", "finding_ids": ["f1"]}],
            "warn": ["2 high findings (limit 1)"],
            "max_high": 1,
        }
    }
    answer = engine.evaluate("gate.promotion", {"findings": FINDINGS})
    assert answer == expected
    assert answer == embedded(demo, data).evaluate("gate.promotion", {"findings": FINDINGS})
    for findings in ([], FINDINGS[1:], FINDINGS[:1]):
        assert engine.evaluate("gate.promotion", {"findings": findings}) == embedded(demo, data).evaluate(
            "gate.promotion", {"findings": findings}
        )


def test_undefined_documents_are_none(server: GateServer, demo: Bundle) -> None:
    engine = OpaEngine(server.url)
    engine.load(demo, demo.data)
    assert engine.evaluate("gate.nothing.here", {"findings": FINDINGS}) is None
    assert engine.evaluate("gate.promotion.demo.nope", {}) is None


def test_a_second_push_removes_what_the_bundle_no_longer_has(server: GateServer, demo: Bundle) -> None:
    engine = OpaEngine(server.url)
    engine.load(demo, merge_data(demo.data, WAIVERS))
    # the helper moves into the demo file, and the waivers file is not passed this time
    moved = (
        DEMO.replace("import data.gate.zlib.helpers\n", "").replace("helpers.", "") + HELPERS.split("import rego.v1")[1]
    )
    (demo.root / "gate/promotion/demo/demo.rego").write_text(moved)
    (demo.root / "gate/zlib/helpers.rego").unlink()
    again = load_bundle(demo.root)
    engine.load(again, again.data)
    assert sorted(server.policy_set.policies()) == ["gate/gate/promotion/demo/demo.rego"]
    answer = engine.evaluate("gate.promotion.demo.deny", {"findings": FINDINGS})
    assert [d["finding_ids"] for d in answer] == [["f1"], ["f2"]]  # the stale waiver no longer waives
    assert answer == embedded(again, again.data).evaluate("gate.promotion.demo.deny", {"findings": FINDINGS})


def test_without_push_the_server_must_already_hold_the_policies(demo: Bundle) -> None:
    srv = make_server(demo.root, port=0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        engine = OpaEngine(srv.url, push=False)
        engine.load(demo, demo.data)
        assert sorted(srv.policy_set.policies()) == ["gate/promotion/demo/demo.rego", "gate/zlib/helpers.rego"]
        assert engine.evaluate("gate.promotion", {"findings": FINDINGS}) == embedded(demo, demo.data).evaluate(
            "gate.promotion", {"findings": FINDINGS}
        )
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_a_policy_that_does_not_compile_names_the_file(server: GateServer, demo: Bundle) -> None:
    (demo.root / "gate/promotion/demo/broken.rego").write_text(
        "package gate.promotion.broken\n\nimport rego.v1\n\ndeny contains msg if {\n\tmsg := nofunc(1)\n}\n"
    )
    with pytest.raises(PolicyError) as raised:
        OpaEngine(server.url).load(load_bundle(demo.root), demo.data)
    message = raised.value.diagnostics()
    assert message.startswith(f"OPA server {server.url}: upload policy gate/gate/promotion/demo/broken.rego: ")
    assert "does not compile: gate/gate/promotion/demo/broken.rego:6:" in message and "nofunc" in message
    assert "\n" not in message


def test_a_server_that_is_down_is_named(demo: Bundle) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    for call in (lambda e: e.load(demo, demo.data), lambda e: e.evaluate("gate.promotion", {})):
        for push in (True, False):
            with pytest.raises(PolicyError) as raised:
                call(OpaEngine(url, push=push))
            assert raised.value.diagnostics().startswith(f"OPA server {url}: ")
            assert "cannot connect: Connection refused" in raised.value.diagnostics()


def test_a_server_that_is_not_opa_is_named(demo: Bundle) -> None:
    class Html(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>please log in</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            """Keep the test output quiet."""

    srv = HTTPServer(("127.0.0.1", 0), Html)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        with pytest.raises(PolicyError, match=rf"^OPA server {url}: list policies: the answer is not JSON"):
            OpaEngine(url).load(demo, demo.data)
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_the_token_is_sent_and_never_shown(
    demo: Bundle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the HTTP libraries' included
    token = "s3cr3t-opa-token"
    srv = make_server(port=0, token=token)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("GATE_OPA_TOKEN", token)
        engine = OpaEngine(srv.url)
        engine.load(demo, demo.data)
        assert engine.evaluate("gate.promotion.demo.warn", {"findings": FINDINGS}) == ["2 high findings (limit 1)"]
        monkeypatch.setenv("GATE_OPA_TOKEN", "wrong-" + token)
        with pytest.raises(PolicyError) as raised:
            OpaEngine(srv.url).load(demo, demo.data)
        assert "HTTP 401" in str(raised.value) and token not in str(raised.value)
        assert caplog.records and token not in caplog.text
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_version_as_the_server_reports_it(server: GateServer) -> None:
    assert OpaEngine(server.url).version() == server.version  # gate serve names itself; OPA gives "opa 1.x"


def test_urls_are_checked_and_never_echo_credentials() -> None:
    for bad in ("ftp://opa:8181", "127.0.0.1:8181", "http://:8181", "http://opa:99999"):
        with pytest.raises(UsageError, match="http"):
            OpaEngine(bad)
    with pytest.raises(UsageError) as raised:
        OpaEngine("http://admin:hunter2@opa:8181")
    assert "hunter2" not in str(raised.value) and "GATE_OPA_TOKEN" in str(raised.value)
    assert OpaEngine("https://opa.example.com/opa/").url == "https://opa.example.com:443/opa"


def test_opa_client_is_imported_only_when_used() -> None:
    code = (
        "import sys; import gate.cli, gate.policy.opa; from gate.policy.opa import OpaEngine; OpaEngine('http://127.0.0.1:1');"
        "sys.exit('opa_client' in sys.modules or 'requests' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT).returncode == 0


# --- the shipped policies --------------------------------------------------------------------------

SHIPPED = ROOT / "policies"
NOW = "2026-11-26T18:40:00.000000Z"
SHIPPED_WAIVERS = {
    "waivers": [
        {
            "id": "W-0042",
            "rule": "CVE-2021-42378",
            "reason": "busybox applet not used",
            "approved_by": "secops@example.com",
            "expires": "2026-12-01T00:00:00Z",  # within 14 days of NOW: waives and warns
        },
        {
            "id": "W-0043",
            "rule": "CVE-0000-0000",
            "reason": "matches nothing",
            "approved_by": "secops@example.com",
            "expires": "2027-06-30T00:00:00Z",
        },
    ]
}


def scanned(gate: Callable[..., Run], *reports: str, environment: str) -> dict[str, Any]:
    """The input ``gate evaluate`` would give the policies: ``gate scan`` plus environment and now."""
    argv = ["scan", "--image", f"registry.example.com/shop/cart:1.4.2@{DIGEST}", "--format", "json"]
    for report in reports:
        argv += ["--report", report]
    run = gate(*argv)
    assert run.code == 0, run.err
    return {**run.json(), "environment": environment, "now": NOW}


def test_shipped_policies_give_identical_documents_on_both_engines(
    server: GateServer, gate: Callable[..., Run], data: Path
) -> None:
    bundle = load_bundle(SHIPPED)
    inputs = [
        scanned(
            gate,
            f"trivy={data / 'trivy' / 'trivy-image-juice-shop-v12.10.2-many-vulns.json'}",
            f"coverage={data / 'coverage' / 'cobertura-coveragepy-6.3.2-multi-package.xml'}",
            environment="prod",
        ),
        scanned(
            gate,
            f"trivy={data / 'trivy' / 'trivy-fs-secrets.json'}",
            f"trivy={data / 'trivy' / 'trivy-config-dockerfile-misconfig.json'}",
            environment="staging",
        ),
        scanned(gate, f"coverage={data / 'coverage' / 'jacoco-report-raw-oneline.xml'}", environment="prod"),
    ]
    for extra in ({}, SHIPPED_WAIVERS):
        policy_data = merge_data(bundle.data, extra)
        opa = OpaEngine(server.url)
        opa.load(bundle, policy_data)
        local = embedded(bundle, policy_data)
        for document in inputs:
            answer = opa.evaluate("gate.promotion", document)
            assert answer, "data.gate.promotion is undefined"
            assert answer == local.evaluate("gate.promotion", document)


def test_evaluate_each_answers_a_failing_input_with_its_error(server: GateServer, tmp_path: Path) -> None:
    """As on the embedded engine: an input the policy fails on gets its PolicyError, the others their documents."""
    (tmp_path / "each.rego").write_text("package each\n\nimport rego.v1\n\nnumber := to_number(input.text)\n")
    bundle = load_bundle(tmp_path)
    inputs = [{"text": "7"}, {"text": "seven"}, {"text": "8"}]
    for engine in (OpaEngine(server.url), EmbeddedEngine()):
        engine.load(bundle, {})
        first, failed, last = engine.evaluate_each("each", inputs)
        assert (first, last) == ({"number": 7}, {"number": 8})
        assert isinstance(failed, PolicyError), engine.name
        with pytest.raises(PolicyError):
            engine.evaluate_many("each", inputs)
