"""gate: a policy-centric promotion gate between CI and GitOps."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Plugins write ``from gate import hookimpl``; resolved lazily so ``gate --version`` stays cheap.
    if name == "hookimpl":
        from gate.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'gate' has no attribute {name!r}")
