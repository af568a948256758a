"""`gate serve` over real HTTP on 127.0.0.1: OPA's Data and Policy API subset, errors in OPA's shape."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gate.errors import PolicyError, UsageError
from gate.serve import GateServer, make_server, parse_addr, serve

pytestmark = pytest.mark.server

DEMO = """package gate.promotion.demo

import rego.v1

deny contains sprintf("%v is critical", [f.rule]) if {
	some f in input.findings
	f.severity == "critical"
	not f.rule in {w.rule | some w in data.waivers}
}

threshold := data.gate.config.threshold
"""


def start(server: GateServer, **client_options: Any) -> Iterator[httpx.Client]:
    """Serve ``server`` on a thread; yield a client; stop and close it afterwards, also on failure."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60, **client_options) as client:
            yield client
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def api() -> Iterator[httpx.Client]:
    """A client of an empty server on a free port."""
    yield from start(make_server(port=0))


def critical(rule: str) -> dict[str, object]:
    return {"rule": rule, "severity": "critical"}


def test_health_and_version(api: httpx.Client) -> None:
    assert api.get("/health").json() == {}
    version = api.get("/v1/data/system/version").json()["result"]["Version"]
    assert version.startswith("gate-serve ") and "regorus" in version


def test_policy_lifecycle_and_queries(api: httpx.Client) -> None:
    assert api.put("/v1/data/gate/config", json={"threshold": 3}).status_code == 204
    assert api.put("/v1/data/waivers", json=[{"rule": "CVE-2"}]).status_code == 204
    put = api.put("/v1/policies/gate/demo.rego", content=DEMO, headers={"Content-Type": "text/plain"})
    assert put.status_code == 200 and put.json() == {}
    assert api.get("/v1/policies").json() == {"result": [{"id": "gate/demo.rego", "raw": DEMO}]}
    assert api.get("/v1/policies/gate/demo.rego").json()["result"]["raw"] == DEMO

    findings = {"findings": [critical("CVE-1"), critical("CVE-2")]}
    answer = api.post("/v1/data/gate/promotion/demo", json={"input": findings}).json()
    assert answer == {"result": {"deny": ["CVE-1 is critical"], "threshold": 3}}
    # GET takes the input as a query parameter, or a body as the brief's clients send it
    assert api.get("/v1/data/gate/promotion/demo/deny", params={"input": json.dumps(findings)}).json() == {
        "result": ["CVE-1 is critical"]
    }
    assert api.request("GET", "/v1/data/gate/promotion/demo/deny", json={"input": findings}).json() == {
        "result": ["CVE-1 is critical"]
    }
    # undefined: no "result" key at all, as OPA answers
    assert api.post("/v1/data/gate/promotion/nothing", json={"input": findings}).json() == {}
    assert api.post("/v1/data/waivers/0/rule").json() == {"result": "CVE-2"}
    whole = api.post("/v1/data", json={"input": findings}).json()["result"]
    assert whole["gate"]["config"] == {"threshold": 3} and whole["gate"]["promotion"]["demo"]["threshold"] == 3

    assert api.delete("/v1/policies/gate/demo.rego").status_code == 200
    assert api.get("/v1/policies/gate/demo.rego").status_code == 404
    gone = api.delete("/v1/policies/gate/demo.rego")
    assert gone.status_code == 404 and gone.json()["code"] == "resource_not_found"
    assert api.post("/v1/data/gate/promotion/demo", json={"input": findings}).json() == {}


def test_data_put_patch_delete(api: httpx.Client) -> None:
    assert api.put("/v1/data/a/b/c", json={"x": 1}).status_code == 204  # parents are created
    assert api.get("/v1/data/a").json() == {"result": {"b": {"c": {"x": 1}}}}
    patch = [{"op": "add", "path": "/", "value": [1, 2]}, {"op": "add", "path": "/-", "value": 3}]
    assert api.patch("/v1/data/list", json=patch).status_code == 204
    assert api.patch("/v1/data/a/b", json=[{"op": "replace", "path": "/c/x", "value": 2}]).status_code == 204
    assert api.get("/v1/data").json()["result"] == {"a": {"b": {"c": {"x": 2}}}, "list": [1, 2, 3]}
    # a patch with one bad operation changes nothing
    bad = api.patch("/v1/data", json=[{"op": "remove", "path": "/list"}, {"op": "remove", "path": "/nope"}])
    assert bad.status_code == 404
    assert api.get("/v1/data/list").json() == {"result": [1, 2, 3]}
    assert api.delete("/v1/data/a/b").status_code == 204
    assert api.get("/v1/data/a").json() == {"result": {}}
    assert api.delete("/v1/data/a/b").status_code == 404
    assert api.put("/v1/data", json={"fresh": True}).status_code == 204
    assert api.get("/v1/data").json() == {"result": {"fresh": True}}
    assert api.put("/v1/data", json=[1]).status_code == 400


