"""Statistics over whole UTC days from per-day marginals (issue 12: cost that does not follow the events).

Hourly rollups carry the combination (type, actor, entity type), so all-time
statistics read about one rollup row per (hour, combination): at realistic
actor counts nearly one per event. ``orchestration_event_daily`` keeps each
dimension's count per day on its own, in step with the hourly rollups
(PostgreSQL triggers, migration 0011), so whole days cost days × (types +
actors + entity types) rows. It answers only statistics without dimension
filters (a filter on one dimension needs the combination); the partial days at
the edges of a range go through the hourly path (``rollups``), and the hot
events the fold has not reached are added from the log by the caller.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session

from app.domain.buckets import Range, ceil, floor, label
from app.domain.event_filter import EventFilter
from app.store.tables import EventDaily

DAILY_KEYS = frozenset({"day", "type", "actor", "entity_type"})
Marginals = dict[str, Counter[str]]


def answers(session: Session, flt: EventFilter, keys: tuple[str, ...]) -> bool:
    """Kept on PostgreSQL only; per-dimension counts cannot be narrowed by another dimension."""
    narrowed = (flt.type, flt.entity_type, flt.entity_code, flt.actor, flt.actor_kind, flt.session_key)
    return session.get_bind().dialect.name == "postgresql" and set(keys) <= DAILY_KEYS and not any(narrowed)


@dataclass(frozen=True)
class DaySplit:
    """``[from, to)`` as the whole days inside it and the partial days at its edges."""

    whole: Range | None
    rest: tuple[Range, ...]


def split_days(start: datetime | None, end: datetime | None) -> DaySplit:
    lo = ceil(start, "day") if start is not None else None
    hi = floor(end, "day") if end is not None else None
    if lo is not None and hi is not None and lo >= hi:
        return DaySplit(whole=None, rest=((start, end),))
    rest = [edge for edge in ((start, lo), (hi, end)) if edge[0] is not None and edge[1] is not None
            and edge[0] < edge[1]]
    return DaySplit(whole=(lo, hi), rest=tuple(rest))


def marginals(session: Session, flt: EventFilter, keys: tuple[str, ...], days: Range) -> Marginals:
    """The whole days ``[lo, hi)`` (either side open): one grouped read per breakdown, days apart."""
    found: Marginals = {k: Counter() for k in keys}
    dimensions = sorted(k for k in keys if k != "day")
    values = _within(select(EventDaily.dimension, EventDaily.value, func.sum(EventDaily.count)), flt, days)
    for dimension, value, n in session.execute(values.where(EventDaily.dimension.in_(dimensions))
                                               .group_by(EventDaily.dimension, EventDaily.value)):
        if n:
            found[dimension][value] += int(n)
    if "day" in keys:  # every event has one type: the day's types add up to its total
        per_day = _within(select(EventDaily.day, func.sum(EventDaily.count)), flt, days)
        for day, n in session.execute(per_day.where(EventDaily.dimension == "type").group_by(EventDaily.day)):
            if n:
                found["day"][label(day, "day")] += int(n)
    return found


def _within(stmt: Select, flt: EventFilter, days: Range) -> Select:  # type: ignore[type-arg]
    lo, hi = days
    if lo is not None:
        stmt = stmt.where(EventDaily.day >= lo)
    if hi is not None:
        stmt = stmt.where(EventDaily.day < hi)
    return stmt if flt.include_archived else stmt.where(EventDaily.archived == false())
