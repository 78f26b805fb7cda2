"""Folding the hot log into the hourly rollups, off the write path (issue 11).

Writers used to upsert their rollup rows in their own transaction, so every
concurrent write of one hour, type, actor and entity type waited on that row's
lock until the previous writer's COMMIT (WAL flush included). Now no writer
touches the rollups: a job folds settled events in batches, and one row,
``orchestration_rollup_watermark``, says how far: every hot event with
``id <= folded_upto`` is counted in the rollups, none above it.

A batch is one transaction: lock the mark, fold the events in
``(mark, min(visible bound, mark + batch)]`` with one ``INSERT … SELECT …
GROUP BY … ON CONFLICT``, move the mark. Only ids at or below the visible bound
(``event_fence``) are folded: every transaction that drew one of those has
ended, so the fold reads all of them that will ever exist, and an event still
in flight below a committed one is folded by a later batch, not skipped.

Readers (``rollups``) read the mark in the same snapshot as the rollups and
count the hot events above it themselves, so counts are exact the moment an
event commits. Archiving takes ``archived=false`` counts only from rows the
fold counted, and holds the mark (``hold``) while it does.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Select, Table, func, select, update
from sqlalchemy.orm import Session

from app.store import rollup_shift
from app.store.event_fence import visible_bound
from app.store.tables import Event, RollupWatermark

EVENTS = cast(Table, Event.__table__)
THE_ROW = 1  # the watermark table has one row, made by migration 0010
DEFAULT_BATCH = 50_000  # ids per transaction: the fold's row locks on rollups last one batch


def folded_upto(session: Session) -> int:
    """The mark as this session's snapshot sees it (readers: read it in the snapshot of the rollups)."""
    return int(session.execute(_mark()).scalar_one())


def hold(session: Session) -> int:
    """The mark, share-locked until this transaction ends: a fold cannot move it (nor touch
    the rollups) while archiving moves counts by it. Fold and archive both lock the mark
    before any rollup row, so they cannot deadlock on those."""
    return int(session.execute(_mark().with_for_update(read=True)).scalar_one())


def fold_batch(session: Session, batch: int = DEFAULT_BATCH) -> int:
    """Fold the next settled events, at most ``batch`` ids; returns how far the mark moved (0: caught up).

    The caller commits. On SQLite the writer holds the database (``BEGIN IMMEDIATE``),
    so every event there is settled and the highest id is the bound.
    """
    mark = int(session.execute(_mark().with_for_update()).scalar_one())
    bound = visible_bound(session)  # its own statement, after the lock: a fresh READ COMMITTED snapshot
    if bound is None:
        bound = int(session.execute(select(func.coalesce(func.max(Event.id), 0))).scalar_one())
    upto = min(bound, mark + batch)
    if upto <= mark:
        return 0
    rollup_shift.shift(session, EVENTS, EVENTS.c.id.between(mark + 1, upto), False, 1)
    session.execute(update(RollupWatermark).where(RollupWatermark.id == THE_ROW).values(folded_upto=upto))
    return upto - mark


def _mark() -> Select[tuple[int]]:
    return select(RollupWatermark.folded_upto).where(RollupWatermark.id == THE_ROW)
