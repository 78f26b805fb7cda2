"""Agent sessions: start, resume, end, context; each a ``session`` stream event."""

from __future__ import annotations

import uuid
from typing import Any

from app.domain import events as catalogue
from app.domain.changes import ChangeContext
from app.domain.clock import Clock
from app.domain.errors import Conflict, Invalid
from app.domain.paging import trim_page
from app.store.event_store import envelope
from app.store.tables import Event
from app.store.uow import Repositories, UnitOfWork


def _resource(uow: Repositories, row: Any) -> dict[str, Any]:
    [body] = uow.streams["session"].resources([row])
    return body


def apply_start(uow: Repositories, data: dict[str, Any], ctx: ChangeContext, clock: Clock,
                reason: str | None = None) -> tuple[Any, list[Event]]:
    """Start a session inside the caller's transaction (the API's, or a rule run's)."""
    rows = uow.streams["session"]
    key = data.get("session_key") or f"sess-{uuid.uuid4().hex}"
    if rows.taken(key):
        raise Conflict(f"session key {key!r} is taken", {"session_key": ["already exists"]})
    now = clock()
    fields = {"agent_id": data["agent_id"], "status": "active", "started_at": now,
              "sprint_code": data.get("sprint_code"), "task_code": data.get("task_code"),
              "metadata": data.get("metadata") or {}}
    row = rows.add(key, fields, now)
    started = catalogue.created_event("session", rows.state(row))
    started = catalogue.PlannedEvent(
        catalogue.event_type("session", "started"), started.changes,
        {"reason": reason} if reason else {},
    )
    return row, uow.events.append_to_stream(rows.ref(row), [started], ctx, now)


def start(data: dict[str, Any], ctx: ChangeContext, uow: UnitOfWork, clock: Clock,
          reason: str | None = None) -> dict[str, Any]:
    with uow:
        row, _ = apply_start(uow, data, ctx, clock, reason)
        uow.commit()
        return _resource(uow, row)


def apply_transition(uow: Repositories, key: str, suffix: str, ctx: ChangeContext,
                     clock: Clock) -> tuple[Any, list[Event]]:
    """Resume or end inside the caller's transaction; ending an ended session is a conflict."""
    rows = uow.streams["session"]
    row = rows.get(key, lock=True)
    before = rows.state(row)
    if suffix == "ended" and before["status"] == "ended":
        raise Conflict(f"session {key!r} has already ended", {"status": ["already ended"]})
    now = clock()
    rows.write(row, {"status": "ended", "ended_at": now} if suffix == "ended"
               else {"status": "active", "resumed_at": now})
    after = rows.state(row)
    changes = {k: catalogue.change(before[k], v) for k, v in after.items() if before[k] != v}
    planned = catalogue.PlannedEvent(catalogue.event_type("session", suffix), changes)
    return row, uow.events.append_to_stream(rows.ref(row), [planned], ctx, now)


def _transition(key: str, suffix: str, ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    with uow:
        row, _ = apply_transition(uow, key, suffix, ctx, clock)
        uow.commit()
        return _resource(uow, row)


def resume(key: str, ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """Works on an active or an ended session: it becomes active again."""
    return _transition(key, "resumed", ctx, uow, clock)


def end(key: str, ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    return _transition(key, "ended", ctx, uow, clock)


def record_context(key: str, data: dict[str, Any], ctx: ChangeContext, uow: UnitOfWork,
                   clock: Clock) -> dict[str, Any]:
    """The context broker assembled context for this session."""
    with uow:
        rows = uow.streams["session"]
        row = rows.get(key, lock=True)
        planned = catalogue.PlannedEvent(catalogue.CONTEXT_ASSEMBLED, data=data)
        [event] = uow.events.append_to_stream(rows.ref(row), [planned], ctx, clock())
        uow.commit()
        return envelope(event)


def check_open(key: str, uow: UnitOfWork) -> None:
    """``X-Session-Key`` files a change under a session: it must exist and not have ended,
    or changes would be filed under a session nobody can see or that is over."""
    with uow:
        status = uow.streams["session"].status(key)
    if status is None:
        raise Invalid(f"X-Session-Key names no session: {key!r}", {"X-Session-Key": ["no such session"]})
    if status == "ended":
        raise Invalid(f"X-Session-Key names an ended session: {key!r}; resume it first",
                      {"X-Session-Key": ["the session has ended"]})


def get(key: str, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return _resource(uow, uow.streams["session"].get(key))


def list_page(filters: dict[str, Any], after_id: int, limit: int,
              uow: UnitOfWork) -> tuple[list[dict[str, Any]], int | None]:
    """Sessions in start order, keyset-paged by id."""
    with uow:
        rows = uow.streams["session"]
        wanted: dict[str, Any] = {name: filters[name] for name in ("agent_id", "status", "sprint_code") if name in filters}
        page, last = trim_page(rows.page(wanted, after_id, limit + 1), limit, lambda r: r.id)
        return rows.resources(page), last
