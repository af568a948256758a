"""Trivy's CycloneDX JSON output (``trivy image --format cyclonedx --scanners vuln``).

Vulnerabilities point at components by ``bom-ref``; the component gives the package. CycloneDX
has no fixed-version field, so it is read from Trivy's recommendation ("Upgrade X to version Y").

A BOM without a ``vulnerabilities`` list is an SBOM (what ``--format cyclonedx`` writes unless
``--scanners vuln`` is given), not a scan: it is refused, never read as a clean scan. Trivy writes
``"vulnerabilities": []`` when it scanned and found nothing, which is a clean scan.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from gate.models import Finding, FindingKind, Package, Severity, fingerprint
from gate.scanning.parsing import decode_json
from gate.scanning.report import Report
from gate_trivy.severity import severity

SCANNER = "trivy"
_UPGRADE_TO = re.compile(r"to version (.+)$")


class _Struct(msgspec.Struct, frozen=True):
    # subclasses inherit frozen; they restate it because type checkers do not see it inherited
    pass


class Property(_Struct, frozen=True):
    name: str = ""
    value: str = ""


class Component(_Struct, rename={"bom_ref": "bom-ref"}, frozen=True):
    bom_ref: str | None = None
    name: str = ""
    version: str | None = None
    purl: str | None = None
    properties: list[Property] = []


class Tool(_Struct, frozen=True):
    name: str = ""
    version: str | None = None


class Tools(_Struct, frozen=True):
    components: list[Tool] = []


class Metadata(_Struct, frozen=True):
    tools: Tools | list[Tool] | None = None
    component: Component | None = None


class Source(_Struct, frozen=True):
    name: str | None = None


class Rating(_Struct, frozen=True):
    source: Source | None = None
    score: float | None = None
    severity: str | None = None


class Advisory(_Struct, frozen=True):
    url: str | None = None


class Affect(_Struct, frozen=True):
    ref: str = ""


class Vulnerability(_Struct, frozen=True):
    id: str = ""
    source: Source | None = None
    ratings: list[Rating] = []
    cwes: list[int] = []
    recommendation: str | None = None
    advisories: list[Advisory] = []
    affects: list[Affect] = []


class Bom(_Struct, rename={"bom_format": "bomFormat", "spec_version": "specVersion"}, frozen=True):
    bom_format: str
    spec_version: str | None = None
    metadata: Metadata | None = None
    components: list[Component] = []
    #: None when the key is absent (or null): an SBOM, not a vulnerability scan
    vulnerabilities: list[Vulnerability] | None = None


def read(report: Report) -> tuple[list[Finding], dict[str, Any], str]:
    """Findings, metrics and the producing tool's version from a CycloneDX BOM."""
    bom = decode_json(report, Bom)
    if bom.bom_format != "CycloneDX":
        raise report.error(f"bomFormat is {bom.bom_format!r}, not CycloneDX")
    if bom.vulnerabilities is None:
        raise report.error(
            "CycloneDX document has no vulnerabilities: it is an SBOM, not a vulnerability scan "
            "(run trivy with --scanners vuln --format cyclonedx)"
        )
    components = {c.bom_ref: c for c in bom.components if c.bom_ref}
    findings = []
    for vuln in bom.vulnerabilities:
        for affect in vuln.affects or [Affect()]:
            findings.append(_finding(vuln, components.get(affect.ref), affect.ref))
    target = bom.metadata.component.name if bom.metadata and bom.metadata.component else None
    metrics: dict[str, Any] = {"components": len(bom.components)}
    if target:
        metrics["artifacts"] = [{"name": target, "type": "cyclonedx"}]
    return findings, metrics, _tool_version(bom.metadata)


def _tool_version(metadata: Metadata | None) -> str:
    tools = metadata.tools if metadata else None
    listed = tools.components if isinstance(tools, Tools) else (tools or [])
    for tool in listed:
        if tool.name.lower() == "trivy" and tool.version:
            return tool.version
    return "unknown"


def _finding(vuln: Vulnerability, component: Component | None, ref: str) -> Finding:
    rule = vuln.id or "UNKNOWN"
    rating = _rating(vuln)
    name = component.name if component else ref
    version = component.version if component else None
    fixed = None
    if vuln.recommendation and (m := _UPGRADE_TO.search(vuln.recommendation)):
        fixed = m.group(1).strip()
    pkg_type = None
    if component:
        pkg_type = next((p.value for p in component.properties if p.name == "aquasecurity:trivy:PkgType"), None)
    fix = f"fixed in {fixed}" if fixed else "no fixed version"
    return Finding(
        id=fingerprint(SCANNER, FindingKind.VULNERABILITY, rule, name, ref, None),
        scanner=SCANNER,
        kind=FindingKind.VULNERABILITY,
        rule=rule,
        severity=severity(rating.severity) if rating else Severity.UNKNOWN,
        title=rule,
        message=f"{rule} in {name} {version or ''}".rstrip() + f" ({fix})",
        package=Package(
            name=name,
            version=version,
            fixed_version=fixed,
            purl=component.purl if component else None,
            type=pkg_type,
        ),
        cvss=max((r.score for r in vuln.ratings if r.score is not None), default=None),
        references=tuple(a.url for a in vuln.advisories[:4] if a.url),
        raw={"bom-ref": ref, "cwes": vuln.cwes} if vuln.cwes else {"bom-ref": ref},
    )


def _rating(vuln: Vulnerability) -> Rating | None:
    """The rating from the vulnerability's own source (as Trivy's JSON severity), else the first."""
    source = vuln.source.name if vuln.source else None
    rated = [r for r in vuln.ratings if r.severity]
    return next((r for r in rated if r.source and r.source.name == source), rated[0] if rated else None)
