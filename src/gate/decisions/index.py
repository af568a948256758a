"""What each store indexes about a record, derived once, identically for every store."""

from __future__ import annotations

from dataclasses import dataclass

from gate import rfc3339
from gate.decisions.record import Decision


#: how the waiver index names a VEX statement's rows (a waiver id never starts with it: gate.policy.waivers refuses one)
VEX_PREFIX = "vex:"


@dataclass(frozen=True)
class IndexRows:
    """The searchable facts of one decision."""

    #: policy rule ids of violations, and the rules (CVE ids, check ids) of the findings they name,
    #: lowercased (``--rule`` is case-insensitive)
    rules: tuple[str, ...]
    #: (waiver id, rule, expires) of every waiver applied; expires in the stored UTC format, so it compares as text.
    #: A VEX statement applied has two rows with expires "": ``vex:<statement id>`` and ``vex:<document digest>``
    #: (``--triaged-by``); ``--waiver``, ``--waived`` and ``--waiver-expired`` skip them.
    waivers: tuple[tuple[str, str, str], ...]


def index_rows(decision: Decision) -> IndexRows:
    """The rules and waivers ``decision`` (in full form) can be found by. Of a stored form, without
    its findings, only the violations' own rules: verify checks those (``violation_rules``)."""
    rules = violation_rules(decision)
    named = {i for v in decision.violations for i in v.finding_ids}
    if named:
        rules.update(f["rule"].lower() for f in decision.input.get("findings", ()) if f.get("id") in named)
    waivers = tuple(sorted(
        {(w.id, w.rule, utc_expiry(w.expires)) for w in decision.waivers if not w.is_vex and w.expires is not None}
        | {(f"{VEX_PREFIX}{key}", w.rule, "") for w in decision.waivers if w.is_vex for key in (w.id, w.document) if key}
    ))
    return IndexRows(tuple(sorted(rules)), waivers)


def violation_rules(decision: Decision) -> set[str]:
    """The lowercased policy rule ids of ``decision``'s violations (each is an index row)."""
    return {v.rule.lower() for v in decision.violations}


def utc_expiry(expires: str) -> str:
    """A waiver's expiry (RFC 3339, any offset) as ``rfc3339.format()`` writes it; unparseable text unchanged."""
    try:
        return rfc3339.format(rfc3339.parse(expires))
    except rfc3339.TimeFormatError:
        return expires
