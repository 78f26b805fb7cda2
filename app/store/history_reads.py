"""The reads behind an entity's history and "what was it at t": a page of its stream, where it starts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.store import archive_reads
from app.store.event_store import envelope
from app.store.tables import Event, Snapshot

T = TypeVar("T")


def stream_page(db: Session, entity_type: str, entity_id: int, after_id: int, limit: int, include_archived: bool,
                batch: int, take: Callable[[Any], T]) -> T:
    """``take`` applied to the stream's envelopes after ``after_id`` (at most ``limit``), read in batches."""
    stmt = select(Event).where(Event.entity_type == entity_type, Event.entity_id == entity_id,
                               Event.sequence.is_not(None))
    query = (archive_reads.page(stmt, after_id, limit, fenced=False) if include_archived
             else stmt.where(Event.id > after_id).order_by(Event.id).limit(limit))
    with db.scalars(query.execution_options(yield_per=batch)) as result:
        return take(envelope(r) for r in result)


def first_sequence(db: Session, entity_type: str, entity_id: int) -> int | None:
    """The lowest sequence still stored, hot or archived (above 1: a purged prefix)."""
    lowest = select(func.min(Event.sequence)).where(Event.entity_type == entity_type, Event.entity_id == entity_id)
    firsts = [db.scalar(stmt) for stmt in (lowest, archive_reads.in_archive(lowest))]
    return min((f for f in firsts if f is not None), default=None)


def earliest_snapshot(db: Session, entity_type: str, entity_id: int) -> datetime | None:
    return db.scalar(select(func.min(Snapshot.as_of)).where(Snapshot.entity_type == entity_type,
                                                           Snapshot.entity_id == entity_id))


def code_of(db: Session, entity_type: str, entity_id: int) -> str | None:
    """The code the stream's events name the entity by (None for entities named by id)."""
    return db.scalar(select(Event.entity_code).where(Event.entity_type == entity_type, Event.entity_id == entity_id,
                                                     Event.entity_code.is_not(None)).limit(1))
