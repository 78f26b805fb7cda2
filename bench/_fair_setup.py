"""The fair benchmark's stack: a database of its own, a private Redis, the real processes, seeded tasks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

from app import create_app
from app.config import Settings
from app.runtime import Runtime
from app.services import tokens, tracking
from app.services.context import ChangeContext
from app.store.tables import OutboxEntry
from bench import _baselines as base
from bench import _load as load
from bench import _procs as procs
from tests.integration.automation.workers import RedisServer
from tests.support import postgres_database

HTTP_TASKS = 500
APPEND_TASKS = 8
_next_latency_task = iter(range(10**9))


@dataclass
class Stack:
    database_url: str
    broker_url: str
    state_dir: Path
    headers: dict[str, str] = field(default_factory=dict)
    tasks: int = HTTP_TASKS
    runtime: Runtime | None = None
    procs: dict[str, procs.Proc] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    @contextmanager
    def up(cls, state_dir: Path, table_sql: str) -> Iterator[Stack]:
        with ExitStack() as stack:
            url = stack.enter_context(postgres_database("orch_bench"))
            redis = RedisServer()
            redis.start()
            stack.callback(redis.stop)
            engine = create_engine(url)
            with engine.begin() as connection:
                connection.execute(text("CREATE EXTENSION IF NOT EXISTS pgcrypto"))
                for statement in table_sql.split(";"):
                    connection.execute(text(statement))
            engine.dispose()
            found = cls(url, redis.url, state_dir)
            stack.callback(found.stop)
            yield found

    def env(self) -> dict[str, str]:
        return procs.env_for(self.database_url, self.broker_url, self.state_dir)

    def start_processes(self) -> None:
        env, logs = self.env(), self.state_dir
        self.procs["worker"] = procs.celery("worker", ["-A", "workers", "worker", "-c", "2", "--loglevel=WARNING",
                                                       "--without-gossip", "--without-mingle"], env, logs)
        self.procs["beat"] = procs.Proc("beat", [str(procs.BIN / "celery"), "-A", "workers", "beat",
                                                 "--loglevel=WARNING", "-s", str(logs / "beat-schedule")],
                                        env, logs).start()
        self.procs["noop"] = procs.celery("noop", ["-A", "bench._noop", "worker", "-c", "2", "-Q", "bench_noop",
                                                   "--loglevel=WARNING", "-n", "noop@%h"], env, logs)
        self.procs["web"], self.ports["web"] = procs.gunicorn("web", "app:create_app()", env, logs)
        self.procs["bare"], self.ports["bare"] = procs.gunicorn("bare", "bench._bare_app:app", env, logs)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        if self.runtime is not None:
            self.runtime.engine.dispose()

    @property
    def web(self) -> procs.Proc:
        return self.procs["web"]

    @property
    def worker(self) -> procs.Proc:
        return self.procs["worker"]

    @property
    def bare(self) -> procs.Proc:
        return self.procs["bare"]

    @property
    def web_port(self) -> int:
        return self.ports["web"]

    @property
    def bare_port(self) -> int:
        return self.ports["bare"]

    def pending(self) -> int:
        assert self.runtime is not None
        with self.runtime.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(OutboxEntry)).scalar_one())

    def settle(self, timeout: float) -> int:
        """Wait (bounded) for the worker to empty the outbox; returns what is left."""
        deadline = time.monotonic() + timeout
        while (left := self.pending()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left

    def append_step(self, worker: int, n: int) -> None:
        assert self.runtime is not None
        tracking.update(tracking.TASK, f"A-{worker}", {"progress": n % 100 + 1}, ChangeContext(actor="user:bench"),
                        self.runtime.uow(), self.runtime.clock)


def seed(stack: Stack, latency_tasks: int) -> None:
    """Tasks for each section, created in process; their outbox rows are dropped (not part of any round)."""
    settings = Settings(database_url=stack.database_url, archive_dir=str(stack.state_dir / "archive"),
                        broker_dir=str(stack.state_dir), dispatch_after_commit=False,
                        rate_limit_writes=0, rate_limit_reads=0, log_level="WARNING")  # no line per seeded task
    app = create_app(settings)
    runtime = stack.runtime = app.extensions["orchestration"]
    token = tokens.create_token("user:bench", "admin", runtime.uow(), runtime.clock)
    stack.headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    codes = ([f"B-{i}" for i in range(HTTP_TASKS)] + [f"A-{i}" for i in range(APPEND_TASKS)]
             + [f"L-{i}" for i in range(latency_tasks)])
    for code in codes:
        response = client.post("/api/orchestration/tasks", headers=stack.headers,
                               json={"task_code": code, "title": "bench"})
        assert response.status_code == 201, response.get_json()
    with runtime.engine.begin() as connection:
        connection.execute(text("DELETE FROM orchestration_outbox"))


LATENCY_SQL = text("""
SELECT t.entity_code, EXTRACT(EPOCH FROM (e.emitted_at - t.emitted_at)) * 1000
FROM orchestration_events t
LEFT JOIN orchestration_events e ON e.causation_id = t.event_id AND e.type = 'orchestration.alert.raised'
WHERE t.type = 'orchestration.task.priority_changed' AND t.entity_code = ANY(:codes)
""")


EFFECT_SPAN_SQL = text("""
SELECT count(*), EXTRACT(EPOCH FROM max(e.emitted_at) - min(e.emitted_at))
FROM orchestration_events t
JOIN orchestration_events e ON e.causation_id = t.event_id AND e.type = 'orchestration.alert.raised'
WHERE t.type = 'orchestration.task.priority_changed' AND t.entity_code = ANY(:codes)
""")


def _triggers(stack: Stack, rate: int, count: int, settle: float) -> tuple[list[str], int, int]:
    """PATCH ``priority: P0`` on ``count`` fresh seeded tasks (``L-n``) at ``rate``/s, then wait (bounded)
    for the worker; the tasks' codes, how many answered 2xx, and the outbox rows left."""
    codes = [f"L-{next(_next_latency_task)}" for _ in range(count)]
    sent = load.open_loop(stack.web_port, stack.headers, rate, count,
                          lambda n: ("PATCH", f"/api/orchestration/tasks/{codes[n]}", {"priority": "P0"}))
    return codes, sent, stack.settle(settle)


def rule_drain(stack: Stack, rate: int, count: int) -> dict[str, Any]:
    """Triggers faster than the worker can follow; effects per second over the span from the first
    effect to the last one: what the worker sustains."""
    codes, sent, left = _triggers(stack, rate, count, 120)
    assert stack.runtime is not None
    with stack.runtime.engine.connect() as connection:
        effects, span = connection.execute(EFFECT_SPAN_SQL, {"codes": codes}).one()
    return {"sent": sent, "rate": rate, "effects": effects, "missing": count - effects, "outbox_left": left,
            "effects_per_s": round(effects / float(span), 1) if span else None}


def rule_latency(stack: Stack, rate: int, count: int) -> dict[str, Any]:
    """Triggers at ``rate``/s; trigger → alert latency, in ms."""
    codes, sent, left = _triggers(stack, rate, count, 60)
    assert stack.runtime is not None
    with stack.runtime.engine.connect() as connection:
        rows = connection.execute(LATENCY_SQL, {"codes": codes}).all()
    samples = [float(ms) for _, ms in rows if ms is not None]
    return base.percentiles(samples) | {"sent": sent, "effects": len(samples), "missing": count - len(samples),
                                        "outbox_left": left}
