"""Snapshots: an entity's folded state at a sequence, so reconstruction need not
read (or still have) every event before it.

Written every N events of a stream (in the append's transaction, see
``take_if_due``) and by the archiver for each stream whose events it archives;
a snapshot records the hash of its last event, so chain validation can start
from it once older events are purged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.clock import iso
from app.domain.history import states
from app.store import archive_reads
from app.store.tables import Event, Snapshot

# ``Session.info`` key: how many events of a stream between snapshots (0 turns them off).
SNAPSHOT_EVERY = "snapshot_every"
DEFAULT_SNAPSHOT_EVERY = 50


def latest(session: Session, entity_type: str, entity_id: int, *, at: datetime | None = None,
           max_sequence: int | None = None) -> Snapshot | None:
    """The newest snapshot whose last event is at or before ``at`` / ``max_sequence``."""
    stmt = select(Snapshot).where(Snapshot.entity_type == entity_type, Snapshot.entity_id == entity_id)
    if at is not None:
        stmt = stmt.where(Snapshot.as_of <= at)
    if max_sequence is not None:
        stmt = stmt.where(Snapshot.sequence <= max_sequence)
    return session.scalars(stmt.order_by(Snapshot.sequence.desc()).limit(1)).first()


def at_sequence(session: Session, entity_type: str, entity_id: int, sequence: int) -> Snapshot | None:
    return session.scalars(
        select(Snapshot).where(Snapshot.entity_type == entity_type, Snapshot.entity_id == entity_id,
                               Snapshot.sequence == sequence)
    ).first()


def stream_events(session: Session, entity_type: str, entity_id: int, *, after_sequence: int = 0,
                  at: datetime | None = None, max_sequence: int | None = None) -> list[dict[str, Any]]:
    """The stream's events (archived ones included) in sequence order, as envelopes."""
    stmt = select(Event).where(
        Event.entity_type == entity_type,
        Event.entity_id == entity_id,
        Event.sequence.is_not(None),
        Event.sequence > after_sequence,
    )
    if at is not None:
        stmt = stmt.where(Event.emitted_at <= at)
    if max_sequence is not None:
        stmt = stmt.where(Event.sequence <= max_sequence)
    return archive_reads.envelopes(session, archive_reads.both(stmt, "sequence", "id"))


def fold_across(session: Session, entity_type: str, entity_id: int, events: Iterable[dict[str, Any]],
                state: dict[str, Any] | None = None,
                last: int = 0) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """``history.states`` for a stored stream: across a purged stretch it resumes from the
    snapshot the archiver took at its last sequence, so a stream with a purged prefix or
    a purged middle still folds to its row."""

    def resume(sequence: int) -> dict[str, Any] | None:
        bridge = at_sequence(session, entity_type, entity_id, sequence)
        return dict(bridge.state) if bridge is not None else None

    return states(events, state, last, resume)


def fold_to_end(session: Session, entity_type: str, entity_id: int, events: Iterable[dict[str, Any]],
                state: dict[str, Any] | None = None, last: int = 0) -> dict[str, Any] | None:
    final = deque(fold_across(session, entity_type, entity_id, events, state, last), maxlen=1)
    return final[0][1] if final else state


def missing_after(session: Session, entity_type: str, entity_id: int, sequence: int) -> bool:
    """True when the event after ``sequence`` is gone although the stream went on (a purge
    removed it): what happened right after ``sequence`` can no longer be told."""
    of_stream = (Event.entity_type == entity_type, Event.entity_id == entity_id)
    following = select(Event.id).where(*of_stream, Event.sequence == sequence + 1).limit(1)
    if archive_reads.first_of(session, following) is not None:
        return False
    later = select(Snapshot.id).where(Snapshot.entity_type == entity_type, Snapshot.entity_id == entity_id,
                                      Snapshot.sequence > sequence).limit(1)
    return session.scalar(later) is not None


def take(session: Session, entity_type: str, entity_id: int, upto_sequence: int, now: datetime) -> Snapshot | None:
    """Fold the stream up to ``upto_sequence`` (from the previous snapshot) and store it.

    Idempotent: an existing snapshot at that sequence is returned as it is.
    """
    existing = at_sequence(session, entity_type, entity_id, upto_sequence)
    if existing is not None:
        return existing
    base = latest(session, entity_type, entity_id, max_sequence=upto_sequence)
    events = stream_events(session, entity_type, entity_id, after_sequence=base.sequence if base else 0,
                           max_sequence=upto_sequence)
    if not events:
        return base
    state = fold_to_end(session, entity_type, entity_id, events, dict(base.state) if base else None,
                        base.sequence if base else 0)
    if state is None:
        return None
    last = events[-1]
    snapshot = Snapshot(
        entity_type=entity_type, entity_id=entity_id, sequence=last["sequence"], state=state,
        last_hash=last["hash"], last_event_id=last["event_id"],
        as_of=datetime.fromisoformat(last["timestamp"]), created_at=now,
    )
    session.add(snapshot)
    session.flush()
    return snapshot


def take_if_due(session: Session, entity_type: str, entity_id: int, before: int, after: int,
                now: datetime) -> Snapshot | None:
    """After an append moved a stream from version ``before`` to ``after``: snapshot the
    last multiple of N it crossed (at most one per append), N from ``Session.info``."""
    every = int(session.info.get(SNAPSHOT_EVERY, DEFAULT_SNAPSHOT_EVERY))
    if every <= 0 or after // every == before // every:
        return None
    return take(session, entity_type, entity_id, after // every * every, now)


def state_at(session: Session, entity_type: str, entity_id: int,
             at: datetime | None = None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(state, last event applied) at ``at`` (inclusive), from the newest usable snapshot.

    When the last applied event lies inside the snapshot, the second value is a
    stand-in carrying the snapshot's sequence, timestamp and event id.
    """
    base = latest(session, entity_type, entity_id, at=at)
    events = stream_events(session, entity_type, entity_id, after_sequence=base.sequence if base else 0, at=at)
    state = fold_to_end(session, entity_type, entity_id, events, dict(base.state) if base else None,
                        base.sequence if base else 0)
    if events:
        return state, events[-1]
    if base is None:
        return None, None
    return state, {"sequence": base.sequence, "timestamp": iso(base.as_of),
                   "event_id": base.last_event_id, "hash": base.last_hash}


def states_between(session: Session, entity_type: str, entity_id: int, first: int,
                   last: int) -> dict[int, dict[str, Any] | None]:
    """The state right after each sequence in ``first..last``, starting from the newest
    snapshot before ``first``: one page of history costs one page of folding."""
    base = latest(session, entity_type, entity_id, max_sequence=first - 1)
    start = base.sequence if base else 0
    events = stream_events(session, entity_type, entity_id, after_sequence=start, max_sequence=last)
    return {
        event["sequence"]: state
        for event, state in fold_across(session, entity_type, entity_id, events,
                                        dict(base.state) if base else None, start)
        if event["sequence"] >= first
    }
