"""Issue 12 at scale: archive, purge, verify, stats, lists and validate against same-run baselines.

``python -m bench.scale [--events N] [--days D] [--repeat R]`` (``make bench`` runs it with
``BENCH_SCALE_EVENTS``, default 200k so it takes a few minutes; 1M or 5M on request).
A fresh PostgreSQL database gets a consistent log (``bench/_scale_data.py``: the
project's domain code, hashes and all, loaded by COPY). Then, on the same data:

* archive ``--older-than 90d`` (own process: its peak RSS) vs ``COPY (row_to_json) TO PROGRAM 'gzip'``;
* hot table size before, and after archive + VACUUM; snapshots written per touched stream;
* ``verify-chain --all`` (own process) vs a plain streaming verifier (own process);
* ``/events/stats`` all time and 30 days, ``/events/timeline`` 30 days, p50/p99, vs a naive GROUP BY,
  service and baseline interleaved round by round;
* ``/events`` list filters, first and deep page, p50/p99;
* validate and replay dry-run of a 10k-event stream vs reading and rehashing it;
* purge of the archived events (own process).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Engine, text

from app import create_app, heap
from app.domain.clock import iso
from app.domain.hashing import event_hash
from app.domain.paging import encode_cursor
from app.services import tokens
from bench._scale_data import NOW, generate, long_stream_code
from tests.conftest import make_settings
from tests.support import postgres_database

API = "/api/orchestration"
EXPORT = ("COPY (SELECT row_to_json(e) FROM orchestration_events e WHERE emitted_at < '{cutoff}' "
          "AND priority <> 'P0' ORDER BY id) TO PROGRAM 'gzip > /dev/null'")
NAIVE_ALL = "SELECT type, actor, entity_type, count(*) FROM orchestration_events GROUP BY 1, 2, 3"
NAIVE_30D = ("SELECT type, actor, entity_type, to_char(emitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*) "
             "FROM orchestration_events WHERE emitted_at >= :lo GROUP BY 1, 2, 3, 4")
STREAM_SQL = ("SELECT * FROM orchestration_events WHERE entity_type = 'task' AND entity_id = :id "
              "ORDER BY sequence")


def child(op: str, url: str, folder: str, arg: str = "") -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench._scale_child", op, url, folder, arg], check=True,
                         capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def timings(action: Callable[[], Any], baseline: Callable[[], Any] | None, rounds: int) -> tuple[list[float], ...]:
    """Service and baseline timings, interleaved round by round (ms), after one unmeasured call of each
    (the first pays for compiling and preparing its statements and for cold pages, once per process)."""
    mine: list[float] = []
    base: list[float] = []
    for target in (action, baseline):
        if target is not None:
            target()
    for _ in range(rounds):
        for target, sink in ((action, mine), (baseline, base)):
            if target is not None:
                started = time.perf_counter()
                target()
                sink.append((time.perf_counter() - started) * 1000)
    return mine, base


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def line(name: str, mine: str, base: str = "", ratio: str = "") -> None:
    print(f"  {name:<44}{mine:<36}{base:<30}{ratio}")


def _sql(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).all()


def _size_mb(engine: Engine) -> float:
    return float(_sql(engine, "SELECT pg_total_relation_size('orchestration_events')")[0][0]) / 2**20


def _vacuum(engine: Engine, full: bool = False) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM {'FULL ' if full else ''}ANALYZE orchestration_events"))


def _archive_mb(engine: Engine) -> float:
    """The archive table's partitions, indexes included."""
    return float(_sql(engine, "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
                              "WHERE inhparent = 'orchestration_events_archive'::regclass")[0][0]) / 2**20


