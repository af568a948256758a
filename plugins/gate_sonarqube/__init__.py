"""gate's built-in SonarQube scanner plugin: saved Web API responses, or a live read via report-task.txt."""

from __future__ import annotations

from collections.abc import Callable

from gate.hookspecs import hookimpl
from gate.scanning.interface import Scanner
from gate_sonarqube.scanner import SonarQubeScanner

__all__ = ["SonarQubeScanner"]


@hookimpl
def gate_register_scanners(register: Callable[[Scanner], None]) -> None:
    """Register the SonarQube scanner."""
    register(SonarQubeScanner())
