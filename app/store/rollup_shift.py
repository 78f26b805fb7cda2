"""Moving rollup counts with archived rows, computed by the database from the rows themselves.

Archiving turns ``archived=false`` counts into ``archived=true`` ones and purge
removes them; one ``INSERT … SELECT … GROUP BY … ON CONFLICT`` per chunk of rows
does it without bringing a row to Python. The hours concerned are long past, so
these upserts never touch the rollup rows live appends are writing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

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
