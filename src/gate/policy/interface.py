"""The policy-engine interface: embedded regorus and an OPA server implement it alike.

An engine loads a bundle's policies and data, then evaluates a whole document
(``data.gate.promotion``, ``data.gate.admission``) for one input or many; its data can be replaced
without recompiling the policies. Callers use only this protocol, never an engine's internals, so
promotion, replay and admission run on either engine. Everything after that — collecting deny/warn
results, waivers, metadata, ``effective_on`` — is shared code (``gate.policy.evaluate``), so both
engines reach the same decision through the same steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gate.policy.bundle import Bundle

#: The document every promotion decision is read from.
PROMOTION_ROOT = "gate.promotion"
#: The document every admission verdict is read from.
ADMISSION_ROOT = "gate.admission"


class PolicyEngine(Protocol):
    """Evaluates Rego. Every failure is raised as ``PolicyError`` (one line, no backtrace)."""

    #: ``embedded`` or ``opa``
    name: str

    def version(self) -> str:
        """The engine's own version, recorded in every decision."""
        ...

    def load(self, bundle: Bundle, data: dict[str, Any]) -> None:
        """Compile the bundle's policies (tests excluded) and set ``data``."""
        ...

    def set_data(self, data: dict[str, Any]) -> None:
        """Replace ``data``, the policies staying loaded (replays judge each record with its own data)."""
        ...

    def evaluate(self, path: str, input: dict[str, Any]) -> Any:
        """The value of ``data.<path>`` for ``input``; None when undefined."""
        ...

    def evaluate_many(self, path: str, inputs: Sequence[dict[str, Any]]) -> list[Any]:
        """``evaluate(path, input)`` for each of ``inputs``, in order, as cheaply as the engine can
        (the embedded engine: forked children, the time limit per input; a server: one request each).
        Any failure fails the whole call."""
        ...

    def evaluate_each(self, path: str, inputs: Sequence[dict[str, Any]]) -> list[Any]:
        """As ``evaluate_many``, but an input that fails (an error, the time limit) gets the
        ``PolicyError`` as its answer and the others are still judged (replay)."""
        ...
