"""Rule metadata from ``# METADATA`` annotations (OPA's format), read from the Rego sources.

regorus has no ``rego.metadata.rule()``, so gate reads the annotation blocks itself and joins them
to results by package and ``custom.rule_id`` (the ``rule`` field results carry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from gate.errors import PolicyError

_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)
_RULE_HEAD = re.compile(r"^([A-Za-z_][\w]*)")


@dataclass(frozen=True)
class RuleMeta:
    """What one annotated rule says about itself."""

    package: str
    rule: str
    rule_id: str
    title: str | None
    description: str | None
    severity: str | None
    solution: str | None
    effective_on: str | None
    file: str
    line: int


def read_metadata(sources: dict[str, str]) -> dict[tuple[str, str], RuleMeta]:
    """Annotated rules of every source, keyed by (package, rule_id).

    Read afresh every time, never from a cache: METADATA decides what a result means (severity,
    ``effective_on``), and a cache folder restored from elsewhere (a CI cache) could turn a deny into
    a warning under an unchanged bundle."""
    import yaml

    found: dict[tuple[str, str], RuleMeta] = {}
    for file, text in sources.items():
        package_match = _PACKAGE.search(text)
        if not package_match:
            continue
        package = package_match.group(1)
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() != "# METADATA":
                i += 1
                continue
            start = i + 1
            block = []
            i += 1
            while i < len(lines) and lines[i].lstrip().startswith("#"):
                block.append(lines[i].lstrip()[1:].removeprefix(" "))
                i += 1
            head = _RULE_HEAD.match(lines[i]) if i < len(lines) else None
            if head is None or head.group(1) == "package":
                continue  # a package- or document-scoped annotation
            try:
                meta: Any = yaml.safe_load("\n".join(block)) or {}
            except yaml.YAMLError as e:
                raise PolicyError(f"{file}:{start}: METADATA is not valid YAML: {' '.join(str(e).split())}") from None
            if not isinstance(meta, dict):
                raise PolicyError(f"{file}:{start}: METADATA must be a YAML mapping")
            custom = meta.get("custom") or {}
            rule = head.group(1)
            rule_id = str(custom.get("rule_id") or f"{package.removeprefix('gate.promotion.')}.{rule}")
            effective_on = custom.get("effective_on")
            found[(package, rule_id)] = RuleMeta(
                package=package,
                rule=rule,
                rule_id=rule_id,
                title=meta.get("title"),
                description=meta.get("description"),
                severity=custom.get("severity"),
                solution=custom.get("solution"),
                effective_on=_as_text(effective_on),
                file=file,
                line=i + 1,
            )
    return found


def _as_text(value: Any) -> str | None:
    """YAML reads unquoted timestamps as datetimes; keep them as RFC 3339 text."""
    if value is None:
        return None
    if isinstance(value, date):  # a datetime is a date too
        return value.isoformat().replace("+00:00", "Z")
    return str(value)
