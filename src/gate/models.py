"""The normalized values every scanner produces and every policy reads.

These are frozen ``msgspec.Struct`` values rather than dataclasses: they are as immutable and
typed, but take less memory and encode straight to JSON, which matters for reports with tens of
thousands of findings. ``schemas/finding.schema.json`` describes the JSON form of ``Finding``.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

import msgspec


class Severity(StrEnum):
    """Severity on one scale; each scanner maps its tool's own scale onto it."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """Higher is worse; ``unknown`` ranks with ``high`` so an unrated issue is never ignored."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.CRITICAL: 5,
    Severity.HIGH: 4,
    Severity.UNKNOWN: 4,
    Severity.MEDIUM: 3,
    Severity.LOW: 2,
    Severity.INFO: 1,
}


class FindingKind(StrEnum):
    """What a finding is about."""

    VULNERABILITY = "vulnerability"
    CODE_ISSUE = "code_issue"
    SECRET = "secret"
    MISCONFIGURATION = "misconfiguration"
    LICENSE = "license"
    COVERAGE = "coverage"
    QUALITY_GATE = "quality_gate"


class Package(msgspec.Struct, frozen=True, omit_defaults=True):
    """The package a finding applies to."""

    name: str
    version: str | None = None
    fixed_version: str | None = None
    purl: str | None = None
    type: str | None = None
    path: str | None = None


class Location(msgspec.Struct, frozen=True, omit_defaults=True):
    """The place in a file (or a resource) a finding applies to."""

    path: str
    start_line: int | None = None
    end_line: int | None = None
    #: the image ``path`` is inside (a scan of an image); None: a file of the scanned source tree
    image: str | None = None


class Finding(msgspec.Struct, frozen=True, omit_defaults=True):
    """One normalized finding. ``id`` is a stable fingerprint: see ``fingerprint``."""

    id: str
    scanner: str
    kind: FindingKind
    rule: str
    severity: Severity
    title: str
    message: str = ""
    package: Package | None = None
    location: Location | None = None
    cvss: float | None = None
    references: tuple[str, ...] = ()
    raw: dict[str, Any] | None = None


class ScanResult(msgspec.Struct, frozen=True):
    """What one scanner made of one report."""

    scanner: str
    scanner_version: str
    format: str
    report: str
    report_sha256: str
    findings: list[Finding]
    metrics: dict[str, Any]
    notes: tuple[str, ...] = ()


def fingerprint(*parts: object) -> str:
    """A stable id from the parts that identify an issue (never from line order or scan time).

    Scanners pass what makes an issue itself: e.g. rule, package name and path for a
    vulnerability. The same issue in the next build gets the same id; any differing part
    gives a different id.
    """
    text = "\x1f".join(["" if p is None else p if isinstance(p, str) else str(p) for p in parts])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
