"""Keyset pages of the log under any combination of scopes (``uow.event_pages``).

Pages stop at the visible bound (``event_fence``), so a client following
``after=`` cursors never moves past an event that commits late.

A page holds at most ``limit`` events and ``PAGE_BYTE_BUDGET`` bytes; one row
more than asked tells whether there is a next page. Archived events come from
their own table when the filter asks for them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.domain.event_filter import EventFilter
from app.domain.jsonvalues import serialized_size
from app.domain.paging import take_within_budget
from app.store import archive_reads
from app.store import event_queries as q
from app.store.envelopes import envelope
from app.store.event_fence import visible_bound
from app.store.tables import Event

Page = tuple[list[dict[str, Any]], int | None]

# Rows fetched per round trip while filling a page: a page cut short by the byte budget
# never drags the rest of its ``limit`` out of the database.
FETCH_BATCH = 64


class EventPages:
    """The event-reading repository of one unit of work."""

    def __init__(self, db: Session) -> None:
        self._db = db

    def matching(self, flt: EventFilter, after_id: int, limit: int) -> Page:
        if flt.include_archived:
            return self._page(q.apply_filter(select(Event), flt), after_id, limit, include_archived=True)
        led = q.index_led(flt)
        return self._page(q.apply_filter(select(Event), led.rest).where(*led.conditions), after_id, limit,
                          lead=led.lead)

    def one(self, event_id: int) -> dict[str, Any] | None:
        """The event with this id, hot or archived; None when there is none."""
        row = self._db.get(Event, event_id)
        if row is not None:
            return envelope(row)
        archived = archive_reads.envelopes(self._db, archive_reads.in_archive(
            archive_reads.core(select(Event).where(Event.id == event_id))))
        return archived[0] if archived else None

    def of_correlation(self, correlation_id: str, flt: EventFilter, after_id: int, limit: int) -> Page:
        stmt = q.by_correlation(q.apply_filter(select(Event), flt), self._db, correlation_id)
        return self._page(stmt, after_id, limit, fenced=True, include_archived=flt.include_archived)

    def of_session(self, key: str, flt: EventFilter, after_id: int, limit: int) -> Page:
        return self._page(q.by_session(q.apply_filter(select(Event), flt), key), after_id, limit,
                          include_archived=flt.include_archived)

    def entity_id(self, entity_type: str, code: str) -> int | None:
        return q.entity_id_for(self._db, entity_type, code)

    def of_entity(self, entity_type: str, entity_id: int, related: bool, flt: EventFilter, after_id: int,
                  limit: int) -> Page:
        """The entity's own stream, or (``related``) every stream its correlation chain reaches."""
        stmt = q.apply_filter(select(Event), flt)
        if related:
            stmt = q.by_entity_chain(stmt, self._db, entity_type, entity_id)
        else:
            stmt = q.by_entity_stream(stmt, entity_type, entity_id)
        return self._page(stmt, after_id, limit, fenced=True, include_archived=flt.include_archived)

    def _page(self, stmt: Select[tuple[Event]], after_id: int, limit: int, *, fenced: bool = False,
              include_archived: bool = False, lead: tuple[Any, ...] = ()) -> Page:
        bound = visible_bound(self._db)  # its own statement, before the read's snapshot
        if bound is not None:
            stmt = stmt.where(Event.id <= bound)
        query = (archive_reads.page(stmt, after_id, limit + 1, fenced=fenced) if include_archived
                 else q.keyset(stmt, after_id, limit + 1, fenced=fenced, lead=lead))
        with self._db.scalars(query.execution_options(yield_per=FETCH_BATCH)) as result:
            page, more = take_within_budget((envelope(r) for r in result), limit, serialized_size)
        return page, (page[-1]["id"] if more else None)
