"""From ``--report NAME=PATH`` arguments to the input document that policies see.

The document (schemas/input.schema.json) has ``artifact``, ``context``, ``findings``, ``metrics``
(one mapping per scanner, e.g. ``metrics.coverage.line_rate``) and ``scanners`` (which tool read
which report, with the report's sha256).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from gate.errors import GateError, UsageError
from gate.imageref import ImageRef
from gate.models import ScanResult
from gate.registry.manifests import ManifestInfo
from gate.scanning.platforms import bind_platform
from gate.scanning.registry import ScannerInfo, ScannerRegistry
from gate.scanning.report import Report
from gate.version import __version__

logger = logging.getLogger(__name__)

AUTO = "auto"
INPUT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ReportSpec:
    """One ``--report NAME=PATH``: a scanner name (or ``auto``) and a file."""

    scanner: str
    path: str

    @classmethod
    def parse(cls, text: str) -> ReportSpec:
        """Parse ``NAME=PATH``."""
        name, sep, path = text.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--report {text!r}: expected NAME=PATH, e.g. trivy=trivy.json or auto=coverage.xml")
        return cls(name.strip(), path)


def choose_scanner(registry: ScannerRegistry, spec: ReportSpec, report: Report) -> tuple[ScannerInfo, str]:
    """The scanner and format for a report: the named scanner, or the one that recognizes it."""
    if spec.scanner != AUTO:
        info = registry.get(spec.scanner)
        fmt = _detect(info, report)
        if fmt is None:
            hint = _claimed_by(registry, report, exclude=info.scanner.name)
            formats = ", ".join(info.scanner.formats)
            raise report.error(
                f"not a {info.scanner.name} report (reads: {formats})" + (f"; it looks like {hint}" if hint else "")
            )
        return info, fmt
    claims = [(info, fmt) for info in registry.infos() if (fmt := _detect(info, report)) is not None]
    if len(claims) == 1:
        return claims[0]
    if not claims:
        known = "; ".join(f"{i.scanner.name}: {', '.join(i.scanner.formats)}" for i in registry.infos())
        raise report.error(f"format not recognized (readable formats — {known})")
    names = ", ".join(f"{i.scanner.name} ({fmt})" for i, fmt in claims)
    raise report.error(f"several scanners claim this report: {names}; name one instead of auto")


def _detect(info: ScannerInfo, report: Report) -> str | None:
    """``info``'s scanner's answer for ``report``. Every detector sees every ``auto`` report, hostile
    ones too: a detector that fails is an error naming the report and the plugin, never a crash."""
    try:
        return info.scanner.detect(report)
    except GateError:
        raise
    except Exception as e:  # noqa: BLE001 - a plugin's bug or limit, reported as this report's error
        raise report.error(f"the {info.scanner.name} plugin cannot tell its format: {type(e).__name__}: {e}") from None


def _claimed_by(registry: ScannerRegistry, report: Report, exclude: str) -> str | None:
    for info in registry.infos():
        if info.scanner.name != exclude and (fmt := _detect(info, report)) is not None:
            return f"a {info.scanner.name} report ({fmt}): use --report {info.scanner.name}=..."
    return None


def scan_reports(registry: ScannerRegistry, specs: list[ReportSpec]) -> list[tuple[ScannerInfo, ScanResult]]:
    """Read every report; the first one that cannot be read stops the scan with its error."""
    results = []
    for spec in specs:
        report = Report.open(spec.path)
        info, fmt = choose_scanner(registry, spec, report)
        logger.info("reading %s as %s (%s)", spec.path, info.scanner.name, fmt)
        result = info.scanner.scan(report, fmt)
        for note in result.notes:
            logger.warning("%s: %s", spec.path, note)
        results.append((info, result))
    return results


def build_input(
    results: list[tuple[ScannerInfo, ScanResult]],
    artifact: ImageRef | None,
    context: dict[str, str],
    manifest: ManifestInfo | None = None,
) -> dict[str, Any]:
    """The input document: everything the policies may look at, and nothing else. ``manifest``: the
    image's manifest (``--image-manifest``), read against ``artifact``'s digest; for an index the
    artifact gains its ``platforms``, and each scanner entry says which ``platform`` its report covers
    (gate.scanning.platforms)."""
    findings: list[Any] = []
    per_scanner: dict[str, list[dict[str, Any]]] = {}
    scanners = []
    infos: dict[str, ScannerInfo] = {}
    for info, result in results:
        findings.extend(result.findings)
        per_scanner.setdefault(result.scanner, []).append(result.metrics)
        infos[result.scanner] = info
        entry: dict[str, Any] = {
            "name": result.scanner,
            "version": result.scanner_version,
            "plugin_version": info.version,
            "format": result.format,
            "report": result.report,
            "report_sha256": result.report_sha256,
            "findings": len(result.findings),
        }
        notes = list(result.notes)
        platform, why_not = bind_platform(result, artifact.digest if artifact is not None else None, manifest)
        if platform is not None:
            entry["platform"] = platform
        if why_not is not None:
            logger.warning("%s: %s", result.report, why_not)
            notes.append(why_not)
        if notes:
            entry["notes"] = notes
        scanners.append(entry)
    metrics = {name: infos[name].scanner.merge_metrics(items) for name, items in per_scanner.items()}
    artifact_doc = msgspec.to_builtins(artifact) if artifact is not None else None
    if artifact_doc is not None and manifest is not None:
        artifact_doc.update(manifest.artifact_fields())
    return {
        "schema_version": INPUT_SCHEMA_VERSION,
        "gate_version": __version__,
        "artifact": artifact_doc,
        "context": context,
        "findings": msgspec.to_builtins(findings),
        "metrics": metrics,
        "scanners": scanners,
    }
