"""Streams as integrity checking and replay read them: who owns a correlation id,
where each stream's row says it ends, and every event of a chain."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from sqlalchemy import select, union_all
from sqlalchemy.orm import Session

from app.domain.integrity import Head
from app.domain.stream_types import SIGNAL, stream_type
from app.store import archive_reads
from app.store.event_queries import correlation_condition
from app.store.stream_registry import STORED
from app.store.tables import Event, Signal

BATCH = 1000


@dataclass(frozen=True)
class StreamRow:
    """An entity row seen as a stream: its reference and where it says the stream ends."""

    entity: dict[str, Any]
    head: Head


def _stream_row(entity_type: str, row: Any) -> StreamRow:
    code_field = stream_type(entity_type).code_field
    code = getattr(row, code_field, None) if code_field is not None else None
    return StreamRow({"type": entity_type, "id": row.id, "code": code}, Head(row.version or 0, row.last_hash))


def owner(session: Session, correlation_id: str) -> StreamRow | None:
    """The entity whose own stream this correlation id is, if any."""
    for declared, kind in STORED.items():
        if declared is SIGNAL:
            continue
        row = session.scalars(select(kind.model).where(kind.model.correlation_id == correlation_id)).unique().first()
        if row is not None:
            return _stream_row(kind.name, row)
    signal = session.scalars(select(Signal).where(Signal.correlation_id == correlation_id)).first()
    return _stream_row(signal.kind, signal) if signal is not None else None


def all_stream_rows(session: Session) -> dict[tuple[str, int], StreamRow]:
    """Every entity row that has (or should have) a stream, keyed by (type, id)."""
    found: dict[tuple[str, int], StreamRow] = {}
    for declared, kind in STORED.items():
        if declared is SIGNAL:
            continue
        code = getattr(kind.model, str(declared.code_field))
        for row in session.execute(select(kind.model.id, kind.model.version, kind.model.last_hash, code)):
            found[(kind.name, row.id)] = _stream_row(kind.name, row)
    for row in session.execute(select(Signal.id, Signal.kind, Signal.version, Signal.last_hash)):
        found[(row.kind, row.id)] = _stream_row(row.kind, row)
    return found


@dataclass
class ChainReach:
    """Where a correlation chain reaches: each stream it touches (in order of first appearance)
    with its entity and last sequence in the chain, and its events outside any stream."""

    streams: dict[tuple[str, int], tuple[dict[str, Any], int]]
    loose: list[dict[str, Any]]


def chain_reach(session: Session, correlation_id: str) -> ChainReach:
    """The chain's reach from narrow rows (archived ones included): validation then reads each
    stream whole, so the chain's own events are not built into envelopes twice."""
    narrow = select(Event.id, Event.entity_type, Event.entity_id, Event.entity_code, Event.sequence).where(
        correlation_condition(session, correlation_id))
    union = union_all(narrow, archive_reads.in_archive(narrow))
    reach: dict[tuple[str, int], tuple[dict[str, Any], int]] = {}
    loose: list[int] = []
    for ident, entity_type, entity_id, code, sequence in session.execute(union.order_by(union.selected_columns.id)):
        if sequence is None:
            loose.append(ident)
            continue
        key = (entity_type, entity_id)
        entity, last = reach.get(key, ({"type": entity_type, "id": entity_id, "code": code}, 0))
        reach[key] = (entity, max(last, sequence))
    found = archive_reads.envelopes(session, archive_reads.both(select(Event).where(Event.id.in_(loose)), "id")) \
        if loose else []
    return ChainReach(reach, found)


def every_stream(session: Session) -> Iterator[tuple[tuple[str, int], list[dict[str, Any]]]]:
    """Each stream's events in sequence order, one stream at a time, read in batches."""
    stmt = archive_reads.both(select(Event).where(Event.sequence.is_not(None)),
                              "entity_type", "entity_id", "sequence", "id")
    rows = archive_reads.stream(session, stmt, BATCH)
    for key, events in groupby(rows, key=lambda e: (e["entity"]["type"], e["entity"]["id"])):
        yield key, list(events)


def loose_events(session: Session) -> Iterator[dict[str, Any]]:
    """Events outside any stream (``validation_failed``), in batches."""
    stmt = archive_reads.both(select(Event).where(Event.sequence.is_(None)), "id")
    return archive_reads.stream(session, stmt, BATCH)
