"""Reading the log: keyset pages of events under any combination of scopes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from app.domain.errors import NotFound
from app.domain.jsonvalues import serialized_size
from app.domain.paging import take_within_budget
from app.store import archive_reads
from app.store import event_queries as q
from app.store.event_store import envelope
from app.store.tables import Event
from app.store.uow import UnitOfWork

EventFilter = q.EventFilter  # the filter vocabulary callers of these use cases speak

Page = tuple[list[dict[str, Any]], int | None]


# Rows fetched per round trip while filling a page: a page cut short by the byte budget
# never drags the rest of its ``limit`` out of the database.
FETCH_BATCH = 64


def _page(uow: UnitOfWork, stmt: Select, after_id: int, limit: int, *,  # type: ignore[type-arg]
          fenced: bool = False, include_archived: bool = False, lead: tuple[Any, ...] = ()) -> Page:
    """One keyset page of at most ``limit`` events and ``PAGE_BYTE_BUDGET`` bytes; one row more
    than asked tells whether there is a next page. Archived events come from their own table."""
    query = (archive_reads.page(stmt, after_id, limit + 1, fenced=fenced) if include_archived
             else q.keyset(stmt, after_id, limit + 1, fenced=fenced, lead=lead))
    with uow.session.scalars(query.execution_options(yield_per=FETCH_BATCH)) as result:
        page, more = take_within_budget((envelope(r) for r in result), limit, serialized_size)
    return page, (page[-1]["id"] if more else None)


def list_events(flt: q.EventFilter, after_id: int, limit: int, uow: UnitOfWork) -> Page:
    with uow:
        if flt.include_archived:
            return _page(uow, q.apply_filter(select(Event), flt), after_id, limit, include_archived=True)
        led = q.index_led(flt)
        return _page(uow, q.apply_filter(select(Event), led.rest).where(*led.conditions), after_id, limit,
                     lead=led.lead)


def get_event(event_id: int, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        row = uow.session.get(Event, event_id)
        if row is not None:
            return envelope(row)
        archived = archive_reads.envelopes(uow.session, archive_reads.in_archive(
            archive_reads.core(select(Event).where(Event.id == event_id))))
        if not archived:
            raise NotFound(f"no event with id {event_id}")
        return archived[0]


def by_correlation(correlation_id: str, flt: q.EventFilter, after_id: int, limit: int, uow: UnitOfWork) -> Page:
    with uow:
        stmt = q.by_correlation(q.apply_filter(select(Event), flt), uow.session, correlation_id)
        return _page(uow, stmt, after_id, limit, fenced=True, include_archived=flt.include_archived)


def by_session(key: str, flt: q.EventFilter, after_id: int, limit: int, uow: UnitOfWork) -> Page:
    with uow:
        return _page(uow, q.by_session(q.apply_filter(select(Event), flt), key), after_id, limit,
                     include_archived=flt.include_archived)


def by_entity(entity_type: str, code: str, related: bool, flt: q.EventFilter, after_id: int,
              limit: int, uow: UnitOfWork) -> Page:
    with uow:
        entity_id = q.entity_id_for(uow.session, entity_type, code)
        if entity_id is None:
            raise NotFound(f"no {entity_type} with code {code!r}")
        stmt = q.apply_filter(select(Event), flt)
        if related:
            stmt = q.by_entity_chain(stmt, uow.session, entity_type, entity_id)
        else:
            stmt = q.by_entity_stream(stmt, entity_type, entity_id)
        return _page(uow, stmt, after_id, limit, fenced=True, include_archived=flt.include_archived)
