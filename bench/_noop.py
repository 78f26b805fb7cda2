"""An empty Celery task on the service's broker: the round trip a rule cannot beat.

``celery -A bench._noop worker -Q bench_noop -c 2``; each run pushes
``now - sent_at`` to a Redis list the benchmark reads back.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

BROKER = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
QUEUE = "bench_noop"
RESULTS = "bench:noop:latency"

app = Celery("bench-noop", broker=BROKER)
app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True,
                task_acks_late=True, worker_prefetch_multiplier=1, task_default_queue=QUEUE,
                broker_connection_retry_on_startup=True)
_redis = redis.Redis.from_url(BROKER)


@app.task(name="bench.noop")
def noop(sent_at: float) -> None:
    _redis.rpush(RESULTS, time.time() - sent_at)
