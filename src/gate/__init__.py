"""gate: a policy-centric promotion gate between CI and GitOps."""

from __future__ import annotations

from typing import Any

from gate.version import __version__ as __version__


def __getattr__(name: str) -> Any:
    # Plugins write ``from gate import hookimpl``; resolved lazily so ``gate --version`` stays cheap.
    if name == "hookimpl":
        from gate.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'gate' has no attribute {name!r}")
