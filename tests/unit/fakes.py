"""An in-memory unit of work: the real repositories' interface over dicts, for use-case tests without a database.

The stream and event repositories subclass the real ones and replace only
their queries, so projections, the field writer, ``StreamRef`` and the
``append_to_stream`` path (session-key override, dispatch) are the code the
service runs in production. Rows are transient ORM objects; nothing touches
a database session. A unit of work left without ``commit`` puts every row
back as it was and forgets the events it appended.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import inspect

from app.domain.changes import ChangeContext
from app.domain.errors import Conflict
from app.domain.events import PlannedEvent
from app.domain.stream_types import SIGNAL
from app.store.event_repository import EventRepository
from app.store.event_store import StreamRef, _chained_rows, envelope
from app.store.repositories import StreamRepository, Streams
from app.store.stream_registry import STORED, stored
from app.store.tables import Event


class Data:
    """What the fake database holds: rows per table, the log, the outbox, ids."""

    def __init__(self) -> None:
        self.rows: dict[type[Any], dict[int, Any]] = {kind.model: {} for kind in STORED.values()}
        self.events: list[Event] = []
        self.outbox: set[int] = set()
        self.ids = itertools.count(1)


class FakeStreamRepository(StreamRepository):
    """``StreamRepository`` with its queries answered from ``Data``."""

    def __init__(self, streams: FakeStreams, entity_type: str) -> None:
        super().__init__(streams, stored(entity_type), entity_type)
        self._data = streams.data

    def _all(self) -> list[Any]:
        rows = self._data.rows[self.kind.model].values()
        if self.kind.declared is SIGNAL:
            return [r for r in rows if r.kind == self.name]
        return list(rows)

    def find(self, code: str | None, *, lock: bool = False) -> Any:
        return next((r for r in self._all() if self.kind.code_of(r) == code), None)

    def by_id(self, ident: int, *, lock: bool = False) -> Any:
        return next((r for r in self._all() if r.id == ident), None)

    def taken(self, code: str) -> bool:
        return self.find(code) is not None

    def status(self, code: str) -> str | None:
        row = self.find(code)
        return row.status if row is not None else None

    def add(self, code: str | None, fields: dict[str, Any], now: datetime) -> Any:
        if code is not None and self.taken(code):
            raise Conflict(self.kind.declared.taken(code), {str(self.kind.declared.code_field): ["already exists"]})
        row = self.kind.model(id=next(self._data.ids), correlation_id=f"corr-{self.name}-{code}", version=0,
                              last_hash=None, created_at=now, updated_at=now)
        if code is not None:
            setattr(row, str(self.kind.declared.code_field), code)
        if self.kind.declared.tracked:
            row.deleted_at = None
        self.write(row, fields)
        self._data.rows[self.kind.model][row.id] = row
        return row

    def page(self, filters: dict[str, Any], after_id: int, limit: int) -> list[Any]:
        def wanted(row: Any) -> bool:
            state = self.kind.state(row)
            return (row.id > after_id and not (self.kind.declared.tracked and row.deleted_at is not None)
                    and all(state.get(name) == value for name, value in filters.items()))

        return sorted((r for r in self._all() if wanted(r)), key=lambda r: r.id)[:limit]


class FakeStreams(Streams):
    def __init__(self, data: Data) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self.data = data

    def __getitem__(self, entity_type: str) -> StreamRepository:
        return FakeStreamRepository(self, entity_type)

    def _tasks(self) -> list[Any]:
        return sorted(self["task"]._all(), key=lambda r: r.id)  # type: ignore[attr-defined]

    def sprint_of_task(self, task_code: str | None, *, lock: bool = False) -> Any:
        task = self["task"].find(task_code)
        return task.sprint if task is not None else None

    def sprint_tasks(self, sprint_code: str) -> tuple[dict[str, Any], ...]:
        return tuple({"task_code": t.task_code, "status": t.status} for t in self._tasks()
                     if t.deleted_at is None and t.sprint is not None and t.sprint.sprint_code == sprint_code)

    def task_counts(self, sprint_ids: list[int]) -> dict[int, dict[str, int]]:
        counts = {sid: dict.fromkeys(stored("task").declared.statuses, 0) for sid in sprint_ids}
        for task in self._tasks():
            if task.deleted_at is None and task.sprint is not None and task.sprint.id in counts:
                counts[task.sprint.id][task.status] += 1
        return counts


class FakeEvents(EventRepository):
    """``EventRepository`` over the in-memory log: the same chaining, sequences and hashes."""

    def __init__(self, data: Data, pending_dispatch: list[int]) -> None:
        super().__init__(None, pending_dispatch)  # type: ignore[arg-type]
        self._data = data

    def _append(self, stream: StreamRef, planned: list[PlannedEvent], ctx: ChangeContext, now: datetime, *,
                in_stream: bool, dispatch: bool) -> list[Event]:
        if not planned:
            return []
        if any(p.event_id and self.first_with_event_id(p.event_id) for p in planned):
            from app.store.errors import DuplicateRow

            raise DuplicateRow("INSERT", None, ValueError("event_id"))
        row = stream.row if in_stream else None
        version = row.version if row is not None else 0
        rows, _, last_hash = _chained_rows(stream, planned, ctx, now, version,
                                           row.last_hash if row is not None else None, in_stream=row is not None)
        for event in rows:
            event.id = next(self._data.ids)
            self._data.events.append(event)
            if dispatch and ctx.trigger_rules:
                self._data.outbox.add(event.id)
        if row is not None:
            row.version, row.last_hash, row.updated_at = version + len(planned), last_hash, now
        return rows

    def get(self, ident: int) -> Event | None:
        return next((e for e in self._data.events if e.id == ident), None)

    def by_ids(self, ids: Any) -> list[Event]:
        return sorted((e for e in self._data.events if e.id in set(ids)), key=lambda e: e.id)

    def find(self, ref: int | str) -> Event | None:
        return next((e for e in self._data.events if ref in (e.id, e.event_id)), None)

    def first_with_event_id(self, event_id: str) -> dict[str, Any] | None:
        found = next((e for e in self._data.events if e.event_id == event_id), None)
        return envelope(found) if found is not None else None


class FakeOutbox:
    def __init__(self, data: Data) -> None:
        self._data = data

    def claim(self, event_id: int) -> bool:
        return event_id in self._data.outbox

    def release(self, event_id: int) -> None:
        self._data.outbox.discard(event_id)

    def due(self, now: datetime, older_than: float, redispatch_after: timedelta, limit: int) -> list[Any]:
        return sorted(self._data.outbox)[:limit]

    def backlog(self) -> tuple[int, datetime | None]:
        return len(self._data.outbox), None


def _columns(row: Any) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(type(row)).attrs}


class FakeUnitOfWork:
    """The ``UnitOfWork`` interface over ``Data``; ``dispatched`` lists what each commit handed on."""

    def __init__(self, data: Data | None = None) -> None:
        self.data = data or Data()
        self.dispatched: list[list[int]] = []
        self.commits = 0
        self.pending_dispatch: list[int] = []
        self.pending_deliveries: list[int] = []
        self.db = None

    def __enter__(self) -> FakeUnitOfWork:
        self.pending_dispatch, self.pending_deliveries = [], []
        self.streams = FakeStreams(self.data)
        self.events = FakeEvents(self.data, self.pending_dispatch)
        self.outbox = FakeOutbox(self.data)
        self._saved = self._save()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._restore(self._saved)

    def commit(self) -> None:
        ids = [i for i in dict.fromkeys(self.pending_dispatch) if i in self.data.outbox]
        self.pending_dispatch.clear()
        if ids:
            self.dispatched.append(ids)
        self.commits += 1
        self._saved = self._save()

    def _save(self) -> tuple[Any, ...]:
        rows = {model: {ident: (row, _columns(row)) for ident, row in table.items()}
                for model, table in self.data.rows.items()}
        return rows, len(self.data.events), set(self.data.outbox)

    def _restore(self, saved: tuple[Any, ...]) -> None:
        rows, events, outbox = saved
        for model, table in rows.items():
            self.data.rows[model] = {ident: row for ident, (row, _) in table.items()}
            for row, columns in table.values():
                for name, value in columns.items():
                    setattr(row, name, value)
        del self.data.events[events:]
        self.data.outbox = outbox

    # --- what tests look at ---

    def log(self, entity_type: str | None = None) -> list[dict[str, Any]]:
        return [envelope(e) for e in self.data.events if entity_type in (None, e.entity_type)]

    def rows(self, entity_type: str) -> Iterator[Any]:
        return iter(self.data.rows[stored(entity_type).model].values())
