"""gate's built-in coverage scanner plugin: Cobertura, JaCoCo, LCOV, coverage.py JSON, Clover, Go.

One module per format; ``totals`` turns what they read into the metrics policies see.
"""

from __future__ import annotations

from collections.abc import Callable

from gate.hookspecs import hookimpl
from gate.scanning.interface import Scanner
from gate_coverage.scanner import CoverageScanner

__all__ = ["CoverageScanner"]


@hookimpl
def gate_register_scanners(register: Callable[[Scanner], None]) -> None:
    """Register the coverage scanner."""
    register(CoverageScanner())
