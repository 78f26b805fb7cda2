"""The serial tail of a write: commit-order lock, events, outbox rows and rollups in one round trip.

Ids come from a sequence at INSERT time but become visible at COMMIT, so a
reader paging by ``id > cursor`` could skip a row that commits late. Writers
therefore take a transaction-level advisory lock before the events' INSERT
and keep it to COMMIT (DESIGN §3). What matters is how long they keep it:
everything else of the write (row lock, row UPDATE, hashing, the response)
happens before, and on PostgreSQL the tail is **one statement**
(``TAIL_SQL``): the lock, the events, their outbox rows and the rollup
upserts, followed by COMMIT. The serial section is the server's work for
that statement plus the commit, no client round trip or Python in between.
Hot rollup rows (same hour, type, actor) are only touched inside that
section, so they add no serial point of their own.

An event gets an outbox row only if some enabled rule's trigger type can
match it (``interested``): the decision is made in the same statement, from
the rules table as committed, so it is never stale and costs no extra query.
On SQLite (one writer at a time, ``BEGIN IMMEDIATE``) the same steps are
separate statements.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, insert, literal, or_, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from app.domain.clock import as_utc
from app.store.tables import Event, OutboxEntry, Rule

# Held from the events' INSERT to COMMIT, so ids become visible in id order.
COMMIT_ORDER_LOCK = 7_236_052_154_312_557_101


def hour_bucket(moment: datetime) -> datetime:
    return as_utc(moment).replace(minute=0, second=0, microsecond=0)


def rollup_counts(rows: Sequence[Event]) -> dict[tuple[Any, ...], int]:
    """``(bucket, type, actor, entity_type, archived) -> n`` for fresh (unarchived) events."""
    counts = Counter((hour_bucket(r.emitted_at), r.type, r.actor, r.entity_type) for r in rows)
    return {key + (False,): n for key, n in counts.items()}


def interested(event_type: Any, pattern: Any) -> ColumnElement[bool]:
    """SQL for ``domain.events.type_matches(pattern, type)``: exact, or a prefix ending in ``.*``."""
    prefix_length = func.length(pattern) - 1
    return or_(pattern == event_type,
               and_(pattern.like("%.*"), func.substr(event_type, 1, prefix_length) == func.substr(pattern, 1,
                                                                                               prefix_length)))


def _trigger_type(session: Session) -> ColumnElement[str]:
    if session.get_bind().dialect.name == "postgresql":
        return Rule.trigger["type"].astext
    return func.json_extract(Rule.trigger, "$.type")


def append_rows(session: Session, rows: Sequence[Event], now: datetime, *, dispatch: bool) -> set[int]:
    """Insert the events (setting their ids), their outbox rows when a rule may care, and the rollups.

    Returns the ids that got an outbox row: the only ones worth a message.
    """
    if session.get_bind().dialect.name == "postgresql":
        return _postgres_tail(session, rows, now, dispatch=dispatch)
    return _sqlite_tail(session, rows, now, dispatch=dispatch)


# --- PostgreSQL: one statement -------------------------------------------------------------------

@cache
def _event_columns() -> tuple[tuple[str, str, Any], ...]:
    """(attribute, column, default) of every events column but ``id``, in table order."""
    table = Event.__table__
    found = []
    for column in table.columns:
        if column.key == "id":
            continue
        default = column.default.arg if column.default is not None and column.default.is_scalar else None
        found.append((column.key, column.name, default))
    return tuple(found)


@cache
def tail_sql() -> str:
    """The tail statement, built from the table so a new column needs no edit here."""
    dialect = postgresql.dialect()
    table = Event.__table__
    names = [name for _, name, _ in _event_columns()]
    record = ", ".join(f'"{n}" {table.c[n].type.compile(dialect=dialect)}' for n in names) + ", ord int"
    quoted = ", ".join(f'"{n}"' for n in names)
    pattern = "r.\"trigger\"->>'type'"
    matches = (f"({pattern} = ins.type OR ({pattern} LIKE '%.*' AND substr(ins.type, 1, length({pattern}) - 1)"
               f" = substr({pattern}, 1, length({pattern}) - 1)))")
    return f"""
