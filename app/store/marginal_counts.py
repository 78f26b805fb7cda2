"""Statistics over whole UTC days from per-month and per-day marginals (issue 12: cost not following events).

An ``hour`` grain holds the ``type`` and ``total`` dimensions only (migration
0012), for timelines by hour; an ``all`` grain (migration 0013, ``start`` at
the epoch) holds every dimension over the whole log, for all-time statistics.

Hourly rollups carry the combination (type, actor, entity type), so all-time
statistics read about one rollup row per (hour, combination): at realistic
actor counts nearly one per event. ``orchestration_event_marginals`` keeps each
dimension's count on its own per UTC month and per UTC day, and each day's
total, in step with the hourly rollups (PostgreSQL triggers, migration 0011):
whole months cost months × (types + actors + entity types) rows, the whole
days around them days × values, ``by_day`` one row per day. It answers only
statistics without dimension filters (a filter on one dimension needs the
combination); the partial days at the edges of a range go through the hourly
path (``rollups``), and the caller adds the hot events the fold has not reached.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from app.domain.buckets import Range, ceil, floor, label
from app.domain.event_filter import EventFilter
from app.store.tables import EventMarginal

MARGINAL_KEYS = frozenset({"day", "type", "actor", "entity_type"})
Marginals = dict[str, Counter[str]]
M = EventMarginal


def answers(session: Session, flt: EventFilter, keys: tuple[str, ...]) -> bool:
    """Kept on PostgreSQL only; per-dimension counts cannot be narrowed by another dimension."""
    narrowed = (flt.type, flt.entity_type, flt.entity_code, flt.actor, flt.actor_kind, flt.session_key)
    return session.get_bind().dialect.name == "postgresql" and set(keys) <= MARGINAL_KEYS and not any(narrowed)


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
    """The whole days ``[lo, hi)`` (either side open): whole months from month rows, the days
    around them from day rows, one grouped read; ``by_day`` from the days' totals."""
    found: Marginals = {k: Counter() for k in keys}
    dimensions = sorted(k for k in keys if k != "day")
    values = (select(M.dimension, M.value, func.sum(M.count))
              .where(_kept(flt), M.dimension.in_(dimensions), _covering(days))
              .group_by(M.dimension, M.value))
    for dimension, value, n in session.execute(values):
        if n:
            found[dimension][value] += int(n)
    if "day" in keys:
        per_day = (select(M.start, func.sum(M.count))
                   .where(_kept(flt), M.dimension == "total", _in(M.grain == "day", days)).group_by(M.start))
        for day, n in session.execute(per_day):
            if n:
                found["day"][label(day, "day")] += int(n)
    return found


def hours_by_type(flt: EventFilter, hours: Range) -> Select[tuple[datetime, str, int]]:
    """Whole hours ``[lo, hi)`` by type from the ``hour`` marginals: hours × types rows, whatever
    the actors (an hourly timeline; the caller checks ``answers`` and adds the unfolded events)."""
    return (select(M.start, M.value, func.sum(M.count))
            .where(_kept(flt), M.dimension == "type", _in(M.grain == "hour", hours)).group_by(M.start, M.value))


def _covering(days: Range) -> ColumnElement[bool]:
    """Month rows for the whole months of ``days``, day rows for the days outside them; all time,
    the ``all`` rows (migration 0013: one per value, however many months)."""
    lo, hi = days
    if lo is None and hi is None:
        return M.grain == "all"
    first = _month_ceil(lo) if lo is not None else None
    last = _month_floor(hi) if hi is not None else None
    if first is not None and last is not None and first >= last:
        return _in(M.grain == "day", days)
    parts = [_in(M.grain == "month", (first, last))]
    if lo is not None and first is not None and lo < first:
        parts.append(_in(M.grain == "day", (lo, first)))
    if hi is not None and last is not None and last < hi:
        parts.append(_in(M.grain == "day", (last, hi)))
    return or_(*parts)


def _in(grain: ColumnElement[bool], span: Range) -> ColumnElement[bool]:
    lo, hi = span
    return and_(grain, *([M.start >= lo] if lo is not None else []), *([M.start < hi] if hi is not None else []))


def _kept(flt: EventFilter) -> ColumnElement[bool]:
    return true() if flt.include_archived else M.archived == false()


def _month_floor(moment: datetime) -> datetime:
    return floor(moment, "day").replace(day=1)


def _month_ceil(moment: datetime) -> datetime:
    start = _month_floor(moment)
    if start == moment:
        return start
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
