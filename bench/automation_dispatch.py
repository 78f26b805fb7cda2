"""Publishing after commit (once per request) vs the relay alone (beat's outbox sweep), same run.

PostgreSQL and a private Redis. For each mode it reports the request rate (requests of both modes interleaved) of
``PATCH /tasks/{code}`` (two events, so one message per request against two
per-event messages avoided), and what a rule waits for:

- ``relay-only``: the request publishes nothing; the sweep publishes pending
  rows in batches of 100 ids per message. Its cost per event is measured here;
  its latency is the sweep's ``ORCH_OUTBOX_SWEEP_AFTER`` plus up to one beat
  interval (5 s + up to 5 s by default), whatever the machine.
- ``after-commit``: one ``automation.evaluate`` per request. Its latency, from
  the response to the rule run's commit, is measured with a real worker.

The figures that matter are the ratios; absolute numbers vary with the machine.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app import create_app
from app.config import Settings
from app.relay import Relay
from app.services import outbox, tokens
from app.store.tables import RuleRun
from tests.integration.automation.workers import RedisServer, Worker, drain, wait_for, worker_env
from tests.support import postgres_database, wipe

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "300"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "50"))


def client_for(url: str, broker: str, folder: str, dispatch: bool) -> tuple[Any, Any, dict[str, str]]:
    app = create_app(Settings(database_url=url, rate_limit_writes=1e6, rate_limit_reads=1e6, celery_broker_url=broker, broker_dir=folder,
                              archive_dir=folder, dispatch_after_commit=dispatch))
    rt = app.extensions["orchestration"]
    token = tokens.create_token("user:bench", "admin", rt.uow(), rt.clock)
    return app.test_client(), rt, {"Authorization": f"Bearer {token}"}


def patch_rates(url: str, broker: str, folder: str) -> dict[bool, float]:
    """Requests/s per mode, their requests interleaved one by one so load drift favours neither."""
    modes = {dispatch: client_for(url, broker, folder, dispatch) for dispatch in (False, True)}
    spent = dict.fromkeys(modes, 0.0)
    for dispatch, (client, _, headers) in modes.items():
        for n in range(ROUNDS):
            client.post("/api/orchestration/tasks", headers=headers, json={"task_code": f"{dispatch:d}-{n}", "title": "b"})
    for n in range(ROUNDS):
        for dispatch, (client, _, headers) in modes.items():
            start = time.perf_counter()
            client.patch(f"/api/orchestration/tasks/{dispatch:d}-{n}", headers=headers,
                         json={"status": "in_progress", "progress": 10})
            spent[dispatch] += time.perf_counter() - start
    for _, rt, _ in modes.values():
        rt.engine.dispose()
    return {dispatch: ROUNDS / seconds for dispatch, seconds in spent.items()}


def sweep_cost(url: str, broker: str, folder: str) -> float:
    """Seconds per event for the sweep to publish what the relay-only mode left pending."""
    _, rt, _ = client_for(url, broker, folder, False)
    relay = Relay(rt.settings)
    start, published = time.perf_counter(), 0
    while swept := outbox.sweep(rt.uow(), relay, rt.clock, older_than=0):
        published += swept
    elapsed = time.perf_counter() - start
    rt.engine.dispose()
    return elapsed / max(published, 1)


def latency(url: str, broker: str, folder: str) -> list[float]:
    """Response → the rule run committed, one request at a time, with a real worker."""
    client, rt, headers = client_for(url, broker, folder, True)

    def runs() -> int:
        with rt.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(RuleRun)).scalar_one())

    samples = []
    for n in range(LATENCY_SAMPLES):
        client.post("/api/orchestration/tasks", headers=headers, json={"task_code": f"L-{n}", "title": "b"})
        drain(rt.engine)
        before = runs()
        client.patch(f"/api/orchestration/tasks/L-{n}", headers=headers, json={"status": "blocked"})
        done = time.perf_counter()
        wait_for(lambda seen=before: runs() > seen, 30, "the rule run", 0.001)
        samples.append(time.perf_counter() - done)
    rt.engine.dispose()
    return samples


def main() -> None:
    redis = RedisServer()
    redis.start()
    try:
        with postgres_database("orch_bench") as url, tempfile.TemporaryDirectory() as folder:
            base = create_app(Settings(database_url=url, rate_limit_writes=1e6, rate_limit_reads=1e6, broker_dir=folder, dispatch_after_commit=False))
            wipe(base.extensions["orchestration"].engine)
            rates = patch_rates(url, redis.url, folder)
            relay_only, after_commit = rates[False], rates[True]
            per_event = sweep_cost(url, redis.url, folder)
            worker = Worker("bench", worker_env(url, redis.url, Path(folder)), Path(folder))
            worker.start()
            try:
                samples = latency(url, redis.url, folder)
            finally:
                worker.stop()
            print(f"relay-only    PATCH {relay_only:7.0f}/s  sweep publishes at {1 / per_event:7.0f} events/s")
            print(f"after-commit  PATCH {after_commit:7.0f}/s (x{after_commit / relay_only:.2f} of relay-only)"
                  f"  rule run {statistics.median(samples) * 1000:.1f} ms median,"
                  f" {max(samples) * 1000:.1f} ms max after the response")
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
