"""``from``/``to`` values: ISO 8601 instants, dates, or relative ages (``90d``)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from app.domain.clock import as_utc

AGE_PATTERN = re.compile(r"^(\d+)([dh])$")


def parse_age(text: str) -> timedelta:
    """``Nd`` is N×24 hours, ``Nh`` N hours; N ≥ 0."""
    match = AGE_PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"not an age like 90d or 12h: {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(days=amount) if unit == "d" else timedelta(hours=amount)


def parse_instant(text: str, now: datetime) -> datetime:
    """Parse one bound; a naive ISO time is taken as UTC."""
    value = text.strip()
    if AGE_PATTERN.match(value):
        return as_utc(now) - parse_age(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return datetime.combine(date.fromisoformat(value), time.min, tzinfo=timezone.utc)
    try:
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 timestamp, a date or an age like 90d: {text!r}"
        ) from None
