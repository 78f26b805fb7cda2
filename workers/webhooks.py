"""Webhook jobs, on their own queue: a slow or dead endpoint never holds up rule evaluation."""

from __future__ import annotations

from app.relay import DELIVER, WEBHOOK_SWEEP
from app.services import automation, webhook_delivery, webhooks
from workers.celery_app import celery, relay, runtime

# A job lasts at most one HTTP attempt: connect + read timeouts, bounded by the policy.
OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "autoretry_for": automation.TRANSIENT,
           "retry_backoff": True, "retry_backoff_max": 60, "retry_jitter": True, "max_retries": 8}


@celery.task(name=DELIVER, **OPTIONS)
def deliver(delivery_id: int) -> None:
    """One attempt; the next one, if any, is published with its delay (the sweep backs it up)."""
    rt = runtime()
    delay = webhook_delivery.deliver(int(delivery_id), rt.uow(), rt.clock, webhooks.Policy.from_settings(rt.settings))
    if delay is not None:
        relay.deliver([int(delivery_id)], countdown=delay)


@celery.task(name=WEBHOOK_SWEEP, **OPTIONS)
def sweep() -> int:
    """Re-publish deliveries whose message was lost."""
    rt = runtime()
    return webhooks.sweep(rt.uow(), relay.deliver, rt.clock)
