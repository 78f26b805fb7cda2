"""Exact event counts at a cost that does not grow with the events in range.

``orchestration_event_rollups`` holds per-hour counts by (type, actor,
entity_type, archived) of every event up to the watermark, folded in by a job
a few seconds behind the writers (``rollup_fold``). A count over ``[from, to)``
therefore reads, in one snapshot:

* the whole hours inside the range from the rollups (rows = hours × distinct
  type/actor/entity-type combinations, independent of the number of events);
* plus, for those hours, the hot events above the watermark, which the fold
  has not counted yet (a primary-key range: seconds of writes), so every hour,
  the current one too, is exact the moment an event commits;
* the partial hour at each edge (at most two) from the log itself, through the
  ``emitted_at`` index.

Filters the rollups do not carry (``entity_code``, ``session_key``) and minute
buckets fall back to one grouped count over the filtered log rows; those
filters are selective and index-backed, and minute timelines are bounded to
seven days (``app.domain.buckets.MAX_BUCKETS``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, select
from sqlalchemy.orm import Session

from app.domain.buckets import LABEL_FORMATS, Range, label, split_hours
from app.domain.event_filter import EventFilter
from app.store import marginal_counts
from app.store.archive_reads import in_archive
from app.store.event_queries import actor_kind_condition, apply_filter, type_condition
from app.store.rollup_fold import folded_upto
from app.store.tables import Event, EventRollup

DIMENSIONS = ("type", "actor", "entity_type")
ROLLUP_UNITS = ("hour", "day")
# LABEL_FORMATS (strftime, as SQLite renders them) in PostgreSQL's to_char syntax.
PG_LABEL_FORMATS = {"minute": 'YYYY-MM-DD"T"HH24:MI', "hour": 'YYYY-MM-DD"T"HH24', "day": "YYYY-MM-DD"}

Counts = Counter[tuple[str, ...]]
Marginals = dict[str, Counter[str]]


def _one_snapshot(session: Session) -> int:
    """The watermark, read in the snapshot the rest of the count reads.

    The edge counts, the watermark, the rollups and the events above the watermark
    are separate statements: on PostgreSQL they must read one snapshot, or a commit
    (a write, or a fold moving counts into the rollups) between them yields a total
    that never existed. (SQLite's read transaction is a snapshot already.)"""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return folded_upto(session)


def counts(session: Session, flt: EventFilter, keys: tuple[str, ...]) -> Counts:
    """Events matching ``flt`` grouped by ``keys`` (dimensions and/or a time unit label)."""
    if not rollups_answer(flt, keys):
        return raw_counts(session, flt, keys)
    split = split_hours(flt.start, flt.end)
    mark = _one_snapshot(session)
    total: Counts = Counter()
    for start, end in split.raw:
        total.update(raw_counts(session, dataclasses.replace(flt, start=start, end=end), keys))
    if split.whole is not None:
        if keys == ("hour", "type") and marginal_counts.answers(session, flt, ("type",)):
            total.update(_collect(session, marginal_counts.hours_by_type(flt, split.whole), keys))
        else:
            total.update(rollup_counts(session, flt, split.whole, keys))
        total.update(unfolded_counts(session, dataclasses.replace(flt, start=split.whole[0], end=split.whole[1]),
                                     keys, mark))
    return total


def marginals(session: Session, flt: EventFilter, keys: tuple[str, ...]) -> Marginals:
    """Events matching ``flt`` counted by each of ``keys`` on its own (what statistics show).

    On PostgreSQL each tier is one ``GROUPING SETS`` query, so what comes back is
    bounded by the distinct values of each key, never by their combinations (days ×
    types × actors × entity types is nearly one row per event at realistic actor
    counts). SQLite groups by the combination and sums here.
    """
    if session.get_bind().dialect.name != "postgresql":
        return _marginalize(counts(session, flt, keys), keys)
    if marginal_counts.answers(session, flt, keys):
        days = marginal_counts.split_days(flt.start, flt.end)
        if days.whole is not None:
            return _daily_marginals(session, flt, keys, days.whole, days.rest)
    return _hourly_marginals(session, flt, keys)


def _daily_marginals(session: Session, flt: EventFilter, keys: tuple[str, ...], whole: Range,
                     rest: tuple[Range, ...]) -> Marginals:
    """Whole days from the month and day marginals plus the hot events above the watermark in them;
    the partial days at the edges as any range (``_hourly_marginals``); one snapshot."""
    mark = _one_snapshot(session)
    total = marginal_counts.marginals(session, flt, keys, whole)
    _add(total, _raw_marginals(session, dataclasses.replace(flt, start=whole[0], end=whole[1]), keys, above=mark))
    for start, end in rest:
        _add(total, _hourly_marginals(session, dataclasses.replace(flt, start=start, end=end), keys))
    return total


def _hourly_marginals(session: Session, flt: EventFilter, keys: tuple[str, ...]) -> Marginals:
    """Whole hours from the hourly rollups (plus the hot events above the watermark), edges raw."""
    total: Marginals = {k: Counter() for k in keys}
    if not rollups_answer(flt, keys):
        _add(total, _raw_marginals(session, flt, keys))
        return total
    split = split_hours(flt.start, flt.end)
    mark = _one_snapshot(session)
    for start, end in split.raw:
        _add(total, _raw_marginals(session, dataclasses.replace(flt, start=start, end=end), keys))
    if split.whole is not None:
        whole = dataclasses.replace(flt, start=split.whole[0], end=split.whole[1])
        _add(total, _raw_marginals(session, whole, keys, above=mark))
        columns = _set_columns(EventRollup, EventRollup.bucket_start, keys, hourly=True)
        stmt = _rollup_filter(select(*columns, *(func.grouping(c) for c in columns), func.sum(EventRollup.count))
                              .select_from(EventRollup), flt, split.whole)
        _add(total, _collect_sets(session, stmt.group_by(func.grouping_sets(*columns)), keys))
    return total


def _set_columns(model: Any, moment: Any, keys: tuple[str, ...], *, hourly: bool = False) -> list[ColumnElement[Any]]:
    """Group columns for ``GROUPING SETS``: a time unit as ``date_trunc`` (labelled in Python,
    ``_collect_sets``), far cheaper per row than rendering every row's label with ``to_char``.
    ``hourly``: ``moment`` is already an hour's start (a rollup's), grouped as it is."""
    return [getattr(model, k) if k in DIMENSIONS else moment if hourly and k == "hour"
            else func.date_trunc(k, moment, "UTC") for k in keys]


def _raw_marginals(session: Session, flt: EventFilter, keys: tuple[str, ...], above: int | None = None) -> Marginals:
    """From the log; ``above``: only the hot events above that watermark (``unfolded_counts``)."""
    columns = _set_columns(Event, Event.emitted_at, keys)
    stmt = apply_filter(select(*columns, *(func.grouping(c) for c in columns), func.count())
                        .select_from(Event.__table__), flt).group_by(func.grouping_sets(*columns))
    if above is not None:
        return _collect_sets(session, stmt.where(Event.id > above), keys)
    found = _collect_sets(session, stmt, keys)
    if flt.include_archived:  # archived rows live in their own table (archive_reads)
        _add(found, _collect_sets(session, in_archive(stmt), keys))
    return found


def _collect_sets(session: Session, stmt: Select, keys: tuple[str, ...]) -> Marginals:  # type: ignore[type-arg]
    """Rows of ``GROUPING SETS ((k1), (k2), …)``: ``GROUPING(k)`` is 0 for the key a row counts by."""
    found: Marginals = {k: Counter() for k in keys}
    width = len(keys)
    for row in session.execute(stmt):
        values, grouped, n = row[:width], row[width:2 * width], row[-1]
        for key, value, flag in zip(keys, values, grouped, strict=True):
            if flag == 0 and n:
                found[key][value if key in DIMENSIONS else label(value, key)] += int(n)
    return found


def _marginalize(joint: Counts, keys: tuple[str, ...]) -> Marginals:
    found: Marginals = {k: Counter() for k in keys}
    for combination, n in joint.items():
        for key, value in zip(keys, combination, strict=True):
            found[key][value] += n
    return found


def _add(total: Marginals, more: Marginals) -> None:
    for key, counter in more.items():
        total[key].update(counter)


def rollups_answer(flt: EventFilter, keys: tuple[str, ...]) -> bool:
    """Rollups carry type, actor, entity type and the archived flag, per hour."""
    coarse = all(k in DIMENSIONS or k in ROLLUP_UNITS for k in keys)
    return coarse and flt.entity_code is None and flt.session_key is None


def raw_counts(session: Session, flt: EventFilter, keys: tuple[str, ...]) -> Counts:
    """One grouped count over the filtered log rows."""
    columns = _group_columns(session, Event, Event.emitted_at, keys)
    stmt = apply_filter(select(*columns, func.count()).select_from(Event.__table__), flt).group_by(*columns)
    found = _collect(session, stmt, keys)
    if flt.include_archived:  # archived rows live in their own table (archive_reads)
        found.update(_collect(session, in_archive(stmt), keys))
    return found


def unfolded_counts(session: Session, flt: EventFilter, keys: tuple[str, ...], mark: int) -> Counts:
    """The hot events above the watermark ``mark``: committed, not yet in the rollups.

    Archived rows never need this: archiving gives every row it moves its
    ``archived=true`` count (``archive_rows``), folded or not.
    """
    columns = _group_columns(session, Event, Event.emitted_at, keys)
    stmt = apply_filter(select(*columns, func.count()).select_from(Event.__table__), flt)
    return _collect(session, stmt.where(Event.id > mark).group_by(*columns), keys)


def rollup_counts(session: Session, flt: EventFilter, hours: tuple[datetime | None, datetime | None],
                  keys: tuple[str, ...]) -> Counts:
    """Whole hours ``[lo, hi)`` (either side may be open) from the rollups."""
    columns = _group_columns(session, EventRollup, EventRollup.bucket_start, keys, hourly=True)
    stmt = select(*columns, func.sum(EventRollup.count)).select_from(EventRollup)
    return _collect(session, _rollup_filter(stmt, flt, hours).group_by(*columns), keys)


def _rollup_filter(stmt: Select, flt: EventFilter,  # type: ignore[type-arg]
                   hours: tuple[datetime | None, datetime | None]) -> Select:  # type: ignore[type-arg]
    lo, hi = hours
    if lo is not None:
        stmt = stmt.where(EventRollup.bucket_start >= lo)
    if hi is not None:
        stmt = stmt.where(EventRollup.bucket_start < hi)
    if flt.type:
        stmt = stmt.where(type_condition(EventRollup.type, flt.type))
    if flt.actor:
        stmt = stmt.where(EventRollup.actor == flt.actor)
    if flt.actor_kind:
        stmt = stmt.where(actor_kind_condition(EventRollup.actor, flt.actor_kind))
    if flt.entity_type:
        stmt = stmt.where(EventRollup.entity_type == flt.entity_type)
    if not flt.include_archived:
        stmt = stmt.where(EventRollup.archived == false())
    return stmt


def _group_columns(session: Session, model: Any, moment: Any, keys: tuple[str, ...], *,
                   hourly: bool = False) -> list[ColumnElement[Any]]:
    """A time unit groups by ``date_trunc`` on PostgreSQL, labelled in Python (``_collect``): rendering
    every row's label with ``to_char`` tripled a 30-day hourly timeline and spilled its sort to disk."""
    if session.get_bind().dialect.name == "postgresql":
        return _set_columns(model, moment, keys, hourly=hourly)
    return [getattr(model, k) if k in DIMENSIONS else time_label(session, moment, k) for k in keys]


def time_label(session: Session, moment: Any, unit: str) -> ColumnElement[str]:
    """The UTC bucket of ``moment`` as text in ``LABEL_FORMATS[unit]``."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", moment), PG_LABEL_FORMATS[unit])
    return func.strftime(LABEL_FORMATS[unit], moment)


def _collect(session: Session, stmt: Select, keys: tuple[str, ...]) -> Counts:  # type: ignore[type-arg]
    """Counts by key; a time bucket read as a timestamp (PostgreSQL) gets its text label here."""
    found: Counts = Counter()
    labels: dict[tuple[str, datetime], str] = {}  # a bucket repeats once per value of the other keys

    def text_of(key: str, value: Any) -> Any:
        if not isinstance(value, datetime):
            return value
        if (key, value) not in labels:
            labels[(key, value)] = label(value, key)
        return labels[(key, value)]

    for *values, n in session.execute(stmt):
        if n:
            found[tuple(text_of(k, v) for k, v in zip(keys, values, strict=True))] += int(n)
    return found
