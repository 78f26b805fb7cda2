"""Composable scopes over the event log; each narrows a ``Select`` of events.

Every scope is index-backed on PostgreSQL (see the migrations); they combine
freely, so ``/events``, the correlation, session and entity views, timeline and
statistics share one filter vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app.store.tables import AgentSession, Event, Sprint, Task


@dataclass(frozen=True)
class EventFilter:
    """The filters every event list accepts (CONTRACT §2, ``GET /events``)."""

    type: str | None = None
    entity_type: str | None = None
    entity_code: str | None = None
    actor: str | None = None
    session_key: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    include_archived: bool = False


def by_type(stmt: Select, pattern: str) -> Select:  # type: ignore[type-arg]
    if pattern.endswith(".*"):
        prefix = pattern[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return stmt.where(Event.type.like(prefix + "%", escape="\\"))
    return stmt.where(Event.type == pattern)


def by_actor(stmt: Select, actor: str) -> Select:  # type: ignore[type-arg]
    return stmt.where(Event.actor == actor)


def by_session(stmt: Select, key: str) -> Select:  # type: ignore[type-arg]
    return stmt.where(Event.session_key == key)


def by_date_range(stmt: Select, start: datetime | None, end: datetime | None) -> Select:  # type: ignore[type-arg]
    """``start`` inclusive, ``end`` exclusive."""
    if start is not None:
        stmt = stmt.where(Event.emitted_at >= start)
    if end is not None:
        stmt = stmt.where(Event.emitted_at < end)
    return stmt


def by_entity(stmt: Select, entity_type: str | None, code: str | None) -> Select:  # type: ignore[type-arg]
    if entity_type is not None:
        stmt = stmt.where(Event.entity_type == entity_type)
    if code is not None:
        stmt = stmt.where(Event.entity_code == code)
    return stmt


def hot_only(stmt: Select, include_archived: bool) -> Select:  # type: ignore[type-arg]
    return stmt if include_archived else stmt.where(Event.archived_at.is_(None))


def correlation_condition(session: Session, correlation_id: str) -> ColumnElement[bool]:
    """The event's own ``correlation_id`` or any id in its ``correlation_chain``."""
    if session.get_bind().dialect.name == "postgresql":
        in_chain = type_coerce(Event.correlation_chain, JSONB).contains([correlation_id])
    else:
        members = func.json_each(Event.correlation_chain).table_valued("value")
        in_chain = exists(select(1).select_from(members).where(members.c.value == correlation_id))
    return or_(Event.correlation_id == correlation_id, in_chain)


def by_correlation(stmt: Select, session: Session, correlation_id: str) -> Select:  # type: ignore[type-arg]
    return stmt.where(correlation_condition(session, correlation_id))


def related_streams(session: Session, entity_type: str, entity_id: int) -> dict[str, set[int]]:
    """The entity plus related ones: a sprint's tasks and the sessions attached to
    the sprint or its tasks; a task's sprint and the sessions attached to the task."""
    streams: dict[str, set[int]] = {entity_type: {entity_id}}
    if entity_type == "sprint":
        task_ids = set(session.scalars(select(Task.id).where(Task.sprint_id == entity_id)))
        streams["task"] = task_ids
        attached = or_(AgentSession.sprint_id == entity_id, AgentSession.task_id.in_(task_ids))
        streams["session"] = set(session.scalars(select(AgentSession.id).where(attached)))
    elif entity_type == "task":
        sprint_id = session.scalar(select(Task.sprint_id).where(Task.id == entity_id))
        if sprint_id is not None:
            streams["sprint"] = {sprint_id}
        streams["session"] = set(
            session.scalars(select(AgentSession.id).where(AgentSession.task_id == entity_id))
        )
    return streams


def by_entity_chain(stmt: Select, session: Session, entity_type: str, entity_id: int) -> Select:  # type: ignore[type-arg]
    conditions = [
        and_(Event.entity_type == kind, Event.entity_id.in_(sorted(ids)))
        for kind, ids in related_streams(session, entity_type, entity_id).items()
        if ids
    ]
    return stmt.where(or_(*conditions) if conditions else false())


def apply_filter(stmt: Select, flt: EventFilter) -> Select:  # type: ignore[type-arg]
    if flt.type:
        stmt = by_type(stmt, flt.type)
    stmt = by_entity(stmt, flt.entity_type, flt.entity_code)
    if flt.actor:
        stmt = by_actor(stmt, flt.actor)
    if flt.session_key:
        stmt = by_session(stmt, flt.session_key)
    stmt = by_date_range(stmt, flt.start, flt.end)
    return hot_only(stmt, flt.include_archived)


def entity_id_for(session: Session, entity_type: str, code: str) -> int | None:
    """Any entity ever created, deleted ones included: their history stays readable."""
    model, column = {
        "sprint": (Sprint, Sprint.sprint_code),
        "task": (Task, Task.task_code),
        "session": (AgentSession, AgentSession.session_key),
    }.get(entity_type, (None, None))
    if model is None or column is None:
        return session.scalar(
            select(Event.entity_id).where(Event.entity_type == entity_type, Event.entity_code == code).limit(1)
        )
    return session.scalar(select(model.id).where(column == code))  # type: ignore[attr-defined]
