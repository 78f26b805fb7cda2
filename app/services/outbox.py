"""The outbox sweep and backlog: events rules must still see, re-published when a dispatch was missed.

Workers claim and release rows through ``uow.outbox`` (``app.store.outbox_rows``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from app.domain.clock import Clock, as_utc
from app.store.uow import UnitOfWork

# A row the sweep already re-published waits this long before it is published again,
# so a long queue is not flooded with duplicates (they would be harmless, only wasted).
REDISPATCH_AFTER = timedelta(seconds=30)
SWEEP_BATCH = 1000
IDS_PER_MESSAGE = 100

Publish = Callable[[Sequence[int]], None]


def sweep(uow: UnitOfWork, publish: Publish, clock: Clock, *, older_than: float) -> int:
    """Re-publish events still pending after ``older_than`` seconds; returns how many.

    Rows a worker is evaluating are locked and skipped (``SKIP LOCKED``). The
    publish happens before the rows are marked, so a broker still down leaves
    them due for the next sweep.
    """
    with uow:
        now = clock()
        rows = uow.outbox.due(now, older_than, REDISPATCH_AFTER, SWEEP_BATCH)
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
        pending, oldest = uow.outbox.backlog()
        age = (clock() - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
        return {"pending": pending, "oldest_pending_age_seconds": round(max(age, 0.0), 3)}
