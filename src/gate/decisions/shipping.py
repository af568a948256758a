"""Shipping the decision log to a SIEM: ``gate decisions export --follow`` / ``--url``.

The log is read in append order in windows of sequence numbers (``after < seq <= through``), each
window's records turned into OPA decision-log events (masked) and delivered as one batch: written
to standard output as JSON lines, or POSTed to an HTTP endpoint as OPA's decision-log plugin does
(a gzip-compressed JSON array, ``Content-Encoding: gzip``). Only once a batch is delivered is the
window's last seq written to the state file, so a restart resumes after the last delivered batch:
nothing is skipped, and nothing delivered is sent again — except a batch whose delivery was not
confirmed (the connection dropped before the endpoint answered), which is resent: at-least-once,
as OPA's own uploads are; events carry ``decision_id`` for a receiver that de-duplicates.

Delivery retries with exponential backoff on connection errors and on 408, 429 and 5xx answers for
up to ``retry_for`` seconds; then, or at once on any other answer, it gives up: the command exits 2
naming the batch (its seq range) and the seq the state file holds, from which a restart resends.
A store that cannot be read while following (PostgreSQL restarting, SQLite busy) is retried without
end, with a line on stderr each time; the first open is not (a wrong URL is an error, not a wait).
SIGTERM or SIGINT stops following after the batch in hand is delivered; a second one gives up on it.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TextIO

import msgspec

from gate.decisions.export import LogMask, opa_event
from gate.decisions.interface import DecisionQuery, DecisionStore, StoreError, UndecodableRecord
from gate.errors import GateError
from gate.redact import redact, redact_url

#: the environment variable holding the Authorization header value for --url ("Bearer TOKEN", "Splunk TOKEN")
AUTHORIZATION_ENV = "GATE_EXPORT_AUTHORIZATION"
#: first wait before a retry, doubled each time up to MAX_BACKOFF (seconds)
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
#: HTTP answers worth retrying: the endpoint is overloaded or restarting, not refusing the batch
RETRYABLE_STATUS = frozenset({408, 429})


class ShippingError(GateError):
    """A batch could not be delivered; the message says from which seq a restart resends."""


class Sink(Protocol):
    """Where batches of events go."""

    def send(self, events: list[dict[str, Any]], first_seq: int, last_seq: int) -> None:
        """Deliver the batch (the records after ``first_seq - 1`` through ``last_seq``) or raise ShippingError."""
        ...

    def close(self) -> None:
        ...


class Stop:
    """What the signal handlers set: ``requested`` after the first signal (finish the batch in hand,
    then stop), ``aborted`` after the second (give up on it)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.aborted = threading.Event()

    def signal(self) -> None:
        (self.aborted if self.requested.is_set() else self.requested).set()


@contextmanager
def stop_on_signals(stop: Stop) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (instead of killing the process) while following."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.signal()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class StdoutSink:
    """JSON lines on standard output, flushed after each batch (a consumer sees whole batches)."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._encoder = msgspec.json.Encoder()

    def send(self, events: list[dict[str, Any]], first_seq: int, last_seq: int) -> None:
        try:
            self._stream.write(b"".join(self._encoder.encode(event) + b"\n" for event in events))
            self._stream.flush()
        except OSError as e:  # a closed pipe: the reader is gone, the batch was not delivered
            raise ShippingError(f"cannot write to standard output: {e.strerror or e}") from None

    def close(self) -> None:
        pass


class HttpSink:
    """POST each batch as OPA's decision-log plugin does, retrying what may succeed later."""

    def __init__(
        self, url: str, *, version: str, retry_for: float, stop: Stop, authorization: str | None = None,
        err: TextIO | None = None,
    ) -> None:
        import httpx  # only for --url: `import gate.cli` stays light

        self.url, self.shown = url, redact_url(url)
        self.retry_for, self.stop = retry_for, stop
        self._err = err or sys.stderr
        self._headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": f"gate/{version}",
        }
        if authorization:
            self._headers["Authorization"] = authorization
        self._secrets = [authorization] if authorization else []
        self._client = httpx.Client(timeout=30.0, follow_redirects=False)
        self._transport_error = httpx.TransportError

    def send(self, events: list[dict[str, Any]], first_seq: int, last_seq: int) -> None:
        body = gzip.compress(msgspec.json.encode(events))
        batch = f"batch of {len(events)} event{'s' if len(events) != 1 else ''} (seq {first_seq}-{last_seq})"
        deadline = time.monotonic() + self.retry_for
        delay = FIRST_BACKOFF
        while True:
            try:
                response = self._client.post(self.url, content=body, headers=self._headers)
            except self._transport_error as e:
                problem = redact(f"{type(e).__name__}: {e}", self._secrets) if str(e) else type(e).__name__
            else:
                if 200 <= response.status_code < 300:
                    return
                problem = f"HTTP {response.status_code}"
                if not (response.status_code >= 500 or response.status_code in RETRYABLE_STATUS):
                    raise ShippingError(f"{self.shown} refused the {batch} with {problem}; not resent")
            if self.stop.aborted.is_set():
                raise ShippingError(f"{batch} not delivered to {self.shown} ({problem}): stopped by a second signal")
            if time.monotonic() + delay > deadline:
                raise ShippingError(f"{batch} not delivered to {self.shown}: {problem}, still after {self.retry_for:g}s of retries")
            print(f"gate: {self.shown}: {problem}; retrying the {batch} in {delay:g}s", file=self._err, flush=True)
            if self.stop.aborted.wait(delay):
                raise ShippingError(f"{batch} not delivered to {self.shown} ({problem}): stopped by a second signal")
            delay = min(delay * 2, MAX_BACKOFF)

    def close(self) -> None:
        self._client.close()


