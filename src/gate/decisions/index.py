"""What each store indexes about a record, derived once, identically for every store."""

from __future__ import annotations

from dataclasses import dataclass

from gate import rfc3339
from gate.decisions.record import Decision


@dataclass(frozen=True)
class IndexRows:
    """The searchable facts of one decision."""

    #: policy rule ids of violations, and the rules (CVE ids, check ids) of the findings they name
    rules: tuple[str, ...]
    #: (waiver id, rule, expires) of every waiver applied; expires in the stored UTC format, so it compares as text
    waivers: tuple[tuple[str, str, str], ...]


def index_rows(decision: Decision) -> IndexRows:
    """The rules and waivers ``decision`` can be found by."""
    rules = {v.rule for v in decision.violations}
    named = {i for v in decision.violations for i in v.finding_ids}
    if named:
        rules.update(f["rule"] for f in decision.input.get("findings", ()) if f.get("id") in named)
    waivers = tuple(sorted({(w.id, w.rule, utc_expiry(w.expires)) for w in decision.waivers}))
    return IndexRows(tuple(sorted(rules)), waivers)


def utc_expiry(expires: str) -> str:
    """A waiver's expiry (RFC 3339, any offset) as ``rfc3339.format()`` writes it; unparseable text unchanged."""
    try:
        return rfc3339.format(rfc3339.parse(expires))
    except rfc3339.TimeFormatError:
        return expires
