"""The embedded engine: regorus (PyPI ``gordon-to-regorus``) evaluating Rego in-process."""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import struct
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from gate.errors import PolicyError

if TYPE_CHECKING:
    from gate.policy.bundle import Bundle


def regorus_message(error: BaseException) -> str:
    """regorus' error without the Rust backtrace (RUST_BACKTRACE is set on CI machines)."""
    text = str(error).split("Stack backtrace:")[0]
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    location = next((line.strip().lstrip("-> ").strip() for line in lines if line.strip().startswith("-->")), None)
    message = next((line.strip() for line in reversed(lines) if line.strip().startswith("error:")), None)
    message = (message or (lines[-1] if lines else type(error).__name__)).removeprefix("error:").strip()
    return f"{location}: {message}" if location else message


class RegorusEngine(Protocol):
    """The part of ``regorus.Engine`` gate uses (regorus ships no type information)."""

    def add_policy(self, path: str, rego: str) -> str:
        """Compile a module; returns its package (``data.…``)."""
        ...

    def add_data_json(self, data: str) -> None: ...

    def clear_data(self) -> None: ...

    def set_input_json(self, input: str) -> None: ...

    def eval_query_as_json(self, query: str) -> str: ...

    def get_ast_as_json(self) -> str: ...

    def set_enable_coverage(self, enable: bool) -> None: ...

    def get_coverage_report_as_json(self) -> str: ...

    def set_gather_prints(self, enable: bool) -> None:
        """Keep what Rego ``print`` writes (``take_prints``) instead of writing it to stderr."""
        ...

    def take_prints(self) -> list[str]:
        """The ``print`` output kept since the last call, ``file:line: text`` each."""
        ...

    def clone(self) -> RegorusEngine:
        """A copy-on-write copy: what is added to it later leaves this engine as it is."""
        ...


def new_regorus_engine() -> RegorusEngine:
    """A bare regorus engine: the one place gate imports regorus (the Rego test runner and
    ``gate serve`` compile into their own engines)."""
    try:
        import regorus
    except ImportError as e:  # pragma: no cover - a dependency of gate
        raise PolicyError(f"the embedded Rego engine is not installed: {e}") from None
    engine: RegorusEngine = regorus.Engine()
    return engine


#: Seconds one evaluation may take (GATE_POLICY_TIMEOUT overrides).
DEFAULT_TIMEOUT = 60.0
#: The largest GATE_POLICY_TIMEOUT accepted: a day (select() cannot wait for 1e300 s, nor for nan or inf).
MAX_TIMEOUT = 86400.0


def policy_timeout() -> float:
    """The evaluation time limit from GATE_POLICY_TIMEOUT, in seconds (more than 0, at most a day)."""
    raw = os.environ.get("GATE_POLICY_TIMEOUT", str(DEFAULT_TIMEOUT))
    try:
        value = float(raw)
    except ValueError:
        raise PolicyError(f"GATE_POLICY_TIMEOUT={raw!r} is not a number of seconds") from None
    if not 0 < value <= MAX_TIMEOUT:  # also refuses nan
        raise PolicyError(
            f"GATE_POLICY_TIMEOUT={raw!r}: give a number of seconds more than 0 and at most {MAX_TIMEOUT:g}"
        )
    return value


def run_with_deadline(work: Callable[[], str], timeout: float) -> str:
    """Run ``work`` in a forked child and return its result, or fail after ``timeout`` seconds.

    regorus holds the GIL while it evaluates, so neither a thread nor a signal can interrupt a
    runaway policy; a child process can be killed. Fork is cheap (copy-on-write) and the
    compiled engine is inherited, so nothing is loaded twice.
    """
    [answer] = run_each_with_deadline(1, lambda _: work().encode(), timeout)
    if isinstance(answer, PolicyError):
        raise answer
    return answer.decode()


#: Children judging one batch at once: both cores of a small machine, no more (each holds a copy-on-write engine).
MAX_WORKERS = 2
_FRAME = struct.Struct("!cI")  # status (b"o" ok, b"e" error), body length


def run_each_with_deadline(
    count: int,
    work: Callable[[int], bytes],
    timeout: float,
    *,
    workers: int = 1,
    stop_on_error: bool = False,
    order: Sequence[int] | None = None,
) -> list[bytes | PolicyError]:
    """``work(i)`` for each ``i < count`` in forked children; each answer, or the ``PolicyError`` it
    failed with (``Judging``; ``stop_on_error``: see ``Judging.answers``)."""
    return Judging(count, work, timeout, workers=workers, order=order).answers(stop_on_error=stop_on_error)


