"""Checking waivers before policies see them: a malformed waiver is an error, never a silent no-op."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from gate import rfc3339
from gate.errors import PolicyError

REQUIRED = ("id", "rule", "reason", "approved_by", "expires")
#: the scope fields (gate.lib.waivers matches them; the most specific matching waiver applies)
SCOPE = ("image", "image_digest", "environment", "purl", "package", "path", "target", "finding_id")

# pkg:type/[namespace/]name[@version][?qualifiers][#subpath]: the purl spec's shape, no more.
_PURL = re.compile(
    r"pkg:(?P<type>[A-Za-z][A-Za-z0-9.+-]*)/(?:[^/?#@]+/)*(?P<name>[^/?#@]+)"
    r"(?:@(?P<version>[^?#]+))?(?:\?(?P<qualifiers>[^#]*))?(?:#.*)?"
)
_QUALIFIER = re.compile(r"[A-Za-z.\-_][A-Za-z0-9.\-_]*=[^&=]+")


def purl_problem(purl: str) -> str | None:
    """Why ``purl`` is not a package URL, or None when it is one."""
    match = _PURL.fullmatch(purl)
    if match is None:
        return "is not a package URL (pkg:type/namespace/name[@version][?qualifiers])"
    qualifiers = match["qualifiers"]
    if qualifiers is not None and not all(_QUALIFIER.fullmatch(q) for q in qualifiers.split("&")):
        return "has a malformed qualifier (key=value pairs joined by &)"
    return None


def validate_waivers(data: dict[str, Any]) -> None:
    """``data.waivers`` must be a list of waivers with the required string fields and a valid expiry."""
    waivers = data.get("waivers")
    if waivers is None:
        return
    if not isinstance(waivers, list):
        raise PolicyError(f"data.waivers must be a list, not {type(waivers).__name__}")
    seen: set[str] = set()
    for index, waiver in enumerate(waivers):
        where = f"data.waivers[{index}]"
        if not isinstance(waiver, dict):
            raise PolicyError(f"{where} must be a mapping")
        if isinstance(waiver.get("id"), str):
            where = f"waiver {waiver['id']}"
        for key in REQUIRED:
            if not isinstance(waiver.get(key), str) or not waiver[key].strip():
                raise PolicyError(f"{where}: {key} is required and must be a non-empty string")
        unknown = sorted(str(key) for key in waiver if key not in REQUIRED and key not in SCOPE)
        if unknown:
            raise PolicyError(f"{where}: unknown field {', '.join(unknown)} (scope fields: {', '.join(SCOPE)})")
        for key in SCOPE:
            if key not in waiver:
                continue
            if not isinstance(waiver[key], str):
                raise PolicyError(f"{where}: {key} must be a string")
            if not waiver[key].strip():
                # an empty scope would match nothing, or everything: neither is what was meant
                raise PolicyError(f"{where}: {key} is empty")
        if "purl" in waiver and (problem := purl_problem(waiver["purl"])):
            raise PolicyError(f"{where}: purl {waiver['purl']!r} {problem}")
        try:
            rfc3339.parse(waiver["expires"])
        except rfc3339.TimeFormatError as e:
            raise PolicyError(f"{where}: expires {e}") from None
        if waiver["id"].startswith("vex:"):
            raise PolicyError(f"{where}: a waiver id must not start with 'vex:' (the decision log names VEX statements so)")
        if waiver["id"] in seen:
            raise PolicyError(f"{where}: the id is used by another waiver")
        seen.add(waiver["id"])


def expiring(data: dict[str, Any], now: datetime, window: timedelta, environment: str | None = None) -> list[dict[str, Any]]:
    """The waivers of ``data`` still active at ``now`` that expire within ``window``, soonest first.

    With ``environment``, only those that apply there (their environment is it, or unset: every
    environment). Checked first (``validate_waivers``): a malformed waiver is an error, not left out.
    """
    validate_waivers(data)
    found = []
    for waiver in data.get("waivers") or ():
        expires = rfc3339.parse(waiver["expires"])
        if not now < expires <= now + window:
            continue
        if environment is not None and waiver.get("environment") not in (None, environment):
            continue
        found.append({**waiver, "expires": rfc3339.format(expires, microseconds=False),
                      "days_left": round((expires - now).total_seconds() / 86400, 1)})
    return sorted(found, key=lambda w: (w["expires"], w["id"]))
