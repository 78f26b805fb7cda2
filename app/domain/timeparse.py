"""``from``/``to`` values: ISO 8601 instants, dates, or relative ages (``90d``)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from app.domain.clock import as_utc

EARLIEST = datetime(1000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 12, 31, tzinfo=timezone.utc)
AGE_PATTERN = re.compile(r"^(\d+)([dh])$")


def parse_age(text: str) -> timedelta:
    """``Nd`` is N×24 hours, ``Nh`` N hours; N ≥ 0."""
    match = AGE_PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"not an age like 90d or 12h: {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    try:
        return timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
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
            f"not an ISO 8601 timestamp, a date or an age like 90d: {value!r}"
        ) from None
