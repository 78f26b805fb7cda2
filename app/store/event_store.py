"""Appending to the log: sequence, hash chain, in-flight registration and outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.domain.changes import ChangeContext
from app.domain.clock import iso
from app.domain.events import PlannedEvent
from app.domain.hashing import CURRENT, event_hash
from app.store import snapshots
from app.store.envelopes import envelope as envelope  # re-exported: the public shape, read everywhere
from app.store.event_tail import append_rows
from app.store.tables import Event as Event  # re-exported: what append() answers
from app.store.tables import StreamMixin

# Ids of events given an outbox row in this session's transaction (``UnitOfWork.commit`` publishes them).
QUEUED = "orchestration.queued_events"


# The events' metadata is the change's context: one type, two names (``EventMeta`` reads better here).
EventMeta = ChangeContext


@dataclass
class StreamRef:
    """The entity an event belongs to, and its stream row (None outside the stream)."""

    entity_type: str
    entity_id: int
    entity_code: str | None
    correlation_id: str
    priority: str
    row: StreamMixin | None = field(default=None, repr=False)


def append(
    session: Session,
    stream: StreamRef,
    planned: list[PlannedEvent],
    meta: EventMeta,
    now: datetime,
    *,
    in_stream: bool = True,
    dispatch: bool = True,
) -> list[Event]:
    """Append events to a stream; the caller holds the stream row's lock.

    ``in_stream=False`` records events that name the entity but stand outside
    its sequence (``validation_failed``): no sequence, no prev_hash.
    """
    if not planned:
        return []
    row = stream.row if in_stream else None
    version = row.version if row is not None else 0
    rows, envelopes, last_hash = _chained_rows(stream, planned, meta, now, version, row.last_hash if row is not None else None,
                                    in_stream=row is not None)
    if row is not None:
        row.version = version + len(planned)
        row.last_hash = last_hash
        row.updated_at = now
    # the row's UPDATE and the events: one statement on PostgreSQL (then COMMIT), a flush and inserts on SQLite
    queued = append_rows(session, rows, envelopes, now, dispatch=dispatch and meta.trigger_rules, stream_row=row)
    session.info.setdefault(QUEUED, set()).update(queued)
    if row is not None:
        _snapshot_if_due(session, stream, version, row.version, now)
    return rows


def _chained_rows(stream: StreamRef, planned: list[PlannedEvent], meta: EventMeta, now: datetime,
                  version: int, prev_hash: str | None, *,
                  in_stream: bool) -> tuple[list[Event], list[dict[str, Any]], str | None]:
    """Sequence and hash each planned event after the stream's head; returns the rows and the new head."""
    chain = [c for c in dict.fromkeys(meta.correlation_chain) if c != stream.correlation_id]
    rows: list[Event] = []
    envelopes: list[dict[str, Any]] = []
    for offset, item in enumerate(planned, start=1):
        envelope = {
            "event_id": item.event_id or str(uuid.uuid4()),
            "type": item.type,
            "entity": {"type": stream.entity_type, "id": stream.entity_id, "code": stream.entity_code},
            "sequence": version + offset if in_stream else None,
            "actor": meta.actor,
            "timestamp": iso(now),
            "correlation_id": stream.correlation_id,
            "correlation_chain": chain,
            "causation_id": meta.causation_id,
            "session_key": meta.session_key,
            "priority": stream.priority,
            "changes": item.changes,
            "data": item.data,
            "prev_hash": prev_hash if in_stream else None,
            "hash_scheme": CURRENT,
        }
        digest = event_hash(envelope)
        rows.append(_row(envelope, digest, now, meta.causation_depth))
        envelopes.append(envelope)
        if in_stream:
            prev_hash = digest
    return rows, envelopes, prev_hash


def _snapshot_if_due(session: Session, stream: StreamRef, before: int, after: int, now: datetime) -> None:
    """Every N events of a stream, a snapshot in the same transaction (N: ``snapshots.SNAPSHOT_EVERY``)."""
    snapshots.take_if_due(session, stream.entity_type, stream.entity_id, before, after, now)


def _row(envelope: dict[str, Any], digest: str, now: datetime, depth: int) -> Event:
    entity = envelope["entity"]
    return Event(
        event_id=envelope["event_id"],
        type=envelope["type"],
        entity_type=entity["type"],
        entity_id=entity["id"],
        entity_code=entity["code"],
        sequence=envelope["sequence"],
        actor=envelope["actor"],
        emitted_at=now,
        correlation_id=envelope["correlation_id"],
        correlation_chain=envelope["correlation_chain"],
        causation_id=envelope["causation_id"],
        causation_depth=depth,
        session_key=envelope["session_key"],
        priority=envelope["priority"],
        changes=envelope["changes"],
        data=envelope["data"],
        hash=digest,
        prev_hash=envelope["prev_hash"],
        hash_scheme=envelope["hash_scheme"],
    )
