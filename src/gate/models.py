"""The normalized values every scanner produces and every policy reads.

These are frozen ``msgspec.Struct`` values rather than dataclasses: they are as immutable and
typed, but take less memory and encode straight to JSON, which matters for reports with tens of
thousands of findings. ``schemas/finding.schema.json`` describes the JSON form of ``Finding``.
"""

from __future__ import annotations

import hashlib
import re
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
    #: the platform of the image the report scanned (``normalize_platform``), when the report says;
    #: None for reports that are not about one image (coverage, a source-tree scan)
    platform: str | None = None
    #: the image digests the report names as what it scanned (Trivy's ``Metadata.RepoDigests``)
    image_digests: tuple[str, ...] = ()


def fingerprint(*parts: object) -> str:
    """A stable id from the parts that identify an issue (never from line order or scan time).

    Scanners pass what makes an issue itself: e.g. rule, package name and path for a
    vulnerability. The same issue in the next build gets the same id; any differing part
    gives a different id.
    """
    text = "\x1f".join(["" if p is None else p if isinstance(p, str) else str(p) for p in parts])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# containerd's normalisation (platforms.Normalize): one spelling per architecture and variant
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm",
                 "i386": "386", "i686": "386"}
_ARCH_VARIANT = {"armhf": "v7", "armel": "v6"}
_PLATFORM_WORD = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")


def normalize_platform(os: str, architecture: str, variant: str | None = None) -> str | None:
    """``os/architecture[/variant]`` spelled as containerd normalises it, or None when a part is not a
    plain word: ``linux/arm64/v8`` → ``linux/arm64``, ``linux/x86_64`` → ``linux/amd64``,
    ``linux/arm`` (variant ``7``) → ``linux/arm/v7``; ``amd64``'s ``v1`` variant is dropped."""
    os, arch = os.strip().lower(), architecture.strip().lower()
    variant = (variant or "").strip().lower() or _ARCH_VARIANT.get(arch, "")
    arch = _ARCH_ALIASES.get(arch, arch)
    if variant.isdigit():
        variant = f"v{variant}"
    if (arch, variant) in (("arm64", "v8"), ("amd64", "v1")):
        variant = ""
    if arch == "arm" and not variant:
        variant = "v7"
    parts = [os, arch] + ([variant] if variant else [])
    if not all(_PLATFORM_WORD.fullmatch(part) for part in parts):
        return None
    return "/".join(parts)
