"""RFC 3339 times: the one parser and the one formatter every stage uses.

A time is read as ``YYYY-MM-DDTHH:MM[:SS[.fraction]]`` followed by ``Z`` or ``±HH:MM`` (``T``/``Z``
may be lower case and a space may replace the ``T``, as RFC 3339 allows; seconds may be omitted,
as people write them in YAML). A time without a zone is an error everywhere: what is allowed must
not depend on the machine's time zone. Where a rule date is accepted (``effective_on``, ``--since``),
a plain date is midnight UTC at the start of that day (``parse_date_or_time``).

Written times are UTC with microseconds, ``2026-11-26T18:40:00.123456Z``: the format of every
decision record (record hashes depend on it) and of Kubernetes MicroTime. A leaf module: stdlib only.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

__all__ = ["TimeFormatError", "format", "parse", "parse_date", "parse_date_or_time"]

_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:([Zz])|([+-])(\d{2}):(\d{2}))?",
    re.ASCII,  # digits 0-9 only, as Rego's time.parse_rfc3339_ns reads them (not "２０２７")
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)


class TimeFormatError(ValueError):
    """A value that is not an RFC 3339 time (or date, where one is accepted); the message names it."""


def parse(value: str) -> datetime:
    """``value`` (an RFC 3339 time with a zone) as an aware UTC datetime; TimeFormatError otherwise."""
    if not isinstance(value, str):
        raise TimeFormatError(f"{value!r} is not an RFC 3339 time (a string like 2027-01-31T00:00:00Z)")
    match = _TIME.fullmatch(value.strip())
    if match is None:
        if _DATE.fullmatch(value.strip()):
            raise TimeFormatError(f"{value!r} is a date, not a time: write {value.strip()}T00:00:00Z")
        raise TimeFormatError(f"{value!r} is not an RFC 3339 time (e.g. 2027-01-31T00:00:00Z)")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu is None and sign is None:
        raise TimeFormatError(f"{value!r} has no time zone: add Z or +HH:MM")
    if second == "60":
        raise TimeFormatError(f"{value!r}: leap seconds are not supported; use :59")
    try:
        if zulu is not None:
            zone = UTC
        else:
            if int(off_h) > 23 or int(off_m) > 59:
                raise ValueError("offset out of range")
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            zone = timezone(-offset if sign == "-" else offset)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, zone)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as e:
        raise TimeFormatError(f"{value!r} is not a valid time: {e}") from None


def parse_date(value: str) -> date:
    """``value`` (``YYYY-MM-DD``) as a date; TimeFormatError otherwise."""
    match = _DATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise TimeFormatError(f"{value!r} is not a date (YYYY-MM-DD)")
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError as e:
        raise TimeFormatError(f"{value!r} is not a valid date: {e}") from None


def week_start(day: date) -> date:
    """The Monday of ``day``'s week (ISO 8601 weeks): where every weekly count of the log begins."""
    return day - timedelta(days=day.weekday())


def parse_date_or_time(value: str) -> datetime:
    """An RFC 3339 time, or a plain date as midnight UTC (``effective_on: 2027-03-01``)."""
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        return datetime.combine(parse_date(value), datetime.min.time(), UTC)
    return parse(value)


def format(moment: datetime, *, microseconds: bool = True) -> str:  # noqa: A001 - used as rfc3339.format
    """``moment`` as ``2026-11-26T18:40:00.123456Z`` (UTC, four-digit year); without ``microseconds``
    as ``2026-11-26T18:40:00Z`` (a Kubernetes ``Time``, which has whole seconds).

    A naive datetime is refused: it would be read in the machine's time zone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TimeFormatError(f"{moment!r} has no time zone")
    t = moment.astimezone(UTC)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    return f"{text}.{t.microsecond:06d}Z" if microseconds else f"{text}Z"