class StateFile:
    """The last shipped seq, kept in a small JSON file replaced atomically after each delivered batch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> int | None:
        """The seq shipped through, or None when the file does not exist yet."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise GateError(f"--state {self.path}: cannot read: {e.strerror}") from None
        try:
            seq = json.loads(text)["seq"]
        except (ValueError, KeyError, TypeError):
            seq = None
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise GateError(f'--state {self.path}: not a gate export state file (expected {{"seq": N}})')
        return seq

    def save(self, seq: int) -> None:
        temp = self.path.with_name(f".{self.path.name}.partial")
        try:
            with open(temp, "w") as f:
                f.write(json.dumps({"seq": seq}) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.path)
        except OSError as e:
            raise ShippingError(f"--state {self.path}: cannot write: {e.strerror}; delivered through seq {seq}") from None


@dataclass
class Shipped:
    """What a run shipped: through which seq, how many events, and records left out as undecodable."""

    through: int
    events: int = 0
    left_out: list[UndecodableRecord] = field(default_factory=list)


class Shipper:
    """Reads the log in seq windows and delivers each as one batch; ``follow`` keeps polling for more."""

    def __init__(
        self,
        open_store: Callable[[], DecisionStore],
        query: DecisionQuery,
        sink: Sink,
        *,
        version: str,
        mask: LogMask,
        batch_size: int = 100,
        interval: float = 5.0,
        state: StateFile | None = None,
        stop: Stop | None = None,
        err: TextIO | None = None,
    ) -> None:
        self._open_store, self.query, self.sink = open_store, query, sink
        self.version, self.mask = version, mask
        self.batch_size, self.interval, self.state = batch_size, interval, state
        self.stop = stop or Stop()
        self._err = err or sys.stderr
        self._store: DecisionStore | None = None
        self._location = "?"
        self.shipped = Shipped(through=0)

    def start(self, since_seq: int | None, *, follow: bool) -> int:
        """Open the log (an error here is not retried) and the seq to ship after: the state file's,
        else ``since_seq``, else the newest record when following and the beginning otherwise."""
        self._store = self._open_store()
        self._location = self._store.location
        last = self._store.last_seq()
        held = self.state.load() if self.state else None
        if held is not None and since_seq is not None and held != since_seq:
            raise GateError(
                f"--state {self.state.path if self.state else ''} already holds seq {held}: drop --since-seq "
                "to resume from it, or remove the file"
            )
        position = held if held is not None else since_seq if since_seq is not None else (last if follow else 0)
        if position > last:
            raise GateError(
                f"the decision log {self._location} ends at seq {last}, before seq {position} to resume from: "
                "a state file of another log, or a log restored from an older copy"
            )
        return position

    @property
    def location(self) -> str:
        """The log's location, for messages (never with credentials)."""
        return self._location

    def run(self, position: int, *, follow: bool) -> Shipped:
        """Ship everything after ``position``; following, poll every ``interval`` until stopped."""
        self.shipped = shipped = Shipped(through=position)
        while True:
            last = self._with_store(lambda store: store.last_seq(), retry=follow)
            while shipped.through < last and not self.stop.requested.is_set():
                through = min(shipped.through + self.batch_size, last)
                events, left_out = self._with_store(lambda store: self._window(store, shipped.through, through), retry=follow)
                if events:
                    self.sink.send(events, shipped.through + 1, through)
                for record in left_out:
                    print(f"gate: error: decision log {record.location}: {record.describe()} cannot be decoded and "
                          "was left out; run `gate decisions verify`", file=self._err, flush=True)
                shipped.left_out += left_out
                shipped.through, shipped.events = through, shipped.events + len(events)
                if self.state:
                    self.state.save(through)
            if not follow or self.stop.requested.wait(self.interval):
                return shipped

    def close(self) -> None:
        self.sink.close()
        if self._store is not None:
            self._store.close()

    def _window(self, store: DecisionStore, after: int, through: int) -> tuple[list[dict[str, Any]], list[UndecodableRecord]]:
        left_out: list[UndecodableRecord] = []
        query = replace(self.query, after_seq=after, through_seq=through, oldest_first=True, limit=None)
        events = [self.mask.apply(opa_event(d, self.version)) for d in store.query(query, on_undecodable=left_out.append)]
        return events, left_out

    def _with_store(self, read: Callable[[DecisionStore], Any], *, retry: bool) -> Any:
        """``read`` on the store; with ``retry`` (following), reopening and retrying with backoff while it
        is unavailable. A stop request during the outage ends the wait: nothing is in hand, nothing is lost."""
        delay = FIRST_BACKOFF
        failing = False
        while True:
            try:
                if self._store is None:
                    self._store = self._open_store()
                result = read(self._store)
                if failing:
                    print(f"gate: decision log {self._location} readable again", file=self._err, flush=True)
                return result
            except StoreError as e:
                if not retry:
                    raise
                self._drop_store()
                print(f"gate: {e.diagnostics()}; the log is unavailable, retrying in {delay:g}s", file=self._err, flush=True)
                failing = True
            if self.stop.requested.wait(delay):
                raise _Stopped()
            delay = min(delay * 2, MAX_BACKOFF)

    def _drop_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception:  # a connection already broken cannot be closed cleanly; it is discarded either way
                pass


class _Stopped(Exception):
    """Stop requested while the store was unavailable."""


def ship(shipper: Shipper, position: int, *, follow: bool) -> Shipped:
    """``shipper.run``, ending quietly when stopped during a store outage (nothing was in hand)."""
    try:
        return shipper.run(position, follow=follow)
    except _Stopped:
        return shipper.shipped
