"""Celery settings, lowercase (``app.config_from_object("celeryconfig")``).

The broker URL and its transport options come from ``Settings`` through
``app.relay.broker_config``, so the web process (which publishes) and the
worker agree on them, including the shared folders of ``filesystem://``.
"""

from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab
from kombu import Queue

from app.config import Settings
from app.relay import FOLD, SWEEP, WEBHOOK_QUEUE, WEBHOOK_SWEEP, broker_config, state_dir

_settings = Settings.from_env()
_broker = broker_config(_settings)

broker_url = _broker["broker_url"]
broker_transport_options = _broker["broker_transport_options"]
broker_connection_retry_on_startup = True

# JSON only: messages carry ids, never pickled objects.
task_serializer = "json"
accept_content = ["json"]
result_serializer = "json"
task_ignore_result = True

# At least once: acknowledge after the job ran, requeue when its process died.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1

# Well under the Redis visibility timeout (an hour), so a slow job is never handed to a second worker.
task_soft_time_limit = 120
task_time_limit = 180

# Task events, so `celery -A workers flower` (or `celery events`) can watch the workers.
worker_send_task_events = True
task_send_sent_event = True
# Shutdown: stop consuming at once; jobs in flight finish (warm shutdown) or are requeued (acks_late).
worker_cancel_long_running_tasks_on_connection_loss = True
# A plain ``celery -A workers worker`` consumes both queues (it runs on its own); the Procfile gives
# webhooks a worker of their own and keeps the main one off their queue (``-X webhooks``).
task_default_queue = "celery"
task_queues = (Queue("celery"), Queue(WEBHOOK_QUEUE))
task_routes = {"webhook.*": {"queue": WEBHOOK_QUEUE}}

timezone = "UTC"
enable_utc = True

_SWEEP_EVERY = 5.0  # seconds; a missed dispatch waits at most this plus ORCH_OUTBOX_SWEEP_AFTER
# Seconds; readers count events the fold has not reached from the log, so this bounds that work, not freshness.
_FOLD_EVERY = 2.0


def _cron(expression: str) -> crontab:
    """A five-field cron expression (minute hour day-of-month month day-of-week), in UTC."""
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                   day_of_week=day_of_week)


beat_schedule = {
    "outbox-sweep": {"task": SWEEP, "schedule": _SWEEP_EVERY, "options": {"expires": _SWEEP_EVERY * 2}},
    "rollup-fold": {"task": FOLD, "schedule": _FOLD_EVERY, "options": {"expires": _FOLD_EVERY * 2}},
    "webhook-sweep": {"task": WEBHOOK_SWEEP, "schedule": 30.0, "options": {"expires": 60.0}},
    # Nightly, one at a time (the archive lock); ORCH_ARCHIVE_SCHEDULE / ORCH_PURGE_SCHEDULE move them.
    "archive-nightly": {"task": "archive.run", "schedule": _cron(_settings.archive_schedule)},
    "purge-nightly": {"task": "archive.purge", "schedule": _cron(_settings.purge_schedule)},
}
beat_schedule_filename = str(Path(state_dir(_settings, "beat")) / "celerybeat-schedule")
