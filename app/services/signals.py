"""Notifications, alerts and rule failures: entities of one event each, raised by automation."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.domain import events as catalogue
from app.domain.clock import Clock
from app.services.context import ChangeContext
from app.store.event_store import StreamRef, append
from app.store.tables import Event, Signal

RULE_FAILURE = "rule_failure"


def raise_signal(session: Session, kind: str, event_type: str, data: dict[str, Any], priority: str,
                 ctx: ChangeContext, clock: Clock) -> list[Event]:
    """A new ``signals`` row and its single event (sequence 1) in the caller's transaction.

    The event's ``changes`` hold the row's state (kind and data), so replay
    folds a signal like any other entity; ``data`` names what it is about.
    """
    now = clock()
    row = Signal(kind=kind, data=data, correlation_id=str(uuid.uuid4()), version=0,
                 created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    stream = StreamRef(kind, row.id, None, row.correlation_id, priority, row)
    changes = {"kind": catalogue.change(None, kind), "data": catalogue.change(None, data)}
    return append(session, stream, [catalogue.PlannedEvent(event_type, changes, data)], ctx.meta(), now)
