"""Purge on PostgreSQL by id ranges and whole partitions: no event id crosses into Python.

A due file's rows are the archive rows with ids in its manifest's ``[first_id,
last_id]`` (files are cut in id order, so their ranges never interleave; a file
whose range meets another unpurged manifest's goes the exact way instead, ids read
from the file, see ``partition_safe``). For all the due files of a run, in one
transaction:

1. every monthly partition all of whose rows lie in those ranges is emptied with
   ``TRUNCATE`` (its space is back at once; the purge then drops it), and the
   archived rollup rows of its hours are deleted with it (they count its rows only),
   and so are the month's archived marginals, as a range (``MONTH_OFF``);
2. the rest of the ranges' rows (partitions the files share with younger events)
   are deleted, pruned to the partitions at or before the newest due event, their
   rollup counts taken off by one grouped ``INSERT … ON CONFLICT``;
3. the events counted in 1 and 2 must be the manifests' ``event_count`` (any
   difference and the transaction is rolled back: nothing happens);
4. the manifests are stamped ``purged_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.domain.errors import Conflict
from app.store.archive_partitions import PARENT, month_of, next_month, partitions
from app.store.tables import ArchiveManifest

MANIFESTS = ArchiveManifest.__tablename__


@dataclass(frozen=True)
class DueRange:
    """A due file as the database sees it: its manifest, id range, newest event and count."""

    manifest_id: int
    first_id: int
    last_id: int
    newest_at: datetime
    event_count: int


def partition_safe(session: Session, due: Sequence[DueRange]) -> set[int]:
    """Manifest ids of the due files whose id range meets no other unpurged manifest outside ``due``
    (a file held back, or one not yet due): their ranges hold their own rows only. None on
    SQLite, whose archive is one plain table: there every file goes the exact way."""
    if not due or session.get_bind().dialect.name != "postgresql":
        return set()
    ids = [d.manifest_id for d in due]
    clashing = set(session.scalars(text(
        f"SELECT d.id FROM {MANIFESTS} d JOIN {MANIFESTS} o ON o.purged_at IS NULL "
        "AND NOT (o.id = ANY(:ids)) AND o.first_id <= d.last_id AND o.last_id >= d.first_id "
        "WHERE d.id = ANY(:ids)"), {"ids": ids}))
    return set(ids) - clashing


# Emptying a month of archived counts: the hourly rows go, and with them every archived
# marginal of the month's hours, days and month (they count those rows only), deleted as a
# range; the all-time rows lose the month's sums. The statement keeps the marginals itself,
# so the rollup triggers stand aside for it (migration 0014), and only for it.
CALLER_KEEPS_MARGINALS = "SELECT set_config('orchestration.marginals', 'caller', true)"
TRIGGERS_KEEP_MARGINALS = "SELECT set_config('orchestration.marginals', '', true)"
MONTH_OFF = """
WITH gone AS (DELETE FROM orchestration_event_rollups WHERE archived AND bucket_start >= :lo AND bucket_start < :hi
              RETURNING type, actor, entity_type, count),
all_time AS (INSERT INTO orchestration_event_marginals (grain, dimension, start, value, archived, count)
             SELECT 'all', dimension, timestamptz '1970-01-01 00:00:00+00', value, true, -n FROM (
                 SELECT CASE WHEN GROUPING(type) = 0 THEN 'type' WHEN GROUPING(actor) = 0 THEN 'actor'
                             WHEN GROUPING(entity_type) = 0 THEN 'entity_type' ELSE 'total' END AS dimension,
                        CASE WHEN GROUPING(type) = 0 THEN type WHEN GROUPING(actor) = 0 THEN actor
                             WHEN GROUPING(entity_type) = 0 THEN entity_type ELSE '' END AS value,
                        sum(count) AS n
                 FROM gone GROUP BY GROUPING SETS ((type), (actor), (entity_type), ())) AS sums
             WHERE n <> 0
             ON CONFLICT (grain, dimension, start, value, archived)
             DO UPDATE SET count = orchestration_event_marginals.count + excluded.count)
DELETE FROM orchestration_event_marginals
WHERE archived AND grain IN ('hour', 'day', 'month') AND start >= :lo AND start < :hi"""


def _multirange(due: Sequence[DueRange]) -> str:
    return "{" + ",".join(f"[{d.first_id},{d.last_id}]" for d in due) + "}"


ROLLUPS_OFF = f"""
WITH counted AS (SELECT date_trunc('hour', emitted_at, 'UTC') AS hour, type, actor, entity_type, count(*) AS n
                 FROM {PARENT} WHERE CAST(id AS bigint) <@ CAST(:ranges AS int8multirange) AND emitted_at <= :newest
                 GROUP BY 1, 2, 3, 4),
shifted AS (INSERT INTO orchestration_event_rollups (bucket_start, type, actor, entity_type, archived, count)
            SELECT hour, type, actor, entity_type, true, -n FROM counted
            ON CONFLICT (bucket_start, type, actor, entity_type, archived)
            DO UPDATE SET count = orchestration_event_rollups.count + excluded.count)
SELECT coalesce(sum(n), 0) FROM counted"""


def purge_ranges(session: Session, due: Sequence[DueRange], now: datetime) -> tuple[int, list[str]]:
    """Delete the due files' rows and rollup counts and stamp their manifests; returns
    (events deleted, partitions emptied whole)."""
    if not due:
        return 0, []
    params = {"ranges": _multirange(due), "newest": max(d.newest_at for d in due)}
    expected = sum(d.event_count for d in due)
    found, emptied = 0, []
    for name in _whole(session, params):
        # every archived event of the partition's hours goes: their rollup rows go with them
        found += int(session.scalar(text(f"SELECT count(*) FROM {name}")) or 0)
        month = month_of(name)
        session.execute(text(CALLER_KEEPS_MARGINALS))
        session.execute(text(MONTH_OFF), {"lo": month, "hi": next_month(month)})
        session.execute(text(TRIGGERS_KEEP_MARGINALS))
        session.execute(text(f"TRUNCATE {name}"))
        emptied.append(name)
    found += int(session.execute(text(ROLLUPS_OFF), params).scalar_one())
    if found != expected:
        raise Conflict(f"the archive holds {found} events in the due files' ranges, their manifests say {expected}")
    session.execute(text(
        f"DELETE FROM {PARENT} WHERE CAST(id AS bigint) <@ CAST(:ranges AS int8multirange) "
        "AND emitted_at <= :newest"), params)
    session.execute(text(f"UPDATE {MANIFESTS} SET purged_at = :now WHERE id = ANY(:ids)"),
                    {"now": now, "ids": [d.manifest_id for d in due]})
    return expected, emptied


def _whole(session: Session, params: dict[str, Any]) -> list[str]:
    """Partitions, up to the newest due event's month, holding rows and no row outside the ranges."""
    whole = []
    for name in partitions(session):
        if month_of(name) > params["newest"]:
            break
        outside = session.scalar(text(
            f"SELECT EXISTS (SELECT 1 FROM {name} WHERE NOT CAST(id AS bigint) <@ CAST(:ranges AS int8multirange))"),
            params)
        if not outside and session.scalar(text(f"SELECT EXISTS (SELECT 1 FROM {name})")):
            whole.append(name)
    return whole
