"""A local webhook receiver for the notification tests: a real HTTP server on 127.0.0.1 in a thread.

It is a stand-in for a CloudEvents sink or a Slack incoming webhook: it records every POST (path,
headers, JSON body) and answers from a script (``answers``: status codes, then 200 for the rest), or
holds the request without answering (``hang``) until the test ends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """The stand-in's state; ``url`` is its base URL."""

    answers: list[int] = field(default_factory=list)
    retry_after: str | None = None
    hang: bool = False
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def bodies(self, path: str | None = None) -> list[Any]:
        return [r.body for r in self.received if path is None or r.path == path]


def start_receiver(**options: Any) -> Receiver:
    receiver = Receiver(**options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server spelling
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)))
            if receiver.hang:
                receiver.released.wait(30)  # never answers while the test runs
                return
            status = receiver.answers.pop(0) if receiver.answers else 200
            self.send_response(status)
            if status != 200 and receiver.retry_after is not None:
                self.send_header("Retry-After", receiver.retry_after)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: the tests assert on what was received, not on the server's log lines."""

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.server.daemon_threads = True
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver


def stop_receiver(receiver: Receiver) -> None:
    receiver.released.set()
    if receiver.server is not None:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver for one test (import this fixture into the test module)."""
    found = start_receiver()
    try:
        yield found
    finally:
        stop_receiver(found)
