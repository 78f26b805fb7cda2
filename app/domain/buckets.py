"""Time buckets for the timeline and statistics: pure UTC arithmetic.

Rollups are kept per hour, so a range ``[from, to)`` splits into at most two
partial edge hours (counted from the raw log) and the whole hours between them
(read from rollups). Minute, hour and day buckets all align to UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.clock import as_utc
from app.domain.errors import Invalid

UNITS = ("minute", "hour", "day")
STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
# The label the database renders for a bucket (strftime syntax), parsed back here.
LABEL_FORMATS = {"minute": "%Y-%m-%dT%H:%M", "hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d"}
# A timeline without ``from`` covers this much before its end.
DEFAULT_SPAN = {"minute": timedelta(hours=1), "hour": timedelta(hours=24), "day": timedelta(days=30)}
# The longest range one timeline covers, in buckets: 7 days of minutes, 420 days of hours, ~27 years of days.
MAX_BUCKETS = 10_080

Range = tuple[datetime | None, datetime | None]


def floor(moment: datetime, unit: str) -> datetime:
    """The start of the bucket holding ``moment``."""
    moment = as_utc(moment)
    if unit == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def ceil(moment: datetime, unit: str) -> datetime:
    """The first bucket start at or after ``moment``."""
    start = floor(moment, unit)
    return start if start == as_utc(moment) else start + STEP[unit]


def bucket_starts(start: datetime, end: datetime, unit: str) -> list[datetime]:
    """Every bucket that overlaps ``[start, end)``, empty ones included."""
    current, step, starts = floor(start, unit), STEP[unit], []
    while current < end:
        starts.append(current)
        current += step
    return starts


def label(moment: datetime, unit: str) -> str:
    """The text the database renders for the bucket holding ``moment``."""
    return as_utc(moment).strftime(LABEL_FORMATS[unit])


@dataclass(frozen=True)
class HourSplit:
    """``[from, to)`` as the partial edge hours (raw) and the whole hours between (rollups)."""

    raw: tuple[Range, ...]
    whole: Range | None


def split_hours(start: datetime | None, end: datetime | None) -> HourSplit:
    """``None`` bounds are open: an open side has no partial edge."""
    lo = ceil(start, "hour") if start is not None else None
    hi = floor(end, "hour") if end is not None else None
    if lo is not None and hi is not None and lo >= hi:
        inside = start is not None and end is not None and start < end
        return HourSplit(raw=((start, end),) if inside else (), whole=None)
    raw: list[Range] = []
    if start is not None and lo is not None and start < lo:
        raw.append((start, lo))
    if end is not None and hi is not None and hi < end:
        raw.append((hi, end))
    return HourSplit(raw=tuple(raw), whole=(lo, hi))


def timeline_window(
    start: datetime | None, end: datetime | None, unit: str, now: datetime
) -> tuple[datetime, datetime]:
    """Defaults: ``to`` is the end of the bucket holding now (nothing recorded so far
    is left out), ``from`` is ``to`` minus the unit's default span; at most
    ``MAX_BUCKETS`` buckets."""
    end = end if end is not None else floor(now, unit) + STEP[unit]
    start = start if start is not None else end - DEFAULT_SPAN[unit]
    if start > end:
        raise Invalid("from must not be after to", {"from": ["must not be after to"]})
    limit = STEP[unit] * MAX_BUCKETS
    if end - start > limit + STEP[unit]:  # one step of slack: ``from=7d`` with the default ``to`` fits
        raise Invalid(
            f"a timeline holds at most {MAX_BUCKETS} buckets: {unit} buckets cover at most {_span_text(limit)}",
            {"bucket": [f"{unit} buckets cover at most {_span_text(limit)}; narrow from/to or use a larger bucket"]},
        )
    return start, end


def _span_text(span: timedelta) -> str:
    if span % timedelta(days=1):
        return f"{span // timedelta(hours=1)} hours"
    return f"{span.days} days"
