"""events archive table, list-filter indexes, manifest newest_at

Revision ID: 0006
Revises: 0008
Create Date: 2026-12-01 22:30:00

Archived events leave ``orchestration_events`` for ``orchestration_events_archive``
(same columns, copied from the events table as it stands when this runs; on
PostgreSQL partitioned by month of ``emitted_at``), so the hot table holds hot
events only and purge empties whole partitions. Rows already archived in place
are moved here. Every ``/events`` filter gets an ``(filter, id)`` index so a
page is an ordered index range, never a walk of the primary key; the
single-column indexes they supersede and ``(archived_at, id)`` (the hot table
has no archived rows any more) are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ARCHIVE = "orchestration_events_archive"
EVENTS = "orchestration_events"
MANIFESTS = "orchestration_archive_manifests"
NEW_EVENT_INDEXES = {
    "ix_events_actor_id": ["actor", "id"],
    "ix_events_type_id": ["type", "id"],
    "ix_events_entity_type_id": ["entity_type", "id"],
    "ix_events_emitted_at_id": ["emitted_at", "id"],
}
OLD_EVENT_INDEXES = {
    "ix_orchestration_events_actor": ["actor"],
    "ix_orchestration_events_type": ["type"],
    "ix_orchestration_events_emitted_at": ["emitted_at"],
    "ix_events_archived_at_id": ["archived_at", "id"],
}
ARCHIVE_INDEXES = {
    "ix_events_archive_stream": ["entity_type", "entity_id", "sequence"],
    "ix_events_archive_correlation_id": ["correlation_id"],
    "ix_events_archive_session_key_id": ["session_key", "id"],
    "ix_events_archive_entity_code_id": ["entity_code", "id"],
    "ix_events_archive_event_id": ["event_id"],
}


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    _event_indexes()
    _archive_table()
    with op.batch_alter_table(MANIFESTS, schema=None) as batch_op:
        batch_op.add_column(sa.Column("newest_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_orchestration_archive_manifests_newest_at", ["newest_at"], unique=False)
    _move_archived_rows()


def _event_indexes() -> None:
    # On SQLite the table is rebuilt with AUTOINCREMENT (an earlier batch rebuild drops it):
    # archived rows now leave the table, and a freed highest id must never be handed out again.
    rebuild = {} if _postgres() else {"recreate": "always", "table_kwargs": {"sqlite_autoincrement": True}}
    with op.batch_alter_table(EVENTS, schema=None, **rebuild) as batch_op:
        for name in OLD_EVENT_INDEXES:
            batch_op.drop_index(name)
        for name, columns in NEW_EVENT_INDEXES.items():
            ops = {"postgresql_ops": {"type": "varchar_pattern_ops"}} if name == "ix_events_type_id" else {}
            batch_op.create_index(name, columns, unique=False, **ops)


def _archive_table() -> None:
    """Columns copied from the events table as it is now, so none is ever left behind."""
    events = sa.Table(EVENTS, sa.MetaData(), autoload_with=op.get_bind())
    columns = [sa.Column(c.name, c.type, nullable=c.nullable) for c in events.columns]
    partitioned = {"postgresql_partition_by": "RANGE (emitted_at)"} if _postgres() else {}
    op.create_table(ARCHIVE, *columns, sa.PrimaryKeyConstraint("id", "emitted_at", name=f"pk_{ARCHIVE}"),
                    **partitioned)
    for name, index_columns in ARCHIVE_INDEXES.items():
        op.create_index(name, ARCHIVE, index_columns, unique=False)
    op.create_index("ix_events_archive_correlation_chain", ARCHIVE, ["correlation_chain"], unique=False,
                    postgresql_using="gin", postgresql_ops={"correlation_chain": "jsonb_path_ops"})


def _move_archived_rows() -> None:
    bind = op.get_bind()
    if _postgres():
        months = bind.execute(sa.text(
            f"SELECT DISTINCT date_trunc('month', emitted_at, 'UTC') FROM {EVENTS} WHERE archived_at IS NOT NULL"))
        for (month,) in months.all():
            _partition(month)
    names = ", ".join(c.name for c in sa.Table(EVENTS, sa.MetaData(), autoload_with=bind).columns)
    bind.execute(sa.text(f"INSERT INTO {ARCHIVE} ({names}) SELECT {names} FROM {EVENTS} "
                         "WHERE archived_at IS NOT NULL"))
    bind.execute(sa.text(f"DELETE FROM {EVENTS} WHERE archived_at IS NOT NULL"))
    bind.execute(sa.text(
        f"UPDATE {MANIFESTS} SET newest_at = (SELECT max(a.emitted_at) FROM {ARCHIVE} a "
        f"WHERE a.id BETWEEN {MANIFESTS}.first_id AND {MANIFESTS}.last_id) WHERE purged_at IS NULL"))


def _partition(month: datetime) -> None:
    month = month.astimezone(UTC)
    following = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=month.tzinfo)
    op.execute(f"CREATE TABLE IF NOT EXISTS {ARCHIVE}_{month:%Y%m} PARTITION OF {ARCHIVE} "
               f"FOR VALUES FROM ('{month.isoformat()}') TO ('{following.isoformat()}')")


def downgrade() -> None:
    bind = op.get_bind()
    names = ", ".join(c.name for c in sa.Table(EVENTS, sa.MetaData(), autoload_with=bind).columns)
    bind.execute(sa.text(f"INSERT INTO {EVENTS} ({names}) SELECT {names} FROM {ARCHIVE}"))
    op.drop_table(ARCHIVE)
    with op.batch_alter_table(MANIFESTS, schema=None) as batch_op:
        batch_op.drop_index("ix_orchestration_archive_manifests_newest_at")
        batch_op.drop_column("newest_at")
    with op.batch_alter_table(EVENTS, schema=None) as batch_op:
        for name in NEW_EVENT_INDEXES:
            batch_op.drop_index(name)
        for name, columns in OLD_EVENT_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
