"""Changing rollup counts by the rows they count, computed by the database from the rows themselves.

The fold job adds settled hot events as ``archived=false`` counts, archiving
turns those into ``archived=true`` ones and purge removes them; one
``INSERT … SELECT … GROUP BY … ON CONFLICT`` per chunk of rows does it without
bringing a row to Python. No write path touches the rollups (``rollup_fold``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.domain.clock import as_utc
from app.store.tables import EventRollup

KEYS = ["bucket_start", "type", "actor", "entity_type", "archived"]
# How SQLAlchemy stores a naive UTC datetime on SQLite, truncated to the hour.
SQLITE_HOUR = "%Y-%m-%d %H:00:00.000000"


def _hour(session: Session, moment: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", moment, "UTC")
    return func.strftime(SQLITE_HOUR, moment)


def shift(session: Session, table: Table, rows: ColumnElement[bool], archived: bool, sign: int) -> None:
    """Add ``sign`` × (the count of ``rows`` of ``table``) to their hourly rollups under ``archived``."""
    hour = _hour(session, table.c.emitted_at)
    counts = (select(hour, table.c.type, table.c.actor, table.c.entity_type, literal(archived),
                     literal(sign) * func.count())
              .where(rows).group_by(hour, table.c.type, table.c.actor, table.c.entity_type))
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(EventRollup).from_select([*KEYS, "count"], counts)
    session.execute(stmt.on_conflict_do_update(index_elements=KEYS,
                                               set_={"count": EventRollup.count + stmt.excluded.count}))


def hour_bucket(moment: datetime) -> datetime:
    return as_utc(moment).replace(minute=0, second=0, microsecond=0)


_ROLLUP_UPSERTS: dict[str, Any] = {}


def _rollup_upsert(dialect: str) -> Any:
    """Built once per dialect: compiling an upsert costs more than running it."""
    if dialect not in _ROLLUP_UPSERTS:
        stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(EventRollup)
        _ROLLUP_UPSERTS[dialect] = stmt.on_conflict_do_update(
            index_elements=KEYS, set_={"count": EventRollup.count + stmt.excluded.count})
    return _ROLLUP_UPSERTS[dialect]


def add_to_rollups(session: Session, counts: dict[tuple[Any, ...], int]) -> None:
    """Upsert ``(bucket, type, actor, entity_type, archived) -> +n`` (n may be negative), for rows
    counted in Python (a restored archive file's lines). Keys go in sorted order, so two
    transactions doing this lock rollup rows in the same order and cannot deadlock."""
    if not counts:
        return
    values = [
        {"bucket_start": b, "type": t, "actor": a, "entity_type": e, "archived": arch, "count": n}
        for (b, t, a, e, arch), n in sorted(counts.items(), key=lambda kv: repr(kv[0]))
    ]
    session.execute(_rollup_upsert(session.get_bind().dialect.name), values)
