"""Agent sessions: start, resume, end, context; each a ``session`` stream event."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import events as catalogue
from app.domain.clock import Clock
from app.domain.errors import Conflict, Invalid
from app.domain.paging import trim_page
from app.services.context import ChangeContext
from app.store import repositories as repo
from app.store.event_store import append, envelope
from app.store.tables import AgentSession, Event, Sprint
from app.store.uow import UnitOfWork


def _resource(row: AgentSession) -> dict[str, Any]:
    return repo.session_state(row) | repo.stream_fields(row)


def _in_session(ctx: ChangeContext, row: AgentSession) -> ChangeContext:
    """A session's own events carry its key whatever header came with them."""
    return dataclasses.replace(ctx, session_key=row.session_key)


def apply_start(session: Session, data: dict[str, Any], ctx: ChangeContext, clock: Clock,
                reason: str | None = None) -> tuple[AgentSession, list[Event]]:
    """Start a session inside the caller's transaction (the API's, or a rule run's)."""
    key = data.get("session_key") or f"sess-{uuid.uuid4().hex}"
    if session.scalars(select(AgentSession.id).where(AgentSession.session_key == key)).first():
        raise Conflict(f"session key {key!r} is taken", {"session_key": ["already exists"]})
    now = clock()
    row = AgentSession(
        session_key=key, agent_id=data["agent_id"], status="active", started_at=now,
        sprint=repo.sprint_for_field(session, data.get("sprint_code")),
        task=repo.task_for_field(session, data.get("task_code")),
        meta=data.get("metadata") or {}, correlation_id=str(uuid.uuid4()),
        version=0, created_at=now, updated_at=now,
    )
    session.add(row)
    session.flush()
    started = catalogue.created_event("session", repo.session_state(row))
    started = catalogue.PlannedEvent(
        catalogue.event_type("session", "started"), started.changes,
        {"reason": reason} if reason else {},
    )
    return row, append(session, repo.stream_of("session", row), [started], _in_session(ctx, row).meta(), now)


def start(data: dict[str, Any], ctx: ChangeContext, uow: UnitOfWork, clock: Clock,
          reason: str | None = None) -> dict[str, Any]:
    with uow:
        row, rows = apply_start(uow.session, data, ctx, clock, reason)
        uow.pending_dispatch.extend(r.id for r in rows)
        uow.commit()
        return _resource(row)


def apply_transition(session: Session, key: str, suffix: str, ctx: ChangeContext,
                     clock: Clock) -> tuple[AgentSession, list[Event]]:
    """Resume or end inside the caller's transaction; ending an ended session is a conflict."""
    row = repo.find_session(session, key, lock=True)
    if suffix == "ended" and row.status == "ended":
        raise Conflict(f"session {key!r} has already ended", {"status": ["already ended"]})
    before = repo.session_state(row)
    now = clock()
    if suffix == "ended":
        row.status, row.ended_at = "ended", now
    else:
        row.status, row.resumed_at = "active", now
    after = repo.session_state(row)
    changes = {k: catalogue.change(before[k], v) for k, v in after.items() if before[k] != v}
    planned = catalogue.PlannedEvent(catalogue.event_type("session", suffix), changes)
    return row, append(session, repo.stream_of("session", row), [planned], _in_session(ctx, row).meta(), now)


def _transition(key: str, suffix: str, ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    with uow:
        row, rows = apply_transition(uow.session, key, suffix, ctx, clock)
        uow.pending_dispatch.extend(r.id for r in rows)
        uow.commit()
        return _resource(row)


def resume(key: str, ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """Works on an active or an ended session: it becomes active again."""
    return _transition(key, "resumed", ctx, uow, clock)


def end(key: str, ctx: ChangeContext, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    return _transition(key, "ended", ctx, uow, clock)


def record_context(key: str, data: dict[str, Any], ctx: ChangeContext, uow: UnitOfWork,
                   clock: Clock) -> dict[str, Any]:
    """The context broker assembled context for this session."""
    with uow:
        session = uow.session
        row = repo.find_session(session, key, lock=True)
        planned = catalogue.PlannedEvent(catalogue.CONTEXT_ASSEMBLED, data=data)
        rows = append(session, repo.stream_of("session", row), [planned], _in_session(ctx, row).meta(), clock())
        uow.pending_dispatch.extend(r.id for r in rows)
        uow.commit()
        return envelope(rows[0])


def check_open(key: str, uow: UnitOfWork) -> None:
    """``X-Session-Key`` files a change under a session: it must exist and not have ended,
    or changes would be filed under a session nobody can see or that is over."""
    with uow:
        status = uow.session.scalar(select(AgentSession.status).where(AgentSession.session_key == key))
    if status is None:
        raise Invalid(f"X-Session-Key names no session: {key!r}", {"X-Session-Key": ["no such session"]})
    if status == "ended":
        raise Invalid(f"X-Session-Key names an ended session: {key!r}; resume it first",
                      {"X-Session-Key": ["the session has ended"]})


def get(key: str, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return _resource(repo.find_session(uow.session, key))


def list_page(filters: dict[str, Any], after_id: int, limit: int,
              uow: UnitOfWork) -> tuple[list[dict[str, Any]], int | None]:
    """Sessions in start order, keyset-paged by id."""
    with uow:
        stmt = select(AgentSession).where(AgentSession.id > after_id)
        if "agent_id" in filters:
            stmt = stmt.where(AgentSession.agent_id == filters["agent_id"])
        if "status" in filters:
            stmt = stmt.where(AgentSession.status == filters["status"])
        if "sprint_code" in filters:
            stmt = stmt.where(AgentSession.sprint.has(Sprint.sprint_code == filters["sprint_code"]))
        found = list(uow.session.scalars(stmt.order_by(AgentSession.id).limit(limit + 1)).unique())
        rows, last = trim_page(found, limit, lambda r: r.id)
        return [_resource(r) for r in rows], last
