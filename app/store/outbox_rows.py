"""``uow.outbox``: the rows that say which events rules must still see."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, text
from sqlalchemy.orm import Session

from app.store.event_fence import wait_settled
from app.store.tables import Event, OutboxEntry

# SQLSTATE lock_not_available: a row lock was not granted within ``lock_timeout``.
LOCK_NOT_AVAILABLE = "55P03"
# How long a batch that has already appended waits for a row lock before it commits early.
HOLDING_LOCK_TIMEOUT_MS = 20
# How long a claim waits for writers still committing events before the claimed ones (milliseconds,
# normally); past it ``LogNotSettled`` (transient) sends the job back to be retried.
SETTLE_TIMEOUT = 5.0


class OutboxRepository:
    def __init__(self, db: Session) -> None:
        self._db = db

    def claim(self, event_id: int, settle_timeout: float = SETTLE_TIMEOUT) -> bool:
        """Lock the event's row, skipping it when another delivery holds it; False when gone or held.
        First waits for the log to be complete below the event (as ``claim_batch``)."""
        wait_settled(self._db, event_id, settle_timeout)
        stmt = select(OutboxEntry.event_id).where(OutboxEntry.event_id == event_id).with_for_update(skip_locked=True)
        return self._db.scalars(stmt).first() is not None

    def release(self, event_id: int) -> None:
        self._db.execute(delete(OutboxEntry).where(OutboxEntry.event_id == event_id))

    def claim_batch(self, event_ids: Sequence[int], extra: int, settle_timeout: float = SETTLE_TIMEOUT) -> list[Event]:
        """Lock the rows of these events, and up to ``extra`` other pending ones, skipping held rows; one
        statement that also returns the events, oldest first.

        Extra rows are only those no failure is being backed off for
        (``failures = 0``): a poison event keeps its own pace. Every event is
        judged with the log complete up to it: first this waits (up to
        ``settle_timeout``, ``event_fence.wait_settled``) for writers still
        committing events before the last one asked for, and extra rows come
        only from below the visible bound.
        """
        wanted = OutboxEntry.event_id.in_(list(event_ids))
        which = or_(wanted, OutboxEntry.failures == 0) if extra > 0 else wanted
        bound = wait_settled(self._db, max(event_ids), settle_timeout)
        if bound is not None:
            which = and_(which, OutboxEntry.event_id <= bound)
        stmt = (select(Event).join(OutboxEntry, OutboxEntry.event_id == Event.id).where(which)
                .order_by(case((wanted, 0), else_=1), OutboxEntry.event_id).limit(len(event_ids) + max(extra, 0))
                .with_for_update(of=OutboxEntry, skip_locked=True))
        return sorted(self._db.scalars(stmt), key=lambda event: event.id)

    def release_many(self, event_ids: Sequence[int]) -> None:
        if event_ids:
            self._db.execute(delete(OutboxEntry).where(OutboxEntry.event_id.in_(list(event_ids))))

    def bound_lock_waits(self) -> None:
        """From here to COMMIT, give up on a row lock after a few milliseconds (PostgreSQL).

        For a transaction that has appended events: it is registered in flight
        (``event_fence``) until COMMIT, so waiting on a row meanwhile would
        hold the log's visible bound down, and every reader following the log
        and every evaluation after it, for as long as the row is held.
        """
        if self._db.get_bind().dialect.name == "postgresql":
            self._db.execute(text(f"SET LOCAL lock_timeout = '{HOLDING_LOCK_TIMEOUT_MS}ms'"))

    def due(self, now: datetime, older_than: float, redispatch_after: timedelta, limit: int) -> list[Any]:
        """Rows pending longer than ``older_than`` seconds and not re-published lately; locked, skipping held ones."""
        created_before = now - timedelta(seconds=older_than)
        return list(self._db.scalars(
            select(OutboxEntry)
            .where(OutboxEntry.created_at <= created_before,
                   or_(OutboxEntry.dispatched_at.is_(None), OutboxEntry.dispatched_at <= now - redispatch_after))
            .order_by(OutboxEntry.event_id).limit(limit).with_for_update(skip_locked=True)))

    def backlog(self) -> tuple[int, datetime | None]:
        """How many rows are pending, and when the oldest was created."""
        pending, oldest = self._db.execute(select(func.count(), func.min(OutboxEntry.created_at))).one()
        return int(pending), oldest


def lock_busy(exc: BaseException) -> bool:
    """Did the database refuse a row lock after ``lock_timeout`` (see ``bound_lock_waits``)?"""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) == LOCK_NOT_AVAILABLE
