"""The policy-engine interface: embedded regorus and an OPA server implement it alike.

An engine loads a bundle's policies and data, then evaluates the whole ``data.gate.promotion``
document for one input. Everything after that — collecting deny/warn results, waivers, metadata,
``effective_on`` — is shared code (``gate.policy.evaluate``), so both engines reach the same
decision through the same steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gate.policy.bundle import Bundle

#: The document every promotion decision is read from.
PROMOTION_ROOT = "gate.promotion"


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

    def evaluate(self, path: str, input: dict[str, Any]) -> Any:
        """The value of ``data.<path>`` for ``input``; None when undefined."""
        ...
