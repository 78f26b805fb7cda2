"""Chain validation: read the streams a correlation touches and let the domain judge them.

Archived events are read from the archive table alongside the hot ones; once
purged, a stream resumes at the archiver's snapshot, whose hash anchors the
first event still present. The whole-log check streams: one stream in memory at
a time, counted and forgotten, so its memory stays flat whatever the log's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.domain.errors import NotFound
from app.domain.integrity import Head, Problem, check_loose, check_stream
from app.store.chain_reads import ChainReads, StreamKey
from app.store.uow import UnitOfWork


@dataclass
class ChainRead:
    """What validating a chain read: each stream's events (the replay folds the same ones)."""

    correlation_id: str | None
    streams: dict[StreamKey, list[dict[str, Any]]] = field(default_factory=dict)
    entities: dict[StreamKey, dict[str, Any]] = field(default_factory=dict)
    loose: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        counted = sum(len(events) for events in self.streams.values()) + len(self.loose)
        body = {"valid": not self.problems, "events": counted, "streams": len(self.streams),
                "problems": [p.as_dict() for p in self.problems]}
        return body if self.correlation_id is None else {"correlation_id": self.correlation_id, **body}


def validate_event_chain(correlation_id: str, uow: UnitOfWork) -> dict[str, Any]:
    """For each entity with an event in the chain, its stream up to the chain's last event
    (the whole stream, up to the row's version, for the entity that owns the id)."""
    with uow:
        return read_chain(uow, correlation_id).report()


def validate_all(uow: UnitOfWork) -> dict[str, Any]:
    """Every stream in the database, whole, one at a time."""
    with uow:
        return scan_everything(uow.chains)


def read_chain(uow: UnitOfWork, correlation_id: str) -> ChainRead:
    """The chain's streams and their problems, inside the caller's unit of work (replay folds them next)."""
    chains = uow.chains
    own = chains.owner(correlation_id)  # read first: its head caps its own stream below
    found = chains.reach_of(correlation_id)
    if not found.streams and not found.loose and own is None:
        raise NotFound(f"no event belongs to correlation {correlation_id!r}")
    read = ChainRead(correlation_id, loose=found.loose)
    reach: dict[StreamKey, int] = {}
    for key, (entity, last) in found.streams.items():
        reach[key] = last
        read.entities.setdefault(key, entity)
    heads: dict[StreamKey, Head] = {}
    if own is not None:
        own_key = (own.entity["type"], own.entity["id"])
        reach[own_key], heads[own_key], read.entities[own_key] = own.head.sequence, own.head, own.entity
    for key, last in reach.items():
        _judge(chains, read, key, chains.stream(key, max_sequence=last), heads.get(key))
    read.problems += check_loose(read.loose)
    return read


def scan_everything(chains: ChainReads) -> dict[str, Any]:
    """The whole-log report, holding one stream at a time (never the log)."""
    rows = chains.stream_rows()
    problems: list[Problem] = []
    events = checked = 0
    for key, stream in chains.every_stream():
        row = rows.pop(key, None)
        if row is not None:
            stream = [e for e in stream if e["sequence"] <= row.head.sequence]
        entity = row.entity if row is not None else stream[0]["entity"]
        problems += check_stream(entity, stream, anchors=_anchors(chains, key, stream),
                                 head=row.head if row is not None else None)
        events, checked = events + len(stream), checked + 1
    for key, row in rows.items():
        if row.head.sequence > 0:
            problems += check_stream(row.entity, [], anchors=_anchors(chains, key, []), head=row.head)
            checked += 1
    loose = 0
    for event in chains.loose_events():
        problems += check_loose([event])
        loose += 1
    return {"valid": not problems, "events": events + loose, "streams": checked,
            "problems": [p.as_dict() for p in problems]}


def _judge(chains: ChainReads, read: ChainRead, key: StreamKey, stream: list[dict[str, Any]],
           head: Head | None) -> None:
    read.streams[key] = stream
    read.problems += check_stream(read.entities[key], stream, anchors=_anchors(chains, key, stream), head=head)


def _anchors(chains: ChainReads, key: StreamKey, stream: list[dict[str, Any]]) -> dict[int, str]:
    """Purge records for the stream, looked up only when events are missing from it."""
    sequences = [e["sequence"] for e in stream]
    if sequences == list(range(1, len(sequences) + 1)):
        return {}
    return chains.purged_heads(key)


def describe(problem: dict[str, Any]) -> str:
    """One line naming the problem's entity, sequence, event and what is wrong."""
    entity = problem["entity"]
    code = f" {entity['code']}" if entity.get("code") else ""
    event = f" event {problem['event_id']}" if problem.get("event_id") else ""
    return (f"{entity['type']}{code} (id {entity['id']}) sequence {problem['sequence']}{event}: "
            f"{problem['kind']}: {problem['detail']}")