def measure_archive(app: Flask, url: str, folder: str) -> None:
    engine = app.extensions["orchestration"].engine
    cutoff = NOW - timedelta(days=90)
    eligible = _sql(engine, "SELECT count(*) FROM orchestration_events WHERE emitted_at < :c AND priority <> 'P0'",
                    c=cutoff)[0][0]
    started = time.perf_counter()
    with engine.connect() as connection:
        connection.execute(text(EXPORT.format(cutoff=iso(cutoff))))  # COPY takes no parameters
    export_rate = eligible / (time.perf_counter() - started)
    size_before, snaps_before = _size_mb(engine), _sql(engine, "SELECT count(*) FROM orchestration_snapshots")[0][0]
    done = child("archive", url, folder, "90d")
    _vacuum(engine)
    snaps = _sql(engine, "SELECT count(*) FROM orchestration_snapshots")[0][0] - snaps_before
    rate = done["events"] / done["seconds"]
    line("archive --older-than 90d", f"{rate:,.0f} ev/s, {done['events']:,} ev, RSS {done['rss_mb']:.0f} MB",
         f"COPY+gzip {export_rate:,.0f} rows/s", f"x{rate / export_rate:.2f}")
    hot_before = _sql(engine, "SELECT count(*) FROM orchestration_events")[0][0] + done["events"]
    line("hot table after archive + VACUUM", f"{size_before:,.0f} MB -> {_size_mb(engine):,.0f} MB",
         f"{hot_before:,} -> {hot_before - done['events']:,} rows", "space reusable, not returned")
    _vacuum(engine, full=True)
    line("hot table after VACUUM FULL", f"{size_before:,.0f} MB -> {_size_mb(engine):,.0f} MB",
         f"archive table {_archive_mb(engine):,.0f} MB", f"x{_size_mb(engine) / size_before:.2f}")
    line("snapshots written by archiving", f"{snaps:,} for {done['streams']:,} streams",
         f"{snaps / max(done['events'], 1):.4f}/event")


def measure_verify(url: str, folder: str) -> None:
    mine, base = child("verify", url, folder), child("plain_verifier", url, folder)
    rate, base_rate = mine["events"] / mine["seconds"], base["events"] / base["seconds"]
    line("verify-chain --all", f"{rate:,.0f} ev/s, RSS {mine['rss_mb']:.0f} MB, valid={mine['valid']}",
         f"plain {base_rate:,.0f} ev/s, {base['rss_mb']:.0f} MB", f"x{rate / base_rate:.2f}")