WITH fence AS (SELECT pg_advisory_xact_lock({COMMIT_ORDER_LOCK}) AS held),
ins AS (
  INSERT INTO orchestration_events ({quoted})
  SELECT {", ".join(f'e."{n}"' for n in names)}
  FROM fence CROSS JOIN jsonb_to_recordset(CAST(:events AS jsonb)) AS e({record})
  ORDER BY e.ord
  RETURNING id, type, event_id
),
queued AS (
  INSERT INTO orchestration_outbox (event_id, created_at, dispatch_count)
  SELECT ins.id, CAST(:now AS timestamptz), 0 FROM ins
  WHERE CAST(:dispatch AS boolean)
    AND EXISTS (SELECT 1 FROM automation_rules r WHERE r.enabled AND {matches})
  RETURNING event_id
),
counted AS (
  INSERT INTO orchestration_event_rollups (bucket_start, type, actor, entity_type, archived, count)
  SELECT c.bucket_start, c.type, c.actor, c.entity_type, c.archived, c.n
  FROM fence CROSS JOIN jsonb_to_recordset(CAST(:rollups AS jsonb))
       AS c(bucket_start timestamptz, type varchar, actor varchar, entity_type varchar, archived boolean, n bigint,
            ord int)
  ORDER BY c.ord
  ON CONFLICT (bucket_start, type, actor, entity_type, archived)
  DO UPDATE SET count = orchestration_event_rollups.count + excluded.count
)
SELECT ins.event_id, ins.id, queued.event_id IS NOT NULL AS queued
FROM ins LEFT JOIN queued ON queued.event_id = ins.id
"""


def _json_value(value: Any) -> Any:
    return as_utc(value).isoformat() if isinstance(value, datetime) else value


def _event_records(rows: Sequence[Event]) -> str:
    records = []
    for ord_, row in enumerate(rows):
        record: dict[str, Any] = {"ord": ord_}
        for key, name, default in _event_columns():
            value = getattr(row, key)
            record[name] = _json_value(default if value is None else value)
        records.append(record)
    return json.dumps(records, separators=(",", ":"))


def _rollup_records(rows: Sequence[Event]) -> str:
    ordered = sorted(rollup_counts(rows).items(), key=lambda kv: repr(kv[0]))
    return json.dumps([{"bucket_start": b.isoformat(), "type": t, "actor": a, "entity_type": e, "archived": arch,
                        "n": n, "ord": i} for i, ((b, t, a, e, arch), n) in enumerate(ordered)])


def _postgres_tail(session: Session, rows: Sequence[Event], now: datetime, *, dispatch: bool) -> set[int]:
    params = {"events": _event_records(rows), "rollups": _rollup_records(rows), "now": as_utc(now).isoformat(),
              "dispatch": dispatch}
    found = {event_id: (event_pk, queued) for event_id, event_pk, queued in session.execute(text(tail_sql()),
                                                                                              params)}
    for row in rows:
        row.id = found[row.event_id][0]
    return {event_pk for event_pk, queued in found.values() if queued}


# --- SQLite: the single writer makes commit order id order; plain statements -----------------

def _sqlite_tail(session: Session, rows: Sequence[Event], now: datetime, *, dispatch: bool) -> set[int]:
    from app.store.event_store import add_to_rollups  # the shared upsert, also used by archiving

    values = [{key: (default if getattr(row, key) is None else getattr(row, key))
               for key, _, default in _event_columns()} for row in rows]
    ids = session.scalars(insert(Event).returning(Event.id, sort_by_parameter_order=True), values).all()
    for row, event_pk in zip(rows, ids, strict=True):
        row.id = event_pk
    queued: set[int] = set()
    if dispatch:
        wanted = select(Event.id, literal(now, OutboxEntry.created_at.type), literal(0)).where(
            Event.id.in_(ids), exists().where(Rule.enabled.is_(True), interested(Event.type, _trigger_type(session))))
        queued = set(session.scalars(insert(OutboxEntry).from_select(["event_id", "created_at", "dispatch_count"],
                                                                     wanted).returning(OutboxEntry.event_id)))
    add_to_rollups(session, rollup_counts(rows))
    return queued
