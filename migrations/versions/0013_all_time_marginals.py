"""all-time marginals: statistics over the whole log read one row per value, not one per month and value

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:00:00

All-time statistics read each value's month rows: at realistic actor counts
(2,000 actors over 13 months) tens of thousands of rows, rewritten by every
fold and archive batch and so scattered over a bloated heap (38 ms at a
million events). An ``all`` grain keeps one row per dimension, value and
archived flag (``start`` fixed at the epoch), kept by the same statement
triggers, redefined here; the counts there already are are added once.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "orchestration_event_marginals"
EPOCH = "timestamptz '1970-01-01 00:00:00+00'"
_CHANGES = {
    "INSERT": "SELECT bucket_start, type, actor, entity_type, archived, count AS n FROM new_rows",
    "UPDATE": ("SELECT bucket_start, type, actor, entity_type, archived, count AS n FROM new_rows UNION ALL "
               "SELECT bucket_start, type, actor, entity_type, archived, -count FROM old_rows"),
    "DELETE": "SELECT bucket_start, type, actor, entity_type, archived, -count AS n FROM old_rows",
}
_DIMENSIONS = ("type", "actor", "entity_type", "total")
_BEFORE = ", ".join(f"('{g}', '{d}')" for g in ("day", "month") for d in _DIMENSIONS) + ", ('hour', 'type'), ('hour', 'total')"
_ALL = ", ".join(f"('all', '{d}')" for d in _DIMENSIONS)
_ADD = f"""
    INSERT INTO {TABLE} (grain, dimension, start, value, archived, count)
    SELECT g.grain, g.dimension,
           CASE g.grain WHEN 'all' THEN {EPOCH} ELSE date_trunc(g.grain, c.bucket_start, 'UTC') END,
           CASE g.dimension WHEN 'type' THEN c.type WHEN 'actor' THEN c.actor
                            WHEN 'entity_type' THEN c.entity_type ELSE '' END, c.archived, sum(c.n)
    FROM ({{changes}}) AS c
    CROSS JOIN (VALUES {{pairs}}) AS g(grain, dimension)
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(c.n) <> 0
    ON CONFLICT (grain, dimension, start, value, archived)
    DO UPDATE SET count = {TABLE}.count + excluded.count;"""


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _define(pairs: str) -> None:
    for event, changes in _CHANGES.items():
        name = f"orchestration_marginals_{event.lower()}"
        op.execute(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                   f"{_ADD.format(changes=changes, pairs=pairs)} RETURN NULL; END $$")


def upgrade() -> None:
    if not _postgres():
        return
    _define(f"{_BEFORE}, {_ALL}")
    op.execute(_ADD.format(changes=_CHANGES["INSERT"].replace("new_rows", "orchestration_event_rollups"), pairs=_ALL))


def downgrade() -> None:
    if not _postgres():
        return
    _define(_BEFORE)
    op.execute(f"DELETE FROM {TABLE} WHERE grain = 'all'")
