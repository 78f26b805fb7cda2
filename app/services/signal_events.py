"""Notifications, alerts and rule failures: entities of one event each, raised by automation.

(Named ``signal_events``, not ``signals``: that name is Celery's module of hooks.)
"""

from __future__ import annotations

from typing import Any

from app.domain import events as catalogue
from app.domain.changes import ChangeContext
from app.domain.clock import Clock
from app.store.tables import Event
from app.store.uow import Repositories

RULE_FAILURE = "rule_failure"


def raise_signal(uow: Repositories, kind: str, event_type: str, data: dict[str, Any], priority: str,
                 ctx: ChangeContext, clock: Clock) -> list[Event]:
    """A new ``signals`` row and its single event (sequence 1) in the caller's transaction.

    The event's ``changes`` hold the row's state (kind and data), so replay
    folds a signal like any other entity; ``data`` names what it is about.
    """
    now = clock()
    rows = uow.streams[kind]
    row = rows.add(None, {"kind": kind, "data": data}, now)
    changes = {"kind": catalogue.change(None, kind), "data": catalogue.change(None, data)}
    planned = catalogue.PlannedEvent(event_type, changes, data)
    return uow.events.append_to_stream(rows.ref(row, priority), [planned], ctx, now)
