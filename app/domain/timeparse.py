"""``from``/``to``/``at`` values: ISO 8601 instants, dates, or relative ages (``90d``, ``15m``)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from app.domain.clock import as_utc

EARLIEST = datetime(1000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 12, 31, tzinfo=timezone.utc)
# One grammar for every age the service takes (``?from=``, ``?at=``, retention settings, ``--older-than``).
AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
AGE_PATTERN = re.compile(r"^(\d{1,12})([smhdw])$")
AGE_HELP = "an age like 30s, 15m, 12h, 90d or 2w"


def parse_age(text: str) -> timedelta:
    """N seconds, minutes, hours, days (N×24 hours) or weeks (N×7×24 hours); N ≥ 0."""
    match = AGE_PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"not {AGE_HELP}: {text!r}")
    amount, unit = int(match.group(1)), AGE_UNITS[match.group(2)]
    try:
        return timedelta(**{unit: amount})
    except OverflowError:
        raise ValueError(f"age too large: {text!r}") from None


def parse_instant(text: str, now: datetime) -> datetime:
    """Parse one bound; a naive ISO time is taken as UTC. Instants outside
    ``EARLIEST``..``LATEST`` are refused, so bucket arithmetic never overflows."""
    try:
        moment = _parse(text.strip(), now)
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST <= moment <= LATEST:
        raise ValueError(f"out of range: instants go from {EARLIEST.date()} to {LATEST.date()}: {text!r}")
    return moment


def _parse(value: str, now: datetime) -> datetime:
    if AGE_PATTERN.match(value):
        return as_utc(now) - parse_age(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return datetime.combine(date.fromisoformat(value), time.min, tzinfo=timezone.utc)
    try:
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 timestamp, a date or {AGE_HELP}: {value!r}"
        ) from None