def measure_reads(app: Flask, rounds: int) -> None:
    engine = app.extensions["orchestration"].engine
    runtime = app.extensions["orchestration"]
    client = app.test_client()
    token = tokens.create_token("user:bench", "admin", runtime.uow(), runtime.clock)
    headers = {"Authorization": f"Bearer {token}"}

    def get(path: str, **params: Any) -> Callable[[], Any]:
        def call() -> Any:
            response = client.get(API + path, headers=headers, query_string=params)
            assert response.status_code == 200, response.get_json()
            return response.get_json()
        return call

    lo = iso(NOW - timedelta(days=30))
    window = {"from": lo, "to": iso(NOW)}
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]] = [
        ("/events/stats all time", get("/events/stats"), lambda: _sql(engine, NAIVE_ALL)),
        ("/events/stats 30 days", get("/events/stats", **window), lambda: _sql(engine, NAIVE_30D, lo=lo)),
        ("/events/timeline 30 days (hour)", get("/events/timeline", bucket="hour", **window), None),
    ]
    [(low, high)] = _sql(engine, "SELECT min(id), max(id) FROM orchestration_events")
    deep = encode_cursor((low + high) // 2)
    for name, params in [("actor", {"actor": "user:u7"}), ("type prefix", {"type": "orchestration.task.*"}),
                         ("type exact", {"type": "orchestration.task.assigned"}), ("entity_type", {"entity_type": "task"}),
                         ("session_key", {"session_key": "bsess-42"}), ("from 30d", {"from": lo}),
                         ("actor + from 30d", {"actor": "user:u7", "from": lo}),
                         ("type prefix + actor", {"type": "orchestration.task.*", "actor": "agent:a3"})]:
        cases.append((f"/events {name}", get("/events", limit=100, **params), None))
        cases.append((f"/events {name}, deep page", get("/events", limit=100, after=deep, **params), None))
    for name, action, baseline in cases:
        mine, base = timings(action, baseline, rounds)
        ratio = f"x{p(mine, .5) / p(base, .5):.2f}" if base else ""
        line(name, f"p50 {p(mine, .5):,.1f} ms, p99 {p(mine, .99):,.1f} ms",
             f"p50 {p(base, .5):,.1f} ms, p99 {p(base, .99):,.1f} ms" if base else "", ratio)


def measure_long_stream(app: Flask, total: int, rounds: int) -> None:
    engine = app.extensions["orchestration"].engine
    runtime = app.extensions["orchestration"]
    client = app.test_client()
    token = tokens.create_token("user:bench2", "admin", runtime.uow(), runtime.clock)
    headers = {"Authorization": f"Bearer {token}"}
    entity_id, correlation = _sql(engine, "SELECT id, correlation_id FROM tasks WHERE task_code = :c",
                                  c=long_stream_code(total))[0]

    def rehash() -> None:
        for row in _sql(engine, STREAM_SQL, id=entity_id):
            envelope = {"event_id": row.event_id, "type": row.type, "sequence": row.sequence, "actor": row.actor,
                        "entity": {"type": "task", "id": row.entity_id, "code": row.entity_code},
                        "timestamp": iso(row.emitted_at), "correlation_id": row.correlation_id,
                        "correlation_chain": row.correlation_chain, "causation_id": row.causation_id,
                        "session_key": row.session_key, "priority": row.priority, "changes": row.changes,
                        "data": row.data, "prev_hash": row.prev_hash}
            assert event_hash(envelope) == row.hash

    def validate() -> None:
        body = client.get(f"{API}/events/correlation/{correlation}/validate", headers=headers).get_json()
        assert body["valid"], body["problems"][:3]

    def replay() -> None:
        response = client.post(f"{API}/events/replay", headers=headers, json={"correlation_id": correlation})
        assert response.status_code == 200, response.get_json()

    for name, action in (("validate 10k-event stream", validate), ("replay dry-run 10k-event stream", replay)):
        mine, base = timings(action, rehash, max(3, rounds // 10))
        line(name, f"p50 {p(mine, .5):,.0f} ms", f"read+rehash p50 {p(base, .5):,.0f} ms",
             f"x{p(mine, .5) / p(base, .5):.2f}")


def measure_purge(app: Flask, url: str, folder: str) -> None:
    engine = app.extensions["orchestration"].engine
    archived = _sql(engine, "SELECT count(*) FROM orchestration_events_archive")[0][0]
    before = _archive_mb(engine)
    done = child("purge", url, folder, "91d")
    line("purge-archived --older-than 91d", f"{done['events']:,} ev in {done['seconds']:.1f} s, RSS {done['rss_mb']:.0f} MB",
         f"of {archived:,}; {done['partitions_dropped']} partitions dropped", f"{done['events'] / done['seconds']:,.0f} ev/s")
    line("archive table after purge", f"{before:,.0f} MB -> {_archive_mb(engine):,.0f} MB",
         f"{done['held']} files held")


def run(total: int, days: int, rounds: int) -> None:
    logging.disable(logging.INFO)  # one request log line per measured call would bury the table
    with postgres_database("orch_scale") as url, tempfile.TemporaryDirectory() as folder:
        app = create_app(make_settings(url, Path(folder)))
        heap.freeze_loaded_objects()  # as gunicorn's and Celery's processes do once the app is loaded
        engine = app.extensions["orchestration"].engine
        started = time.perf_counter()
        loaded = generate(engine, total, days, NOW)
        _vacuum(engine)
        print(f"  generated {loaded:,} events over {days} days in {time.perf_counter() - started:.0f} s")
        line("operation", "service", "baseline (same run)", "ratio")
        measure_archive(app, url, f"{folder}/archive")
        measure_verify(url, f"{folder}/archive")
        measure_reads(app, rounds)
        measure_long_stream(app, total, rounds)
        measure_purge(app, url, f"{folder}/archive")
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_SCALE_EVENTS", "200000")))
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_SCALE_REPEAT", "30")))
    args = parser.parse_args(argv if argv is not None else [])
    run(args.events, args.days, args.repeat)


if __name__ == "__main__":
    main(sys.argv[1:])
