"""Loading and locking entity rows, and the state the domain sees of them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.domain.clock import iso
from app.domain.entities import TASK_STATUSES
from app.domain.errors import Invalid, NotFound
from app.store.event_store import StreamRef
from app.store.tables import AgentSession, Sprint, Task

DEFAULT_PRIORITY = "P2"


def _one(session: Session, stmt: Any, lock: bool) -> Any:
    """A locked read refreshes what the session may already hold: the lock is
    only worth having if the values it protects are the current ones."""
    if lock:
        stmt = stmt.with_for_update(of=stmt.column_descriptions[0]["entity"])
        stmt = stmt.execution_options(populate_existing=True)
    return session.scalars(stmt).unique().one_or_none()


def find_sprint(session: Session, code: str, *, lock: bool = False, deleted: bool = False) -> Sprint:
    row = _one(session, select(Sprint).where(Sprint.sprint_code == code), lock)
    if row is None or (row.deleted_at is not None and not deleted):
        raise NotFound(f"no sprint with code {code!r}")
    return row  # type: ignore[no-any-return]


def find_task(session: Session, code: str, *, lock: bool = False, deleted: bool = False) -> Task:
    row = _one(session, select(Task).where(Task.task_code == code), lock)
    if row is None or (row.deleted_at is not None and not deleted):
        raise NotFound(f"no task with code {code!r}")
    return row  # type: ignore[no-any-return]


def find_session(session: Session, key: str, *, lock: bool = False) -> AgentSession:
    row = _one(session, select(AgentSession).where(AgentSession.session_key == key), lock)
    if row is None:
        raise NotFound(f"no agent session with key {key!r}")
    return row  # type: ignore[no-any-return]


def sprint_for_field(session: Session, code: str | None, field: str = "sprint_code") -> Sprint | None:
    """A sprint named in a body: unknown or deleted is a validation error, not a 404."""
    if code is None:
        return None
    row = session.scalars(select(Sprint).where(Sprint.sprint_code == code)).one_or_none()
    if row is None or row.deleted_at is not None:
        raise Invalid(f"sprint {code!r} does not exist", {field: [f"unknown sprint {code!r}"]})
    return row


def task_for_field(session: Session, code: str | None, field: str = "task_code") -> Task | None:
    if code is None:
        return None
    row = session.scalars(select(Task).where(Task.task_code == code)).unique().one_or_none()
    if row is None or row.deleted_at is not None:
        raise Invalid(f"task {code!r} does not exist", {field: [f"unknown task {code!r}"]})
    return row


def sprint_state(row: Sprint) -> dict[str, Any]:
    return {
        "sprint_code": row.sprint_code,
        "title": row.title,
        "status": row.status,
        "priority": row.priority,
        "metadata": dict(row.meta or {}),
    }


def task_state(row: Task) -> dict[str, Any]:
    return {
        "task_code": row.task_code,
        "sprint_code": row.sprint.sprint_code if row.sprint is not None else None,
        "title": row.title,
        "description": row.description,
        "status": row.status,
        "priority": row.priority,
        "progress": row.progress,
        "assignee": row.assignee,
        "metadata": dict(row.meta or {}),
    }


def session_state(row: AgentSession) -> dict[str, Any]:
    return {
        "session_key": row.session_key,
        "agent_id": row.agent_id,
        "sprint_code": row.sprint.sprint_code if row.sprint is not None else None,
        "task_code": row.task.task_code if row.task is not None else None,
        "status": row.status,
        "started_at": iso(row.started_at),
        "resumed_at": iso(row.resumed_at),
        "ended_at": iso(row.ended_at),
        "metadata": dict(row.meta or {}),
    }


def stream_fields(row: Sprint | Task | AgentSession) -> dict[str, Any]:
    """The read-only fields every entity with a stream shows beside its state."""
    return {
        "id": row.id,
        "correlation_id": row.correlation_id,
        "version": row.version,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def session_priority(row: AgentSession) -> str:
    """A session's events take the priority of the work they are attached to."""
    if row.task is not None:
        return row.task.priority
    if row.sprint is not None:
        return row.sprint.priority
    return DEFAULT_PRIORITY


def stream_of(entity_type: str, row: Any) -> StreamRef:
    code_field = {"sprint": "sprint_code", "task": "task_code", "session": "session_key"}
    code = getattr(row, code_field[entity_type], None)
    priority = session_priority(row) if entity_type == "session" else row.priority
    return StreamRef(entity_type, row.id, code, row.correlation_id, priority, row)


def task_counts(session: Session, sprint_ids: list[int]) -> dict[int, dict[str, int]]:
    """Live tasks of each sprint by status, in one grouped query for a whole page."""
    counts = {sid: dict.fromkeys(TASK_STATUSES, 0) for sid in sprint_ids}
    if not sprint_ids:
        return counts
    rows = session.execute(
        select(Task.sprint_id, Task.status, func.count())
        .where(Task.sprint_id.in_(sprint_ids), Task.deleted_at.is_(None))
        .group_by(Task.sprint_id, Task.status)
    )
    for sprint_id, status, n in rows:
        counts[sprint_id][status] = n
    return counts
