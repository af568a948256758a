"""``--since`` / ``--until`` values: an RFC 3339 time, a date, or a duration ago.

Every form becomes the stored timestamp format (``2026-11-26T18:57:08.471657Z``, see
``gate.rfc3339.format``), which the stores compare lexically with each record's
``timestamp``. Accepted:

- an RFC 3339 time with a zone: ``2026-10-01T12:00:00Z``, ``2026-10-01T14:00:00+02:00``
  (a space may replace the ``T``; fractions of a second are kept to the microsecond);
- a date: ``2026-10-01`` is midnight UTC at the start of that day;
- a duration ago: a number and a unit, ``90m``, ``12h``, ``30d``, ``2w`` (units may be combined,
  ``1d12h``; ``s`` seconds, ``m`` minutes, ``h`` hours, ``d`` days, ``w`` weeks).

A time without a zone is refused rather than guessed: an audit query must not depend on the
machine's time zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from gate import rfc3339
from gate.errors import UsageError

_DURATION = re.compile(r"^(?:\d+[smhdw])+$")
_PART = re.compile(r"(\d+)([smhdw])")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_HINT = "use an RFC 3339 time (2026-10-01T00:00:00Z), a date (2026-10-01) or a duration ago (90m, 12h, 30d, 2w)"


def parse_duration(value: str, flag: str) -> timedelta:
    """A duration such as ``90m``, ``12h``, ``30d``, ``1d12h``; ``flag`` names the option in errors."""
    text = value.strip()
    if not _DURATION.match(text):
        raise UsageError(f"{flag} {value!r}: not a duration; use a number and a unit: 90m, 12h, 30d, 2w")
    try:
        return sum((timedelta(**{_UNIT[unit]: int(n)}) for n, unit in _PART.findall(text)), timedelta())
    except OverflowError:
        raise UsageError(f"{flag} {value!r}: that is too long") from None


def parse_time(value: str, flag: str, now: datetime | None = None) -> str:
    """``value`` as a stored-format UTC timestamp; ``flag`` names the option in errors."""
    text = value.strip()
    now = now or datetime.now(UTC)
    if _DURATION.match(text):
        try:
            return _stored(now - parse_duration(text, flag), value, flag)
        except OverflowError:
            raise UsageError(f"{flag} {value!r}: that is too long ago") from None
    try:
        moment = rfc3339.parse_date_or_time(text)  # a date is midnight UTC
    except rfc3339.TimeFormatError as e:
        raise UsageError(f"{flag} {e}; {_HINT}") from None
    return _stored(moment, value, flag)


def _stored(moment: datetime, value: str, flag: str) -> str:
    # Four-digit years only, as every stored timestamp has: the stores compare them lexically.
    if not 1000 <= moment.year <= 9999:
        raise UsageError(f"{flag} {value!r}: out of range (years 1000 to 9999)")
    return rfc3339.format(moment)


def time_range(since: str | None, until: str | None, now: datetime | None = None) -> tuple[str | None, str | None]:
    """Both bounds parsed (``--since`` inclusive, ``--until`` exclusive); refuses an empty range."""
    now = now or datetime.now(UTC)
    start = parse_time(since, "--since", now) if since is not None else None
    end = parse_time(until, "--until", now) if until is not None else None
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {since!r} is not before --until {until!r}: nothing can match")
    return start, end
