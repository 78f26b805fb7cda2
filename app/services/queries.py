"""Reading the log: keyset pages of events under any combination of scopes."""

from __future__ import annotations

from typing import Any

from app.domain.errors import NotFound
from app.domain.event_filter import EventFilter
from app.store.event_pages import Page
from app.store.uow import UnitOfWork


def list_events(flt: EventFilter, after_id: int, limit: int, uow: UnitOfWork) -> Page:
    with uow:
        return uow.event_pages.matching(flt, after_id, limit)


def get_event(event_id: int, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        found = uow.event_pages.one(event_id)
    if found is None:
        raise NotFound(f"no event with id {event_id}")
    return found


def by_correlation(correlation_id: str, flt: EventFilter, after_id: int, limit: int, uow: UnitOfWork) -> Page:
    with uow:
        return uow.event_pages.of_correlation(correlation_id, flt, after_id, limit)


def by_session(key: str, flt: EventFilter, after_id: int, limit: int, uow: UnitOfWork) -> Page:
    with uow:
        return uow.event_pages.of_session(key, flt, after_id, limit)


def by_entity(entity_type: str, code: str, related: bool, flt: EventFilter, after_id: int,
              limit: int, uow: UnitOfWork) -> Page:
    with uow:
        entity_id = uow.event_pages.entity_id(entity_type, code)
        if entity_id is None:
            raise NotFound(f"no {entity_type} with code {code!r}")
        return uow.event_pages.of_entity(entity_type, entity_id, related, flt, after_id, limit)
