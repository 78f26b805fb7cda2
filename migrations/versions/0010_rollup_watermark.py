"""rollup watermark: rollups are folded from the log by a job, no longer written by every write

Revision ID: 0010
Revises: 0005
Create Date: 2026-12-02 04:45:00

Every write used to upsert its hourly rollup rows in its own transaction, so
concurrent writes of the same hour, type, actor and entity type queued on one
row lock until the previous writer's COMMIT. Now the fold job adds settled
events to the rollups and records how far it got here; readers count the hot
events above the mark themselves. Until this migration every hot event was
counted by its writer, so the mark starts at the highest id there is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orchestration_rollup_watermark",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("folded_upto", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orchestration_rollup_watermark")),
    )
    op.execute("INSERT INTO orchestration_rollup_watermark (id, folded_upto) "
               "SELECT 1, COALESCE(MAX(id), 0) FROM orchestration_events")


def downgrade() -> None:
    # The old write path counts its own events again; the ones not yet folded are counted here first.
    op.execute(f"""
INSERT INTO orchestration_event_rollups (bucket_start, type, actor, entity_type, archived, count)
SELECT bucket_start, type, actor, entity_type, false, n FROM (
    SELECT {_hour()} AS bucket_start, type, actor, entity_type, count(*) AS n FROM orchestration_events
    WHERE id > (SELECT folded_upto FROM orchestration_rollup_watermark WHERE id = 1)
    GROUP BY 1, 2, 3, 4) AS unfolded
WHERE true
ON CONFLICT (bucket_start, type, actor, entity_type, archived)
DO UPDATE SET count = orchestration_event_rollups.count + excluded.count""")
    op.drop_table("orchestration_rollup_watermark")


def _hour() -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "date_trunc('hour', emitted_at, 'UTC')"
    return "strftime('%Y-%m-%d %H:00:00.000000', emitted_at)"
