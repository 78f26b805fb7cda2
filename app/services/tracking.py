"""Sprints and tasks: create, update, delete; every change becomes events."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain import events as catalogue
from app.domain.clock import Clock
from app.domain.entities import apply_patch, check_status_change, check_values
from app.domain.errors import Conflict, NotFound
from app.domain.paging import trim_page
from app.services.context import ChangeContext
from app.store import repositories as repo
from app.store.event_store import Event, append
from app.store.tables import Sprint, Task
from app.store.uow import UnitOfWork


@dataclass(frozen=True)
class Kind:
    """How one tracked entity type is found, read and written."""

    name: str
    model: type[Sprint] | type[Task]
    code_field: str
    find: Callable[..., Any]
    state: Callable[[Any], dict[str, Any]]


SPRINT = Kind("sprint", Sprint, "sprint_code", repo.find_sprint, repo.sprint_state)
TASK = Kind("task", Task, "task_code", repo.find_task, repo.task_state)
KINDS = {"sprint": SPRINT, "task": TASK}


def _body(kind: Kind, row: Any, counts: dict[int, dict[str, int]]) -> dict[str, Any]:
    body = kind.state(row) | repo.stream_fields(row)
    if kind is SPRINT:
        body["task_counts"] = counts[row.id]
    return body


def resource(kind: Kind, session: Session, row: Any) -> dict[str, Any]:
    """The public representation: the state plus the read-only fields."""
    counts = repo.task_counts(session, [row.id]) if kind is SPRINT else {}
    return _body(kind, row, counts)


def _write_fields(session: Session, kind: Kind, row: Any, state: dict[str, Any]) -> None:
    for name, value in state.items():
        if name == "metadata":
            row.meta = value
        elif name == "sprint_code" and kind is TASK:
            row.sprint = repo.sprint_for_field(session, value)
        elif name != kind.code_field:
            setattr(row, name, value)


def _dispatch(uow: UnitOfWork, rows: list[Event]) -> None:
    uow.pending_dispatch.extend(r.id for r in rows)


def create(kind: Kind, data: dict[str, Any], ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    code = data[kind.code_field]
    with uow:
        session = uow.session
        if session.scalars(select(kind.model.id).where(getattr(kind.model, kind.code_field) == code)).first():
            raise Conflict(f"{kind.name} code {code!r} is taken (codes are never reused)",
                           {kind.code_field: ["already exists"]})
        now = clock()
        row = kind.model(correlation_id=str(uuid.uuid4()), version=0, created_at=now, updated_at=now)
        setattr(row, kind.code_field, code)
        _write_fields(session, kind, row, data)
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(f"{kind.name} code {code!r} is taken", {kind.code_field: ["already exists"]}) from None
        event = catalogue.created_event(kind.name, kind.state(row))
        _dispatch(uow, append(session, repo.stream_of(kind.name, row), [event], ctx.meta(), now))
        body = resource(kind, session, row)  # before commit: no second transaction to read it back
        uow.commit()
        return body


def apply_update(session: Session, kind: Kind, code: str, patch: dict[str, Any], ctx: ChangeContext,
                 clock: Clock, *, data: dict[str, Any] | None = None) -> tuple[Any, list[Event]]:
    """The update inside the caller's transaction (the API's, or a rule run's): lock, diff, append.

    Returns the row and the events; no events when nothing changed. The
    caller commits, so a rule's effects land with its run record. ``data`` goes
    on every event (a compensation says what it compensates).
    """
    row = kind.find(session, code, lock=True)
    ctx.check_version(row.version)
    before = kind.state(row)
    after = apply_patch(before, patch)
    check_values(kind.name, after)
    check_status_change(kind.name, before["status"], after["status"])
    planned = catalogue.granular_events(kind.name, before, after)
    if not planned:
        return row, []
    if data:
        planned = [dataclasses.replace(p, data={**p.data, **data}) for p in planned]
    _write_fields(session, kind, row, {k: after[k] for k in patch if k in after})
    return row, append(session, repo.stream_of(kind.name, row), planned, ctx.meta(), clock())


def update(kind: Kind, code: str, patch: dict[str, Any], ctx: ChangeContext, uow: UnitOfWork,
           clock: Clock) -> dict[str, Any]:
    """Apply a partial update; one event per granular change, none when nothing changed."""
    with uow:
        row, rows = apply_update(uow.session, kind, code, patch, ctx, clock)
        body = resource(kind, uow.session, row)
        if rows:
            _dispatch(uow, rows)
            uow.commit()
        return body


def delete(kind: Kind, code: str, ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> None:
    """Soft delete: the row and its history stay; the code is never reused."""
    with uow:
        session = uow.session
        row = kind.find(session, code, lock=True)
        ctx.check_version(row.version)
        now = clock()
        row.deleted_at = now
        event = catalogue.deleted_event(kind.name, kind.state(row))
        _dispatch(uow, append(session, repo.stream_of(kind.name, row), [event], ctx.meta(), now))
        uow.commit()


def record_rejection(entity_type: str, code: str, status: int, detail: str,
                     errors: dict[str, Any] | None, ctx: ChangeContext, uow: UnitOfWork,
                     clock: Clock) -> None:
    """``validation_failed``: in its own transaction, outside the entity's stream."""
    kind = KINDS[entity_type]
    with uow:
        session = uow.session
        try:
            row = kind.find(session, code)
        except NotFound:  # a rejection of a missing entity records nothing
            return
        planned = catalogue.PlannedEvent(
            catalogue.event_type(entity_type, "validation_failed"),
            data={"status": status, "detail": detail, "errors": errors or {}},
        )
        append(session, repo.stream_of(entity_type, row), [planned], ctx.meta(), clock(),
               in_stream=False, dispatch=False)
        uow.commit()


def get(kind: Kind, code: str, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return resource(kind, uow.session, kind.find(uow.session, code))


def list_page(kind: Kind, filters: dict[str, Any], after_id: int, limit: int,
              uow: UnitOfWork) -> tuple[list[dict[str, Any]], int | None]:
    """Live entities in creation order, keyset-paged by id."""
    model = kind.model
    with uow:
        session = uow.session
        stmt = select(model).where(model.deleted_at.is_(None), model.id > after_id)
        for name, value in filters.items():
            if name == "sprint_code":
                stmt = stmt.join(Sprint, Task.sprint_id == Sprint.id).where(Sprint.sprint_code == value)
            else:
                stmt = stmt.where(getattr(model, name) == value)
        found: list[Any] = list(session.scalars(stmt.order_by(model.id).limit(limit + 1)).unique())
        rows, last = trim_page(found, limit, lambda r: r.id)
        counts = repo.task_counts(session, [r.id for r in rows]) if kind is SPRINT else {}
        return [_body(kind, row, counts) for row in rows], last