class Judging:
    """``work(i)`` for each ``i < count``, started in forked children at once; ``answers`` collects them.

    The time limit holds per item, not per batch: a child streams one answer per item and its
    deadline restarts on each. A child that overruns it is killed, that item fails with a timeout,
    and a new child carries on with the items after it, so one runaway input costs one timeout and
    nothing else. ``workers`` children (at most ``MAX_WORKERS``) take every ``workers``-th item of
    ``order`` (default: ascending), on as many cores. The caller may prepare its next batch while
    the children work (replay): deadlines count from when it starts collecting, never earlier.
    """

    def __init__(
        self, count: int, work: Callable[[int], bytes], timeout: float, *, workers: int = 1, order: Sequence[int] | None = None
    ) -> None:
        self._count = count
        self._timeout = timeout
        self._children: list[_Child] = []
        self._in_process: list[bytes | PolicyError] | None = None
        if not hasattr(os, "fork"):  # pragma: no cover - no way to kill a runaway evaluation: judge in process
            self._in_process = [_answer(work, i)[1] for i in range(count)]
            return
        workers = max(1, min(workers, MAX_WORKERS, count))
        sequence = list(order) if order is not None else list(range(count))
        try:
            for first in range(workers if count else 0):
                self._children.append(_Child(work, sequence[first::workers], timeout))
        except BaseException:
            self.stop()
            raise

    def answers(self, *, stop_on_error: bool = False) -> list[bytes | PolicyError]:
        """Each item's answer, in item order. ``stop_on_error``: return at the first failure (the caller
        fails the whole call anyway); the items not judged yet are then missing from the list."""
        if self._in_process is not None:  # pragma: no cover - see __init__
            return self._in_process
        answers: list[bytes | PolicyError | None] = [None] * self._count
        children = self._children
        for child in children:
            child.deadline = time.monotonic() + self._timeout
        try:
            while any(c.pending for c in children):
                running = [c for c in children if c.pending]
                wait = max(0.0, min(c.deadline for c in running) - time.monotonic())
                readable = set(select.select([c.fd for c in running], [], [], wait)[0])
                for child in running:
                    if child.fd in readable:
                        done = child.read()
                    elif time.monotonic() >= child.deadline:
                        done = child.overran()
                    else:
                        continue
                    for index, answer in done:
                        answers[index] = answer
                        if stop_on_error and isinstance(answer, PolicyError):
                            return [a for a in answers if a is not None]
        finally:
            self.stop()
        return [a if a is not None else PolicyError("policy evaluation failed: no answer") for a in answers]

    def stop(self) -> None:
        """Kill and release every child still running (answers not collected are lost)."""
        for child in self._children:
            child.stop()


def _answer(work: Callable[[int], bytes], index: int) -> tuple[bytes, bytes | PolicyError]:
    """``work(index)`` as a frame's status and body, and as the caller's answer."""
    try:
        body = work(index)
        return b"o", body
    except PolicyError as e:
        return b"e", e
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which fails closed
        return b"e", PolicyError(f"policy evaluation failed: {type(e).__name__}: {e}")


