"""``gate serve --ui`` as a client sees it: read-only by construction (405 for every other method on
every route, the store refusing writes), the security headers on every answer, token and client
certificate auth, cross-site POSTs refused, downloads streamed, failures answered with one line and
no secret — and the CLI's own checks (a bind beyond loopback without auth, flags that do not go
with --ui), through the real command."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run
from tests.ui.conftest import Seeded, Served, serve_ui

ROUTES = [
    "/", "/decisions", "/decisions/x", "/events", "/waivers", "/trends", "/static/gate.css", "/health",
    "/api/v1/decisions", "/api/v1/decisions/x", "/api/v1/decisions.csv", "/api/v1/decisions.json",
    "/api/v1/events", "/api/v1/stats", "/api/v1/waivers", "/api/v1/integrity",
]
WRITING = ["PUT", "DELETE", "PATCH", "POST", "OPTIONS", "TRACE", "PROPFIND", "MKCOL"]


def request(served: Served, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = served.server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_every_route_answers_get_and_head_with_the_security_headers(ui_server: Served) -> None:
    for path in ROUTES:
        status, headers, body = request(ui_server, "GET", path)
        assert status in (200, 303, 404), (path, status, body[:200])
        assert headers["content-security-policy"] == (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
        if path.startswith("/api/"):
            assert headers["cache-control"] == "no-store"
        head_status, head_headers, head_body = request(ui_server, "HEAD", path)
        assert head_status == status and head_body == b""
        assert head_headers["content-security-policy"] == headers["content-security-policy"]
    status, headers, _ = request(ui_server, "GET", "/")
    assert status == 303 and headers["location"] == "/decisions"


@pytest.mark.parametrize("method", WRITING)
def test_every_other_method_on_every_route_is_405(ui_server: Served, method: str) -> None:
    verify_routes = {"/integrity/verify", "/api/v1/integrity/verify"}
    for path in ROUTES + sorted(verify_routes):
        if method == "POST" and path in verify_routes:
            continue  # the verify button: it writes nothing (test below)
        status, headers, body = request(ui_server, method, path, body=b"x=1")
        if path in ("/decisions/x", "/api/v1/decisions/x") or method != "POST" or path not in verify_routes:
            assert status == 405, (method, path, status, body[:200])
            assert "allow" in headers and method not in headers["allow"]
            assert "content-security-policy" in headers


def test_the_log_is_opened_read_only(ui_log: Seeded, store_url: str) -> None:
    """The database itself refuses a write through the web view's store (SQLite mode=ro, PostgreSQL
    default_transaction_read_only): not only the code path that has none."""
    from gate.decisions.checkpoints import StoredCheckpoint
    from gate.decisions.interface import StoreError
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store

    store = open_store(store_url, create=False, read_only=True)
    try:
        with pytest.raises(StoreError, match="cannot append"):
            store.append(ui_log.decisions[0], load_signer())
        with pytest.raises(StoreError, match="cannot write"):
            store.add_checkpoint(StoredCheckpoint(1, "sha256:" + "0" * 64, 1, "2026-01-01T00:00:00Z", "k", "s", "[]", "{}"))
    finally:
        store.close()
    check = open_store(store_url, create=False)
    try:
        assert check.last_seq() == len(ui_log.decisions) and check.checkpoints() == []
    finally:
        check.close()


def test_a_read_only_open_refuses_a_missing_log_and_creates_nothing(tmp_path: Path) -> None:
    from gate.decisions.interface import MissingLog
    from gate.decisions.store import open_store

    missing = tmp_path / "none.db"
    with pytest.raises(MissingLog):
        open_store(str(missing), read_only=True)
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(MissingLog):
        open_store(str(empty), read_only=True)


def test_an_older_log_opens_read_only_and_a_newer_one_is_refused(store_url: str) -> None:
    """Schema 5 only adds indexes: a log at 4 is read (slower) until a writing command upgrades it;
    3 lacks tables the view reads, and a newer gate's schema is refused, on both stores."""
    from gate.decisions.interface import StoreError
    from gate.decisions.sqlite import READABLE_FROM, SCHEMA_VERSION
    from gate.decisions.store import open_store

    open_store(store_url).close()

    def set_version(version: int) -> None:
        if store_url.startswith("sqlite://"):
            import sqlite3

            db = sqlite3.connect(store_url.removeprefix("sqlite://"))
            db.execute(f"pragma user_version = {version}")
            db.close()
            return
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute("delete from gate_schema")
            conn.execute("insert into gate_schema (version) values (%s)", (version,))

    for version, opens in ((READABLE_FROM, True), (READABLE_FROM - 1, False), (SCHEMA_VERSION + 1, False)):
        set_version(version)
        if opens:
            open_store(store_url, create=False, read_only=True).close()
        else:
            with pytest.raises(StoreError, match="schema version"):
                open_store(store_url, create=False, read_only=True)


