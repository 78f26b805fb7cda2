"""Rows a poison event touches when it is dead-lettered (``uow.dead_letters``).

Only the event's scalar columns are read: its JSON may be what fails to decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.tables import Event, OutboxEntry, RuleRun


@dataclass(frozen=True)
class Poisoned:
    """What is known of the event without decoding its payload."""

    id: int
    event_id: str
    type: str
    entity_type: str
    entity_id: int
    entity_code: str | None
    priority: str
    correlation_id: str
    causation_depth: int


class DeadLetters:
    """The dead-letter repository of one unit of work."""

    def __init__(self, db: Session) -> None:
        self._db = db

    def lock_outbox_entry(self, event_id: int) -> OutboxEntry | None:
        return self._db.scalars(select(OutboxEntry).where(OutboxEntry.event_id == event_id).with_for_update()).first()

    def remove_outbox_entry(self, row: OutboxEntry) -> None:
        self._db.delete(row)

    def poisoned(self, event_id: int) -> Poisoned | None:
        columns = (Event.id, Event.event_id, Event.type, Event.entity_type, Event.entity_id, Event.entity_code,
                   Event.priority, Event.correlation_id, Event.causation_depth)
        found = self._db.execute(select(*columns).where(Event.id == event_id)).first()
        return Poisoned(*found) if found is not None else None

    def runs_by_rule(self, event_id: int) -> dict[int, RuleRun]:
        """The event's rule runs so far, by rule id."""
        return {run.rule_id: run for run in self._db.scalars(select(RuleRun).where(RuleRun.event_id == event_id))}

    def new_run(self, rule_id: int, event_id: int, now: datetime) -> RuleRun:
        run = RuleRun(rule_id=rule_id, event_id=event_id, attempts=0, created_at=now)
        self._db.add(run)
        return run