class _Child:
    """One forked evaluator working through ``items`` in order, streaming a frame per item."""

    def __init__(self, work: Callable[[int], bytes], items: list[int], timeout: float) -> None:
        self._work = work
        self._timeout = timeout
        self.pending: list[int] = list(reversed(items))  # next item last: pop() is O(1)
        self._buffer = bytearray()
        self.pid = -1
        self.fd = -1
        self.deadline = 0.0
        if self.pending:
            self._start()

    def _start(self) -> None:
        read_end, write_end = os.pipe()
        items = list(reversed(self.pending))
        pid = os.fork()
        if pid == 0:  # child: one frame per item, exit without cleanup
            try:
                os.close(read_end)
                with os.fdopen(write_end, "wb") as out:
                    for index in items:
                        status, answer = _answer(self._work, index)
                        body = answer if isinstance(answer, bytes) else str(answer).encode()
                        out.write(_FRAME.pack(status, len(body)) + body)
                        out.flush()  # now: the parent's deadline restarts on each answer
            finally:
                os._exit(0)
        os.close(write_end)
        self.pid, self.fd = pid, read_end
        self._buffer.clear()
        self.deadline = time.monotonic() + self._timeout

    def read(self) -> list[tuple[int, bytes | PolicyError]]:
        """The answers that arrived; a child that ended before answering fails its item (and the next carries on)."""
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            self._reap()
            if not self.pending:
                return []
            return self._fail_current("policy evaluation failed: the evaluator died")
        self._buffer += chunk
        done: list[tuple[int, bytes | PolicyError]] = []
        offset = 0
        while len(self._buffer) - offset >= _FRAME.size:
            status, size = _FRAME.unpack_from(self._buffer, offset)
            end = offset + _FRAME.size + size
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[offset + _FRAME.size : end])
            answer: bytes | PolicyError = body if status == b"o" else PolicyError(body.decode(errors="replace"))
            done.append((self.pending.pop(), answer))
            offset = end
        del self._buffer[:offset]
        if done:
            self.deadline = time.monotonic() + self._timeout
        return done

    def overran(self) -> list[tuple[int, bytes | PolicyError]]:
        """The item being judged took too long: kill the child, fail the item, go on with a new child."""
        self.stop()
        return self._fail_current(f"policy evaluation timed out after {self._timeout:g} s (GATE_POLICY_TIMEOUT)")

    def _fail_current(self, message: str) -> list[tuple[int, bytes | PolicyError]]:
        failed: list[tuple[int, bytes | PolicyError]] = [(self.pending.pop(), PolicyError(message))]
        if self.pending:
            self._start()
        return failed

    def _reap(self) -> None:
        if self.fd != -1:
            os.close(self.fd)
            self.fd = -1
        if self.pid != -1:
            os.waitpid(self.pid, 0)
            self.pid = -1

    def stop(self) -> None:
        """Kill the child (if still running) and release it."""
        if self.pid != -1:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:  # pragma: no cover - already gone
                pass
        self._reap()


@functools.cache
def engine_builtins() -> frozenset[str]:
    """The builtins this regorus build has, as it lists them (``opa.runtime().builtins``)."""
    engine = new_regorus_engine()
    engine.add_policy("builtins.rego", "package gate_builtins\nlisted := opa.runtime().builtins\n")
    answer = json.loads(engine.eval_query_as_json("data.gate_builtins.listed"))
    return frozenset(answer["result"][0]["expressions"][0]["value"])


