"""Backtest scan rate (events/s) against a bare read of the same rows, rounds interleaved.

A generated PostgreSQL log (``BENCH_BACKTEST_EVENTS``, default 250k; its oldest
fifth archived, i.e. in the archive table, so every scan reads across both
tables) whose task events carry real status changes (a third of them
completions), judged by a draft ``complete_sprint`` rule (reads the sprint and
all its tasks as of each completion) and by an ``emit_event`` rule (reads
nothing), each over the whole window in one pass. The target is 50,000 events
scanned per second. The ratio is to the bare read: the scan's own keyset
batches of narrow rows, straight off the driver, nothing done with them (the
floor for any scan); "full rows" reads every envelope column through SQLAlchemy
for reference (what a scan of whole rows would cost before any judging).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

from sqlalchemy import select, text

from app import create_app
from app.config import Settings
from app.domain.event_filter import EventFilter
from app.runtime import Runtime
from app.services import backtest
from app.store.archive_reads import EVENTS
from app.store.backtest_reads import BacktestReads
from app.store.tables import EVENTS_ARCHIVE
from bench._event_data import Shape, generate
from tests.support import postgres_database

EVENTS_N = int(os.environ.get("BENCH_BACKTEST_EVENTS", "250000"))
ROUNDS = int(os.environ.get("BENCH_BACKTEST_ROUNDS", "3"))
TARGET = 50_000
BATCH = 10_000
RULES = {
    "complete_sprint": {"name": "bench_complete", "trigger": {"type": "orchestration.task.*", "conditions": [
        {"path": "status", "op": "changed_to", "value": "completed"}]},
        "action": {"name": "complete_sprint", "params": {}}},
    "emit_event": {"name": "bench_notify", "trigger": {"type": "orchestration.task.*", "conditions": [
        {"path": "actor", "op": "eq", "value": "agent:a0"}]},
        "action": {"name": "emit_event", "params": {"type": "custom.bench"}}},
}
# The generator leaves ``changes`` empty; give tasks a real state and real status changes, in both tables.
REAL_CHANGES = [
    """UPDATE {table} e SET changes = jsonb_build_object(
         'task_code', jsonb_build_object('before', NULL, 'after', e.entity_code),
         'sprint_code', jsonb_build_object('before', NULL, 'after', 'GS-' || t.sprint_id),
         'status', jsonb_build_object('before', NULL, 'after', 'in_progress'),
         'title', jsonb_build_object('before', NULL, 'after', 'Task'))
       FROM tasks t WHERE e.entity_type = 'task' AND e.sequence = 1 AND t.id = e.entity_id""",
    """UPDATE {table} SET changes = jsonb_build_object('status', jsonb_build_object(
         'before', 'in_progress', 'after', CASE WHEN id % 3 = 0 THEN 'completed' ELSE 'in_progress' END))
       WHERE type = 'orchestration.task.status_changed'""",
    """UPDATE {table} SET changes = jsonb_build_object(
         'sprint_code', jsonb_build_object('before', NULL, 'after', entity_code),
         'status', jsonb_build_object('before', NULL, 'after', 'active'))
       WHERE entity_type = 'sprint' AND sequence = 1""",
]


def bare_read(rt: Runtime) -> int:
    """The floor: the rows the complete_sprint scan reads, in its keyset batches, nothing done with them."""
    spec = backtest.Scan(backtest.draft_rule(RULES["complete_sprint"]), EventFilter(), 1, 5).spec
    count = 0
    with rt.read_uow() as uow:
        reads = BacktestReads(uow.session)
        first, last = reads.window(EventFilter())
        for rows in reads.batches(spec, first - 1, last):
            count += len(rows)
    return count


def full_rows(rt: Runtime) -> int:
    """Every envelope column of every event through SQLAlchemy, hot table then archive, keyset batches."""
    count = 0
    with rt.engine.connect() as connection:
        for table in (EVENTS, EVENTS_ARCHIVE):
            columns = [table.c[c.name] for c in EVENTS.columns if c.key != "hash_scheme"]
            after = 0
            while True:
                rows = connection.execute(select(*columns).where(table.c.id > after).order_by(table.c.id)
                                          .limit(BATCH)).all()
                if not rows:
                    break
                count, after = count + len(rows), rows[-1].id
    return count


def judged(rt: Runtime, body: dict[str, object]) -> int:
    rule = backtest.draft_rule(body)
    scanned, after = 0, 0
    while True:
        page = backtest.backtest(rule, EventFilter(), after, 10**9, rt.read_uow(), 5)
        scanned += page["summary"]["events_scanned"]
        if not page["next_id"]:
            return scanned
        after = page["next_id"]


def timed(action: Callable[[], int]) -> tuple[float, float, int]:
    """Wall seconds, and this process's CPU seconds (on a shared machine, wall time also counts waiting)."""
    start, cpu = time.perf_counter(), time.process_time()
    n = action()
    return time.perf_counter() - start, time.process_time() - cpu, n


def main() -> None:
    with postgres_database("orch_bench_backtest") as url, tempfile.TemporaryDirectory() as tmp:
        rt = create_app(Settings(database_url=url, archive_dir=tmp, broker_dir=tmp,
                                 dispatch_after_commit=False)).extensions["orchestration"]
        with rt.engine.begin() as connection:
            generate(connection, Shape(events=EVENTS_N, tasks=max(2_000, EVENTS_N // 60)))
            for statement in REAL_CHANGES:
                for table in ("orchestration_events", "orchestration_events_archive"):
                    connection.execute(text(statement.format(table=table)))
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        best: dict[str, tuple[float, float]] = {}
        for _ in range(ROUNDS):
            for name, action in [("bare read", lambda: bare_read(rt)), ("full rows", lambda: full_rows(rt))] + [
                    (name, lambda body=body: judged(rt, body)) for name, body in RULES.items()]:
                seconds, cpu, n = timed(action)
                assert n == EVENTS_N, f"{name} scanned {n} of {EVENTS_N} events"
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, cpu)
        for name, (seconds, cpu) in best.items():
            rate = EVENTS_N / seconds
            verdict = "" if name == "bare read" else f"  x{seconds / best['bare read'][0]:.2f} the bare read"
            if name in RULES:
                verdict += f"; target {TARGET:,}/s {'met' if rate >= TARGET else 'NOT met'}"
            print(f"{EVENTS_N:>9,} events  {name:16s} {seconds:6.2f} s  {rate:>10,.0f} events/s "
                  f"(CPU {cpu:5.2f} s: {EVENTS_N / max(cpu, 1e-9):>9,.0f}/s){verdict}")
        rt.engine.dispose()


if __name__ == "__main__":
    main()
