"""Trivy's severity words on gate's scale."""

from __future__ import annotations

from gate.models import Severity

_TRIVY = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
    # CycloneDX ratings use these too
    "INFO": Severity.INFO,
    "NONE": Severity.INFO,
}


def severity(word: str | None) -> Severity:
    """Map a Trivy or CycloneDX severity (any case); anything else is ``unknown``, never dropped."""
    return _TRIVY.get((word or "").upper(), Severity.UNKNOWN)
