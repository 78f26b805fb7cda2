"""event marginals: per-day and per-month counts of each type, actor and entity type, kept from the hourly rollups

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 05:00:00

Statistics over a long range without dimension filters read one hourly rollup
row per (hour, type, actor, entity type): at realistic actor counts nearly one
row per event (issue 12). This table holds each dimension's counts on its own
per UTC day and per UTC month (``grain``), plus each day's total, so all time
reads months × (types + actors + entity types) + days rows.

On PostgreSQL, statement-level triggers with transition tables keep it in step
with ``orchestration_event_rollups``: whatever changes an hourly count (the fold,
archiving, purge, restore, a partition dropped whole) changes its day's and
month's by the same amount, in the same statement, set-based. SQLite (the quick
start) keeps no marginals: its statistics read the hourly rollups as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "orchestration_event_marginals"
# Rows of the transition tables as signed changes: what each trigger adds.
_CHANGES = {
    "INSERT": "SELECT bucket_start, type, actor, entity_type, archived, count AS n FROM new_rows",
    "UPDATE": ("SELECT bucket_start, type, actor, entity_type, archived, count AS n FROM new_rows UNION ALL "
               "SELECT bucket_start, type, actor, entity_type, archived, -count FROM old_rows"),
    "DELETE": "SELECT bucket_start, type, actor, entity_type, archived, -count AS n FROM old_rows",
}
_ADD = f"""
    INSERT INTO {TABLE} (grain, dimension, start, value, archived, count)
    SELECT g.grain, v.dimension, date_trunc(g.grain, c.bucket_start, 'UTC'), v.value, c.archived, sum(c.n)
    FROM ({{changes}}) AS c
    CROSS JOIN (VALUES ('day'), ('month')) AS g(grain)
    CROSS JOIN LATERAL (VALUES ('type', c.type), ('actor', c.actor), ('entity_type', c.entity_type),
                               ('total', '')) AS v(dimension, value)
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(c.n) <> 0
    ON CONFLICT (grain, dimension, start, value, archived)
    DO UPDATE SET count = {TABLE}.count + excluded.count;"""
_REFERENCING = {"INSERT": "NEW TABLE AS new_rows", "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                "DELETE": "OLD TABLE AS old_rows"}


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("count", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        # grain and dimension lead: one day's totals, or one grain's months, are a prefix of the key
        sa.PrimaryKeyConstraint("grain", "dimension", "start", "value", "archived", name=op.f(f"pk_{TABLE}")),
    )
    if not _postgres():
        return
    for event, changes in _CHANGES.items():
        name = f"orchestration_marginals_{event.lower()}"
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                   f"{_ADD.format(changes=changes)} RETURN NULL; END $$")
        op.execute(f"CREATE TRIGGER {name} AFTER {event} ON orchestration_event_rollups "
                   f"REFERENCING {_REFERENCING[event]} FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
    # the days and months of the hourly counts there already are
    op.execute(_ADD.format(changes=_CHANGES["INSERT"].replace("new_rows", "orchestration_event_rollups")))


def downgrade() -> None:
    if _postgres():
        for event in _CHANGES:
            name = f"orchestration_marginals_{event.lower()}"
            op.execute(f"DROP TRIGGER {name} ON orchestration_event_rollups")
            op.execute(f"DROP FUNCTION {name}()")
    op.drop_table(TABLE)
