"""Running the reconciler continuously: one cycle per interval, backing off on errors, until SIGTERM.

An error never counts as an allow: a cycle that fails applies nothing more, and the next attempt
comes after a back-off (doubling from the interval up to ``MAX_BACKOFF``), so an unreachable API
server or git host is not hammered. With leader election, only the replica holding the Lease runs
cycles; the others wait and keep trying to take it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from gate.errors import GateError

logger = logging.getLogger(__name__)

#: the longest wait between attempts after repeated failures, seconds
MAX_BACKOFF = 300.0


def backoff(interval: float, failures: int) -> float:
    """Seconds to wait after ``failures`` failed cycles in a row."""
    if failures <= 0:
        return interval
    return min(MAX_BACKOFF, max(interval, 1.0) * 2.0 ** (failures - 1))


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (what Kubernetes sends) and SIGINT end the loop after the current cycle."""
    def handler(signum: int, _frame: Any) -> None:
        logger.warning("received %s: stopping after the current cycle", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_loop(cycle: Callable[[], Any], interval: float, stop: threading.Event,
             on_report: Callable[[Any], None], on_error: Callable[[GateError], None],
             is_leader: Callable[[], bool] | None = None) -> None:
    """Run ``cycle`` every ``interval`` seconds until ``stop`` is set."""
    failures = 0  # in a row, for the back-off
    while not stop.is_set():
        if is_leader is not None:
            try:
                leading = is_leader()
            except GateError as e:
                on_error(e)
                leading = False
            if not leading:
                logger.info("not the leader; waiting %.0fs", interval)
                stop.wait(interval)
                continue
        try:
            report = cycle()
        except GateError as e:
            failures += 1
            on_error(e)
            wait = backoff(interval, failures)
            logger.warning("cycle failed (%d in a row); next attempt in %.0fs", failures, wait)
            stop.wait(wait)
            continue
        failures = 0
        on_report(report)
        stop.wait(interval)
