"""`gate serve` (Data API and admission webhook) against hostile clients, over real sockets on 127.0.0.1.

A client that connects and sends nothing, or sends its request a byte at a time, must not hold a
server thread for ever: with the webhook's ``failurePolicy: Fail`` a server out of threads blocks
every deploy. A body nested 100 000 levels deep must be a 400 with a clear message, never a
traceback. The servers here are configured with a short request timeout (the limit is what is
tested, not how long it takes) or a long one with few connections (then only evicting the silent
connections lets a real request through); the client timeouts are generous.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
import httpx
import pytest

from gate.serve import GateServer, make_server
from tests.conftest import ROOT
from tests.test_serve import api, start  # noqa: F401  (api: a fixture)
from tests.test_serve_admission import configmap_review, review, self_signed

pytestmark = pytest.mark.server

POLICIES = ROOT / "policies"
#: what a test waits, at most, for the server to act (never reached when the server behaves)
PATIENCE = 60.0
DEEP = b"[" * 100_000 + b"]" * 100_000


def address(client: httpx.Client) -> tuple[str, int]:
    url = httpx.URL(str(client.base_url))
    assert url.host is not None and url.port is not None
    return url.host, url.port


@contextmanager
def connection(client: httpx.Client) -> Iterator[socket.socket]:
    """A raw TCP connection to the server of ``client``."""
    sock = socket.create_connection(address(client), timeout=PATIENCE)
    try:
        yield sock
    finally:
        sock.close()


def closed_by_server(sock: socket.socket | ssl.SSLSocket) -> bool:
    """True once the server closes ``sock`` (EOF or reset), False if it is still open after PATIENCE."""
    sock.settimeout(PATIENCE)
    try:
        while sock.recv(4096):  # an answer (a 408) may come first; EOF ends the loop
            continue
    except TimeoutError:
        return False
    except (ConnectionResetError, ssl.SSLError):
        return True
    return True


@pytest.fixture
def quick() -> Iterator[httpx.Client]:
    """A Data API server that gives each client one second to send its request."""
    yield from start(make_server(port=0, request_timeout=1.0))


# --- silent and slow clients ----------------------------------------------------------------------


def test_a_silent_connection_is_closed(quick: httpx.Client) -> None:
    with connection(quick) as silent:
        assert closed_by_server(silent)
    assert quick.get("/health").json() == {}


def test_an_idle_kept_alive_connection_is_closed(quick: httpx.Client) -> None:
    with connection(quick) as idle:
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: gate\r\n\r\n")
        answer = idle.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert closed_by_server(idle)  # it sends no next request


def test_a_request_sent_a_byte_at_a_time_is_cut_off(quick: httpx.Client) -> None:
    """Each byte arrives well within the timeout; the whole request never does."""
    request = b"POST /v1/data/x HTTP/1.1\r\nHost: gate\r\nX-Filler: " + b"a" * 600 + b"\r\n\r\n"
    with connection(quick) as slow:
        slow.settimeout(0.1)  # the pace of the bytes; also how often it looks for the server's close
        cut_off = False
        for index in range(len(request)):
            try:
                slow.send(request[index : index + 1])
                if slow.recv(4096) == b"":
                    cut_off = True
                    break
            except TimeoutError:
                continue  # still open
            except (BrokenPipeError, ConnectionResetError):
                cut_off = True
                break
        assert cut_off, "the server waited for the whole slow request"


def test_a_body_that_never_arrives_is_a_408(quick: httpx.Client) -> None:
    with connection(quick) as stalled:
        stalled.sendall(b"POST /v1/data/x HTTP/1.1\r\nHost: gate\r\nContent-Length: 100\r\n\r\n{\"input\": ")
        answer = b""
        while chunk := stalled.recv(4096):  # until the server closes: the answer says it will
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"Connection: close" in answer
        assert answer.endswith(b'{"code": "request_timeout", "message": "request not received within 1 s"}'), answer


def test_silent_connections_make_room_for_real_requests() -> None:
    """With every connection slot held by a silent client, a new connection evicts the one that has
    waited longest for its request, so a real review is still answered (the timeout is long here)."""
    server = make_server(POLICIES, port=0, admission="prod", request_timeout=600.0, max_connections=4)
    for client in start(server):
        silent = [socket.create_connection(address(client), timeout=PATIENCE) for _ in range(12)]
        try:
            assert review(client, configmap_review())["allowed"] is True
            assert review(client, configmap_review())["allowed"] is True  # on the kept-alive connection
            # 12 silent connections and the real one in 4 slots: the 9 oldest silent ones were closed
            assert all(closed_by_server(sock) for sock in silent[:9])
        finally:
            for sock in silent:
                sock.close()


def test_a_tls_client_that_never_says_hello_is_closed(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    for client in start(make_server(port=0, tls_cert=cert, tls_key=key, request_timeout=1.0), verify=False):
        with connection(client) as silent:
            assert closed_by_server(silent)
        # nor one that completes the handshake and then says nothing
        context = ssl.create_default_context(cafile=str(cert))
        with connection(client) as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as quiet:
            assert closed_by_server(quiet)
        assert client.get("/health").json() == {}


def test_silent_tls_connections_make_room_for_real_reviews(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = make_server(
        POLICIES, port=0, admission="prod", tls_cert=cert, tls_key=key, request_timeout=600.0, max_connections=3
    )
    for client in start(server, verify=ssl.create_default_context(cafile=str(cert))):
        silent = [socket.create_connection(address(client), timeout=PATIENCE) for _ in range(8)]
        try:
            assert closed_by_server(silent[0])
            assert review(client, configmap_review())["allowed"] is True
        finally:
            for sock in silent:
                sock.close()


# --- bodies gate cannot read ------------------------------------------------------------------------


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    """Every record of gate's loggers. An in-process ``gate`` run of an earlier test leaves gate's
    logger writing to that test's (closed) stderr and not propagating: undone for this test."""
    gate_logger = logging.getLogger("gate")
    monkeypatch.setattr(gate_logger, "handlers", [])
    monkeypatch.setattr(gate_logger, "propagate", True)
    caplog.set_level(logging.DEBUG, logger="gate")
    return caplog


