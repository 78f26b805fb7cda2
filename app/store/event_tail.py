"""The tail of a write: events and outbox rows in one round trip.

Everything else of the write (row lock, hashing, the response) happens
before; on PostgreSQL the tail is **one statement** (``tail_sql``) followed by
COMMIT, and it carries the stream row's UPDATE too (``row_update``) when that
is all a flush would send. It starts by registering the transaction as in flight
(``event_fence.REGISTER_SQL``, a shared advisory lock keyed below every id it
is about to draw), which is what lets readers that follow the log by id stop
short of a late commit (``event_fence.visible_bound``). Writers never wait on
each other for it, so concurrent commits share their WAL flushes.

An event gets an outbox row only if some enabled rule's trigger could match
it (``domain.interest.may_trigger``), judged from the rule index cached in
this process (``rule_index``). The tail statement also returns the rules'
version; when it differs from the cached one, the index is reloaded and the
outbox rows the fresh rules want are added before COMMIT, so a stale cache
never loses an event. On SQLite (one writer at a time, ``BEGIN IMMEDIATE``)
the same steps are separate statements.

The tail writes no rollup: concurrent writes of one hour, type, actor and
entity type would all update the same rollup row and queue on its lock until
the previous writer's COMMIT. The fold job adds settled events to the rollups
later (``rollup_fold``); readers count the events it has not reached yet.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Table, TextClause, delete, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from app.domain.clock import as_utc
from app.domain.interest import may_trigger
from app.store import row_update, rule_index
from app.store.bell import note_appended
from app.store.event_fence import REGISTER_SQL
from app.store.tables import Event, OutboxEntry

APPENDED_TYPES = "orchestration_appended_event_types"  # read by app.runtime for metrics


def append_rows(session: Session, rows: Sequence[Event], envelopes: Sequence[dict[str, Any]], now: datetime, *,
                dispatch: bool, stream_row: Any = None) -> set[int]:
    """Write the stream row's changes, insert the events (setting their ids) and their outbox rows when a
    rule may care.

    Returns the ids that got an outbox row: the only ones worth a message.
    """
    session.info.setdefault(APPENDED_TYPES, []).extend(row.type for row in rows)  # counted after the commit
    if session.get_bind().dialect.name == "postgresql":
        update = row_update.pending(session, stream_row)
        if update is None:
            session.flush()
        return _postgres_tail(session, rows, envelopes, now, dispatch=dispatch, update=update)
    session.flush()
    return _sqlite_tail(session, rows, envelopes, now, dispatch=dispatch)


def _wanted(index: rule_index.RuleIndex, envelopes: Sequence[dict[str, Any]], dispatch: bool) -> list[str]:
    """Event ids (uuids) some enabled rule could fire on."""
    return [e["event_id"] for e in envelopes
            if dispatch and (not index.seeded or may_trigger(index.triggers, e))]


def _queue(session: Session, rows: Sequence[Event], event_ids: set[str], now: datetime) -> set[int]:
    """Outbox rows for these events (already inserted, ids set)."""
    ids = [row.id for row in rows if row.event_id in event_ids]
    if ids:
        session.execute(insert(OutboxEntry), [{"event_id": i, "created_at": now, "dispatch_count": 0, "failures": 0}
                                             for i in ids])
    return set(ids)


# --- PostgreSQL: one statement -------------------------------------------------------------------

Column = tuple[str, str, Any, bool]  # attribute, column name, scalar default, has a server default


@cache
def _all_columns() -> tuple[Column, ...]:
    """Every events column but ``id``, in table order."""
    found = []
    for column in Event.__table__.columns:
        if column.key == "id":
            continue
        default = column.default.arg if column.default is not None and column.default.is_scalar else None
        found.append((column.key, column.name, default, column.server_default is not None))
    return tuple(found)


def _event_columns(rows: Sequence[Event]) -> tuple[Column, ...]:
    """The columns to write: all but those left to a server default by every row."""
    return tuple(c for c in _all_columns()
                 if not (c[3] and c[2] is None and all(getattr(r, c[0]) is None for r in rows)))


RowKey = tuple[Table, tuple[str, ...]]  # the stream row's table and the columns its UPDATE sets


@cache
def tail_sql(columns: tuple[Column, ...], row: RowKey | None = None) -> str:
    """The tail statement, built from the table so a new column needs no edit here; with ``row``, it
    also sends the stream row's UPDATE (``row_update``) and answers how many rows that changed."""
    dialect = postgresql.dialect()
    table = Event.__table__
    names = [c[1] for c in columns]
    record = ", ".join(f'"{n}" {table.c[n].type.compile(dialect=dialect)}' for n in names) + ", ord int"
    quoted = ", ".join(f'"{n}"' for n in names)
    updated = "(SELECT count(*) FROM row_update)" if row is not None else "1"
    return f"""
WITH fence AS {REGISTER_SQL},{"" if row is None else chr(10) + row_update.update_cte(*row) + ","}
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
  WHERE ins.event_id = ANY(CAST(:queue AS varchar[]))
  RETURNING event_id
)
SELECT ins.event_id, ins.id, queued.event_id IS NOT NULL AS queued, {rule_index.VERSION_SQL["postgresql"]},
  {updated} AS updated
FROM ins LEFT JOIN queued ON queued.event_id = ins.id
"""


