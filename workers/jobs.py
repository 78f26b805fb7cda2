"""Celery jobs: doors, not rooms. Ids in, one service call each."""

from __future__ import annotations

from typing import Any

from app.relay import EVALUATE, SWEEP
from app.services import automation, outbox
from workers.celery_app import celery, relay, runtime, settings

RETRY = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": automation.TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
}


@celery.task(name=EVALUATE, bind=True, max_retries=settings.automation_max_retries, **RETRY)
def evaluate(self: Any, event_ids: list[int]) -> None:
    """Run every matching rule for these events; safe to deliver twice."""
    rt = runtime()
    automation.evaluate_events(event_ids, rt.uow(), rt.clock, depth_limit=rt.settings.causation_depth_limit,
                               final=self.request.retries >= self.max_retries)


@celery.task(name=SWEEP, max_retries=3, **RETRY)
def sweep() -> int:
    """Re-publish outbox rows a dispatch missed (broker down, crash between commit and publish)."""
    rt = runtime()
    return outbox.sweep(rt.uow(), relay, rt.clock, older_than=rt.settings.outbox_sweep_after)
