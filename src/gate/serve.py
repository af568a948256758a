"""``gate serve``: the part of OPA's REST API that clients use, answered by the embedded engine.

It speaks enough of OPA's Data and Policy APIs (``/health``, ``/v1/data``, ``/v1/policies``) for
``opa-python-client`` — and so ``gate evaluate --engine opa`` — to push policies and data and to
query decisions, without an OPA binary. It is what the OPA-engine tests run against, since OPA
cannot be installed on these machines; it also lets a team try the server mode before running OPA.

Each request that evaluates builds a fresh regorus engine from the current policies and data:
regorus' Python engine is "unsendable" (it panics when used from a thread other than the one that
created it), so one compiled engine cannot be shared by the request threads. Building costs about
16 ms for 35 kB of Rego on these machines, small beside evaluating any real input. Building and
evaluating (and the compile check of an upload) run in a forked child within GATE_POLICY_TIMEOUT:
regorus holds the GIL, and parses some bracket nestings in exponential time, so in this process
one runaway request would freeze every thread, the webhook's too.

With ``admission=ENV`` (``gate serve --admission --env ENV``) it also answers Kubernetes
AdmissionReviews at ``POST /v1/admission`` (alias ``/validate``) with the admission policy of the
same bundle and the decision log (gate.admission_webhook), and with ``tls_cert``/``tls_key`` it
speaks HTTPS, as the API server requires of webhooks. The admission endpoints, like ``/health``,
need no bearer token: the API server sends none unless configured to.

Hostile clients: every request must arrive whole within ``REQUEST_TIMEOUT`` (TLS handshake
included), at most ``MAX_CONNECTIONS`` are served at once and, at that limit, the connection that has
waited longest for its request makes room for a new one (``GateServer``), so silent or dribbling
sockets cannot hold the threads. Every JSON body goes through ``gate.jsonbody``: too deep, not UTF-8
or not JSON is a 400 with the reason, never a traceback.

Differences from OPA worth knowing: no bundles, decision logs, ``/v1/query`` or ``/v1/compile``;
policy listings carry no ``ast``; a policy is checked on upload by compiling it and evaluating its
package once without input (regorus resolves functions lazily), not by OPA's type checker.
"""

from __future__ import annotations

import contextlib
import copy
import hmac
import io
import json
import logging
import math
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from gate import jsonbody
from gate.errors import PolicyError, UsageError
from gate.policy.embedded import RegorusEngine, new_regorus_engine, policy_timeout, regorus_message, run_with_deadline

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from gate.admission_webhook import AdmissionWebhook
    from gate.policy.bundle import Bundle

logger = logging.getLogger(__name__)

#: Largest request body accepted (inputs with tens of thousands of findings stay well below).
MAX_BODY = 64 * 1024 * 1024
DEFAULT_ADDR = "127.0.0.1:8181"
_UNDEFINED = object()
#: The paths answering AdmissionReviews (``/validate`` is what webhook examples usually call it).
ADMISSION_PATHS = (["v1", "admission"], ["validate"])
#: Seconds a client has to send a whole request (its TLS handshake, request line, headers and body)
#: and to start the next one on a kept-alive connection; also the limit for writing an answer. A
#: silent or dribbling client is cut off after this, so it cannot hold a thread (the API server gives
#: a webhook at most 30 s, and sends its request at once).
REQUEST_TIMEOUT = 10.0
#: Connections served at once (one thread each). At the limit a new connection takes the place of
#: the one that has waited longest for its request, so silent clients cannot starve the real ones.
MAX_CONNECTIONS = 128
_LOCATION = re.compile(r"^(?P<file>.+?):(?P<row>\d+):(?P<col>\d+): (?P<message>.*)$")


