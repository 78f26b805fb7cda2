"""Celery jobs: doors, not rooms. Ids in, one service call each."""

from __future__ import annotations

import logging
from typing import Any

from app.relay import EVALUATE, FOLD, SWEEP
from app.services import automation, automation_batch, dead_letter, outbox, rollup_fold
from workers.celery_app import celery, relay, runtime, settings

log = logging.getLogger(__name__)

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
    """Run every matching rule for these events (and other pending ones, in batches); safe to deliver twice. Events that failed (not
    transiently) are sent again after a backoff until dead-lettered (ORCH_OUTBOX_MAX_DELIVERIES)."""
    rt = runtime()
    again = automation_batch.evaluate_batch(event_ids, rt.uow(), rt.clock,
                                            depth_limit=rt.settings.causation_depth_limit,
                                            final=self.request.retries >= self.max_retries,
                                            max_deliveries=rt.settings.outbox_max_deliveries)
    if again:
        try:
            self.apply_async(args=[sorted(again)], countdown=dead_letter.backoff(max(again.values())))
        except Exception:  # noqa: BLE001 - the outbox sweep re-sends them
            log.warning("could not re-send failed events %s; the sweep will", sorted(again), exc_info=True)


@celery.task(name=SWEEP, max_retries=3, **RETRY)
def sweep() -> int:
    """Re-publish outbox rows a dispatch missed (broker down, crash between commit and publish)."""
    rt = runtime()
    return outbox.sweep(rt.uow(), relay, rt.clock, older_than=rt.settings.outbox_sweep_after)


@celery.task(name=FOLD, max_retries=3, **RETRY)
def fold() -> int:
    """Count settled events into the hourly rollups (readers count the rest from the log meanwhile)."""
    return rollup_fold.fold(runtime().uow())
