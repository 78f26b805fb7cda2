"""event hash scheme: which canonical form each event's hash was computed over

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:00:00

Events written before this revision were hashed over sorted-key ``json.dumps``
(scheme 1); new events are hashed over RFC 8785 (scheme 2, see
``app.domain.hashing``). Existing rows keep scheme 1 through the server default,
so they verify exactly as before; nothing is re-hashed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orchestration_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hash_scheme", sa.SmallInteger(), nullable=False, server_default=sa.text("1")))


def downgrade() -> None:
    with op.batch_alter_table("orchestration_events", schema=None) as batch_op:
        batch_op.drop_column("hash_scheme")
