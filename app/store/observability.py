"""Database facts for health and metrics: can events be recorded, and how big is the log.

Reached through the unit of work (``uow.health``), so health and ``/metrics`` open
transactions the way every use case does, and no layer above the store touches
an engine.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from app.store.tables import EVENTS_ARCHIVE, Event

EVENTS_TABLE = Event.__tablename__


class DatabaseHealth:
    """The health repository of one unit of work."""

    def __init__(self, db: Session) -> None:
        self._db = db

    def begin_write(self) -> None:
        """Open a write transaction as an append would (the unit of work rolls it back).

        On SQLite the writer's ``BEGIN IMMEDIATE`` takes the write lock; on
        PostgreSQL asking for a transaction id fails on a read-only server
        (a standby, ``default_transaction_read_only``). Raises when events
        cannot be recorded right now.
        """
        dialect = self._db.get_bind().dialect.name
        self._db.execute(text("SELECT pg_current_xact_id()" if dialect == "postgresql" else "SELECT 1"))

    def event_table_stats(self) -> dict[str, Any]:
        """Rows and bytes of the events table (hot) and of its archive table.

        Cheap on purpose, as scrapes are frequent: PostgreSQL's planner estimate
        (``reltuples``, a count when never analyzed) and ``pg_total_relation_size``;
        SQLite counts, and sums its pages (``dbstat``).
        """
        connection = self._db.connection()
        found = {state: _table_size(connection, connection.dialect.name, name)
                 for state, name in (("hot", EVENTS_TABLE), ("archived", EVENTS_ARCHIVE.name))}
        return {"rows": {k: v[0] for k, v in found.items()}, "bytes": {k: v[1] for k, v in found.items()}}


def unreachable(error: BaseException) -> bool:
    """The error says the database cannot be reached (down, restarting, connection lost)."""
    return isinstance(error, DBAPIError) and (isinstance(error, OperationalError) or error.connection_invalidated)


def _table_size(connection: Connection, dialect: str, table: str) -> tuple[int, int]:
    if dialect == "postgresql":
        estimate = connection.scalar(text("SELECT reltuples::bigint FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                                     {"t": table})
        size = int(connection.scalar(text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}))
        if estimate is not None and estimate >= 0:
            return int(estimate), size
        return int(connection.scalar(text(f'SELECT count(*) FROM "{table}"'))), size
    rows = int(connection.scalar(text(f'SELECT count(*) FROM "{table}"')))
    return rows, _sqlite_bytes(connection, table)


def _sqlite_bytes(connection: Connection, table: str) -> int:
    """The table's pages when SQLite has ``dbstat``; otherwise 0."""
    try:
        return int(connection.scalar(text("SELECT SUM(pgsize) FROM dbstat WHERE name = :t"), {"t": table}) or 0)
    except Exception:  # noqa: BLE001 - dbstat is a compile-time option of SQLite
        return 0
