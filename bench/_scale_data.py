"""A consistent event log of N events, built with the project's own domain code and loaded by COPY.

Task streams are round-robin over the span (so every stream's events are in
time order and ids follow time, as in a live log), each a ``created`` event then
granular changes from ``app.domain.events.granular_events``, sequenced and hashed
with ``app.domain.hashing.event_hash`` exactly as ``append`` does. Task rows end
at their fold (version, last hash). One extra task carries ``LONG_STREAM``
events in the last days, for validate and replay. Rollups are derived from the
loaded log. Memory stays flat: one state per stream, rows streamed into COPY.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from app.domain import events as catalogue
from app.domain.clock import iso
from app.domain.fold import apply_event
from app.domain.hashing import event_hash

LONG_STREAM = 10_000
EVENTS_PER_STREAM = 200
ACTORS = 2_000
STATUSES = ("pending", "in_progress", "blocked", "completed")
EVENT_COLUMNS = ("id", "event_id", "type", "entity_type", "entity_id", "entity_code", "sequence", "actor",
                 "emitted_at", "correlation_id", "correlation_chain", "causation_id", "causation_depth",
                 "session_key", "priority", "changes", "data", "hash", "prev_hash")
SNAPSHOT_COLUMNS = ("entity_type", "entity_id", "sequence", "state", "last_hash", "last_event_id", "as_of",
                    "created_at")
SNAPSHOT_EVERY = 50  # as ORCH_SNAPSHOT_EVERY's default
TASK_COLUMNS = ("id", "task_code", "title", "description", "status", "priority", "progress", "assignee",
                "metadata", "correlation_id", "version", "last_hash", "created_at", "updated_at")


@dataclass
class Stream:
    entity_id: int
    code: str
    correlation_id: str
    priority: str
    state: dict[str, Any] | None = None
    version: int = 0
    last_hash: str | None = None
    last_at: datetime | None = None
    folded: dict[str, Any] | None = None


def _initial(stream: Stream) -> dict[str, Any]:
    return {"task_code": stream.code, "sprint_code": None, "title": f"Task {stream.code}", "description": "",
            "status": "pending", "priority": stream.priority, "progress": 0, "assignee": None, "metadata": {}}


def _next_state(state: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    after = dict(state)
    field = rng.choice(("status", "progress", "assignee", "title"))
    if field == "status":
        after["status"] = rng.choice([s for s in STATUSES if s != state["status"]])
    elif field == "progress":
        after["progress"] = (state["progress"] + rng.randint(1, 30)) % 101
    elif field == "assignee":
        after["assignee"] = f"agent:a{rng.randint(0, 99)}"
    else:
        after["title"] = f"{state['title'].split(' #')[0]} #{rng.randint(0, 10**6)}"
    return after


def _events_of(stream: Stream, at: datetime, actor: str, session_key: str | None, rng: random.Random,
               snapshots: list[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    """The next change of a stream, as the service would record it (one or more envelopes)."""
    if stream.state is None:
        after = _initial(stream)
        planned = [catalogue.created_event("task", after)]
    else:
        after = _next_state(stream.state, rng)
        planned = catalogue.granular_events("task", stream.state, after)
    for item in planned:
        stream.version += 1
        envelope = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "type": item.type,
            "entity": {"type": "task", "id": stream.entity_id, "code": stream.code}, "sequence": stream.version,
            "actor": actor, "timestamp": iso(at), "correlation_id": stream.correlation_id, "correlation_chain": [],
            "causation_id": None, "session_key": session_key, "priority": stream.priority,
            "changes": item.changes, "data": item.data, "prev_hash": stream.last_hash,
        }
        envelope["hash"] = stream.last_hash = event_hash(envelope)
        stream.folded = apply_event(stream.folded, envelope)
        if stream.version % SNAPSHOT_EVERY == 0:
            snapshots.append(_snapshot(stream, envelope))
        yield envelope
    stream.state, stream.last_at = after, at


def _snapshot(stream: Stream, envelope: dict[str, Any]) -> tuple[Any, ...]:
    """What ``append`` leaves every ``SNAPSHOT_EVERY`` events of a stream: the fold so far."""
    return ("task", stream.entity_id, stream.version, json.dumps(stream.folded), envelope["hash"],
            envelope["event_id"], envelope["timestamp"], envelope["timestamp"])


def _row(event_id: int, envelope: dict[str, Any]) -> tuple[Any, ...]:
    entity = envelope["entity"]
    return (event_id, envelope["event_id"], envelope["type"], "task", entity["id"], entity["code"],
            envelope["sequence"], envelope["actor"], envelope["timestamp"], envelope["correlation_id"], "[]", None, 0,
            envelope["session_key"], envelope["priority"], json.dumps(envelope["changes"]),
            json.dumps(envelope["data"]), envelope["hash"], envelope["prev_hash"])


def _priority(index: int) -> str:
    return "P0" if index % 10 == 0 else ("P1", "P2", "P3")[index % 3]


def event_rows(total: int, days: int, now: datetime, streams: list[Stream],
               snapshots: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """``total`` events over ``days`` before ``now`` (the long stream in the last 5 days), in id order."""
    rng = random.Random(12)
    start, span = now - timedelta(days=days), timedelta(days=days)
    regular, long = streams[:-1], streams[-1]
    bulk = total - LONG_STREAM
    long_from = bulk - LONG_STREAM  # interleave the long stream with the last stretch
    next_id = 1
    for j in range(bulk):
        at = start + span * (j / bulk)
        stream = regular[j % len(regular)]
        actor = f"user:u{rng.randrange(ACTORS)}" if j % 3 else f"agent:a{j % 50}"
        for envelope in _events_of(stream, at, actor, f"bsess-{j % 5000}" if j % 4 == 0 else None, rng,
                                   snapshots):
            yield _row(next_id, envelope)
            next_id += 1
        if j >= long_from and long.version < LONG_STREAM:
            for envelope in _events_of(long, at, "agent:planner", None, rng, snapshots):
                yield _row(next_id, envelope)
                next_id += 1


def _task_row(stream: Stream) -> tuple[Any, ...]:
    state = stream.state or {}
    return (stream.entity_id, stream.code, state["title"], "", state["status"], stream.priority, state["progress"],
            state["assignee"], "{}", stream.correlation_id, stream.version, stream.last_hash,
            stream.last_at, stream.last_at)


def generate(engine: Engine, total: int, days: int, now: datetime) -> int:
    """Load the log, its task rows and rollups (folded: the watermark at the last id) into an empty
    migrated PostgreSQL database; returns events."""
    count = max(2, (total - LONG_STREAM) // EVENTS_PER_STREAM)
    streams = [Stream(i, f"BT-{i}", str(uuid.UUID(int=i, version=4)), _priority(i)) for i in range(1, count + 2)]
    streams[-1].priority = "P2"
    loaded, snapshots = 0, list[tuple[Any, ...]]()
    with engine.raw_connection() as raw:
        cursor = raw.cursor()
        with cursor.copy(f"COPY orchestration_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for row in event_rows(total, days, now, streams, snapshots):
                copy.write_row(row)
                loaded += 1
        with cursor.copy(f"COPY orchestration_snapshots ({', '.join(SNAPSHOT_COLUMNS)}) FROM STDIN") as copy:
            for snapshot in snapshots:
                copy.write_row(snapshot)
        with cursor.copy(f"COPY tasks ({', '.join(TASK_COLUMNS)}) FROM STDIN") as copy:
            for stream in streams:
                copy.write_row(_task_row(stream))
        raw.commit()
    with engine.begin() as connection:
        connection.execute(text("SELECT setval(pg_get_serial_sequence('orchestration_events', 'id'), :n)"),
                           {"n": loaded})
        connection.execute(text("SELECT setval(pg_get_serial_sequence('tasks', 'id'), :n)"), {"n": len(streams)})
        connection.execute(text(
            "INSERT INTO orchestration_event_rollups (bucket_start, type, actor, entity_type, archived, count) "
            "SELECT date_trunc('hour', emitted_at, 'UTC'), type, actor, entity_type, false, count(*) "
            "FROM orchestration_events GROUP BY 1, 2, 3, 4"))
        connection.execute(text("UPDATE orchestration_rollup_watermark SET folded_upto = :n"), {"n": loaded})
    return loaded


def long_stream_code(total: int) -> str:
    return f"BT-{max(2, (total - LONG_STREAM) // EVENTS_PER_STREAM) + 1}"


NOW = datetime(2026, 12, 1, tzinfo=UTC)