def no_traceback(logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert not [r for r in logs.records if r.exc_info and r.levelno > logging.DEBUG], logs.text
    assert "Traceback" not in "\n".join(r.getMessage() for r in logs.records)


def test_a_deep_review_is_a_400_without_a_traceback(
    logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    for client in start(make_server(POLICIES, port=0, admission="prod")):
        answer = client.post("/v1/admission", content=DEEP)
        assert answer.status_code == 400, answer.text
        assert answer.json() == {
            "code": "invalid_parameter",
            "message": "AdmissionReview: body is nested deeper than 100 levels",
        }
        # a review just over the limit, inside a valid envelope, is refused the same way
        body = configmap_review()
        body["request"]["object"]["data"] = {"deep": json.loads("[" * 100 + "]" * 100)}
        too_deep = client.post("/v1/admission", json=body)
        assert too_deep.status_code == 400 and "nested deeper than 100 levels" in too_deep.json()["message"]
        assert review(client, configmap_review())["allowed"] is True
    no_traceback(logs, capsys)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/data/x", b'{"input": ' + DEEP + b"}"),
        ("PUT", "/v1/data/x", DEEP),
        ("PATCH", "/v1/data", b'[{"op": "add", "path": "/x", "value": ' + DEEP + b"}]"),
        ("GET", "/v1/data/x?input=" + "%5B" * 5000 + "%5D" * 5000, b""),
    ],
    ids=["query-input", "put-data", "patch", "get-input"],
)
def test_deep_data_api_bodies_are_a_400_without_a_traceback(
    api: httpx.Client, method: str, path: str, body: bytes, logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = api.request(method, path, content=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "invalid_parameter"
    assert "nested deeper than 100 levels" in answer.json()["message"]
    assert api.get("/health").json() == {}
    no_traceback(logs, capsys)


def test_data_cannot_be_built_deeper_than_the_limit_a_step_at_a_time(
    api: httpx.Client, logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    ninety = json.loads("[" * 90 + "]" * 90)
    assert api.put("/v1/data/a", json=ninety).status_code == 204  # data, a, then 90 levels: 92
    ninety_nine = json.loads("[" * 99 + "]" * 99)
    deeper = api.put("/v1/data/a/0", json=ninety_nine)  # within the limit itself, 101 levels where it would sit
    assert deeper.status_code == 400 and "nested deeper than 100 levels" in deeper.json()["message"]
    long_path = api.put("/v1/data/" + "/".join(["k"] * 5000), json={})
    assert long_path.status_code == 400 and "deeper than 100 levels" in long_path.json()["message"]
    assert api.get("/v1/data/a").json() == {"result": ninety}
    no_traceback(logs, capsys)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"input": NaN}', "not JSON"),
        (b'{"input": "\\ud800"}', "lone surrogate"),
    ],
    ids=["not-utf8", "nan", "surrogate"],
)
def test_undecodable_inputs_are_a_400(api: httpx.Client, body: bytes, problem: str) -> None:
    answer = api.post("/v1/data/x", content=body)
    assert answer.status_code == 400 and problem in answer.json()["message"], answer.text


def test_the_limits_have_sane_defaults() -> None:
    from gate.serve import MAX_CONNECTIONS, REQUEST_TIMEOUT

    server: GateServer = make_server(port=0)
    try:
        assert (server.request_timeout, server.max_connections) == (REQUEST_TIMEOUT, MAX_CONNECTIONS)
        assert 1 <= REQUEST_TIMEOUT < 30  # the API server gives up on a webhook after at most 30 s
        assert MAX_CONNECTIONS >= 16
    finally:
        server.server_close()


# --- policies that would hold the server ------------------------------------------------------------
# regorus holds the GIL while it parses and evaluates: in the server's own process a runaway policy
# would freeze every thread, the webhook's included. Both run in a child with GATE_POLICY_TIMEOUT.


def test_a_policy_that_takes_for_ever_to_parse_is_refused(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_POLICY_TIMEOUT", "2")
    nested = "package slow\n\nimport rego.v1\n\nx := " + "[" * 40 + "]" * 40 + "\n"  # regorus: exponential in depth
    answer = api.put("/v1/policies/slow.rego", content=nested)
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"] == "policy slow.rego: not compiled within 2 s (GATE_POLICY_TIMEOUT)"
    assert api.get("/v1/policies").json() == {"result": []}


def test_an_evaluation_that_runs_for_ever_is_stopped(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_POLICY_TIMEOUT", "2")
    busy = "package busy\n\nimport rego.v1\n\nx if {\n\tsome i in numbers.range(1, input.n)\n\tsome j in numbers.range(1, input.n)\n\ti + j < 0\n}\n"
    assert api.put("/v1/policies/busy.rego", content=busy).status_code == 200
    assert api.post("/v1/data/busy/x", json={"input": {"n": 10}}).json() == {}
    answer = api.post("/v1/data/busy/x", json={"input": {"n": 100_000}})
    assert answer.status_code == 500, answer.text
    assert answer.json() == {"code": "internal_error", "message": "policy evaluation timed out after 2 s (GATE_POLICY_TIMEOUT)"}
    assert api.get("/health").json() == {}