def test_errors_are_shaped_like_opa(api: httpx.Client) -> None:
    malformed = api.post("/v1/data/x", content=b'{"input": ', headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["code"] == "invalid_parameter"
    assert "malformed input document" in malformed.json()["message"]
    assert api.put("/v1/data/x", content=b"{nope").status_code == 400

    syntax = api.put("/v1/policies/broken.rego", content="package broken\nimport rego.v1\np if {\n")
    assert syntax.status_code == 400
    body = syntax.json()
    assert body["code"] == "invalid_parameter"
    assert body["errors"][0]["location"]["file"] == "broken.rego" and body["errors"][0]["location"]["row"] == 4
    # an undefined function is found by evaluating the package once, as OPA's compiler would refuse it
    undefined = api.put("/v1/policies/fn.rego", content="package fn\nimport rego.v1\np if nofunc(1)\n")
    assert undefined.status_code == 400 and "nofunc" in undefined.json()["errors"][0]["message"]
    assert api.get("/v1/policies").json() == {"result": []}

    assert api.get("/v1/policies/unknown").status_code == 404
    assert api.get("/v2/other").status_code == 404
    assert api.post("/v1/policies/x.rego", content="package x").status_code == 405
    assert api.put("/v1/policies/empty.rego", content="  ").status_code == 400


def test_body_limit_and_chunked_bodies() -> None:
    for client in start(make_server(port=0, max_body=1024)):
        too_big = client.post("/v1/data/x", json={"input": "x" * 2000})
        assert too_big.status_code == 413 and too_big.json()["code"] == "invalid_parameter"
        assert client.post("/v1/data/x", json={"input": "small"}).json() == {}  # a fresh connection works

        def chunks() -> Iterator[bytes]:
            yield b'{"input": 1}'

        assert client.post("/v1/data/x", content=chunks()).status_code == 411


def test_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for client in start(make_server(port=0, token="t0ken")):
        assert client.get("/health").status_code == 200  # liveness probes need no token
        denied = client.get("/v1/policies")
        assert denied.status_code == 401 and "t0ken" not in denied.text
        assert client.get("/v1/policies", headers={"Authorization": "Bearer t0ken"}).status_code == 200


def test_concurrent_evaluations_each_get_their_own_engine(api: httpx.Client) -> None:
    """regorus engines are bound to the thread that made them: every request builds its own."""
    api.put("/v1/data/gate/config", json={"threshold": 1})
    api.put("/v1/policies/demo.rego", content=DEMO)
    answers: dict[int, object] = {}

    def ask(i: int) -> None:
        with httpx.Client(base_url=str(api.base_url), timeout=30) as own:
            body = {"input": {"findings": [critical(f"CVE-{i}")]}}
            answers[i] = own.post("/v1/data/gate/promotion/demo/deny", json=body).json()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers == {i: {"result": [f"CVE-{i} is critical"]} for i in range(8)}


def test_loads_a_bundle_and_data_files_like_opa_run(tmp_path: Path) -> None:
    (tmp_path / "gate" / "config").mkdir(parents=True)
    (tmp_path / "gate" / "demo.rego").write_text(DEMO)
    (tmp_path / "gate" / "demo_test.rego").write_text(
        "package gate.promotion.demo_test\nimport rego.v1\ntest_x if true\n"
    )
    (tmp_path / "gate" / "config" / "data.json").write_text('{"threshold": 5}')
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n  - rule: CVE-1\n")
    for client in start(make_server(tmp_path, [waivers], port=0)):
        assert [p["id"] for p in client.get("/v1/policies").json()["result"]] == ["gate/demo.rego"]
        body = {"input": {"findings": [critical("CVE-1"), critical("CVE-3")]}}
        assert client.post("/v1/data/gate/promotion/demo", json=body).json() == {
            "result": {"deny": ["CVE-3 is critical"], "threshold": 5}
        }

    (tmp_path / "gate" / "bad.rego").write_text("package gate.bad\nimport rego.v1\np if nofunc(1)\n")
    with pytest.raises(PolicyError, match=r"gate/bad\.rego:3:\d+: could not find function nofunc"):
        make_server(tmp_path, port=0)


def test_serve_calls_back_when_listening_and_stops_on_shutdown() -> None:
    ready: list[GateServer] = []
    listening = threading.Event()

    def on_ready(server: GateServer) -> None:
        ready.append(server)
        listening.set()

    thread = threading.Thread(target=serve, args=(None,), kwargs={"port": 0, "ready_callback": on_ready}, daemon=True)
    thread.start()
    assert listening.wait(10)
    assert httpx.get(f"{ready[0].url}/health").json() == {}
    ready[0].shutdown()
    thread.join(5)
    assert not thread.is_alive()


def test_parse_addr() -> None:
    assert parse_addr("127.0.0.1:8181") == ("127.0.0.1", 8181)
    assert parse_addr("[::1]:9000") == ("::1", 9000)
    for bad in (":8181", "127.0.0.1", "host:http", "host:70000"):
        with pytest.raises(UsageError, match="HOST:PORT"):
            parse_addr(bad)


def test_port_in_use_is_a_usage_error() -> None:
    for client in start(make_server(port=0)):
        port = int(str(client.base_url).rsplit(":", 1)[1])
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}"):
            make_server(port=port)
