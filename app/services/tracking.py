"""Sprints and tasks: create, update, delete; every change becomes events."""

from __future__ import annotations

import dataclasses
from typing import Any

from app.domain import events as catalogue
from app.domain.changes import ChangeContext
from app.domain.clock import Clock
from app.domain.entities import apply_patch, check_status_change, check_values
from app.domain.errors import Conflict, NotFound
from app.domain.paging import trim_page
from app.domain.stream_types import SPRINT, TASK, TRACKED, StreamType, stream_type
from app.store.tables import Event
from app.store.uow import Repositories, UnitOfWork

# What the views name them by: the registry's declarations of the tracked types.
Kind = StreamType
KINDS = {name: stream_type(name) for name in TRACKED}
__all__ = ["KINDS", "SPRINT", "TASK", "Kind"]


def create(kind: Kind, data: dict[str, Any], ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    code_field = str(kind.code_field)
    code = data[code_field]
    with uow:
        rows = uow.streams[kind.name]
        if rows.taken(code):
            raise Conflict(f"{kind.name} code {code!r} is taken (codes are never reused)",
                           {code_field: ["already exists"]})
        now = clock()
        row = rows.add(code, data, now)
        event = catalogue.created_event(kind.name, rows.state(row))
        uow.events.append_to_stream(rows.ref(row), [event], ctx, now)
        [body] = rows.resources([row])  # before commit: no second transaction to read it back
        uow.commit()
        return body


def apply_update(uow: Repositories, kind: Kind, code: str, patch: dict[str, Any], ctx: ChangeContext,
                 clock: Clock, *, data: dict[str, Any] | None = None) -> tuple[Any, list[Event]]:
    """The update inside the caller's transaction (the API's, or a rule run's): lock, diff, append.

    Returns the row and the events; no events when nothing changed. The
    caller commits, so a rule's effects land with its run record. ``data`` goes
    on every event (a compensation says what it compensates).
    """
    rows = uow.streams[kind.name]
    row = rows.get(code, lock=True)
    ctx.check_version(row.version)
    before = rows.state(row)
    after = apply_patch(before, patch)
    check_values(kind.name, after)
    check_status_change(kind.name, before["status"], after["status"])
    planned = catalogue.granular_events(kind.name, before, after)
    if not planned:
        return row, []
    if data:
        planned = [dataclasses.replace(p, data={**p.data, **data}) for p in planned]
    rows.write(row, {k: after[k] for k in patch if k in after})
    return row, uow.events.append_to_stream(rows.ref(row), planned, ctx, clock())


def update(kind: Kind, code: str, patch: dict[str, Any], ctx: ChangeContext, uow: UnitOfWork,
           clock: Clock) -> dict[str, Any]:
    """Apply a partial update; one event per granular change, none when nothing changed."""
    with uow:
        row, events = apply_update(uow, kind, code, patch, ctx, clock)
        [body] = uow.streams[kind.name].resources([row])
        if events:
            uow.commit()
        return body


def delete(kind: Kind, code: str, ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> None:
    """Soft delete: the row and its history stay; the code is never reused."""
    with uow:
        rows = uow.streams[kind.name]
        row = rows.get(code, lock=True)
        ctx.check_version(row.version)
        now = clock()
        rows.delete(row, now)
        event = catalogue.deleted_event(kind.name, rows.state(row))
        uow.events.append_to_stream(rows.ref(row), [event], ctx, now)
        uow.commit()


def record_rejection(entity_type: str, code: str, status: int, detail: str,
                     errors: dict[str, Any] | None, ctx: ChangeContext, uow: UnitOfWork,
                     clock: Clock) -> None:
    """``validation_failed``: in its own transaction, outside the entity's stream."""
    with uow:
        rows = uow.streams[KINDS[entity_type].name]
        try:
            row = rows.get(code)
        except NotFound:  # a rejection of a missing entity records nothing
            return
        planned = catalogue.PlannedEvent(
            catalogue.event_type(entity_type, "validation_failed"),
            data={"status": status, "detail": detail, "errors": errors or {}},
        )
        uow.events.append_to_stream(rows.ref(row), [planned], ctx, clock(), in_stream=False, dispatch=False)
        uow.commit()


def get(kind: Kind, code: str, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        rows = uow.streams[kind.name]
        [body] = rows.resources([rows.get(code)])
        return body


def list_page(kind: Kind, filters: dict[str, Any], after_id: int, limit: int,
              uow: UnitOfWork) -> tuple[list[dict[str, Any]], int | None]:
    """Live entities in creation order, keyset-paged by id."""
    with uow:
        rows = uow.streams[kind.name]
        page, last = trim_page(rows.page(filters, after_id, limit + 1), limit, lambda r: r.id)
        return rows.resources(page), last
