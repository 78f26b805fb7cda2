"""``uow.events``: the one path that appends to a stream, and the reads of the log the use cases need."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain.changes import ChangeContext
from app.domain.events import PlannedEvent
from app.store import archive_reads
from app.store.errors import DuplicateRow
from app.store.event_store import StreamRef, append, envelope
from app.store.tables import Event


class EventRepository:
    """Appends through ``append_to_stream``; every event appended is handed to the dispatcher after commit."""

    def __init__(self, db: Session, pending_dispatch: list[int]) -> None:
        self._db, self._pending = db, pending_dispatch

    def append_to_stream(self, stream: StreamRef, planned: Sequence[PlannedEvent], ctx: ChangeContext,
                         now: datetime, *, in_stream: bool = True, dispatch: bool = True) -> list[Event]:
        """Append to a stream whose row the caller locked (``uow.streams[...].get(..., lock=True)``).

        A session's own events carry its key whatever header came with them.
        The ids go to the after-commit dispatch (only those given an outbox row
        are published: see ``UnitOfWork.commit``).
        """
        if stream.entity_type == "session" and stream.entity_code is not None:
            ctx = dataclasses.replace(ctx, session_key=stream.entity_code)
        rows = self._append(stream, list(planned), ctx, now, in_stream=in_stream, dispatch=dispatch)
        self._pending.extend(r.id for r in rows)
        return rows

    def _append(self, stream: StreamRef, planned: list[PlannedEvent], ctx: ChangeContext, now: datetime, *,
                in_stream: bool, dispatch: bool) -> list[Event]:
        try:
            return append(self._db, stream, planned, ctx, now, in_stream=in_stream, dispatch=dispatch)
        except IntegrityError as exc:  # an ``event_id`` recorded meanwhile (or a racing writer)
            raise DuplicateRow.of(exc) from exc

    def get(self, ident: int) -> Event | None:
        return self._db.get(Event, ident)

    def by_ids(self, ids: Sequence[int]) -> list[Event]:
        return list(self._db.scalars(select(Event).where(Event.id.in_(list(ids))).order_by(Event.id)))

    def find(self, ref: int | str) -> Event | None:
        """An event by its ``id`` (integer) or its ``event_id`` (UUID), hot or archived."""
        which = Event.id == ref if isinstance(ref, int) else Event.event_id == str(uuid.UUID(str(ref)))
        row = self._db.scalars(select(Event).where(which)).first()
        if row is None:
            archived = archive_reads.orm_rows(archive_reads.in_archive(archive_reads.core(select(Event).where(which))))
            row = self._db.scalars(archived).first()
        return row

    def first_with_event_id(self, event_id: str) -> dict[str, Any] | None:
        """The envelope of the event with this ``event_id``, hot or archived (an idempotent retry may come late)."""
        row = self._db.scalars(select(Event).where(Event.event_id == event_id)).one_or_none()
        if row is not None:
            return envelope(row)
        archived = archive_reads.envelopes(self._db, archive_reads.in_archive(
            archive_reads.core(select(Event).where(Event.event_id == event_id))))
        return archived[0] if archived else None
