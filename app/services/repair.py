"""Drift between rows and their logs, and its repair by compensating events.

A row changed behind the service's back no longer equals the fold of its
events. Repair sets the row back to the fold and appends the granular events
from the drifted values to the folded ones: their ``before`` values record
what was found, their ``after`` values keep the log's fold equal to the row.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from app.domain import events as catalogue
from app.domain.changes import ChangeContext
from app.domain.clock import Clock
from app.domain.errors import Conflict
from app.domain.history import differences, public_state
from app.domain.stream_types import TRACKED
from app.services.integrity import ChainRead
from app.store import snapshots
from app.store.event_store import envelope
from app.store.uow import Repositories, UnitOfWork

REASON = "replay_repair"
Key = tuple[str, int]
Fold = tuple[int, dict[str, Any] | None]


def live_state(repos: Repositories, key: Key, *, lock: bool = False) -> tuple[Any, dict[str, Any]] | None:
    """(row, its state as the log would fold it: fields plus ``deleted``), or None without a row."""
    rows = repos.streams[key[0]]
    row = rows.by_id(key[1], lock=lock)
    return (row, rows.folded(row)) if row is not None else None


def matches_live(live: tuple[Any, dict[str, Any]] | None, folded: dict[str, Any] | None,
                 version: int) -> bool | None:
    """None when there is nothing to compare: no live row, or the chain stops before the
    entity's current version (its folded state is history, not the present)."""
    if live is None or live[0].version != version:
        return None
    return folded is not None and public_state(folded) == live[1]


def drift(finals: list[dict[str, Any]], lives: dict[Key, tuple[Any, dict[str, Any]] | None]) -> list[dict[str, Any]]:
    """For each entity whose row differs from its fold: the fields, live value and log value
    (``lives``: the rows replay already read, one read per stream)."""
    found = []
    for final in finals:
        if final["matches_live"] is not False:
            continue
        live = lives.get((final["entity"]["type"], final["entity"]["id"]))
        if live is not None:
            found.append({"entity": final["entity"], "differences": differences(live[1], final["state"] or {})})
    return found


def repair(uow: UnitOfWork, read: ChainRead, drifted: list[dict[str, Any]], folds: dict[Key, Fold],
           correlation_id: str, ctx: ChangeContext, clock: Clock) -> list[dict[str, Any]]:
    """Compensate each drifted sprint or task, under its row lock, from its whole stream.

    ``folds``: (version, state) replay just folded per stream; still current
    when the locked row is at that version, else the stream is folded again.
    """
    if read.problems:
        raise Conflict("the chain does not validate; replay will not repair from a damaged log",
                       {"correlation_id": [f"{len(read.problems)} integrity problem(s); see validation"]})
    meta_ctx = dataclasses.replace(ctx, correlation_chain=(*ctx.correlation_chain, correlation_id))
    keys = sorted((d["entity"]["type"], d["entity"]["id"]) for d in drifted)
    repairs = []
    for key in (k for k in keys if k[0] in TRACKED):
        written = _compensate(uow, key, folds.get(key), correlation_id, meta_ctx, clock())
        if written is not None:
            repairs.append(written)
    return repairs


def _compensate(uow: UnitOfWork, key: Key, known: Fold | None, correlation_id: str, ctx: ChangeContext,
                now: datetime) -> dict[str, Any] | None:
    """Under the row lock, from the whole stream as it is now (the fold replay showed may be older)."""
    rows = uow.streams[key[0]]
    live = live_state(uow, key, lock=True)
    if live is None:
        return None
    row, state = live
    folded = known[1] if known is not None and known[0] == row.version else \
        snapshots.fold_to_end(uow.db, *key, snapshots.stream_events(uow.db, *key))
    if folded is None:
        return None
    entity = {"type": key[0], "id": key[1], "code": rows.kind.code_of(row)}
    if state["deleted"] != folded["deleted"]:
        return {"entity": entity, "events": [], "detail": "the deletion differs from the log; not repaired"}
    fields = {name: value for name, value in folded.items() if name != "deleted"}
    planned = [dataclasses.replace(p, data={"reason": REASON, "replayed_correlation_id": correlation_id})
               for p in catalogue.granular_events(key[0], state, fields)]
    if not planned:
        return None
    rows.write(row, fields, history=True)
    events = uow.events.append_to_stream(rows.ref(row), planned, ctx, now)
    return {"entity": entity, "events": [envelope(e) for e in events], "detail": "row set back to its events' fold"}

