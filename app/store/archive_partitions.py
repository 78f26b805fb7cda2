"""Monthly partitions of the archive table (PostgreSQL; SQLite has one plain table).

Partitions are made on demand, before rows of a new month move in, and dropped
once a purge has emptied them: dropping a partition gives its space back at
once, where deleting rows would leave dead tuples for VACUUM.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.store.tables import EVENTS_ARCHIVE

PARENT = EVENTS_ARCHIVE.name


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(month: datetime) -> datetime:
    return datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)


def month_of(name: str) -> datetime:
    """The month a partition holds, from its name."""
    return datetime.strptime(name.rsplit("_", 1)[-1], "%Y%m").replace(tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{PARENT}_{month:%Y%m}"


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def ensure(session: Session, moments: Iterable[datetime]) -> None:
    """Every month of ``moments`` has its partition (checked first: creating one locks the parent)."""
    if not _postgres(session):
        return
    for month in sorted({month_start(m) for m in moments}):
        name = partition_name(month)
        if session.scalar(text("SELECT to_regclass(:name)"), {"name": name}) is None:
            session.execute(text(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {PARENT} "
                f"FOR VALUES FROM ('{month.isoformat()}') TO ('{next_month(month).isoformat()}')"))


def partitions(session: Session) -> list[str]:
    """The archive table's monthly partitions, oldest first (none on SQLite)."""
    if not _postgres(session):
        return []
    return list(session.scalars(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:parent) ORDER BY c.relname"), {"parent": PARENT}))


def drop_empty_before(session: Session, cutoff: datetime) -> list[str]:
    """Drop partitions wholly before ``cutoff`` that hold no row any more; returns their names."""
    if not _postgres(session):
        return []
    dropped = []
    for name in partitions(session):
        if next_month(month_of(name)) > cutoff:
            continue
        if session.scalar(text(f"SELECT NOT EXISTS (SELECT 1 FROM {name})")):
            session.execute(text(f"DROP TABLE {name}"))
            dropped.append(name)
    return dropped