class ApiError(Exception):
    """An error answered in OPA's shape: ``{"code": ..., "message": ..., "errors"?: [...]}``."""

    def __init__(
        self, status: HTTPStatus, code: str, message: str, errors: list[dict[str, Any]] | None = None, detail: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        #: the message without OPA's generic prefix, for a one-line error outside HTTP
        self.detail = detail or message
        self.body: dict[str, Any] = {"code": code, "message": message}
        if errors:
            self.body["errors"] = errors


class PolicySet:
    """The server's policies (id → Rego text) and data document, safe to use from many threads."""

    def __init__(self, policies: dict[str, str] | None = None, data: dict[str, Any] | None = None) -> None:
        self._read = threading.Lock()  # held only to copy or swap the state
        self._write = threading.Lock()  # serializes check-then-commit of every change
        self._policies = dict(policies or {})
        self._data = data or {}
        self._data_json = json.dumps(self._data)
        if self._policies:
            _compile(self._policies, self._data_json, check=self._policies)

    def snapshot(self) -> tuple[dict[str, str], str]:
        """The policies and the data (as JSON) at this moment."""
        with self._read:
            return dict(self._policies), self._data_json

    def evaluate(self, path: Sequence[str], input: Any = _UNDEFINED) -> Any:
        """``data.<path>`` for ``input``; ``_UNDEFINED`` when the document is undefined."""
        policies, data_json = self.snapshot()
        query = "data" + "".join(f"[{s}]" if s.isdigit() else f"[{json.dumps(s)}]" for s in path)
        input_json = None if input is _UNDEFINED else json.dumps(input)

        def work() -> str:
            engine = _compile(policies, data_json)
            try:
                if input_json is not None:
                    engine.set_input_json(input_json)
                return str(engine.eval_query_as_json(query))
            except RuntimeError as e:
                raise PolicyError(regorus_message(e)) from None

        try:
            # in a child with a deadline: regorus holds the GIL, so in-process a runaway policy freezes every thread
            answer = json.loads(run_with_deadline(work, policy_timeout()))
        except PolicyError as e:
            raise ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", e.diagnostics()) from None
        results = answer.get("result") or []
        return results[0]["expressions"][0]["value"] if results else _UNDEFINED

    def policies(self) -> dict[str, str]:
        """Every policy by id."""
        return self.snapshot()[0]

    def put_policy(self, policy_id: str, text: str) -> None:
        """Add or replace a policy; one that does not compile with the others is refused."""
        with self._write:
            policies, data_json = self.snapshot()
            policies[policy_id] = text
            _check_in_time(policy_id, policies, data_json)
            with self._read:
                self._policies = policies

    def delete_policy(self, policy_id: str) -> None:
        """Remove a policy; 404 when there is none with that id."""
        with self._write, self._read:
            if policy_id not in self._policies:
                raise _not_found(f"storage_not_found_error: policy id {policy_id!r}")
            del self._policies[policy_id]

    def put_data(self, path: Sequence[str], value: Any) -> None:
        """Create or replace the document at ``path``, creating missing parents as OPA does."""
        if not path and not isinstance(value, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", "the root data document must be an object")
        self._change(lambda data: _set(data, path, value, make_parents=True))

    def delete_data(self, path: Sequence[str]) -> None:
        """Remove the document at ``path``; 404 when there is none."""
        self._change(lambda data: _remove(data, path))

    def patch_data(self, root: Sequence[str], operations: Any) -> None:
        """Apply JSON Patch ``add``/``remove``/``replace`` operations under ``root``, all or none."""
        if not isinstance(operations, list):
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", "a patch must be a list of operations")

        def apply(data: dict[str, Any]) -> dict[str, Any]:
            for op in operations:
                if not isinstance(op, dict) or op.get("op") not in ("add", "remove", "replace"):
                    raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", f"bad patch operation: {op!r}")
                pointer = [s.replace("~1", "/").replace("~0", "~") for s in str(op.get("path", "")).split("/") if s]
                path = [*root, *pointer]
                if op["op"] == "remove":
                    data = _remove(data, path)
                    continue
                if op["op"] == "replace":
                    _get(data, path)  # replace, unlike add, needs the target to exist
                data = _set(data, path, op.get("value"), make_parents=False)
            return data

        self._change(apply)

    def _change(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        with self._write:
            with self._read:
                data = copy.deepcopy(self._data)
            data = change(data)
            try:
                jsonbody.check(data, strings=False)  # the body was checked; a deep path can still nest it deeper
            except jsonbody.JSONProblem as e:
                raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", f"the data document would be {e}") from None
            data_json = json.dumps(data)
            with self._read:
                self._data, self._data_json = data, data_json


def _compile(policies: dict[str, str], data_json: str, check: Iterable[str] = ()) -> RegorusEngine:
    """A regorus engine with ``policies`` and data; the packages of ``check`` are evaluated once so
    that errors regorus finds only when evaluating (an undefined function) are reported now."""
    engine = new_regorus_engine()
    packages = {}
    for policy_id, text in policies.items():
        try:
            packages[policy_id] = engine.add_policy(policy_id, text)
        except RuntimeError as e:
            raise _compile_error(policy_id, regorus_message(e)) from None
    engine.add_data_json(data_json)
    for policy_id in check:
        try:
            engine.eval_query_as_json(packages[policy_id])
        except RuntimeError as e:
            raise _compile_error(policy_id, regorus_message(e)) from None
    return engine


def _check_in_time(policy_id: str, policies: dict[str, str], data_json: str) -> None:
    """``_compile(..., check=[policy_id])`` in a child within GATE_POLICY_TIMEOUT: regorus parses some
    nestings in exponential time, holding the GIL, so in-process one upload could freeze the server."""

    def work() -> str:
        try:
            _compile(policies, data_json, check=[policy_id])
        except ApiError as e:
            return json.dumps({"status": int(e.status), "body": e.body, "detail": e.detail})
        return "null"

    timeout = policy_timeout()
    try:
        refused = json.loads(run_with_deadline(work, timeout))
    except PolicyError as e:
        if "timed out" not in str(e):
            raise ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", e.diagnostics()) from None
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "invalid_parameter",
            f"policy {policy_id}: not compiled within {timeout:g} s (GATE_POLICY_TIMEOUT)",
        ) from None
    if refused is not None:
        body = refused["body"]
        raise ApiError(HTTPStatus(refused["status"]), body["code"], body["message"], body.get("errors"), refused["detail"])


def _compile_error(policy_id: str, message: str) -> ApiError:
    """OPA's answer to a module that does not compile, with the error's file, row and column."""
    match = _LOCATION.match(message)
    error: dict[str, Any] = {"code": "rego_compile_error", "message": match["message"] if match else message}
    if match:
        error["location"] = {"file": match["file"], "row": int(match["row"]), "col": int(match["col"])}
    else:
        error["location"] = {"file": policy_id}
    return ApiError(
        HTTPStatus.BAD_REQUEST,
        "invalid_parameter",
        f"error(s) occurred while compiling module(s): {message}",
        [error],
        detail=message,
    )


def _not_found(message: str) -> ApiError:
    return ApiError(HTTPStatus.NOT_FOUND, "resource_not_found", message)


def _key(node: Any, segment: str, path: Sequence[str]) -> Any:
    """The key of ``segment`` in ``node``: an index for arrays, as OPA's storage paths do."""
    if isinstance(node, dict):
        return segment
    if isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
        return int(segment)
    raise _not_found(f"storage_not_found_error: {'/' + '/'.join(path)}: document does not exist")


def _get(data: Any, path: Sequence[str]) -> Any:
    node = data
    for segment in path:
        key = _key(node, segment, path)
        if isinstance(node, dict) and key not in node:
            raise _not_found(f"storage_not_found_error: {'/' + '/'.join(path)}: document does not exist")
        node = node[key]
    return node


def _set(data: dict[str, Any], path: Sequence[str], value: Any, make_parents: bool) -> dict[str, Any]:
    if not path:
        if not isinstance(value, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", "the root data document must be an object")
        return value
    node: Any = data
    if make_parents:
        for segment in path[:-1]:
            if isinstance(node, dict) and segment not in node:
                node[segment] = {}
            node = node[_key(node, segment, path)]
    else:
        node = _get(data, path[:-1])
    if isinstance(node, list):
        last = path[-1]
        if last == "-":
            node.append(value)
            return data
        node[_key(node, last, path)] = value
    elif isinstance(node, dict):
        node[path[-1]] = value
    else:
        raise _not_found(f"storage_not_found_error: {'/' + '/'.join(path)}: parent is not a document")
    return data


def _remove(data: dict[str, Any], path: Sequence[str]) -> dict[str, Any]:
    if not path:
        return {}
    parent = _get(data, path[:-1])
    key = _key(parent, path[-1], path)
    if isinstance(parent, dict) and key not in parent:
        raise _not_found(f"storage_not_found_error: {'/' + '/'.join(path)}: document does not exist")
    del parent[key]
    return data


class GateServer(ThreadingHTTPServer):
    """The HTTP server: a ``PolicySet``, a body limit, an optional bearer token, and optionally an
    admission webhook and TLS.

    Each connection has a thread; at most ``max_connections`` are served at once, each request
    must arrive within ``request_timeout`` (``_Handler``). The server keeps, per connection, since
    when it has been waiting for its next request (None while a request is being answered): at the
    limit, the longest waiting connection is hung up to make room for the new one, and when every
    connection is being answered the new one is refused.
    """

    daemon_threads = True
    #: the listen backlog (socketserver's default is 5): connections wait there, in order, while the
    #: accepting thread hands the earlier ones to their threads
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        policy_set: PolicySet,
        max_body: int,
        token: str | None,
        *,
        admission: AdmissionWebhook | None = None,
        tls: ssl.SSLContext | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        handler: type[BaseHTTPRequestHandler] | None = None,
    ) -> None:
        """``handler``: the request handler class (default: OPA's API); ``gate serve --ui`` gives its own,
        keeping the connection limits and deadlines of this server."""
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.admission = admission  # before binding: a failed bind calls server_close
        self.tls = tls
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self._connections: dict[socket.socket, float | None] = {}
        self._connections_lock = threading.Lock()
        self._closing = False
        super().__init__(address, handler or _Handler)
        self.policy_set = policy_set
        self.max_body = max_body
        self.token = token
        from gate import __version__
        from gate.policy.embedded import EmbeddedEngine

        #: answered at ``data.system.version`` as OPA does; not a number, so it never passes for OPA's
        self.version = f"gate-serve {__version__} ({EmbeddedEngine().version()})"

    @property
    def url(self) -> str:
        """``http(s)://host:port`` as bound (the real port when asked for port 0)."""
        host, port = self.server_address[:2]
        host = str(host)
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    def get_request(self) -> tuple[socket.socket, Any]:
        """The next connection; with TLS wrapped for a handshake on its own thread (``_Handler.setup``),
        so a slow or silent client cannot hold up accepting the others."""
        connection, address = super().get_request()
        if self.tls is not None:
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on its own thread if there is room, making room when needed."""
        with self._connections_lock:
            room = self._make_room()
            if room:
                self._connections[request] = time.monotonic()  # waiting for its first request
        if not room:
            logger.warning("gate serve: all %d connections are being answered: refused %s", self.max_connections, client_address)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def _make_room(self) -> bool:
        """True when one more connection may be served, after hanging up the connection that has
        waited longest for its request if the limit is reached; False when all are being answered.
        Called with the connections lock held."""
        if len(self._connections) < self.max_connections:
            return True
        waiting = {connection: since for connection, since in self._connections.items() if since is not None}
        if not waiting:
            return False
        oldest = min(waiting, key=waiting.__getitem__)
        del self._connections[oldest]
        _hang_up(oldest)  # its thread sees the end of the stream and ends
        logger.debug("gate serve: %d connections: hung up the one waiting longest for its request", self.max_connections)
        return True

    def waiting(self, connection: socket.socket) -> bool:
        """Note that ``connection`` waits for its next request; False when the server is closing."""
        with self._connections_lock:
            if self._closing or connection not in self._connections:
                return False
            self._connections[connection] = time.monotonic()
            return True

    def answering(self, connection: socket.socket) -> None:
        """Note that ``connection``'s request has arrived: it is not hung up to make room."""
        with self._connections_lock:
            if connection in self._connections:
                self._connections[connection] = None

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed outside a request (a TLS handshake, a reset): one line, no traceback."""
        error = sys.exc_info()[1]
        logger.debug("gate serve: connection from %s failed: %s", client_address, error)

    def server_close(self) -> None:
        """Stop listening, hang up the connections waiting for a request, let the answers being
        written finish, then close the admission webhook's store."""
        with self._connections_lock:
            self._closing = True
            for connection, since in list(self._connections.items()):
                if since is not None:
                    _hang_up(connection)
        super().server_close()
        if self.admission is not None:
            self.admission.close()


def _hang_up(connection: socket.socket) -> None:
    """End both directions of ``connection``, waking a thread blocked reading it. The plain socket's
    shutdown: ``SSLSocket.shutdown`` would drop its TLS state under the thread still using it."""
    with contextlib.suppress(OSError):  # already closed by the client
        socket.socket.shutdown(connection, socket.SHUT_RDWR)


class _DeadlineReader(io.RawIOBase):
    """A connection's bytes, every read bounded by one deadline for the whole request (``deadline``,
    a ``time.monotonic()`` value): a per-read timeout alone lets a client send a byte at a time for ever."""

    def __init__(self, connection: socket.socket) -> None:
        super().__init__()
        self._connection = connection
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self._connection.settimeout(remaining)
        return self._connection.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    """Routes OPA's REST paths to the ``PolicySet``; every answer is JSON with a Content-Length."""

    protocol_version = "HTTP/1.1"  # keep-alive: opa-python-client reuses one session
    disable_nagle_algorithm = True  # headers and body go out in two writes: don't wait 40 ms between them
    server: GateServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            # with a timeout CPython bounds the whole handshake, not each read of it
            self.request.settimeout(self.server.request_timeout)
            self.request.do_handshake()
        super().setup()
        self._reader = _DeadlineReader(self.request)
        self.rfile.close()  # the plain file socketserver made: every read goes through the deadline instead
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        """Wait at most ``request_timeout`` for the whole next request."""
        if not self.server.waiting(self.request):
            self.close_connection = True  # hung up to make room, or the server is closing
            return
        self._reader.deadline = time.monotonic() + self.server.request_timeout
        super().handle_one_request()

    def send_response(self, code: int, message: str | None = None) -> None:
        # every answer, OPA's or http.server's own (400, 408, 431), gets the full time to be written
        self.connection.settimeout(self.server.request_timeout)
        super().send_response(code, message)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        # request lines only (never bodies or headers), and at debug: gate's logger, not stderr
        logger.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self, method: str) -> None:
        try:
            status, body = self._route(method)
        except ApiError as e:
            status, body = e.status, e.body
        except Exception as e:  # a bug must not kill the connection thread silently
            first_line = next(iter(str(e).splitlines()), "")
            logger.error("gate serve: %s %s failed: %s: %s", method, urlsplit(self.path).path, type(e).__name__, first_line)
            logger.debug("gate serve: %s %s failed", method, self.path, exc_info=e)
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"code": "internal_error", "message": "internal error"}
        self._send(status, body)

    def _route(self, method: str) -> tuple[HTTPStatus, Any]:
        url = urlsplit(self.path)
        segments = [unquote(s) for s in url.path.split("/") if s]
        if segments == ["health"] and method == "GET":
            self._read_body()
            return HTTPStatus.OK, {}
        if segments in ADMISSION_PATHS and self.server.admission is not None:
            return self._admission(method, url.path)
        self._authorize()
        body = self._read_body()
        state = self.server.policy_set
        if segments == ["v1", "data", "system", "version"] and method == "GET":
            return HTTPStatus.OK, {"result": {"Version": self.server.version}}
        if segments[:2] == ["v1", "data"]:
            path = segments[2:]
            if len(path) > jsonbody.MAX_DEPTH:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST, "invalid_parameter", f"data path is deeper than {jsonbody.MAX_DEPTH} levels"
                )
            if method in ("GET", "POST"):
                query_input = parse_qs(url.query).get("input")
                value = state.evaluate(path, _input(body, query_input[-1] if query_input else None))
                return HTTPStatus.OK, {} if value is _UNDEFINED else {"result": value}
            if method == "PUT":
                state.put_data(path, _json(body, "body contains malformed data"))
                return HTTPStatus.NO_CONTENT, None
            if method == "PATCH":
                state.patch_data(path, _json(body, "body contains malformed patch"))
                return HTTPStatus.NO_CONTENT, None
            if method == "DELETE" and path:
                state.delete_data(path)
                return HTTPStatus.NO_CONTENT, None
        elif segments[:2] == ["v1", "policies"]:
            policy_id = "/".join(segments[2:])
            if not policy_id and method == "GET":
                policies = state.policies()
                return HTTPStatus.OK, {"result": [{"id": i, "raw": policies[i]} for i in sorted(policies)]}
            if policy_id and method == "GET":
                policies = state.policies()
                if policy_id not in policies:
                    raise _not_found(f"storage_not_found_error: policy id {policy_id!r}")
                return HTTPStatus.OK, {"result": {"id": policy_id, "raw": policies[policy_id]}}
            if policy_id and method == "PUT":
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", "policy is not UTF-8 text") from None
                if not text.strip():
                    raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", "empty module")
                state.put_policy(policy_id, text)
                return HTTPStatus.OK, {}
            if policy_id and method == "DELETE":
                state.delete_policy(policy_id)
                return HTTPStatus.OK, {}
        else:
            raise _not_found(f"no such endpoint: {url.path}")
        raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "invalid_parameter", f"{method} is not allowed on {url.path}")

    def _admission(self, method: str, path: str) -> tuple[HTTPStatus, Any]:
        """An AdmissionReview in, an AdmissionReview out; 400 only when there is nothing to answer to."""
        from gate.admission_webhook import MAX_REVIEW_BODY, MalformedReview

        webhook = self.server.admission
        assert webhook is not None
        body = self._read_body(min(self.server.max_body, MAX_REVIEW_BODY))
        if method != "POST":
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "invalid_parameter", f"{method} is not allowed on {path}")
        try:
            return HTTPStatus.OK, webhook.answer(body)
        except MalformedReview as e:
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", e.diagnostics()) from None

    def _authorize(self) -> None:
        token = self.server.token
        if token is None:
            return
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            self.close_connection = True  # the unread body must not be taken for the next request
            raise ApiError(HTTPStatus.UNAUTHORIZED, "unauthorized", "missing or invalid bearer token")

    def _read_body(self, limit: int | None = None) -> bytes:
        limit = self.server.max_body if limit is None else limit
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "invalid_parameter", "send the body with a Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", "bad Content-Length") from None
        if length > limit:
            self.close_connection = True  # not reading a body that large: the connection cannot be reused
            raise ApiError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "invalid_parameter",
                f"request body of {length} bytes exceeds the limit of {limit}",
            )
        try:
            body = self.rfile.read(length) if length > 0 else b""
        except TimeoutError:
            self.close_connection = True
            raise ApiError(
                HTTPStatus.REQUEST_TIMEOUT,
                "request_timeout",
                f"request not received within {self.server.request_timeout:g} s",
            ) from None
        self.server.answering(self.request)
        return body

    def _send(self, status: HTTPStatus, body: Any) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


