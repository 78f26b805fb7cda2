"""Webhook deliveries and their attempts: the rows the webhook use cases read and write (``uow.webhooks``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.tables import Event, Rule, RuleRun, WebhookAttempt, WebhookDelivery


class WebhookDeliveries:
    """The webhook repository of one unit of work."""

    def __init__(self, db: Session) -> None:
        self._db = db

    def add_for_run(self, run: RuleRun, urls: list[str], status: str, now: datetime,
                    deadline: datetime) -> list[int]:
        """A delivery of ``run`` to each URL, due now; their ids (flushed, for after commit).

        The run is flushed first, with or without URLs: its UNIQUE(rule, event)
        conflict surfaces here, where the run is recorded, not at a later flush.
        """
        self._db.flush()
        ids = []
        for url in urls:
            row = WebhookDelivery(run_id=run.id, rule_id=run.rule_id, event_id=run.event_id, url=url,
                                  status=status, attempts=0, created_at=now, deadline_at=deadline,
                                  next_attempt_at=now)
            self._db.add(row)
            self._db.flush()
            ids.append(row.id)
        return ids

    def lock(self, delivery_id: int) -> WebhookDelivery | None:
        return self._db.get(WebhookDelivery, delivery_id, with_for_update=True)

    def lock_of_run(self, run_id: int) -> WebhookDelivery | None:
        return self._db.scalars(select(WebhookDelivery).where(WebhookDelivery.run_id == run_id)
                                .with_for_update()).first()

    def rule_and_event(self, row: WebhookDelivery) -> tuple[Rule | None, Event | None]:
        return self._db.get(Rule, row.rule_id), self._db.get(Event, row.event_id)

    def run_of(self, row: WebhookDelivery) -> RuleRun | None:
        return self._db.get(RuleRun, row.run_id)

    def add_attempt(self, row: WebhookDelivery, number: int, started_at: datetime, duration_ms: float,
                    status_code: int | None, outcome: str, excerpt: str | None) -> None:
        self._db.add(WebhookAttempt(delivery_id=row.id, number=number, started_at=started_at,
                                    duration_ms=duration_ms, status_code=status_code, outcome=outcome,
                                    error=row.last_error, response_excerpt=excerpt))

    def due_before(self, status: str, moment: datetime, limit: int) -> list[int]:
        """Ids of deliveries in ``status`` whose next attempt was due before ``moment``, oldest first."""
        stmt = (select(WebhookDelivery.id)
                .where(WebhookDelivery.status == status, WebhookDelivery.next_attempt_at <= moment)
                .order_by(WebhookDelivery.id).limit(limit))
        return list(self._db.scalars(stmt))

    def of_runs(self, run_ids: list[int]) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
        """The delivery of each run among ``run_ids`` that has one, with its attempts, oldest first."""
        if not run_ids:
            return []
        rows = list(self._db.scalars(select(WebhookDelivery).where(WebhookDelivery.run_id.in_(run_ids))))
        tries: dict[int, list[WebhookAttempt]] = {row.id: [] for row in rows}
        if rows:
            stmt = select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(list(tries))).order_by(
                WebhookAttempt.delivery_id, WebhookAttempt.number)
            for attempt in self._db.scalars(stmt):
                tries[attempt.delivery_id].append(attempt)
        return [(row, tries[row.id]) for row in rows]

