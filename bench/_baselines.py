"""The baselines: pgbench with the bare app's INSERT, the eventsourcing library's recorder, an empty Celery task."""

from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis
from sqlalchemy import make_url

from bench import _noop

PGBENCH_SQL = (
    "INSERT INTO bench_bare (event_id, type, entity_type, entity_id, entity_code, sequence, actor, emitted_at,"
    " correlation_id, causation_id, priority, changes, data, hash) VALUES (gen_random_uuid()::text,"
    " 'orchestration.task.progress_updated', 'task', 1, 'B-1', 1, 'user:bench', now(), gen_random_uuid()::text,"
    " NULL, 'P2', '{\"progress\": {\"before\": 0, \"after\": 1}}'::jsonb, '{}'::jsonb, repeat('0', 64));\n")


def pgbench(database_url: str, clients: int, seconds: float) -> float | None:
    """Transactions per second of one bare INSERT each, ``clients`` connections (None if it could not run:
    on a shared server the connection slots may be taken)."""
    url = make_url(database_url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SQL)
    out = subprocess.run(["pgbench", "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(int(seconds)),
                          "-f", script.name, "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                          "-U", url.username or "postgres", url.database or "postgres"],
                         capture_output=True, text=True, check=False)
    Path(script.name).unlink()
    found = re.search(r"tps = ([0-9.]+)", out.stdout)
    if out.returncode != 0 or found is None:
        print(f"pgbench -c {clients} failed: {out.stderr.strip()[-300:]}", flush=True)
        return None
    return float(found.group(1))


def noop_latency(broker_url: str, rate: float, count: int) -> dict[str, float]:
    """Send ``count`` empty tasks at ``rate``/s; p50/p99 of send → run, in ms."""
    client = redis.Redis.from_url(broker_url)
    client.delete(_noop.RESULTS)
    _noop.app.conf.broker_url = broker_url
    start = time.monotonic()
    for n in range(count):
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
        _noop.noop.apply_async(args=[time.time()], queue=_noop.QUEUE)
    deadline = time.monotonic() + 60
    while client.llen(_noop.RESULTS) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    samples = [float(v) * 1000 for v in client.lrange(_noop.RESULTS, 0, -1)]
    return percentiles(samples) | {"done": len(samples), "sent": count}


def percentiles(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {"p50": samples[0] if samples else float("nan"), "p99": samples[0] if samples else float("nan")}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": round(cuts[49], 2), "p99": round(cuts[98], 2)}


class Recorder:
    """The eventsourcing library's PostgreSQL application recorder (its own tables, same database)."""

    def __init__(self, database_url: str, pool_size: int) -> None:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        url = make_url(database_url)
        self.datastore = PostgresDatastore(url.database or "postgres", url.host or "127.0.0.1", url.port or 5432,
                                           url.username or "postgres", url.password or "", pool_size=pool_size)
        self.recorder = PostgresApplicationRecorder(self.datastore)
        self.recorder.create_table()

    def append_rate(self, threads: int, seconds: float) -> float:
        """Events/s, each thread appending one event per call to its own aggregate."""
        from eventsourcing.persistence import StoredEvent

        originators = [uuid.uuid4() for _ in range(threads)]

        def step(worker: int, n: int) -> None:
            state = b'{"progress": {"before": 0, "after": %d}}' % n
            self.recorder.insert_events([StoredEvent(originators[worker], n, "bench:ProgressUpdated", state)])

        return threaded_rate(step, threads, seconds)

    def close(self) -> None:
        self.datastore.close()


def threaded_rate(step: Callable[[int, int], None], threads: int, seconds: float) -> float:
    """Calls of ``step(thread, n)`` per second, ``threads`` threads for ``seconds`` (n counts from 1 per thread)."""
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def loop(worker: int) -> None:
        while time.monotonic() < deadline:
            counts[worker] += 1
            step(worker, counts[worker])

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    start = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts) / (time.monotonic() - start)
