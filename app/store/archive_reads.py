"""Reading across the archive boundary: hot and archived rows as one log in id order.

Archived events live in ``orchestration_events_archive`` (same columns). A read
that includes them is the statement the hot table would get, plus the same
statement rewritten onto the archive table (every reference to the events table
or its columns swapped), joined by ``UNION ALL`` and ordered again. Each branch
keeps its own ``ORDER BY … LIMIT``, so PostgreSQL merges two index-ordered
ranges and stops early; ids never collide, since a row is in one table or the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from sqlalchemy import Column, CompoundSelect, Select, Table, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import replacement_traverse

from app.store.envelopes import envelope
from app.store.tables import EVENTS_ARCHIVE, Event

EVENTS = cast(Table, Event.__table__)
BATCH = 2000


def _swap(element: Any, **_kw: Any) -> Any:
    if element is EVENTS:
        return EVENTS_ARCHIVE
    if isinstance(element, Column) and getattr(element, "table", None) is EVENTS:
        return EVENTS_ARCHIVE.c[element.key]
    return None


def in_archive(stmt: Any) -> Any:
    """The same statement over the archive table."""
    return replacement_traverse(stmt, {}, _swap)


def core(stmt: Select) -> Select:  # type: ignore[type-arg]
    """An ORM ``select(Event)`` as plain columns of the events table (what the swap understands)."""
    return stmt.with_only_columns(*EVENTS.columns)


def both(stmt: Select, *order: str) -> CompoundSelect:  # type: ignore[type-arg]
    """Hot and archived rows matching ``stmt`` (a select of event rows), ordered by ``order``."""
    hot = core(stmt)
    union = union_all(hot, in_archive(hot))
    return union.order_by(*(union.selected_columns[name] for name in order))


def orm_rows(stmt: Any) -> Any:
    """A compound (or any) statement of event columns, loaded as ``Event`` objects."""
    return select(Event).from_statement(stmt)


def page(stmt: Select, after_id: int, limit: int, *, fenced: bool) -> Any:  # type: ignore[type-arg]
    """``event_queries.keyset`` over hot and archived rows (see there for ``fenced``)."""
    scoped = core(stmt).where(EVENTS.c.id > after_id)
    if not fenced:
        hot = scoped.order_by(EVENTS.c.id).limit(limit)
        # each limited branch as a subquery: SQLite allows no ORDER BY/LIMIT inside a compound
        union = union_all(*(select(branch.subquery()) for branch in (hot, in_archive(hot))))
        return orm_rows(union.order_by(union.selected_columns.id).limit(limit))
    ids = scoped.with_only_columns(EVENTS.c.id)
    scope = union_all(ids, in_archive(ids)).cte("scope").prefix_with("MATERIALIZED")
    first = select(scope.c.id).order_by(scope.c.id).limit(limit)
    union = union_all(*(select(*table.columns).where(table.c.id.in_(first)) for table in (EVENTS, EVENTS_ARCHIVE)))
    return orm_rows(union.order_by(union.selected_columns.id))


def envelopes(session: Session, stmt: Any) -> list[dict[str, Any]]:
    """Envelopes straight from rows (no ORM objects): reads that only show events."""
    return [envelope(cast(Event, row)) for row in session.execute(stmt)]


def stream(session: Session, stmt: Any, batch: int = BATCH) -> Iterator[dict[str, Any]]:
    """Envelopes of a long read, fetched ``batch`` rows at a time from a server-side cursor."""
    result = session.execute(stmt, execution_options={"yield_per": batch})
    for row in result:
        yield envelope(cast(Event, row))


def first_of(session: Session, stmt: Select) -> Any:  # type: ignore[type-arg]
    """A scalar lookup answered by the hot table, else by the archive."""
    found = session.scalar(stmt)
    return found if found is not None else session.scalar(in_archive(stmt))
