"""The embedded engine: regorus (PyPI ``gordon-to-regorus``) evaluating Rego in-process."""

from __future__ import annotations

import json
import os
import select
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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


#: Seconds one evaluation may take (GATE_POLICY_TIMEOUT overrides).
DEFAULT_TIMEOUT = 60.0


def policy_timeout() -> float:
    """The evaluation time limit from GATE_POLICY_TIMEOUT, in seconds."""
    raw = os.environ.get("GATE_POLICY_TIMEOUT", str(DEFAULT_TIMEOUT))
    try:
        value = float(raw)
    except ValueError:
        raise PolicyError(f"GATE_POLICY_TIMEOUT={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise PolicyError("GATE_POLICY_TIMEOUT must be more than 0 seconds")
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


class EmbeddedEngine:
    """regorus, in this process: no server, nothing to configure."""

    name = "embedded"

    def __init__(self, timeout: float | None = None) -> None:
        import regorus

        self._engine = regorus.Engine()
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
        """Compile ``sources``; an error names the file and line."""
        for rel, text in sources.items():
            try:
                self._engine.add_policy(str(bundle.root / rel), text)
            except RuntimeError as e:
                raise PolicyError(f"policy does not compile: {regorus_message(e)}") from None

    def evaluate(self, path: str, input: dict[str, Any]) -> Any:
        """Evaluate ``data.<path>`` on ``input``, within the time limit."""
        try:
            self._engine.set_input_json(msgspec.json.encode(input).decode())
        except RuntimeError as e:
            raise PolicyError(f"policy input rejected: {regorus_message(e)}") from None

        def query() -> str:
            try:
                return str(self._engine.eval_query_as_json(f"data.{path}"))
            except RuntimeError as e:
                raise PolicyError(f"policy evaluation failed: {regorus_message(e)}") from None

        answer = json.loads(run_with_deadline(query, self._timeout))
        results = answer.get("result") or []
        if not results:
            return None
        return results[0]["expressions"][0]["value"]

    @property
    def raw(self) -> Any:
        """The regorus engine, for the Rego test runner (coverage, queries)."""
        return self._engine
