"""gate's built-in Trivy scanner plugin: Trivy JSON (schema 2 and legacy 1) and Trivy CycloneDX."""

from __future__ import annotations

from collections.abc import Callable

from gate.hookspecs import hookimpl
from gate.scanning.interface import Scanner
from gate_trivy.scanner import TrivyScanner

__all__ = ["TrivyScanner"]


@hookimpl
def gate_register_scanners(register: Callable[[Scanner], None]) -> None:
    """Register the Trivy scanner."""
    register(TrivyScanner())