class EmbeddedEngine:
    """regorus, in this process: no server, nothing to configure."""

    name = "embedded"

    def __init__(self, timeout: float | None = None) -> None:
        self._engine = new_regorus_engine()
        self._timeout = policy_timeout() if timeout is None else timeout
        #: (path, text) of every module compiled, in order: what the builtins check's answer depends on
        self._compiled: list[tuple[str, str]] = []

    def version(self) -> str:
        """The installed regorus build's version."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"regorus {version('gordon-to-regorus')}"
        except PackageNotFoundError:
            return "regorus unknown"

    def load(self, bundle: Bundle, data: dict[str, Any]) -> None:
        """Compile every non-test policy of ``bundle`` and add ``data``."""
        self.add_sources(bundle, bundle.policies())
        self.set_data(data)

    def set_data(self, data: dict[str, Any]) -> None:
        """Replace ``data`` (policies stay compiled): replay judges each record with its own data."""
        try:
            self._engine.clear_data()
            self._engine.add_data_json(json.dumps(data))
        except RuntimeError as e:
            raise PolicyError(f"policy data: {regorus_message(e)}") from None

    def add_sources(self, bundle: Bundle, sources: dict[str, str]) -> None:
        """Compile ``sources``; an error names the file and line. A call to a builtin regorus lacks or
        only stubs (``http.send``) is refused here, as OPA refuses it: never a silently undefined rule."""
        for rel, text in sources.items():
            path = str(bundle.location(rel))  # a layer's file where it is, for errors
            try:
                self._engine.add_policy(path, text)
            except RuntimeError as e:
                raise PolicyError(f"policy does not compile: {regorus_message(e)}") from None
            self._compiled.append((path, text))
        from gate.policy.builtins import CHECK, unsupported_calls
        from gate.policy.cache import cache_key, keep, recall

        # The walk costs more than judging a small report; a pass is remembered for these exact
        # modules under this engine (gate.policy.cache), so an edited bundle is checked again.
        key = cache_key(CHECK, self.version(), self._compiled)
        if recall(CHECK, key) is not None:
            return
        problems = unsupported_calls(self._engine.get_ast_as_json(), engine_builtins())
        if problems:
            raise PolicyError(f"policy does not compile: {problems[0].message()}")
        keep(CHECK, key)

    def evaluate(self, path: str, input: dict[str, Any]) -> Any:
        """Evaluate ``data.<path>`` on ``input``, within the time limit."""
        return self.evaluate_many(path, [input])[0]

    def evaluate_many(self, path: str, inputs: Sequence[dict[str, Any]]) -> list[Any]:
        """``data.<path>`` for each of ``inputs``; the first failure fails the call."""
        answers = self.start_each(path, inputs).documents(stop_on_error=True)
        for answer in answers:
            if isinstance(answer, PolicyError):
                raise answer
        return answers

    def evaluate_each(
        self, path: str, inputs: Sequence[dict[str, Any]], data: Sequence[tuple[str, dict[str, Any]]] | None = None
    ) -> list[Any | PolicyError]:
        """``data.<path>`` for each of ``inputs``, or the ``PolicyError`` that input failed with: one
        input that fails or overruns the time limit costs only its own answer (replay)."""
        return self.start_each(path, inputs, data).documents()

    def start_each(
        self, path: str, inputs: Sequence[dict[str, Any]], data: Sequence[tuple[str, dict[str, Any]]] | None = None
    ) -> PendingDocuments:
        """``evaluate_each`` started in forked children (one per core, at most two), to be collected by
        ``documents()``: the caller can prepare its next batch meanwhile. A fork costs more than judging
        one input, and replay and admission judge hundreds at a time.

        ``data``: for each input, the data document to judge it with and a key naming it (equal keys,
        equal documents). The children swap their copy of the engine's data, taking the inputs by key,
        so records decided with many different ``--data`` still cost one run (this engine's own data
        stays as it is)."""
        encoded = [msgspec.json.encode(i).decode() for i in inputs]
        engine = self._engine
        query = f"data.{path}"
        keys = [key for key, _ in data] if data is not None else None
        # each document encoded once, in the parent (as set_data encodes it)
        data_json = {key: json.dumps(document) for key, document in dict(data or ()).items()}
        loaded: list[str | None] = [None]  # the data the child's engine holds (None: this engine's own)

        def work(index: int) -> bytes:
            if keys is not None and loaded[0] != keys[index]:
                loaded[0] = None  # unknown until set: a failure must not leave the old data claimed
                try:
                    engine.clear_data()
                    engine.add_data_json(data_json[keys[index]])
                except RuntimeError as e:
                    raise PolicyError(f"policy data: {regorus_message(e)}") from None
                loaded[0] = keys[index]
            try:
                engine.set_input_json(encoded[index])
            except RuntimeError as e:
                raise PolicyError(f"policy input rejected: {regorus_message(e)}") from None
            try:
                return str(engine.eval_query_as_json(query)).encode()
            except RuntimeError as e:
                raise PolicyError(f"policy evaluation failed: {regorus_message(e)}") from None

        # by data: each child loads each data document once
        order = sorted(range(len(encoded)), key=lambda i: keys[i]) if keys is not None else None
        workers = min(MAX_WORKERS, os.cpu_count() or 1)
        return PendingDocuments(Judging(len(encoded), work, self._timeout, workers=workers, order=order))

    @property
    def raw(self) -> RegorusEngine:
        """The regorus engine, for the Rego test runner (coverage, queries)."""
        return self._engine


class PendingDocuments:
    """Documents being evaluated by ``EmbeddedEngine.start_each``."""

    def __init__(self, judging: Judging) -> None:
        self._judging = judging

    def documents(self, *, stop_on_error: bool = False) -> list[Any | PolicyError]:
        """Each input's document (None when undefined), or the ``PolicyError`` it failed with, in order
        (``stop_on_error``: as ``Judging.answers``)."""
        documents: list[Any | PolicyError] = []
        for answer in self._judging.answers(stop_on_error=stop_on_error):
            if isinstance(answer, PolicyError):
                documents.append(answer)
                continue
            results = json.loads(answer).get("result") or []
            documents.append(results[0]["expressions"][0]["value"] if results else None)
        return documents

    def cancel(self) -> None:
        """Stop the evaluation (the caller gave up: a store error, an interrupt)."""
        self._judging.stop()
