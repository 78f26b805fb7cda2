"""token lifecycle: name, prefix, expiry, last use, per-token rates, and the revocation epoch

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:00:00

``token_epoch`` holds one row whose counter each revocation raises in the same
transaction; every process re-reads it at most every ``ORCH_TOKEN_EPOCH_POLL``
seconds and drops its cached tokens when it moved, so a revoked token stops
working everywhere within about a second, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("prefix", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("correlation_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("writes_per_second", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("reads_per_second", sa.Float(), nullable=True))
    epoch = op.create_table(
        "token_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_epoch")),
    )
    op.bulk_insert(epoch, [{"id": 1, "epoch": 0}])


def downgrade() -> None:
    op.drop_table("token_epoch")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        for column in ("reads_per_second", "writes_per_second", "correlation_id", "last_used_at", "expires_at",
                       "prefix", "name"):
            batch_op.drop_column(column)
