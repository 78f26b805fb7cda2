"""stream tickets: short-lived single-use passes for browsers' EventSource

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-01 22:30:00

``EventSource`` cannot send an ``Authorization`` header, and a long-lived token
must never travel in a URL; a ticket (stored hashed, valid seconds, used once)
opens one stream on behalf of the token that asked for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stream_tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_hash", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_stream_tickets"),
        sa.UniqueConstraint("ticket_hash", name="uq_stream_tickets_ticket_hash"),
    )
    with op.batch_alter_table("stream_tickets", schema=None) as batch_op:
        batch_op.create_index("ix_stream_tickets_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stream_tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_stream_tickets_expires_at")
    op.drop_table("stream_tickets")