def _json(body: bytes | str, problem: str) -> Any:
    try:
        return jsonbody.loads(body)
    except jsonbody.JSONProblem as e:
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", f"{problem}: {e}") from None


def _input(body: bytes, query_input: str | None) -> Any:
    """The ``input`` of a data request: from ``{"input": ...}`` in the body, or ``?input=`` for GET."""
    if body.strip():
        request = _json(body, "body contains malformed input document")
        if not isinstance(request, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", 'the body must be an object {"input": ...}')
        return request.get("input", _UNDEFINED)
    if query_input is not None:
        return _json(query_input, "parameter contains malformed input document")
    return _UNDEFINED


def parse_addr(addr: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8181`` for IPv6) as for ``--addr``; the host is required."""
    host, sep, port = addr.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(
            f"--addr {addr!r}: use HOST:PORT, e.g. {DEFAULT_ADDR} (0.0.0.0:8181 listens on every interface)"
        )
    return host, int(port)


def load_policy_set(policy: str | Path | Sequence[str] | None, data_files: Sequence[str | Path] = ()) -> PolicySet:
    """The (layered, gate.policy.sources) bundle's policies (tests excluded, ids = paths in the bundle)
    and its data merged with ``data_files``, as ``opa run -s DIR`` would load them; ``None``: nothing
    (clients upload). A policy that does not compile is a ``PolicyError`` naming it."""
    from gate.policy.sources import as_specs, load_layers

    return _policy_set(load_layers(as_specs(policy)) if policy is not None else None, data_files)


def _policy_set(bundle: Bundle | None, data_files: Sequence[str | Path]) -> PolicySet:
    from gate.policy.bundle import load_data_file, merge_data

    policies: dict[str, str] = {}
    data: dict[str, Any] = {}
    name = "(none)"
    if bundle is not None:
        policies, data, name = bundle.policies(), bundle.data, bundle.name
    for path in data_files:
        data = merge_data(data, load_data_file(path))
    try:
        return PolicySet(policies, data)
    except ApiError as e:
        raise PolicyError(f"policy bundle {name}: policy does not compile: {e.detail}") from None


def tls_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """A server context with this certificate (chain) and key: TLS 1.2 or newer, Python's defaults."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as e:
        problem = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UsageError(f"--tls-cert {cert_file} / --tls-key {key_file}: cannot load: {problem}") from None
    return context


def make_server(
    policy: str | Path | Sequence[str] | None = None,
    data_files: Sequence[str | Path] = (),
    host: str = "127.0.0.1",
    port: int = 8181,
    *,
    max_body: int = MAX_BODY,
    token: str | None = None,
    admission: str | None = None,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    admission_options: dict[str, Any] | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> GateServer:
    """A bound, not yet serving server (port 0 picks a free port: see ``server.url``).

    ``policy``: the ``--policy`` layers (gate.policy.sources), or None: the Data API starts empty (clients
    upload) and admission judges with the shipped library.
    ``admission=ENV`` also answers AdmissionReviews for that environment with the policy's
    admission rules and the decision log (GATE_DECISION_STORE); ``admission_options`` go to the
    ``AdmissionWebhook`` (``store_url``, ``checker_options``). ``tls_cert`` and ``tls_key`` (both
    or neither) serve HTTPS. ``request_timeout`` and ``max_connections`` bound what each client may
    hold (``GateServer``).
    """
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
    from gate.policy.sources import SHIPPED, as_specs, load_layers

    if admission is not None and policy is None:
        policy = [SHIPPED]  # the webhook judges with the shipped library unless told otherwise
    tls = tls_context(tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
    bundle = load_layers(as_specs(policy)) if policy is not None else None
    policy_set = _policy_set(bundle, data_files)
    webhook = None
    if admission is not None and bundle is not None:
        from gate.admission_webhook import AdmissionWebhook

        # the layers as loaded (an OCI tag pinned to the digest just pulled): both judge with the same bundle
        pinned = [layer.source for layer in bundle.layers]
        webhook = AdmissionWebhook(pinned, admission, data_files=data_files, **(admission_options or {}))
    try:
        return GateServer(
            (host, port),
            policy_set,
            max_body,
            token,
            admission=webhook,
            tls=tls,
            request_timeout=request_timeout,
            max_connections=max_connections,
        )
    except OSError as e:
        if webhook is not None:
            webhook.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def serve(
    policy: str | Path | Sequence[str] | None,
    data_files: Sequence[str | Path] = (),
    host: str = "127.0.0.1",
    port: int = 8181,
    ready_callback: Callable[[GateServer], None] | None = None,
    *,
    token: str | None = None,
    admission: str | None = None,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    admission_options: dict[str, Any] | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C returns normally) or ``server.shutdown()``.

    ``ready_callback(server)`` runs once the socket listens: print ``server.url`` from it.
    ``admission``, ``tls_cert``, ``tls_key`` and ``admission_options`` are as for ``make_server``.
    """
    server = make_server(
        policy, data_files, host, port, token=token, admission=admission, tls_cert=tls_cert, tls_key=tls_key,
        admission_options=admission_options,
    )
    try:
        if ready_callback is not None:
            ready_callback(server)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
