"""Drift between rows and their logs, and its repair by compensating events.

A row changed behind the service's back no longer equals the fold of its
events. Repair sets the row back to the fold and appends the granular events
from the drifted values to the folded ones: their ``before`` values record
what was found, their ``after`` values keep the log's fold equal to the row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import events as catalogue
from app.domain.clock import Clock
from app.domain.errors import Conflict
from app.domain.history import differences, public_state
from app.services.context import ChangeContext
from app.services.integrity import ChainRead
from app.store import repositories as repo
from app.store import snapshots
from app.store.event_store import append, envelope
from app.store.streams import CODE_COLUMNS, STREAM_MODELS
from app.store.tables import Signal
from app.store.uow import UnitOfWork

REPAIRABLE = ("sprint", "task")
LIVE_STATES: dict[str, Callable[[Any], dict[str, Any]]] = {"sprint": repo.sprint_state, "task": repo.task_state, "session": repo.session_state}
REASON = "replay_repair"


def live_state(session: Session, key: tuple[str, int], *, lock: bool = False) -> tuple[Any, dict[str, Any]] | None:
    """(row, its state as the log would fold it: fields plus ``deleted``), or None without a row."""
    entity_type, entity_id = key
    if entity_type not in LIVE_STATES:
        signal = session.get(Signal, entity_id)
        if signal is None or signal.kind != entity_type:
            return None
        return signal, {"kind": signal.kind, "data": signal.data, "deleted": False}
    model = STREAM_MODELS[entity_type]
    stmt = select(model).where(model.id == entity_id)
    if lock:
        stmt = stmt.with_for_update(of=model)
    row = session.scalars(stmt).unique().one_or_none()
    if row is None:
        return None
    deleted = getattr(row, "deleted_at", None) is not None
    return row, LIVE_STATES[entity_type](row) | {"deleted": deleted}


def matches_live(session: Session, key: tuple[str, int], folded: dict[str, Any] | None,
                 version: int) -> bool | None:
    """None when there is nothing to compare: no live row, or the chain stops before the
    entity's current version (its folded state is history, not the present)."""
    live = live_state(session, key)
    if live is None or live[0].version != version:
        return None
    return folded is not None and public_state(folded) == live[1]


def drift(session: Session, finals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each entity whose row differs from its fold: the fields, live value and log value."""
    found = []
    for final in finals:
        if final["matches_live"] is not False:
            continue
        key = (final["entity"]["type"], final["entity"]["id"])
        live = live_state(session, key)
        if live is not None:
            found.append({"entity": final["entity"], "differences": differences(live[1], final["state"] or {})})
    return found


def repair(session: Session, uow: UnitOfWork, read: ChainRead, drifted: list[dict[str, Any]],
           correlation_id: str, ctx: ChangeContext, clock: Clock) -> list[dict[str, Any]]:
    """Compensate each drifted sprint or task, under its row lock, from its whole stream."""
    if read.problems:
        raise Conflict("the chain does not validate; replay will not repair from a damaged log",
                       {"correlation_id": [f"{len(read.problems)} integrity problem(s); see validation"]})
    meta_ctx = dataclasses.replace(ctx, correlation_chain=(*ctx.correlation_chain, correlation_id))
    keys = sorted((d["entity"]["type"], d["entity"]["id"]) for d in drifted)
    repairs = []
    for key in (k for k in keys if k[0] in REPAIRABLE):
        written = _compensate(session, key, correlation_id, meta_ctx, clock())
        if written is not None:
            uow.pending_dispatch.extend(e["id"] for e in written["events"])
            repairs.append(written)
    return repairs


def _compensate(session: Session, key: tuple[str, int], correlation_id: str, ctx: ChangeContext,
                now: datetime) -> dict[str, Any] | None:
    live = live_state(session, key, lock=True)
    folded = snapshots.fold_to_end(session, *key, snapshots.stream_events(session, *key))
    if live is None or folded is None:
        return None
    row, state = live
    entity = {"type": key[0], "id": key[1], "code": getattr(row, CODE_COLUMNS[key[0]])}
    if state["deleted"] != folded["deleted"]:
        return {"entity": entity, "events": [], "detail": "the deletion differs from the log; not repaired"}
    fields = {name: value for name, value in folded.items() if name != "deleted"}
    planned = [dataclasses.replace(p, data={"reason": REASON, "replayed_correlation_id": correlation_id})
               for p in catalogue.granular_events(key[0], state, fields)]
    if not planned:
        return None
    _write(session, key[0], row, fields)
    rows = append(session, repo.stream_of(key[0], row), planned, ctx.meta(), now)
    return {"entity": entity, "events": [envelope(r) for r in rows], "detail": "row set back to its events' fold"}


def _write(session: Session, entity_type: str, row: Any, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if name == "metadata":
            row.meta = value
        elif name == "sprint_code" and entity_type == "task":
            row.sprint = repo.find_sprint(session, value, deleted=True) if value is not None else None
        else:
            setattr(row, name, value)
