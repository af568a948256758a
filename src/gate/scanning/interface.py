"""The interface every scanner plugin implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from gate.models import ScanResult
    from gate.scanning.report import Report


class Scanner(ABC):
    """Reads the reports of one tool.

    A plugin subclasses this and hands an instance to ``register`` in its
    ``gate_register_scanners`` hook. ``detect`` answers "is this report mine, and in which of my
    formats?" from the report's first bytes; ``scan`` turns it into a ``ScanResult`` or raises
    ``ReportError`` naming the file and the problem. A scanner never returns an empty result for a
    report it could not read.
    """

    #: The plugin name used in ``--report NAME=PATH`` (e.g. ``trivy``).
    name: ClassVar[str]
    #: One line for ``gate plugins list``.
    description: ClassVar[str] = ""
    #: The formats ``scan`` reads, as shown by ``gate plugins list``.
    formats: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def detect(self, report: Report) -> str | None:
        """Return the name of the format ``report`` is in if this scanner reads it, else None.

        Only ``report.head`` (the first bytes) should be needed. A format the scanner recognizes but
        refuses (e.g. Trivy SARIF) is still claimed here, so ``scan`` can say what to produce instead.
        """

    @abstractmethod
    def scan(self, report: Report, fmt: str) -> ScanResult:
        """Read ``report`` (in format ``fmt``, as ``detect`` named it) into a ``ScanResult``."""

    def merge_metrics(self, metrics: list[dict[str, Any]]) -> dict[str, Any]:
        """Combine the metrics of several reports of this scanner in one scan.

        The default merges nested mappings and refuses two reports that set the same value,
        rather than silently keeping one. Scanners whose metrics add up (coverage) override this.
        """
        merged: dict[str, Any] = {}
        for item in metrics:
            _merge_into(merged, item, self.name)
        return merged


def _merge_into(target: dict[str, Any], source: dict[str, Any], where: str) -> None:
    from gate.errors import UsageError

    for key, value in source.items():
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _merge_into(target[key], value, f"{where}.{key}")
        elif target[key] != value:
            raise UsageError(
                f"two {where.split('.')[0]} reports both set metrics.{where}.{key}; pass only one of them"
            )
