"""Replay: an entity's state at any instant, its history, and a chain folded from scratch.

The seed's ``OrchestrationReplayService`` as functions: ``reconstruct_state``,
``replay_events`` and ``validate_event_chain`` (from ``app.services.integrity``).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from app.domain.changes import ChangeContext
from app.domain.clock import Clock, iso, utc_now
from app.domain.errors import NotFound
from app.domain.history import public_state, state_at_event
from app.domain.jsonvalues import serialized_size
from app.domain.paging import take_within_budget
from app.services import repair
from app.services.integrity import ChainRead, read_chain, validate_event_chain
from app.store import history_reads, snapshots
from app.store.event_pages import FETCH_BATCH
from app.store.event_queries import entity_id_for
from app.store.uow import Repositories, UnitOfWork

__all__ = ["history", "reconstruct_state", "replay_events", "state_at", "validate_event_chain"]


def reconstruct_state(entity_type: str, entity_id: int, at: datetime, uow: UnitOfWork) -> dict[str, Any]:
    """The entity as it was at ``at`` (inclusive): its fields, ``deleted``, ``version``,
    ``as_of`` and ``as_of_event_id``; 404 before it existed. Starts from the newest snapshot."""
    with uow:
        return _state_at(uow.db, entity_type, entity_id, at)


def state_at(entity_type: str, code: str, at: datetime, uow: UnitOfWork) -> dict[str, Any]:
    """``reconstruct_state`` for an entity named by its code (deleted ones included)."""
    with uow:
        return _state_at(uow.db, entity_type, _entity_id(uow.db, entity_type, code), at)


def history(entity_type: str, code: str, after_id: int, limit: int, include_archived: bool,
            uow: UnitOfWork) -> tuple[list[dict[str, Any]], int | None]:
    """One page of ``{"event", "state"}``, oldest first, keyset-paged by event id.

    States always account for every earlier event, archived or not; only the
    listed events follow ``include_archived``.
    """
    with uow:
        db = uow.db
        entity_id = _entity_id(db, entity_type, code)
        events, more = history_reads.stream_page(db, entity_type, entity_id, after_id, limit + 1, include_archived,
                                                 FETCH_BATCH, lambda found: take_within_budget(found, limit,
                                                                                               serialized_size))
        if not events:
            return [], None
        sequences = [e["sequence"] or 0 for e in events]  # never None here: the query keeps stream events only
        found = snapshots.states_between(db, entity_type, entity_id, min(sequences), max(sequences))
        items = [{"event": e, "state": _public(found.get(s))} for e, s in zip(events, sequences, strict=True)]
        items, cut = take_within_budget(items, len(items), serialized_size)  # the states count too
        return items, (events[len(items) - 1]["id"] if more or cut else None)


def replay_events(correlation_id: str, uow: UnitOfWork, *, dry_run: bool = True,
                  ctx: ChangeContext | None = None, clock: Clock = utc_now,
                  trigger_rules: bool = False) -> dict[str, Any]:
    """Validate the chain, fold its events in global order from empty state and compare
    with the live rows; with ``dry_run=False`` repair rows that drifted from their events.
    Repairs are compensations: they start no rules unless ``trigger_rules``."""
    with uow:
        read = read_chain(uow, correlation_id)
        lives: dict[repair.Key, Any] = {}
        result = {"validation": read.report(), **_fold(uow, read, lives), "dry_run": dry_run}
        result["drift"] = repair.drift(result["final_states"], lives)
        result["repairs"] = []
        if not dry_run:
            actor_ctx = dataclasses.replace(ctx or ChangeContext(actor="system:replay"), trigger_rules=trigger_rules)
            folds = {(f["entity"]["type"], f["entity"]["id"]): (f["version"], f["state"])
                     for f in result["final_states"]}
            result["repairs"] = repair.repair(uow, read, result["drift"], folds, correlation_id, actor_ctx, clock)
            uow.commit()
        return result


def _fold(repos: Repositories, read: ChainRead, lives: dict[repair.Key, Any]) -> dict[str, Any]:
    """Steps in global order, one final state per entity, and whether they match the live rows
    (each row read once, into ``lives``).

    Each stream folds on its own (across purged stretches, from their snapshots);
    the steps then interleave the streams by global id.
    """
    after: dict[int, dict[str, Any] | None] = {}
    finals = []
    for key, events in read.streams.items():
        state = None
        for event, state in snapshots.fold_across(repos.db, *key, sorted(events, key=lambda e: e["sequence"])):
            after[event["id"]] = state
        version = events[-1]["sequence"] if events else 0
        lives[key] = repair.live_state(repos, key)
        finals.append({"entity": read.entities[key], "state": _public(state), "version": version,
                       "matches_live": repair.matches_live(lives[key], state, version)})
    ordered = sorted((e for events in read.streams.values() for e in events), key=lambda e: e["id"])
    steps = [{"event": event, "state": _public(after[event["id"]])} for event in ordered]
    return {"steps": steps, "final_states": finals,
            "matches_live": all(f["matches_live"] is not False for f in finals)}


def _state_at(db: Any, entity_type: str, entity_id: int, at: datetime) -> dict[str, Any]:
    state, last = snapshots.state_at(db, entity_type, entity_id, at)
    if state is None or last is None:
        raise NotFound(_why_nothing_at(db, entity_type, entity_id, at))
    if snapshots.missing_after(db, entity_type, entity_id, last["sequence"]):
        raise NotFound(f"{_name(db, entity_type, entity_id)}: the events around {iso(at)} were purged under the "
                       f"retention policy")
    return state_at_event(state, last)


def _why_nothing_at(db: Any, entity_type: str, entity_id: int, at: datetime) -> str:
    """Say whether the entity did not exist yet, or its history that far back was purged."""
    first = history_reads.first_sequence(db, entity_type, entity_id)
    earliest = history_reads.earliest_snapshot(db, entity_type, entity_id)
    if first is not None and first > 1 and earliest is not None:
        return (f"{_name(db, entity_type, entity_id)}: its history before {iso(earliest)} was purged under the "
                f"retention policy")
    return f"{_name(db, entity_type, entity_id)} did not exist at {iso(at)}"


def _name(db: Any, entity_type: str, entity_id: int) -> str:
    """How people name the entity: ``task TASK-001``, not the internal id (``task #7`` without a code)."""
    code = history_reads.code_of(db, entity_type, entity_id)
    return f"{entity_type} {code}" if code else f"{entity_type} #{entity_id}"


def _entity_id(db: Any, entity_type: str, code: str) -> int:
    entity_id = entity_id_for(db, entity_type, code)
    if entity_id is None:
        raise NotFound(f"no {entity_type} with code {code!r}")
    return entity_id


def _public(state: dict[str, Any] | None) -> dict[str, Any] | None:
    return public_state(state) if state is not None else None
