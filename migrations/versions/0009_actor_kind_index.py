"""actor kind index: ``actor LIKE 'user:%'`` served by an index whatever the collation

Revision ID: 0009
Revises: 0007 (re-chained after merging main)
Create Date: 2026-12-01 22:30:00

``actor_kind`` filters event lists by the prefix of ``actor`` before ``:``. A
plain btree serves ``LIKE 'prefix%'`` only under the C collation; with
``varchar_pattern_ops`` it does under any. (SQLite's ``GLOB`` uses the plain
index; there this one is a plain index too.) Session forensics needs no new
index: ``causation_id`` and ``(session_key, id)`` exist since 0001/0002.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orchestration_events", schema=None) as batch_op:
        batch_op.create_index("ix_events_actor_pattern", ["actor"], unique=False,
                              postgresql_ops={"actor": "varchar_pattern_ops"})


def downgrade() -> None:
    with op.batch_alter_table("orchestration_events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_actor_pattern")
