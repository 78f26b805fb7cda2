"""``uow.outbox``: the rows that say which events rules must still see."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from app.store.tables import OutboxEntry


class OutboxRepository:
    def __init__(self, db: Session) -> None:
        self._db = db

    def claim(self, event_id: int) -> bool:
        """Lock the event's row, skipping it when another delivery holds it; False when gone or held."""
        stmt = select(OutboxEntry.event_id).where(OutboxEntry.event_id == event_id).with_for_update(skip_locked=True)
        return self._db.scalars(stmt).first() is not None

    def release(self, event_id: int) -> None:
        self._db.execute(delete(OutboxEntry).where(OutboxEntry.event_id == event_id))

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
