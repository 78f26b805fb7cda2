"""outbox failures: how many deliveries of an event failed, so a poison message is dead-lettered

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:30:00

An event whose evaluation fails for a reason other than a transient database
error is retried a bounded number of times (``ORCH_OUTBOX_MAX_DELIVERIES``),
then recorded ``dead`` with ``orchestration.automation.rule_failed`` and
removed from the outbox, so it never stalls automation.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orchestration_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("orchestration_outbox", schema=None) as batch_op:
        batch_op.drop_column("failures")