@cache
def tail_statement(columns: tuple[Column, ...], row: RowKey | None = None) -> TextClause:
    """``tail_sql`` as a statement, built once: parsing its text for parameters costs more than sending it."""
    statement = text(tail_sql(columns, row))
    return statement if row is None else statement.bindparams(*row_update.binds(*row))


def _json_value(value: Any) -> Any:
    return as_utc(value).isoformat() if isinstance(value, datetime) else value


def _event_records(rows: Sequence[Event], columns: tuple[Column, ...]) -> str:
    records = []
    for ord_, row in enumerate(rows):
        record: dict[str, Any] = {"ord": ord_}
        for key, name, default, _ in columns:
            value = getattr(row, key)
            record[name] = _json_value(default if value is None else value)
        records.append(record)
    return json.dumps(records, separators=(",", ":"))


def _postgres_tail(session: Session, rows: Sequence[Event], envelopes: Sequence[dict[str, Any]], now: datetime, *,
                   dispatch: bool, update: row_update.RowUpdate | None) -> set[int]:
    index = rule_index.current(session)
    columns = _event_columns(rows)
    params = {"events": _event_records(rows, columns), "now": as_utc(now).isoformat(),
              "queue": _wanted(index, envelopes, dispatch)}
    key = None
    if update is not None:
        key, params = (update.table, update.columns), params | update.params()
    result = session.execute(tail_statement(columns, key), params).all()
    note_appended(session)
    if update is not None:
        if result[0][4] != 1:  # the caller holds the row's lock: it cannot have gone
            raise RuntimeError(f"{update.table.name} row {update.ident} was not updated")
        update.mark_flushed(session)
    found = {event_id: event_pk for event_id, event_pk, *_ in result}
    for row in rows:
        row.id = found[row.event_id]
    queued = {event_pk for _, event_pk, was_queued, *_ in result if was_queued}
    if dispatch and result[0][3] != index.version:  # the rules changed since this process cached them
        fresh = set(_wanted(rule_index.refresh(session), envelopes, dispatch))
        stale = {r.id for r in rows if r.id in queued and r.event_id not in fresh}
        if stale:
            session.execute(delete(OutboxEntry).where(OutboxEntry.event_id.in_(stale)))
        queued = (queued - stale) | _queue(session, rows, fresh - {r.event_id for r in rows if r.id in queued}, now)
    return queued


# --- SQLite: the single writer makes commit order id order; plain statements -----------------

def _sqlite_tail(session: Session, rows: Sequence[Event], envelopes: Sequence[dict[str, Any]], now: datetime, *,
                 dispatch: bool) -> set[int]:
    columns = _event_columns(rows)
    values = [{key: (default if getattr(row, key) is None else getattr(row, key))
               for key, _, default, _ in columns} for row in rows]
    ids = session.scalars(insert(Event).returning(Event.id, sort_by_parameter_order=True), values).all()
    for row, event_pk in zip(rows, ids, strict=True):
        row.id = event_pk
    queued: set[int] = set()
    if dispatch:
        index = rule_index.current(session)
        if session.execute(text(f"SELECT {rule_index.version_sql(session)}")).scalar_one() != index.version:
            index = rule_index.refresh(session)
        queued = _queue(session, rows, set(_wanted(index, envelopes, dispatch)), now)
    return queued
