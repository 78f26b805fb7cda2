"""The outbox: which events rules must still see, claimed by workers, swept when a dispatch was missed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from app.domain.clock import Clock, as_utc
from app.store.tables import OutboxEntry
from app.store.uow import UnitOfWork

# A row the sweep already re-published waits this long before it is published again,
# so a long queue is not flooded with duplicates (they would be harmless, only wasted).
REDISPATCH_AFTER = timedelta(seconds=30)
SWEEP_BATCH = 1000
IDS_PER_MESSAGE = 100

Publish = Callable[[Sequence[int]], None]


def claim(session: Session, event_id: int) -> bool:
    """Lock the event's outbox row; False when it is gone (already evaluated, or never dispatchable)
    or another delivery holds it right now.

    Two deliveries of the same event (the after-commit message and a sweep's,
    when the queue runs behind) never wait for each other: the second skips
    the locked row and moves on, so a worker process is never idle behind its
    sibling. Should the first fail, the row stays and the sweep delivers it again.
    """
    stmt = select(OutboxEntry.event_id).where(OutboxEntry.event_id == event_id).with_for_update(skip_locked=True)
    return session.scalars(stmt).first() is not None


def release(session: Session, event_id: int) -> None:
    """Done with the event: in the same transaction as its rule runs."""
    session.execute(delete(OutboxEntry).where(OutboxEntry.event_id == event_id))


def _due(now: datetime, older_than: float) -> Any:
    created_before = now - timedelta(seconds=older_than)
    return (
        select(OutboxEntry)
        .where(OutboxEntry.created_at <= created_before,
               or_(OutboxEntry.dispatched_at.is_(None), OutboxEntry.dispatched_at <= now - REDISPATCH_AFTER))
        .order_by(OutboxEntry.event_id)
        .limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    )


def sweep(uow: UnitOfWork, publish: Publish, clock: Clock, *, older_than: float) -> int:
    """Re-publish events still pending after ``older_than`` seconds; returns how many.

    Rows a worker is evaluating are locked and skipped (``SKIP LOCKED``). The
    publish happens before the rows are marked, so a broker still down leaves
    them due for the next sweep.
    """
    with uow:
        now = clock()
        rows = list(uow.session.scalars(_due(now, older_than)))
        ids = [row.event_id for row in rows]
        for start in range(0, len(ids), IDS_PER_MESSAGE):
            publish(ids[start:start + IDS_PER_MESSAGE])
        for row in rows:
            row.dispatched_at = now
            row.dispatch_count += 1
        uow.commit()
        return len(ids)


def backlog(uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """Outbox lag for health: pending rows and the age of the oldest."""
    with uow:
        pending, oldest = uow.session.execute(
            select(func.count(), func.min(OutboxEntry.created_at))).one()
        age = (clock() - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
        return {"pending": int(pending), "oldest_pending_age_seconds": round(max(age, 0.0), 3)}
