"""Stats and timeline from rollups vs a naive GROUP BY over the log, same data, same run.

For each log size (``BENCH_AGG_EVENTS``, comma-separated; default 250k and 1M
events over the same 30 days, PostgreSQL) it answers ``/events/stats`` and an
hourly ``/events/timeline`` over almost the whole month (edges that split hours,
so the raw edge counts are included) through the service, checks the answer
equals the naive one, and reports the best of ``BENCH_AGG_REPEAT`` timings.
The figure that matters: the naive cost grows with the events in range, the
rollup-backed cost stays flat.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, text

from app import create_app
from app.config import Settings
from app.domain.clock import iso
from app.domain.event_filter import EventFilter
from app.runtime import Runtime
from app.services import aggregation
from bench._event_data import Shape, generate
from tests.support import postgres_database

SIZES = [int(n) for n in os.environ.get("BENCH_AGG_EVENTS", "250000,1000000").split(",")]
REPEAT = int(os.environ.get("BENCH_AGG_REPEAT", "5"))
HOT_IN_RANGE = "FROM orchestration_events WHERE emitted_at >= :lo AND emitted_at < :hi AND archived_at IS NULL"
NAIVE_STATS = {
    "by_type": f"SELECT type, count(*) {HOT_IN_RANGE} GROUP BY 1",
    "by_actor": f"SELECT actor, count(*) {HOT_IN_RANGE} GROUP BY 1",
    "by_entity_type": f"SELECT entity_type, count(*) {HOT_IN_RANGE} GROUP BY 1",
    "by_day": f"SELECT to_char(emitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*) {HOT_IN_RANGE} GROUP BY 1",
}
NAIVE_TIMELINE = (f"SELECT date_trunc('hour', emitted_at, 'UTC') AS start, type, count(*) {HOT_IN_RANGE} "
                  "GROUP BY 1, 2")


def best_of(action: Callable[[], Any]) -> float:
    timings = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def naive_stats(engine: Engine, flt: EventFilter) -> dict[str, Any]:
    with engine.connect() as connection:
        groups = {name: dict(connection.execute(text(sql), {"lo": flt.start, "hi": flt.end}).all())
                  for name, sql in NAIVE_STATS.items()}
    return {"total": sum(groups["by_type"].values()), **{k: dict(sorted(v.items())) for k, v in groups.items()}}


def naive_timeline(engine: Engine, flt: EventFilter) -> dict[Any, Counter[str]]:
    buckets: dict[Any, Counter[str]] = {}
    with engine.connect() as connection:
        for start, kind, n in connection.execute(text(NAIVE_TIMELINE), {"lo": flt.start, "hi": flt.end}):
            buckets.setdefault(start, Counter())[kind] += n
    return buckets


def same_timeline(served: dict[str, Any], naive: dict[Any, Counter[str]]) -> bool:
    answered = {b["start"]: b["by_type"] for b in served["buckets"] if b["count"]}
    return answered == {iso(start): dict(c) for start, c in naive.items()}


def measure(rt: Runtime, flt: EventFilter) -> dict[str, float]:
    served_stats = aggregation.stats(flt, rt.read_uow())
    served_timeline = aggregation.timeline(flt, "hour", rt.read_uow(), rt.clock)
    assert served_stats == naive_stats(rt.engine, flt), "rollup-backed stats differ from a raw count"
    assert same_timeline(served_timeline, naive_timeline(rt.engine, flt)), "timeline differs from a raw count"
    return {
        "stats_naive": best_of(lambda: naive_stats(rt.engine, flt)),
        "stats_rollups": best_of(lambda: aggregation.stats(flt, rt.read_uow())),
        "timeline_naive": best_of(lambda: naive_timeline(rt.engine, flt)),
        "timeline_rollups": best_of(lambda: aggregation.timeline(flt, "hour", rt.read_uow(), rt.clock)),
    }


def run(events: int) -> None:
    shape = Shape(events=events, tasks=max(2_000, events // 60))
    with postgres_database("orch_bench_agg") as url, tempfile.TemporaryDirectory() as tmp:
        rt = create_app(Settings(database_url=url, rate_limit_writes=1e6, rate_limit_reads=1e6, archive_dir=tmp, broker_dir=tmp,
                                 dispatch_after_commit=False)).extensions["orchestration"]
        with rt.engine.begin() as connection:
            generate(connection, shape)
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        flt = EventFilter(start=shape.start + timedelta(hours=7, minutes=13),
                          end=shape.end - timedelta(hours=5, minutes=47))
        t = measure(rt, flt)
        for what in ("stats", "timeline"):
            naive, rolled = t[f"{what}_naive"] * 1000, t[f"{what}_rollups"] * 1000
            print(f"{events:>10,} events  {what:8s}  naive GROUP BY {naive:8.1f} ms   rollups {rolled:6.1f} ms"
                  f"   (x{naive / rolled:.1f})")
        rt.engine.dispose()


def main() -> None:
    for events in SIZES:
        run(events)


if __name__ == "__main__":
    main()
