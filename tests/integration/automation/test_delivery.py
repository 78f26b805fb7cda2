"""At least once in, at most once out: redelivery, a killed worker, a broker outage, retries."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.relay import EVALUATE, SWEEP, producer_app
from app.services import outbox, tokens
from tests.integration.automation.conftest import Stack, settings_for
from tests.integration.automation.workers import RedisServer, Worker, drain, wait_for, worker_env
from tests.support import Api, wipe


def runs_of(api: Api, **filters: Any) -> list[dict[str, Any]]:
    response = api.get("/rules/runs", query_string={"limit": 1000, **filters})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]  # type: ignore[no-any-return]


def test_the_same_evaluate_message_delivered_twice_applies_once(
        app: Flask, api: Api, worker: Worker, settle: Callable[..., None]) -> None:
    runtime = app.extensions["orchestration"]
    runtime.dispatcher = None  # this test publishes by hand
    api.create_task("T-TWICE")
    api.update_task("T-TWICE", status="blocked")
    events = api.events(entity_code="T-TWICE")
    blocked = events[1]
    assert blocked["type"] == "orchestration.task.status_changed"
    message_id = str(uuid.uuid4())
    publisher = producer_app(runtime.settings)

    for _ in range(2):
        publisher.send_task(EVALUATE, args=[[e["id"] for e in events]], task_id=message_id)
    wait_for(lambda: worker.count(rf"Task {EVALUATE}\[{message_id}\] succeeded") == 2, 30, "both deliveries")
    settle()

    assert len(api.events(type="orchestration.notification.created")) == 1
    assert [r["status"] for r in runs_of(api, event_id=blocked["id"])] == ["succeeded"]


def test_a_worker_killed_mid_rule_applies_it_exactly_once_after_restart(
        app: Flask, api: Api, worker: Worker, settle: Callable[..., None], tmp_path: Path) -> None:
    api.create_task("T-KILL")
    marker = tmp_path / "slow-rule-started"
    response = api.post("/events", json={"type": "custom.test.slow", "entity_type": "task",
                                         "entity_code": "T-KILL", "data": {"marker": str(marker)}})
    assert response.status_code == 201
    wait_for(marker.exists, 30, "the slow rule to start")

    worker.kill()
    worker.start()
    runtime = app.extensions["orchestration"]
    assert outbox.sweep(runtime.uow(), runtime.dispatcher, runtime.clock, older_than=0) >= 1
    settle()

    done = api.events(entity_code="T-KILL", type="custom.test.slow_done")
    assert [e["actor"] for e in done] == ["automation:test_slow_marker"]
    assert [r["status"] for r in runs_of(api, event_id=response.get_json()["id"])] == ["succeeded"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # make run's stack: tests/e2e
def test_sigterm_to_the_worker_group_lets_the_rule_in_flight_finish_and_apply_once(
        app: Flask, api: Api, worker: Worker, settle: Callable[..., None], tmp_path: Path) -> None:
    """As honcho and systemd stop it: SIGTERM to the whole process group, mid-rule (warm shutdown)."""
    api.create_task("T-TERM")
    marker = tmp_path / "slow-rule-started"
    response = api.post("/events", json={"type": "custom.test.slow", "entity_type": "task",
                                         "entity_code": "T-TERM", "data": {"marker": str(marker), "seconds": 2}})
    wait_for(marker.exists, 30, "the slow rule to start")

    assert worker.process is not None
    os.killpg(worker.process.pid, signal.SIGTERM)
    worker.process.wait(30)
    assert "exited with" not in worker.output() and "Warm shutdown" in worker.output()
    worker.start()
    settle()

    assert len(api.events(entity_code="T-TERM", type="custom.test.slow_done")) == 1
    assert [r["status"] for r in runs_of(api, event_id=response.get_json()["id"])] == ["succeeded"]


def test_a_rule_failing_transiently_is_retried_then_recorded_dead_with_rule_failed(
        api: Api, settle: Callable[..., None]) -> None:
    api.create_task("T-FAIL")
    trigger = api.post("/events", json={"type": "custom.test.fail", "entity_type": "task",
                                        "entity_code": "T-FAIL", "data": {}}).get_json()
    settle()

    [run] = runs_of(api, event_id=trigger["event_id"])
    assert (run["rule_name"], run["status"], run["attempts"]) == ("test_always_unavailable", "dead", 3)
    assert "OperationalError" in run["error"]
    [failed] = api.events(type="orchestration.automation.rule_failed")
    assert failed["causation_id"] == trigger["event_id"]
    assert failed["data"]["rule"] == "test_always_unavailable" and failed["data"]["attempts"] == 3
    assert failed["entity"]["type"] == "rule_failure" and failed["sequence"] == 1
    assert api.get(f"/events/correlation/{trigger['correlation_id']}/validate").get_json()["valid"] is True
    assert [r["id"] for r in runs_of(api, status="dead")] == [run["id"]]


@pytest.fixture
def outage(stack: Stack, automation_dir: Path, tmp_path: Path) -> Any:
    """A Redis of this test's own, its own worker, and an app publishing to it."""
    redis = RedisServer()
    redis.start()
    own = Stack(stack.database_url, redis.url, automation_dir / "broker-outage")
    worker = Worker("outage", worker_env(own.database_url, own.broker_url, own.broker_dir), automation_dir)
    worker.start()
    app = create_app(settings_for(own, tmp_path))
    try:
        yield app, redis, worker
    finally:
        worker.stop()
        redis.stop()
        app.extensions["orchestration"].engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_with_redis_stopped_the_api_keeps_writing_and_every_rule_runs_once_when_it_returns(
        outage: Any, request: pytest.FixtureRequest) -> None:
    app, redis, worker = outage
    runtime = app.extensions["orchestration"]
    wipe(runtime.engine)
    api = Api(app.test_client(), {"admin": tokens.create_token("user:ops", "admin", runtime.uow(), runtime.clock)})
    redis.stop()

    api.create_sprint("S-OUT", status="active")
    api.create_task("T-O1", "S-OUT", priority="P0")
    api.create_task("T-O2", "S-OUT")
    api.update_task("T-O1", status="blocked")
    api.update_task("T-O1", status="completed")
    api.update_task("T-O2", status="completed")
    health = api.get("/health", role=None)
    assert health.status_code == 200
    assert health.get_json()["broker"]["status"] == "unavailable"
    # Only events some rule can fire on wait in the outbox: the sprint's activation, T-O1's P0 creation,
    # its blocking and the two completions (not T-O2's creation nor the task.blocked companion event).
    assert health.get_json()["outbox"]["pending"] == 5

    redis.start()
    wait_for(lambda: _published(runtime.settings), 60, "redis to take messages again", 0.5)
    drain(runtime.engine, 90)

    assert api.get("/sprints/S-OUT").get_json()["status"] == "completed"
    counted = {t: len(api.events(type=t)) for t in (
        "orchestration.notification.created", "orchestration.alert.raised", "orchestration.session.started")}
    assert counted == {"orchestration.notification.created": 1, "orchestration.alert.raised": 1,
                       "orchestration.session.started": 1}
    completions = [e for e in api.events(entity_code="S-OUT", type="orchestration.sprint.status_changed")
                   if e["changes"]["status"]["after"] == "completed"]
    assert len(completions) == 1
    assert {r["status"] for r in runs_of(api)} <= {"succeeded", "skipped"}
    outbox_now = api.get("/health", role=None).get_json()["outbox"]
    assert (outbox_now["pending"], outbox_now["oldest_pending_age_seconds"], outbox_now["status"]) == (0, 0.0, "ok")


def _published(settings: Any) -> bool:
    """Ask the worker to sweep the outbox; True once the broker accepted the request."""
    try:
        producer_app(settings).send_task(SWEEP, retry=False)
        return True
    except Exception:  # noqa: BLE001 - still down: try again
        return False
