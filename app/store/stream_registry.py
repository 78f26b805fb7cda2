"""The stream-type registry, store half: each domain declaration paired with its table,
its live-state projection, its priority and its field writer.

Keyed by the domain's ``StreamType`` objects, so the two halves cannot name a
type differently; ``tests/unit/test_stream_registry.py`` checks they cover the same types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.domain.clock import iso
from app.domain.stream_types import DEFAULT_PRIORITY, SESSION, SIGNAL, SPRINT, TASK, StreamType, stream_type
from app.store.tables import AgentSession, Signal, Sprint, Task

# (field name, value) -> the related row a reference field points at (``sprint_code`` -> a Sprint).
Resolve = Callable[[str, Any], Any]


def sprint_state(row: Sprint) -> dict[str, Any]:
    return {"sprint_code": row.sprint_code, "title": row.title, "status": row.status, "priority": row.priority,
            "metadata": dict(row.meta or {})}


def task_state(row: Task) -> dict[str, Any]:
    return {"task_code": row.task_code, "sprint_code": row.sprint.sprint_code if row.sprint is not None else None,
            "title": row.title, "description": row.description, "status": row.status, "priority": row.priority,
            "progress": row.progress, "assignee": row.assignee, "metadata": dict(row.meta or {})}


def session_state(row: AgentSession) -> dict[str, Any]:
    return {"session_key": row.session_key, "agent_id": row.agent_id,
            "sprint_code": row.sprint.sprint_code if row.sprint is not None else None,
            "task_code": row.task.task_code if row.task is not None else None, "status": row.status,
            "started_at": iso(row.started_at), "resumed_at": iso(row.resumed_at), "ended_at": iso(row.ended_at),
            "metadata": dict(row.meta or {})}


def signal_state(row: Signal) -> dict[str, Any]:
    return {"kind": row.kind, "data": row.data}


def session_priority(row: AgentSession) -> str:
    """A session's events take the priority of the work they are attached to."""
    if row.task is not None:
        return row.task.priority
    if row.sprint is not None:
        return row.sprint.priority
    return DEFAULT_PRIORITY


# State fields stored under another attribute, or as a reference to another row.
RENAMED = {"metadata": "meta"}
REFERENCES = {"sprint_code": "sprint", "task_code": "task"}


def write_fields(declared: StreamType, row: Any, fields: dict[str, Any], resolve: Resolve) -> None:
    """The one field writer: state fields onto a row (the code never changes; references resolve to rows)."""
    for name, value in fields.items():
        if name == declared.code_field:
            continue
        if name in REFERENCES:
            setattr(row, REFERENCES[name], resolve(name, value) if value is not None else None)
        else:
            setattr(row, RENAMED.get(name, name), value)


@dataclass(frozen=True)
class StoredType:
    """Where a stream type lives: its table, how a row reads as state, and the priority of its events."""

    declared: StreamType
    model: type[Any]
    state: Callable[[Any], dict[str, Any]]
    priority: Callable[[Any], str]

    @property
    def name(self) -> str:
        return self.declared.name

    def code_of(self, row: Any) -> str | None:
        field = self.declared.code_field
        return getattr(row, field) if field is not None else None


STORED: dict[StreamType, StoredType] = {
    SPRINT: StoredType(SPRINT, Sprint, sprint_state, lambda row: row.priority),
    TASK: StoredType(TASK, Task, task_state, lambda row: row.priority),
    SESSION: StoredType(SESSION, AgentSession, session_state, session_priority),
    SIGNAL: StoredType(SIGNAL, Signal, signal_state, lambda row: DEFAULT_PRIORITY),
}


def stored(entity_type: str) -> StoredType:
    return STORED[stream_type(entity_type)]
