"""hourly marginals by type: a timeline by hour reads hours x types rows, not one rollup row per combination

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:30:00

An hourly timeline (counts per hour and type) read the hourly rollups, which
key on (hour, type, actor, entity type): at realistic actor counts nearly one
row per event, about 80,000 rows for 30 days of a million-event log. The
marginals gain an ``hour`` grain for the ``type`` and ``total`` dimensions
only (an hour by actor would be the rollups again), kept by the same
statement triggers, which are redefined here; the hours of the counts there
already are are added once.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "orchestration_event_marginals"
_CHANGES = {
    "INSERT": "SELECT bucket_start, type, actor, entity_type, archived, count AS n FROM new_rows",
    "UPDATE": ("SELECT bucket_start, type, actor, entity_type, archived, count AS n FROM new_rows UNION ALL "
               "SELECT bucket_start, type, actor, entity_type, archived, -count FROM old_rows"),
    "DELETE": "SELECT bucket_start, type, actor, entity_type, archived, -count AS n FROM old_rows",
}
_DAY_AND_MONTH = ", ".join(f"('{grain}', '{dimension}')" for grain in ("day", "month")
                           for dimension in ("type", "actor", "entity_type", "total"))
_PAIRS = {
    "0011": _DAY_AND_MONTH,
    "0012": _DAY_AND_MONTH + ", ('hour', 'type'), ('hour', 'total')",
}
_ADD = f"""
    INSERT INTO {TABLE} (grain, dimension, start, value, archived, count)
    SELECT g.grain, g.dimension, date_trunc(g.grain, c.bucket_start, 'UTC'),
           CASE g.dimension WHEN 'type' THEN c.type WHEN 'actor' THEN c.actor
                            WHEN 'entity_type' THEN c.entity_type ELSE '' END, c.archived, sum(c.n)
    FROM ({{changes}}) AS c
    CROSS JOIN (VALUES {{pairs}}) AS g(grain, dimension)
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(c.n) <> 0
    ON CONFLICT (grain, dimension, start, value, archived)
    DO UPDATE SET count = {TABLE}.count + excluded.count;"""


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _define(revision_pairs: str) -> None:
    for event, changes in _CHANGES.items():
        name = f"orchestration_marginals_{event.lower()}"
        op.execute(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                   f"{_ADD.format(changes=changes, pairs=_PAIRS[revision_pairs])} RETURN NULL; END $$")


def upgrade() -> None:
    if not _postgres():
        return
    _define("0012")
    hours = _ADD.format(changes=_CHANGES["INSERT"].replace("new_rows", "orchestration_event_rollups"),
                        pairs="('hour', 'type'), ('hour', 'total')")
    op.execute(hours)


def downgrade() -> None:
    if not _postgres():
        return
    _define("0011")
    op.execute(f"DELETE FROM {TABLE} WHERE grain = 'hour'")