def test_verify_runs_on_post_and_writes_nothing(ui_server: Served, ui_log: Seeded) -> None:
    status, headers, body = request(ui_server, "POST", "/integrity/verify", body=b"next=/events?kind=promotion",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and headers["location"] == "/events?kind=promotion"
    ui_server.server.app.integrity.wait(60)
    status, _, body = request(ui_server, "GET", "/api/v1/integrity")
    report = json.loads(body)
    assert report["state"] == "done" and report["verify"]["ok"] is True
    assert report["head_seq"] == len(ui_log.decisions)
    for hostile in (b"next=https://evil.example/", b"next=//evil.example/x", b"next=/\\evil", b"next=javascript:x",
                    b"next=/x%0d%0aSet-Cookie:a", b"\xff\xfe", b""):
        status, headers, _ = request(ui_server, "POST", "/integrity/verify", body=hostile)
        assert (status, headers["location"]) == (303, "/decisions"), hostile
    status, _, body = request(ui_server, "POST", "/api/v1/integrity/verify")
    assert status == 202 and json.loads(body)["state"] in ("running", "done")
    ui_server.server.app.integrity.wait(60)


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
def test_a_cross_site_post_is_refused(ui_server: Served, headers: dict[str, str]) -> None:
    for path in ("/integrity/verify", "/api/v1/integrity/verify"):
        status, _, body = request(ui_server, "POST", path, headers=headers)
        assert status == 403, (path, headers, body)
    assert json.loads(request(ui_server, "GET", "/api/v1/integrity")[2])["state"] == "never"


def test_a_same_origin_post_is_accepted(ui_server: Served) -> None:
    host, port = ui_server.server.server_address[:2]
    status, _, _ = request(ui_server, "POST", "/integrity/verify",
                           headers={"Sec-Fetch-Site": "same-origin", "Origin": f"http://{host}:{port}"})
    assert status == 303
    ui_server.server.app.integrity.wait(60)


def test_errors_are_one_line_with_the_reason(ui_server: Served) -> None:
    status, headers, body = request(ui_server, "GET", "/api/v1/decisions?outcome=maybe")
    assert status == 400 and json.loads(body) == {"code": "bad_request", "message": "outcome 'maybe': give allow, deny, error"}
    status, _, body = request(ui_server, "GET", "/api/v1/decisions/nope")
    assert status == 404 and json.loads(body)["code"] == "not_found"
    status, _, body = request(ui_server, "GET", "/api/v1/nothing")
    assert status == 404
    status, headers, body = request(ui_server, "GET", "/decisions?outcome=maybe")
    assert status == 400 and headers["content-type"].startswith("text/html") and b"outcome &#x27;maybe&#x27;" in body or b"outcome" in body
    status, _, _ = request(ui_server, "GET", "/static/../../pyproject.toml")
    assert status == 404
    for name in ("..%2fapi.py", "gate.css%00", "app.py", "GATE.CSS", ".hidden.css"):
        assert request(ui_server, "GET", f"/static/{name}")[0] == 404, name
    status, _, body = request(ui_server, "GET", "/api/v1/decisions?" + "&".join(f"p{i}=1" for i in range(100)))
    assert status == 400


def test_downloads_stream_the_filtered_set(ui_server: Served, gate: Callable[..., Run]) -> None:
    status, headers, body = request(ui_server, "GET", "/api/v1/decisions.csv?env=prod")
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert headers["content-disposition"] == 'attachment; filename="decisions.csv"'
    assert headers["content-type"] == "text/csv; charset=utf-8"
    assert body.decode() == gate("decisions", "list", "--env", "prod", "--format", "csv").out
    status, headers, body = request(ui_server, "GET", "/api/v1/decisions.json?outcome=deny&sort=oldest")
    assert status == 200 and [d["outcome"] for d in json.loads(body)["decisions"]] == ["deny", "deny"]
    assert request(ui_server, "GET", "/api/v1/decisions.csv?limit=2")[0] == 400


def test_a_store_failure_is_503_naming_the_log_without_its_password(ui_server: Served) -> None:
    """The log becomes unreachable (here: the server's stores now point at a PostgreSQL that is not
    there, its URL holding a password): each request answers 503 with psycopg's reason in one line,
    the password nowhere."""
    from gate.decisions.store import open_store

    app = ui_server.server.app
    app.pool.close()
    app.pool._opener = lambda: open_store("postgresql://auditor:hunter2-secret@127.0.0.1:1/gate?connect_timeout=2",
                                          create=False, read_only=True)
    for path in ("/api/v1/decisions", "/decisions", "/api/v1/decisions.csv"):
        status, headers, body = request(ui_server, "GET", path)
        assert status == 503, (path, body[:300])
        assert b"hunter2" not in body and b"Traceback" not in body
        assert b"postgresql://127.0.0.1:1/gate" in body and b"cannot connect" in body
        if path.startswith("/api/"):
            assert json.loads(body)["code"] == "store_unavailable"


@pytest.fixture
def token_server(ui_log: Seeded, tmp_path: Path) -> Iterator[Served]:
    yield from serve_ui(token="s3cret-token-value")


def test_a_token_is_required_as_bearer_or_basic_password(token_server: Served) -> None:
    status, headers, body = request(token_server, "GET", "/api/v1/decisions")
    assert status == 401 and headers["www-authenticate"].startswith("Basic realm=")
    assert b"s3cret" not in body
    for auth in ("Bearer wrong", "Bearer ", "Basic !!!", "Basic " + base64.b64encode(b"user:wrong").decode(),
                 "Bearer s3cret-token-valu", "Bearer s3cret-token-value2", "Token s3cret-token-value"):
        assert request(token_server, "GET", "/decisions", headers={"Authorization": auth})[0] == 401, auth
    assert request(token_server, "GET", "/decisions", headers={"Authorization": "Bearer s3cret-token-value"})[0] == 200
    basic = "Basic " + base64.b64encode(b"auditor:s3cret-token-value").decode()
    assert request(token_server, "GET", "/api/v1/stats", headers={"Authorization": basic})[0] == 200
    assert request(token_server, "POST", "/api/v1/integrity/verify")[0] == 401
    assert request(token_server, "GET", "/health")[0] == 200  # as gate serve: health needs no token
    token_server.server.app.integrity.wait(60)


def _make_ca(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=gate test CA")
    (tmp_path / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=auditor")):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", subject)
        extra = ["-extfile", "san.cnf"] if name == "server" else []
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", *extra)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "other.key",
        "-out", "other.pem", "-days", "2", "-subj", "/CN=someone else")
    return {n: tmp_path / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key", "other.pem", "other.key")}


def test_client_certificates_signed_by_the_ca_are_required(ui_log: Seeded, tmp_path: Path) -> None:
    files = _make_ca(tmp_path)
    served = serve_ui(tls_cert=str(files["server.pem"]), tls_key=str(files["server.key"]), client_ca=str(files["ca.pem"]))
    server = next(served)
    try:
        host, port = server.server.server_address[:2]

        def get(cert: str | None) -> int:
            context = ssl.create_default_context(cafile=str(files["ca.pem"]))
            if cert:
                context.load_cert_chain(str(files[f"{cert}.pem"]), str(files[f"{cert}.key"]))
            conn = http.client.HTTPSConnection(host, port, context=context, timeout=30)
            try:
                conn.request("GET", "/api/v1/integrity")
                return conn.getresponse().status
            finally:
                conn.close()

        assert get("client") == 200
        for cert in (None, "other"):
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                get(cert)
    finally:
        next(served, None)


def test_the_command_refuses_what_does_not_go_with_ui(gate: Callable[..., Run], ui_log: Seeded, tmp_path: Path) -> None:
    run = gate("serve", "--ui", "--bind", "0.0.0.0:0")
    assert run.code == 2 and "without auth" in run.err and "Traceback" not in run.err
    run = gate("serve", "--ui", "--admission", "--env", "prod")
    assert run.code == 2 and "only the web view" in run.err
    run = gate("serve", "--ui", "--policy", "gate:library")
    assert run.code == 2 and "--policy" in run.err
    run = gate("serve", "--ui-token-file", str(tmp_path / "t"))
    assert run.code == 2 and "is for --ui" in run.err
    (tmp_path / "empty").write_text("\n")
    run = gate("serve", "--ui", "--ui-token-file", str(tmp_path / "empty"))
    assert run.code == 2 and "is empty" in run.err
    run = gate("serve", "--ui", "--ui-token-file", str(tmp_path / "missing"))
    assert run.code == 2 and "cannot read" in run.err
    run = gate("serve", "--ui", "--tls-client-ca", str(tmp_path / "ca.pem"))
    assert run.code == 2 and "needs HTTPS" in run.err


def test_the_command_refuses_a_missing_log_without_creating_it(gate: Callable[..., Run], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nothing.db"
    monkeypatch.setenv("GATE_DECISION_STORE", str(missing))
    run = gate("serve", "--ui", "--bind", "127.0.0.1:0")
    assert run.code == 2 and "no decision log" in run.err and not missing.exists()


def test_gate_serve_ui_serves_until_terminated(ui_log: Seeded, tmp_path: Path) -> None:
    """The real command in its own process: it says where it listens, answers, and exits 0 on SIGTERM."""
    token = tmp_path / "token"
    token.write_text("process-token\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "gate", "serve", "--ui", "--bind", f"127.0.0.1:{port}", "--ui-token-file", str(token)],
        stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert f"read-only on http://127.0.0.1:{port}" in line and "token required" in line
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/v1/decisions?limit=1", headers={"Authorization": "Bearer process-token"})
        response = conn.getresponse()
        assert response.status == 200 and len(json.loads(response.read())["decisions"]) == 1
        conn.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_without_auth_only_this_servers_host_is_answered(ui_server: Served) -> None:
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 sends Host: evil.example."""
    host, port = ui_server.server.server_address[:2]
    for name in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert request(ui_server, "GET", "/api/v1/integrity", headers={"Host": name})[0] == 200, name
    for name in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", "", f"127.0.0.1.evil.example:{port}"):
        status, _, body = request(ui_server, "GET", "/api/v1/decisions", headers={"Host": name})
        assert status == 403 and b"unexpected Host" in body, name


def test_with_a_token_any_host_is_answered(token_server: Served) -> None:
    status, _, _ = request(token_server, "GET", "/api/v1/integrity",
                           headers={"Host": "gate.example.com", "Authorization": "Bearer s3cret-token-value"})
    assert status == 200


def test_the_pool_reuses_a_store_after_a_bad_request_and_drops_it_after_a_store_error(ui_log: Seeded, store_url: str) -> None:
    from gate.decisions.interface import StoreError
    from gate.decisions.store import open_store
    from gate.ui import api
    from gate.ui.app import StorePool

    opened: list[Any] = []

    def opener() -> Any:
        opened.append(open_store(store_url, create=False, read_only=True))
        return opened[-1]

    pool = StorePool(opener, size=2)
    with pool.store() as first:
        pass
    with pytest.raises(api.BadRequest), pool.store() as again:
        assert again is first
        raise api.BadRequest("bad")
    with pytest.raises(StoreError), pool.store() as again:
        assert again is first
        raise StoreError("lost")
    with pool.store() as fresh:
        assert fresh is not first and len(opened) == 2
    pool.close()
