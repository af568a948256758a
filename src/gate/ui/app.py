"""``gate serve --ui``: the HTTP side of the auditors' web view — routes, auth, headers, static files.

Read-only by construction: the log is opened read-only (SQLite ``mode=ro``; PostgreSQL
``default_transaction_read_only``), the code path holds no store method that writes, and every
method but GET and HEAD is answered 405 — except ``POST /integrity/verify`` (the page's button) and
``POST /api/v1/integrity/verify``, which start ``gate decisions verify`` in a thread and write nothing.

Routes (HTML pages are gate.ui.pages functions of the payload the API route returns, gate.ui.api):

====================================  =================================================
``/``                                 303 to ``/decisions``
``/decisions``                        decisions_page(``/api/v1/decisions`` payload)
``/decisions/{id}``                   decision_page(``/api/v1/decisions/{id}``)
``/events``                           events_page(``/api/v1/events``)
``/waivers``                          waivers_page(``/api/v1/waivers``)
``/trends``                           trends_page(``/api/v1/stats``)
``POST /integrity/verify``            start verify, 303 back (form field ``next``: a local path)
``/static/{name}``                    gate/ui/static files (package data)
``/api/v1/...``                       JSON (gate.ui.api); ``decisions.csv``/``.json`` downloads
``/health``                           ``{}`` (no auth, like ``gate serve``)
====================================  =================================================

Auth (optional, both may be combined): a token (``--ui-token-file``, or GATE_UI_TOKEN) sent as
``Authorization: Bearer TOKEN`` by API clients, or as the password of HTTP Basic auth (any user
name) by a browser, which then prompts for it — no cookie, no script; compared in constant time. And
TLS client certificates: ``--tls-client-ca`` makes the handshake require a certificate signed by that
CA. Every answer carries a strict Content-Security-Policy (no script at all, styles only from
``/static``), ``nosniff``, ``no-referrer`` and ``frame-ancestors 'none'``; API answers and pages are
``no-store``. A POST from another site (``Sec-Fetch-Site``/``Origin``) is refused (403).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import logging
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gate.registry.hosts import is_loopback
from gate.decisions.interface import DecisionStore, StoreError
from gate.errors import UsageError
from gate.redact import redact
from gate.serve import ApiError, GateServer, PolicySet, _Handler, tls_context
from gate.ui import api, queries

logger = logging.getLogger(__name__)

DEFAULT_ADDR = "127.0.0.1:8181"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
#: the largest body read from a request (only the verify form has one)
MAX_BODY = 4096
#: stores kept open between requests (each thread takes one at a time)
POOL_SIZE = 8
_STATIC = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(css|svg|png|ico|woff2)$")
_TYPES = {"css": "text/css; charset=utf-8", "svg": "image/svg+xml", "png": "image/png", "ico": "image/x-icon",
          "woff2": "font/woff2"}
#: HTML routes → (page function, API payload)
PAGES = {"decisions": "decisions_page", "events": "events_page", "waivers": "waivers_page", "trends": "trends_page"}


class StorePool:
    """Read-only stores handed to request threads one at a time, reused between requests; a store
    that failed is closed, not reused (a lost PostgreSQL connection is reopened by the next request)."""

    def __init__(self, opener: Callable[[], DecisionStore], size: int = POOL_SIZE) -> None:
        """``opener()``: a new read-only store."""
        self._opener = opener
        self._size = size
        self._idle: list[DecisionStore] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def store(self) -> Iterator[DecisionStore]:
        """A store for this request."""
        with self._lock:
            store = self._idle.pop() if self._idle else None
        if store is None:
            store = self._opener()
        try:
            yield store
        except api.BadRequest:
            self._release(store)  # a bad parameter or an unknown decision: the store is fine
            raise
        except BaseException:
            store.close()  # a store error (a lost connection) or a bug: not reused
            raise
        self._release(store)

    def _release(self, store: DecisionStore) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(store)
                return
        store.close()

    def open(self) -> DecisionStore:
        """A store of its own for the caller, outside the pool (the caller closes it)."""
        return self._opener()

    def close(self) -> None:
        """Close every idle store."""
        with self._lock:
            idle, self._idle = self._idle, []
        for store in idle:
            store.close()


class UiApp:
    """What the handler needs: the stores, the token, the trusted keys and the last verify."""

    def __init__(self, store_url: str | None, token: str | None, trust: Any) -> None:
        """Open the log once now (a missing log or an old schema fails ``gate serve --ui`` at start)."""
        from gate.decisions.store import open_store

        def opener() -> DecisionStore:
            return open_store(store_url, create=False, read_only=True)

        self.pool = StorePool(opener)
        with self.pool.store() as store:
            self.location = store.location
        self.token = token
        self.trust = trust
        self.integrity = api.Integrity(opener, trust)

    def close(self) -> None:
        """Wait briefly for a running verify, then close the stores."""
        self.integrity.wait(5)
        self.pool.close()


class Response:
    """An answer: status, content type, body (bytes, or chunks streamed with chunked encoding), headers."""

    def __init__(self, status: int, content_type: str | None, body: bytes | Iterator[bytes] = b"",
                 headers: tuple[tuple[str, str], ...] = (), cache: str = "no-store") -> None:
        self.status, self.content_type, self.body, self.headers, self.cache = status, content_type, body, headers, cache


def json_response(status: int, payload: Any) -> Response:
    """A JSON answer."""
    return Response(status, "application/json", json.dumps(payload).encode())


def _error_json(status: HTTPStatus, message: str) -> Response:
    codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
             503: "store_unavailable"}
    return json_response(status, {"code": codes.get(status, "internal_error"), "message": message})


class UiHandler(_Handler):
    """Routes the web view; every answer carries the security headers (``end_headers``)."""

    server: UiServer

    def __getattr__(self, name: str) -> Any:
        # every method (PUT, DELETE, OPTIONS, TRACE, PROPFIND, ...) reaches _dispatch, and is 405 there
        if name.startswith("do_") and name[3:].isupper():
            return lambda: self._dispatch(name[3:])
        raise AttributeError(name)

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)
        super().end_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a bad request line, headers too long), as plain text."""
        body = f"{code} {message or HTTPStatus(code).phrase}\n".encode()
        self.close_connection = True
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        html = not url.path.startswith("/api/")
        try:
            body = self._read_body(MAX_BODY)
            response = self._ui_route(method, url.path, url.query, body)
        except ApiError as e:  # a body too large, a request that did not arrive in time
            response = _error_json(e.status, str(e.body.get("message", "")))
        except Exception as e:  # a bug must not kill the connection thread, nor print a traceback
            first = next(iter(str(e).splitlines()), "")
            logger.error("gate serve --ui: %s %s failed: %s: %s", method, url.path, type(e).__name__, redact(first))
            logger.debug("gate serve --ui: %s %s failed", method, url.path, exc_info=e)
            response = self._error(html, HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
        self._send_response(response, head=method == "HEAD")

    def _ui_route(self, method: str, path: str, query: str, body: bytes) -> Response:
        segments = [unquote(s, errors="replace") for s in path.split("/") if s]
        if path != "/" and path.endswith("/"):
            return self._error(True, HTTPStatus.NOT_FOUND, f"no such page: {path}")
        if segments == ["health"]:
            return json_response(200, {}) if method in ("GET", "HEAD") else self._not_allowed(False, "GET, HEAD")
        refused = self._rebinding()
        if refused is not None:
            return refused
        refused = self._ui_authorize()
        if refused is not None:
            return refused
        try:
            params = parse_qs(query, keep_blank_values=True, max_num_fields=64, errors="replace")
        except ValueError:
            return self._error(not path.startswith("/api/"), HTTPStatus.BAD_REQUEST, "too many query parameters")
        if segments[:2] == ["api", "v1"]:
            return self._api(method, segments[2:], params)
        if segments == ["integrity", "verify"]:
            if method != "POST":
                return self._not_allowed(True, "POST")
            refused = self._cross_site()
            if refused is not None:
                return refused
            self.server.app.integrity.start()
            return Response(303, None, headers=(("Location", _local_path(body)),))
        if method not in ("GET", "HEAD"):
            return self._not_allowed(True, "GET, HEAD")
        if not segments:
            return Response(303, None, headers=(("Location", "/decisions"),))
        if segments[0] == "static" and len(segments) == 2:
            return _static(segments[1])
        if len(segments) == 1 and segments[0] in PAGES:
            return self._page(segments[0], params)
        if len(segments) == 2 and segments[0] == "decisions":
            return self._page("decision", params, segments[1])
        return self._error(True, HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def _api(self, method: str, segments: list[str], params: dict[str, list[str]]) -> Response:
        if segments == ["integrity", "verify"]:
            if method != "POST":
                return self._not_allowed(False, "POST")
            refused = self._cross_site()
            if refused is not None:
                return refused
            self.server.app.integrity.start()
            return self._with_store(False, lambda store: json_response(202, self.server.app.integrity.status(store)))
        known = (
            segments in (["decisions"], ["decisions.csv"], ["decisions.json"], ["events"], ["stats"], ["waivers"],
                         ["integrity"])
            or (len(segments) == 2 and segments[0] == "decisions")
        )
        if not known:
            return self._error(False, HTTPStatus.NOT_FOUND, f"no such endpoint: /api/v1/{'/'.join(segments)}")
        if method not in ("GET", "HEAD"):
            return self._not_allowed(False, "GET, HEAD")
        return self._with_store(False, lambda store: self._api_get(store, segments, params))

    def _api_get(self, store: DecisionStore, segments: list[str], params: dict[str, list[str]]) -> Response:
        app = self.server.app
        name = segments[0]
        if name in ("decisions.csv", "decisions.json"):
            form = name.rsplit(".", 1)[1]
            queries.decision_request(params, paged=False)  # a bad filter is a 400, before any byte is sent
            chunks = _download(app.pool, params, form)
            kind = "text/csv; charset=utf-8" if form == "csv" else "application/json"
            disposition = ("Content-Disposition", f'attachment; filename="decisions.{form}"')
            return Response(200, kind, chunks, headers=(disposition,))
        if name == "decisions" and len(segments) == 2:
            return json_response(200, api.decision(store, segments[1], params, app.trust.keys))
        if name == "integrity":
            queries.single(params, ())
            return json_response(200, app.integrity.status(store))
        build: dict[str, Callable[[DecisionStore, dict[str, list[str]]], dict[str, Any]]] = {
            "decisions": api.decisions, "events": api.events, "stats": api.stats, "waivers": api.waivers,
        }
        return json_response(200, build[name](store, params))

    def _page(self, name: str, params: dict[str, list[str]], decision_id: str | None = None) -> Response:
        from gate.ui import pages

        app = self.server.app
        flat = {k: v[-1] for k, v in params.items()}

        def render(store: DecisionStore) -> Response:
            integrity = app.integrity.status(store)
            if decision_id is not None:
                payload = api.decision(store, decision_id, params, app.trust.keys)
                return _html(200, pages.decision_page(payload, flat, integrity=integrity))
            payload = {"decisions": api.decisions, "events": api.events, "waivers": api.waivers,
                       "trends": api.stats}[name](store, params)
            return _html(200, getattr(pages, PAGES[name])(payload, flat, integrity=integrity))

        return self._with_store(True, render)

    def _with_store(self, html: bool, work: Callable[[DecisionStore], Response]) -> Response:
        """``work(store)``, mapping a bad parameter to 400, an unknown decision to 404 and a store
        failure to 503, each with a one-line reason (credentials redacted)."""
        try:
            with self.server.app.pool.store() as store:
                return work(store)
        except api.NotFound as e:
            return self._error(html, HTTPStatus.NOT_FOUND, str(e))
        except api.BadRequest as e:
            return self._error(html, HTTPStatus.BAD_REQUEST, str(e))
        except StoreError as e:
            return self._error(html, HTTPStatus.SERVICE_UNAVAILABLE, redact(_one_line(e)))

    def _error(self, html: bool, status: HTTPStatus, message: str) -> Response:
        if not html:
            return _error_json(status, message)
        try:
            from gate.ui import pages

            with self.server.app.pool.store() as store:
                integrity = self.server.app.integrity.status(store)
            return _html(status, pages.error_page(int(status), message, integrity=integrity))
        except (ImportError, AttributeError, StoreError):
            return Response(status, "text/plain; charset=utf-8", f"{int(status)} {message}\n".encode())

    def _not_allowed(self, html: bool, allow: str) -> Response:
        response = self._error(html, HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed here: the web view is read-only")
        response.headers += (("Allow", allow),)
        return response

    def _ui_authorize(self) -> Response | None:
        """None when no token is configured or the request carries it (Bearer, or Basic's password)."""
        token = self.server.app.token
        if token is None:
            return None
        given = self.headers.get("Authorization", "")
        scheme, _, credentials = given.partition(" ")
        secret = ""
        if scheme.lower() == "bearer":
            secret = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                secret = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, ValueError):
                secret = ""
        if secret and hmac.compare_digest(secret.encode(), token.encode()):
            return None
        self.close_connection = True  # an unread body must not be taken for the next request
        response = _error_json(HTTPStatus.UNAUTHORIZED, "missing or invalid token")
        response.headers += (("WWW-Authenticate", 'Basic realm="gate", charset="UTF-8"'),)
        return response

    def _rebinding(self) -> Response | None:
        """Without auth, only a Host naming this server is answered: a web page elsewhere whose name
        is made to resolve to 127.0.0.1 (DNS rebinding) would otherwise read the log as its own origin."""
        allowed = self.server.allowed_hosts
        if allowed is None:
            return None
        host = self.headers.get("Host", "").strip().lower()
        if host in allowed:
            return None
        self.close_connection = True
        return _error_json(
            HTTPStatus.FORBIDDEN,
            "unexpected Host header: without --ui-token-file the web view answers only to the address it "
            "listens on (127.0.0.1, localhost)",
        )

    def _cross_site(self) -> Response | None:
        """403 for a POST another site's page sent (a form elsewhere aimed at this server)."""
        site = self.headers.get("Sec-Fetch-Site")
        origin = self.headers.get("Origin")
        host = self.headers.get("Host", "")
        scheme = "https" if self.server.tls is not None else "http"
        if site is not None and site not in ("same-origin", "none"):
            return _error_json(HTTPStatus.FORBIDDEN, f"a {site} POST is refused: use the button of this web view")
        # Under Referrer-Policy: no-referrer a browser sends "Origin: null" with its own page's form (Chromium
        # does): where Sec-Fetch-Site vouches for the page, Origin adds nothing; without it, null is refused.
        if site is None and origin is not None and origin != f"{scheme}://{host}":
            return _error_json(HTTPStatus.FORBIDDEN, "a POST from another origin is refused")
        return None

    def _send_response(self, response: Response, head: bool) -> None:
        body = response.body
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Cache-Control", response.cache)
        for name, value in response.headers:
            self.send_header(name, value)
        if isinstance(body, bytes):
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        if head:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in _batched(body):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (StoreError, OSError) as e:
            # a record that does not decode, the log gone: break the transfer (no final chunk), so the
            # client sees an incomplete download rather than a silently short one
            logger.warning("gate serve --ui: download broken off: %s", redact(_one_line(e)))
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")


def _download(pool: StorePool, params: dict[str, list[str]], form: str) -> Iterator[bytes]:
    """A download streamed from a store of its own, closed when the stream ends (the pool's stores
    go back to other requests while this one is still being written)."""
    store = pool.open()
    try:
        yield from api.download(store, params, form)
    finally:
        store.close()


def _batched(chunks: Iterator[bytes], size: int = 65536) -> Iterator[bytes]:
    """Small chunks gathered into writes of about ``size`` bytes."""
    buffer: list[bytes] = []
    held = 0
    for chunk in chunks:
        buffer.append(chunk)
        held += len(chunk)
        if held >= size:
            yield b"".join(buffer)
            buffer, held = [], 0
    if held:
        yield b"".join(buffer)


def _html(status: int, text: str) -> Response:
    return Response(status, "text/html; charset=utf-8", text.encode())


def _one_line(error: BaseException) -> str:
    return next(iter(str(error).splitlines()), type(error).__name__)


def _local_path(body: bytes) -> str:
    """The form's ``next`` field when it is a path of this site, else ``/decisions``."""
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return "/decisions"
    target = (fields.get("next") or ["/decisions"])[-1]
    split = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or "\\" in target or split.scheme or split.netloc:
        return "/decisions"
    if any(ord(c) < 0x21 for c in target):
        return "/decisions"
    return target


def _static(name: str) -> Response:
    """A file of gate/ui/static (package data): a known suffix, no path separators."""
    if not _STATIC.match(name):
        return Response(404, "text/plain; charset=utf-8", b"404 no such file\n")
    try:
        data = resources.files("gate.ui").joinpath("static", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return Response(404, "text/plain; charset=utf-8", b"404 no such file\n")
    return Response(200, _TYPES[name.rsplit(".", 1)[1]], data, cache="max-age=300")


class UiServer(GateServer):
    """gate serve's server (connection limits, request deadlines, TLS) with the web view's handler."""

    def __init__(self, address: tuple[str, int], app: UiApp, *, tls: ssl.SSLContext | None = None) -> None:
        """Bind ``address``; ``app``: the log, token and trusted keys."""
        self.app = app
        super().__init__(address, PolicySet(), MAX_BODY, None, tls=tls, handler=UiHandler)
        #: the Host headers answered when no auth is configured (None: any, the auth decides)
        self.allowed_hosts: frozenset[str] | None = None
        if app.token is None and (tls is None or tls.verify_mode != ssl.CERT_REQUIRED):
            self.allowed_hosts = host_names(address[0], self.server_address[1])

    def server_close(self) -> None:
        """Stop listening, then close the stores."""
        super().server_close()
        self.app.close()


def host_names(host: str, port: int) -> frozenset[str]:
    """The Host headers that name this server: its address and the loopback names, with the port
    (and without it on port 80 or 443, as browsers send them)."""
    names = {host.lower(), "127.0.0.1", "localhost", "[::1]"}
    if ":" in host and not host.startswith("["):
        names.add(f"[{host.lower()}]")
    names.discard("::1")
    with_port = {f"{name}:{port}" for name in names if not (":" in name and not name.startswith("["))}
    return frozenset(with_port | (names if port in (80, 443) else set()))


def read_token(token_file: str | None, env_token: str | None) -> str | None:
    """The token from ``--ui-token-file`` (stripped), else GATE_UI_TOKEN; an empty one is an error."""
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--ui-token-file {token_file}: cannot read: {getattr(e, 'strerror', None) or e}") from None
        if not token:
            raise UsageError(f"--ui-token-file {token_file}: is empty")
        return token
    if env_token is not None:
        if not env_token.strip():
            raise UsageError("GATE_UI_TOKEN is set but empty: set a token, or unset it")
        return env_token.strip()
    return None


def ui_tls_context(cert: str | None, key: str | None, client_ca: str | None) -> ssl.SSLContext | None:
    """HTTPS with ``cert``/``key``; with ``client_ca``, a client certificate signed by it is required."""
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
    if cert is None or key is None:
        if client_ca is not None:
            raise UsageError("--tls-client-ca needs HTTPS: give --tls-cert and --tls-key too")
        return None
    context = tls_context(cert, key)
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as e:
            raise UsageError(f"--tls-client-ca {client_ca}: cannot load: {getattr(e, 'strerror', None) or e}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def make_ui_server(
    host: str, port: int, *, store_url: str | None = None, token: str | None = None,
    tls_cert: str | None = None, tls_key: str | None = None, client_ca: str | None = None,
) -> UiServer:
    """A bound, not yet serving web view (port 0: a free port, see ``server.url``).

    A bind beyond loopback needs auth (a token or client certificates): refused otherwise, since the
    log names every image, CVE, waiver and actor.
    """
    from gate.decisions.signing import load_trust

    tls = ui_tls_context(tls_cert, tls_key, client_ca)
    if not is_loopback(host) and token is None and client_ca is None:
        raise UsageError(
            f"serve --ui on {host} would show the decision log to the network without auth: give --ui-token-file "
            "(or GATE_UI_TOKEN) or --tls-client-ca, or bind to 127.0.0.1"
        )
    trust = load_trust()
    app = UiApp(store_url, token, trust)
    try:
        return UiServer((host, port), app, tls=tls)
    except OSError as e:
        app.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
