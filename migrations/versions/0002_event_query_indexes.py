"""event query indexes: keyset pages of a session and of an entity code in id order

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 19:00:00

``(session_key, id)`` lets ``/events/session/{key}`` read one page as an ordered
index range instead of sorting the whole session; ``(entity_code, id)`` serves
``entity_code`` filters given without ``entity_type`` (the 0001 index leads with
``entity_type``), which stats and timeline count from the log.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orchestration_events", schema=None) as batch_op:
        batch_op.create_index("ix_events_session_key_id", ["session_key", "id"], unique=False)
        batch_op.create_index("ix_events_entity_code_id", ["entity_code", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orchestration_events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_entity_code_id")
        batch_op.drop_index("ix_events_session_key_id")
