"""gate.rfc3339: the one RFC 3339 parser and formatter, and every stage reading times the same way (issue 10, time)."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gate import rfc3339
from gate.decisions.store import open_store
from gate.errors import PolicyError
from gate.reconcile.admission import AdmissionChecker
from tests.conftest import DIGEST, ROOT

POLICIES = ROOT / "policies"
REF = f"registry.example.com/shop/cart:1.4.2@{DIGEST}"


# --- parse ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T18:40:00Z", datetime(2026, 11, 26, 18, 40, tzinfo=UTC)),
        ("2026-11-26t18:40:00z", datetime(2026, 11, 26, 18, 40, tzinfo=UTC)),
        ("2026-11-26 18:40:00Z", datetime(2026, 11, 26, 18, 40, tzinfo=UTC)),
        ("2026-11-26T18:40Z", datetime(2026, 11, 26, 18, 40, tzinfo=UTC)),
        ("2026-11-26T20:40:00+02:00", datetime(2026, 11, 26, 18, 40, tzinfo=UTC)),
        ("2026-11-26T18:40:00-00:00", datetime(2026, 11, 26, 18, 40, tzinfo=UTC)),
        ("2026-11-26T18:40:00.5Z", datetime(2026, 11, 26, 18, 40, 0, 500000, tzinfo=UTC)),
        ("2026-11-26T18:40:00.123456789Z", datetime(2026, 11, 26, 18, 40, 0, 123456, tzinfo=UTC)),
        ("2026-01-01T00:30:00+01:00", datetime(2025, 12, 31, 23, 30, tzinfo=UTC)),
    ],
)
def test_parse_reads_rfc3339_times_as_aware_utc(text: str, expected: datetime) -> None:
    moment = rfc3339.parse(text)
    assert moment == expected
    assert moment.utcoffset() == timedelta(0) and moment.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-11-26T18:40:00", "has no time zone"),
        ("2026-11-26", "is a date, not a time"),
        ("yesterday", "is not an RFC 3339 time"),
        ("", "is not an RFC 3339 time"),
        ("2026-02-30T00:00:00Z", "is not a valid time"),
        ("2026-11-26T25:00:00Z", "is not a valid time"),
        ("2026-11-26T18:40:00+24:00", "is not a valid time"),
        ("2026-11-26T23:59:60Z", "leap seconds"),
        ("20261126T184000Z", "is not an RFC 3339 time"),  # ISO 8601 basic format: fromisoformat took it
        ("2026-W48-4T00:00:00Z", "is not an RFC 3339 time"),
        ("0001-01-01T00:00:00+01:00", "is not a valid time"),  # before year 1 in UTC
    ],
)
def test_parse_refuses_what_is_not_a_zoned_time_naming_the_value(text: str, says: str) -> None:
    with pytest.raises(rfc3339.TimeFormatError) as raised:
        rfc3339.parse(text)
    assert isinstance(raised.value, ValueError)
    assert says in str(raised.value) and repr(text) in str(raised.value)


def test_a_date_is_midnight_utc_only_where_a_date_is_accepted() -> None:
    assert rfc3339.parse_date_or_time("2027-03-01") == datetime(2027, 3, 1, tzinfo=UTC)
    assert rfc3339.parse_date_or_time("2027-03-01T12:00:00+02:00") == datetime(2027, 3, 1, 10, tzinfo=UTC)
    with pytest.raises(rfc3339.TimeFormatError, match="has no time zone"):
        rfc3339.parse_date_or_time("2027-03-01T00:00:00")
    with pytest.raises(rfc3339.TimeFormatError, match="not a valid date"):
        rfc3339.parse_date_or_time("2027-02-29")
    assert rfc3339.parse_date("2028-02-29") == date(2028, 2, 29)


# --- format ---------------------------------------------------------------------------------------


def test_format_is_the_decision_record_format_byte_for_byte() -> None:
    """Record hashes are computed over this text: it must never change."""
    moment = datetime(2026, 11, 26, 20, 40, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339.format(moment) == "2026-11-26T18:40:00.123456Z"
    assert rfc3339.format(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert rfc3339.format(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
    assert rfc3339.format(datetime(999, 1, 2, tzinfo=UTC)) == "0999-01-02T00:00:00.000000Z"  # strftime wrote "999-…"


def test_format_refuses_a_naive_datetime() -> None:
    with pytest.raises(rfc3339.TimeFormatError, match="no time zone"):
        rfc3339.format(datetime(2026, 1, 1))


def test_parse_and_format_round_trip() -> None:
    text = "2026-11-26T18:40:00.000001Z"
    assert rfc3339.format(rfc3339.parse(text)) == text


def test_no_other_module_parses_times() -> None:
    """One parser: no module under src/ or plugins/ reads times with fromisoformat/strptime."""
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in (ROOT / "src", ROOT / "plugins")
        for path in folder.rglob("*.py")
        if path.name != "rfc3339.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "fromisoformat" in line or "strptime" in line or 'replace("Z"' in line
    ]
    assert offenders == []


# --- evaluate and admission read effective_on the same way ------------------------------------------


ADMISSION_RULE = """package gate.admission.dated

import rego.v1

# METADATA
# title: Dated admission rule
# custom:
#   rule_id: admission.dated
#   severity: high
#   effective_on: {effective_on}
deny contains result if {{
\tsome image in input.gate.images
\tresult := {{"msg": sprintf("%v is refused from a date", [image.image]), "rule": "admission.dated"}}
}}
"""


def _bundle_with_dated_admission_rule(tmp_path: Path, effective_on: str) -> Path:
    bundle = tmp_path / "policies"
    shutil.copytree(POLICIES, bundle)
    (bundle / "gate" / "admission" / "dated.rego").write_text(ADMISSION_RULE.format(effective_on=effective_on))
    return bundle


def _deployment() -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": REF}]}}},
    }


def test_admission_refuses_a_zoneless_effective_on_as_evaluate_does(tmp_path: Path) -> None:
    """The webhook took ``effective_on: 2999-01-01T00:00:00`` (as UTC) where ``gate evaluate`` refused it
    (tests/cli/test_evaluate_fail_closed.py::test_effective_on_may_be_a_date_but_not_a_zoneless_time)."""
    store = open_store()
    try:
        zoneless = AdmissionChecker(_bundle_with_dated_admission_rule(tmp_path / "zoneless", "2999-01-01T00:00:00"), "prod", store)
        with pytest.raises(PolicyError, match="effective_on '2999-01-01T00:00:00' has no time zone"):
            zoneless.check(_deployment())
        # a date is midnight UTC in both: the rule is not in force yet, so it only warns
        dated = AdmissionChecker(_bundle_with_dated_admission_rule(tmp_path / "dated", "2999-01-01"), "prod", store)
        verdict = dated.check(_deployment())
        assert "admission.dated" not in {v.rule for v in verdict.violations}  # blocked only for having no decision
        assert any("is refused from a date (blocks from 2999-01-01)" in w for w in verdict.warnings)
    finally:
        store.close()
