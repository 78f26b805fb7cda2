"""Operable in production, measured from outside: /metrics after known traffic, and the log lines.

Two gunicorn workers and a real Celery worker share one multiprocess metrics
folder, as ``make run`` sets it up; the scrape must add up every process's
samples, including the rule runs the Celery worker recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from app.store.tables import Event
from tests.e2e.processes import Stack, pids_with_samples, sample, scrape, stack_env, start_stack
from tests.integration.automation.workers import RedisServer, drain, wait_for
from tests.support import wipe

TASKS = 6


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ops")


@pytest.fixture(scope="module")
def stack(pg_url: str, folder: Path) -> Iterator[Stack]:
    """One stack for the module (starting it costs seconds); the metrics test runs first."""
    engine = create_engine(pg_url)
    wipe(engine)
    engine.dispose()
    redis = RedisServer()
    redis.start()
    env = stack_env(pg_url, redis.url, folder, WEB_CONCURRENCY="2", GUNICORN_THREADS="2", LOG_FORMAT="json")
    running = start_stack(env, folder)
    try:
        yield running
    finally:
        running.stop()
        redis.stop()


def known_traffic(stack: Stack) -> None:
    """One sprint, six tasks (one P0), one blocked: two rule runs, alert_p0_task and notify_blocked_task."""
    stack.call("POST", "/sprints", 201, json={"sprint_code": "OPS-1", "title": "Ops"})
    for n in range(TASKS):
        stack.call("POST", "/tasks", 201, json={"task_code": f"OPS-T{n}", "title": "t", "sprint_code": "OPS-1",
                                                "priority": "P0" if n == 0 else "P2"})
    stack.call("PATCH", "/tasks/OPS-T1", 200, json={"status": "blocked"})
    stack.call("GET", "/tasks/NOPE", 404)


@pytest.mark.slow
@pytest.mark.postgres
def test_metrics_add_up_the_traffic_of_two_web_workers_and_the_rule_runs_of_a_real_worker(
        stack: Stack, pg_url: str, folder: Path) -> None:
    known_traffic(stack)
    engine = create_engine(pg_url)
    drain(engine)
    with engine.connect() as connection:
        events = connection.execute(select(func.count()).select_from(Event)).scalar_one()
    engine.dispose()

    metrics = scrape(stack.web.base)
    assert sample(metrics, "orch_http_requests_total", method="POST", route="/api/orchestration/tasks",
                  status="201") == TASKS
    assert sample(metrics, "orch_http_requests_total", method="GET", route="/api/orchestration/tasks/<code>",
                  status="404") == 1
    assert sample(metrics, "orch_http_request_duration_seconds_count", method="POST",
                  route="/api/orchestration/tasks") == TASKS
    assert sample(metrics, "orch_events_appended_total", type="orchestration.task.created") == TASKS
    assert sample(metrics, "orch_events_appended_total", type="orchestration.task.blocked") == 1
    assert sample(metrics, "orch_events_appended_total", type="orchestration.notification.created") == 1
    assert sample(metrics, "orch_events_appended_total", type="orchestration.alert.raised") == 1
    for rule in ("alert_p0_task", "notify_blocked_task"):
        assert sample(metrics, "orch_rule_runs_total", rule=rule, outcome="succeeded") == 1
        assert sample(metrics, "orch_rule_latency_seconds_count", rule=rule) == 1
    assert sample(metrics, "orch_outbox_pending") == 0
    assert sample(metrics, "orch_events_rows", state="hot") + sample(metrics, "orch_events_rows",
                                                                     state="archived") == pytest.approx(events, 0.5)
    assert sample(metrics, "orch_database_up") == 1
    # Two gunicorn workers answered requests (and one pool process ran the rules): the scrape summed them.
    assert len(pids_with_samples(folder / "metrics")) >= 3


@pytest.mark.slow
@pytest.mark.postgres
def test_request_and_rule_run_log_lines_carry_their_fields_and_never_the_token(stack: Stack, pg_url: str,
                                                                               folder: Path) -> None:
    correlation = "6f1c1a8e-3a57-4a8e-9f57-0d6b1f0a2c11"
    stack.call("POST", "/tasks", 201, json={"task_code": "LOG-1", "title": "t", "priority": "P0"},
               headers={"X-Correlation-ID": correlation})
    engine = create_engine(pg_url)
    drain(engine)
    engine.dispose()

    [created] = stack.call("GET", "/events", params={"entity_code": "LOG-1"})["items"]
    lines = wait_for(lambda: _json_lines(folder / "web.log", "request", correlation_id=correlation), 10,
                     "the request line")
    [request] = lines
    assert request["route"] == "/api/orchestration/tasks" and request["actor"] == "user:e2e"
    assert request["status"] == 201 and request["method"] == "POST" and request["duration_ms"] > 0
    assert len(request["request_id"]) == 36
    [run] = wait_for(lambda: _json_lines(stack.worker.log, "rule run", event_id=created["id"]), 10,
                     "the rule run line")
    assert run["rule"] == "alert_p0_task" and run["outcome"] == "succeeded" and run["level"] == "info"
    assert len(run["task_id"]) == 36 and run["task"] == "automation.evaluate"
    for log in (folder / "web.log", stack.worker.log):
        assert stack.token not in log.read_text()


def _json_lines(path: Path, event: str, **fields: object) -> list[dict[str, object]]:
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event and all(record.get(k) == v for k, v in fields.items()):
                found.append(record)
    return found
