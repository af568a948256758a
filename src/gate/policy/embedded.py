"""The embedded engine: regorus (PyPI ``gordon-to-regorus``) evaluating Rego in-process."""

from __future__ import annotations

import functools
import json
import os
import select
import signal
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
    if not hasattr(os, "fork"):
        return work()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: evaluate, send "ok\n<json>" or "err\n<message>", exit without cleanup
        os.close(read_end)
        try:
            payload = b"ok\n" + work().encode()
        except PolicyError as e:
            payload = b"err\n" + str(e).encode()
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which fails closed
            payload = b"err\n" + f"policy evaluation failed: {type(e).__name__}: {e}".encode()
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_end)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                os.kill(pid, signal.SIGKILL)
                raise PolicyError(f"policy evaluation timed out after {timeout:g} s (GATE_POLICY_TIMEOUT)")
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    status, _, body = b"".join(chunks).partition(b"\n")
    if status != b"ok":
        raise PolicyError(body.decode(errors="replace") or "policy evaluation failed: the evaluator died")
    return body.decode()


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
            try:
                self._engine.add_policy(str(bundle.root / rel), text)
            except RuntimeError as e:
                raise PolicyError(f"policy does not compile: {regorus_message(e)}") from None
        from gate.policy.builtins import unsupported_calls

        problems = unsupported_calls(self._engine.get_ast_as_json(), engine_builtins())
        if problems:
            raise PolicyError(f"policy does not compile: {problems[0].message()}")

    def evaluate(self, path: str, input: dict[str, Any]) -> Any:
        """Evaluate ``data.<path>`` on ``input``, within the time limit."""
        return self.evaluate_many(path, [input])[0]

    def evaluate_many(self, path: str, inputs: Sequence[dict[str, Any]]) -> list[Any]:
        """``data.<path>`` for each of ``inputs``, in one forked run within the time limit: the fork
        costs more than judging one input, and hundreds of objects are judged at a time."""
        if not inputs:
            return []
        encoded = [msgspec.json.encode(i).decode() for i in inputs]
        engine = self._engine

        def work() -> str:
            answers = []
            for text in encoded:
                try:
                    engine.set_input_json(text)
                except RuntimeError as e:
                    raise PolicyError(f"policy input rejected: {regorus_message(e)}") from None
                try:
                    answers.append(str(engine.eval_query_as_json(f"data.{path}")))
                except RuntimeError as e:
                    raise PolicyError(f"policy evaluation failed: {regorus_message(e)}") from None
            return "[" + ",".join(answers) + "]"

        documents = []
        for answer in json.loads(run_with_deadline(work, self._timeout)):
            results = answer.get("result") or []
            documents.append(results[0]["expressions"][0]["value"] if results else None)
        return documents

    @property
    def raw(self) -> RegorusEngine:
        """The regorus engine, for the Rego test runner (coverage, queries)."""
        return self._engine
