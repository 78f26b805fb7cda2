"""Stream repositories behind the unit of work: ``uow.streams["task"]`` loads, locks and writes rows.

Use cases hold rows only to hand them back (to ``write``, ``state``,
``uow.events.append_to_stream``); every query about entity rows is here. A
row locked once in a transaction is not locked (or read) again: the lock is
held to the end, so the copy in hand is the current one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain.clock import iso
from app.domain.entities import TASK_STATUSES
from app.domain.errors import Conflict, Invalid, NotFound
from app.store.event_store import StreamRef
from app.store.stream_registry import (
    STORED,
    StoredType,
    session_priority,
    session_state,
    sprint_state,
    stored,
    task_state,
    write_fields,
)
from app.store.tables import AgentSession, Sprint, Task

__all__ = ["StreamRepository", "Streams", "session_priority", "session_state", "sprint_state", "task_state"]



def _one(db: Session, stmt: Any, lock: bool) -> Any:
    """A locked read refreshes what the session may already hold: the lock is
    only worth having if the values it protects are the current ones."""
    if lock:
        stmt = stmt.with_for_update(of=stmt.column_descriptions[0]["entity"])
        stmt = stmt.execution_options(populate_existing=True)
    return db.scalars(stmt).unique().one_or_none()


def stream_fields(row: Any) -> dict[str, Any]:
    """The read-only fields every entity with a stream shows beside its state."""
    return {"id": row.id, "correlation_id": row.correlation_id, "version": row.version,
            "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}


class StreamRepository:
    """The rows of one stream type."""

    def __init__(self, streams: Streams, kind: StoredType, entity_type: str | None = None) -> None:
        self._streams, self.kind, self._db = streams, kind, streams.db
        # A signal's stream type is its kind (``notification``); every other type is its declaration's name.
        self.name = entity_type or kind.name

    def _code_column(self) -> Any:
        return getattr(self.kind.model, str(self.kind.declared.code_field))

    def find(self, code: str | None, *, lock: bool = False) -> Any:
        """The row named by ``code`` (deleted or not), or None."""
        held = self._streams.locked.get((self.name, code))
        if held is not None:
            return held
        row = _one(self._db, select(self.kind.model).where(self._code_column() == code), lock)
        if lock and row is not None:
            self._streams.hold(self.name, code, row)
        return row

    def get(self, code: str, *, lock: bool = False, deleted: bool = False) -> Any:
        """The row named by ``code``; a missing (or, unless ``deleted``, deleted) one is a 404."""
        row = self.find(code, lock=lock)
        if row is None or (getattr(row, "deleted_at", None) is not None and not deleted):
            raise NotFound(self.kind.declared.missing(code))
        return row

    def by_id(self, ident: int, *, lock: bool = False) -> Any:
        row = _one(self._db, select(self.kind.model).where(self.kind.model.id == ident), lock)
        if row is not None and self.kind.declared.code_field is None and row.kind != self.name:
            return None  # a signal of another kind
        return row

    def referenced(self, code: str | None, field: str) -> Any:
        """A row named in a body: unknown or deleted is a validation error, not a 404."""
        if code is None:
            return None
        row = self.find(code)
        if row is None or row.deleted_at is not None:
            raise Invalid(f"{self.name} {code!r} does not exist", {field: [f"unknown {self.name} {code!r}"]})
        return row

    def taken(self, code: str) -> bool:
        return self._db.scalars(select(self.kind.model.id).where(self._code_column() == code)).first() is not None

    def status(self, code: str) -> str | None:
        return self._db.scalar(select(self.kind.model.status).where(self._code_column() == code))

    def add(self, code: str | None, fields: dict[str, Any], now: datetime) -> Any:
        """A new row (version 0, its own correlation id), flushed so it has an id."""
        row = self.kind.model(correlation_id=str(uuid.uuid4()), version=0, created_at=now, updated_at=now)
        if code is not None:
            setattr(row, str(self.kind.declared.code_field), code)
        self.write(row, fields)
        self._db.add(row)
        try:
            self._db.flush()
        except IntegrityError:
            raise Conflict(self.kind.declared.taken(code), {str(self.kind.declared.code_field): ["already exists"]}) from None
        return row

    def write(self, row: Any, fields: dict[str, Any], *, history: bool = False) -> None:
        """State fields onto the row. A reference names a live row; with ``history`` (repair from the
        log) a deleted one too, as the log may have recorded it before the deletion."""
        def resolve(name: str, code: Any) -> Any:
            target = self._streams[name.removesuffix("_code")]
            return target.get(code, deleted=True) if history else target.referenced(code, name)

        write_fields(self.kind.declared, row, fields, resolve)

    def delete(self, row: Any, now: datetime) -> None:
        row.deleted_at = now

    def state(self, row: Any) -> dict[str, Any]:
        return self.kind.state(row)

    def live(self, row: Any) -> dict[str, Any] | None:
        """The state a rule or the API sees: none for a missing or deleted row."""
        if row is None or getattr(row, "deleted_at", None) is not None:
            return None
        return self.kind.state(row)

    def folded(self, row: Any) -> dict[str, Any]:
        """The state as the log folds it: the fields plus ``deleted``."""
        return self.kind.state(row) | {"deleted": getattr(row, "deleted_at", None) is not None}

    def ref(self, row: Any, priority: str | None = None) -> StreamRef:
        return _ref(self.kind, row, priority)

    def resources(self, rows: list[Any]) -> list[dict[str, Any]]:
        """The public representation: state plus the read-only fields (a sprint's task counts too)."""
        counts = self._streams.task_counts([r.id for r in rows]) if self.name == "sprint" else {}
        return [self.kind.state(r) | stream_fields(r) | ({"task_counts": counts[r.id]} if counts else {})
                for r in rows]

    def page(self, filters: dict[str, Any], after_id: int, limit: int) -> list[Any]:
        """Up to ``limit`` rows after ``after_id`` in id order (live ones for tracked types)."""
        model = self.kind.model
        stmt = select(model).where(model.id > after_id)
        if self.kind.declared.tracked:
            stmt = stmt.where(model.deleted_at.is_(None))
        for name, value in filters.items():
            if name == "sprint_code":
                stmt = stmt.where(model.sprint.has(Sprint.sprint_code == value))
            else:
                stmt = stmt.where(getattr(model, name) == value)
        return list(self._db.scalars(stmt.order_by(model.id).limit(limit)).unique())


class Streams:
    """``uow.streams[entity_type]``, and the reads that span two types (a sprint and its tasks)."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self.locked: dict[tuple[str, str | None], Any] = {}

    def __getitem__(self, entity_type: str) -> StreamRepository:
        return StreamRepository(self, stored(entity_type), entity_type)

    def __iter__(self) -> Iterator[StreamRepository]:
        return iter([StreamRepository(self, kind) for kind in STORED.values()])

    def hold(self, entity_type: str, code: str | None, row: Any) -> None:
        self.locked[(entity_type, code)] = row

    def release_locks(self) -> None:
        """The transaction (or the savepoint that took them) ended: the next locked read locks again."""
        self.locked.clear()

    def sprint_of_task(self, task_code: str | None, *, lock: bool = False) -> Any:
        """The sprint a task is in now (deleted or not), found and locked in one statement."""
        row = _one(self.db, select(Sprint).join(Task, Task.sprint_id == Sprint.id).where(Task.task_code == task_code),
                   lock)
        if lock and row is not None:
            held = self.locked.setdefault(("sprint", row.sprint_code), row)
            return held
        return row

    def sprint_tasks(self, sprint_code: str) -> tuple[dict[str, Any], ...]:
        """The sprint's live tasks, code and status, in creation order."""
        rows = self.db.execute(select(Task.task_code, Task.status).join(Sprint, Task.sprint_id == Sprint.id)
                               .where(Sprint.sprint_code == sprint_code, Task.deleted_at.is_(None)).order_by(Task.id))
        return tuple({"task_code": c, "status": s} for c, s in rows)

    def task_counts(self, sprint_ids: list[int]) -> dict[int, dict[str, int]]:
        """Live tasks of each sprint by status, in one grouped query for a whole page."""
        counts = {sid: dict.fromkeys(TASK_STATUSES, 0) for sid in sprint_ids}
        if not sprint_ids:
            return counts
        rows = self.db.execute(select(Task.sprint_id, Task.status, func.count())
                               .where(Task.sprint_id.in_(sprint_ids), Task.deleted_at.is_(None))
                               .group_by(Task.sprint_id, Task.status))
        for sprint_id, status, n in rows:
            counts[sprint_id][status] = n
        return counts


# The functions below serve callers that hold a bare session (tests, tools); use cases use ``uow.streams``.

def find_sprint(db: Session, code: str, *, lock: bool = False, deleted: bool = False) -> Sprint:
    return Streams(db)["sprint"].get(code, lock=lock, deleted=deleted)  # type: ignore[no-any-return]


def find_task(db: Session, code: str, *, lock: bool = False, deleted: bool = False) -> Task:
    return Streams(db)["task"].get(code, lock=lock, deleted=deleted)  # type: ignore[no-any-return]


def find_session(db: Session, key: str, *, lock: bool = False) -> AgentSession:
    return Streams(db)["session"].get(key, lock=lock, deleted=True)  # type: ignore[no-any-return]


def stream_of(entity_type: str, row: Any) -> StreamRef:
    return _ref(stored(entity_type), row, None)


def _ref(kind: StoredType, row: Any, priority: str | None) -> StreamRef:
    entity_type = row.kind if kind.declared.code_field is None else kind.name
    return StreamRef(entity_type, row.id, kind.code_of(row), row.correlation_id, priority or kind.priority(row), row)
