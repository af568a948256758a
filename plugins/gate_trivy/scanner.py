"""The Trivy scanner: which Trivy format a report is in, and reading it."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from gate.models import ScanResult
from gate.scanning.interface import Scanner
from gate.scanning.report import Report
from gate_trivy import cyclonedx, json_report

# Detection looks at the first bytes only; these keys come first in what Trivy writes.
_SCHEMA_2 = re.compile(r'^\{\s*"SchemaVersion"\s*:')
_LEGACY = re.compile(r'^\[\s*(\]|\{\s*"Target"\s*:)')
_CYCLONEDX = re.compile(r'"bomFormat"\s*:\s*"CycloneDX"')
_SARIF = re.compile(r'"\$schema"\s*:\s*"[^"]*sarif|"runs"\s*:\s*\[')
_TRIVY_SARIF = re.compile(r'"name"\s*:\s*"Trivy"')


class TrivyScanner(Scanner):
    """Trivy vulnerability, misconfiguration, secret and license reports."""

    name = "trivy"
    description = "Trivy image, filesystem and config scans"
    formats = ("Trivy JSON (SchemaVersion 2)", "Trivy JSON (legacy schema 1 array)", "Trivy CycloneDX JSON")

    def detect(self, report: Report) -> str | None:
        """Recognize Trivy JSON, the legacy array, CycloneDX, and (to refuse it) Trivy SARIF."""
        head = report.head_text().lstrip()
        if _SCHEMA_2.match(head):
            return "json"
        if _LEGACY.match(head):
            return "json-legacy"
        if head.startswith("{") and _CYCLONEDX.search(head):
            return "cyclonedx"
        if head.startswith("{") and _SARIF.search(head) and _TRIVY_SARIF.search(head):
            return "sarif"
        return None

    def scan(self, report: Report, fmt: str) -> ScanResult:
        """Read a Trivy report in format ``fmt``."""
        if fmt == "sarif":
            raise report.error(
                "Trivy SARIF is not read (it drops package and fix details): "
                "produce JSON with `trivy image --format json` instead"
            )
        identity = json_report.ImageIdentity()
        if fmt == "cyclonedx":
            findings, metrics, version = cyclonedx.read(report)
        else:
            findings, metrics, version, identity = json_report.read(report, legacy=fmt == "json-legacy")
        pairs = Counter((f.kind.value, f.severity.value) for f in findings)
        counts: dict[str, dict[str, int]] = {}
        for (kind, sev), n in pairs.items():
            counts.setdefault(kind, {})[sev] = n
        metrics["counts"] = counts
        notes: tuple[str, ...] = ()
        if fmt != "cyclonedx" and metrics.get("results") == 0:
            notes = ("report has no Results: Trivy scanned nothing here (were all files skipped?)",)
        return ScanResult(
            scanner=self.name,
            scanner_version=version,
            format=fmt,
            report=str(report.path),
            report_sha256=report.sha256,
            findings=findings,
            metrics=metrics,
            notes=notes,
            platform=identity.platform,
            image_digests=identity.digests,
        )

    def merge_metrics(self, metrics: list[dict[str, Any]]) -> dict[str, Any]:
        """Several Trivy reports (image + config scan, say) add up."""
        merged: dict[str, Any] = {"counts": {}, "artifacts": []}
        for item in metrics:
            for kind, by_severity in item.get("counts", {}).items():
                target = merged["counts"].setdefault(kind, {})
                for sev, n in by_severity.items():
                    target[sev] = target.get(sev, 0) + n
            merged["artifacts"].extend(item.get("artifacts", []))
            for key in ("results", "components"):
                if key in item:
                    merged[key] = merged.get(key, 0) + item[key]
        return merged
