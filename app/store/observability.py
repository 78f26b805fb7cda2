"""Database facts for health and metrics: can events be recorded, and how big is the log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.store.tables import ArchiveManifest, Event

EVENTS_TABLE = Event.__tablename__


def can_record(writer: sessionmaker[Session]) -> dict[str, Any]:
    """Open a write transaction as an append would, and roll it back.

    On SQLite the writer's ``BEGIN IMMEDIATE`` takes the write lock; on
    PostgreSQL asking for a transaction id fails on a read-only server
    (a standby, ``default_transaction_read_only``). Any failure means events
    cannot be recorded right now.
    """
    try:
        with writer() as session:
            dialect = session.get_bind().dialect.name
            session.execute(text("SELECT pg_current_xact_id()" if dialect == "postgresql" else "SELECT 1"))
            session.rollback()
        return {"status": "ok"}
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot record events"
        return {"status": "unavailable", "error": type(exc).__name__}


def event_table_stats(engine: Engine) -> dict[str, Any]:
    """Rows and bytes of the events table, hot vs archived.

    Cheap on purpose, as scrapes are frequent: PostgreSQL's planner estimate
    (``reltuples``) for the total, ``pg_total_relation_size`` for bytes, and
    the archive manifests of files not purged for the archived rows. SQLite
    counts. Bytes are split by the row share, an estimate.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # One manifest row per archive file (about a thousand events), not a scan of the archived rows.
            archived = int(connection.scalar(select(func.coalesce(func.sum(ArchiveManifest.event_count), 0))
                                             .where(ArchiveManifest.purged_at.is_(None))) or 0)
            estimate = connection.scalar(text("SELECT reltuples::bigint FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                                         {"t": EVENTS_TABLE})
            total = int(estimate) if estimate is not None and estimate >= 0 else None
            size = int(connection.scalar(text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": EVENTS_TABLE}))
        else:
            archived = int(connection.scalar(select(func.count()).where(Event.archived_at.is_not(None))) or 0)
            total, size = None, _sqlite_bytes(connection)
        if total is None or total < archived:
            total = int(connection.scalar(select(func.count()).select_from(Event)) or 0)
    hot = total - archived
    share = archived / total if total else 0.0
    return {"rows": {"hot": hot, "archived": archived},
            "bytes": {"hot": round(size * (1 - share)), "archived": round(size * share)}}


def _sqlite_bytes(connection: Any) -> int:
    """The table's pages when SQLite has ``dbstat``; otherwise the whole file's."""
    try:
        return int(connection.scalar(text("SELECT SUM(pgsize) FROM dbstat WHERE name = :t"), {"t": EVENTS_TABLE})
                   or 0)
    except Exception:  # noqa: BLE001 - dbstat is a compile-time option of SQLite
        pages = connection.scalar(text("PRAGMA page_count")) or 0
        return int(pages) * int(connection.scalar(text("PRAGMA page_size")) or 0)
