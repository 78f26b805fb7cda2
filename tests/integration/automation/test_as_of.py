"""Rules judge each event as of its place in the log: a real worker, events handled late and out of order."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask

from app.relay import EVALUATE, producer_app
from tests.integration.automation.workers import Worker, wait_for
from tests.support import Api

COMPLETE = "sprint_auto_complete"


def completion_run(api: Api, event_id: int) -> dict[str, Any] | None:
    runs = api.get("/rules/runs", query_string={"event_id": event_id}).get_json()["items"]
    return next((r for r in runs if r["rule_name"] == COMPLETE), None)


def handle_late(app: Flask, api: Api, event_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Hand the worker one event at a time, in the given order, each after the previous was judged."""
    publisher = producer_app(app.extensions["orchestration"].settings)
    runs = {}
    for event_id in event_ids:
        publisher.send_task(EVALUATE, args=[[event_id]])
        runs[event_id] = wait_for(lambda e=event_id: completion_run(api, e), 30, f"the run for event {event_id}")
    return runs


def two_tasks_completed_150ms_apart(app: Flask, api: Api, sprint: str) -> tuple[dict[str, Any], dict[str, Any]]:
    app.extensions["orchestration"].dispatcher = None  # the worker sees nothing until we hand it over
    api.create_sprint(sprint, status="active")
    api.create_task(f"{sprint}-A", sprint)
    api.create_task(f"{sprint}-B", sprint)
    api.update_task(f"{sprint}-A", status="completed")
    time.sleep(0.15)
    api.update_task(f"{sprint}-B", status="completed")
    first = api.events(entity_code=f"{sprint}-A", type="orchestration.task.status_changed")[-1]
    second = api.events(entity_code=f"{sprint}-B", type="orchestration.task.status_changed")[-1]
    return first, second


@pytest.mark.parametrize("order", ["first_event_handled_last", "in_log_order"])
def test_the_sprint_completion_is_caused_by_the_event_that_completed_its_last_task(
        app: Flask, api: Api, worker: Worker, order: str) -> None:
    first, second = two_tasks_completed_150ms_apart(app, api, "S-ASOF")
    ids = [second["id"], first["id"]] if order == "first_event_handled_last" else [first["id"], second["id"]]

    runs = handle_late(app, api, ids)

    [completion] = wait_for(lambda: [e for e in api.events(entity_code="S-ASOF", type="orchestration.sprint.status_changed")
                                     if e["changes"]["status"]["after"] == "completed"], 30, "the completion")
    assert completion["causation_id"] == second["event_id"]
    assert completion["actor"] == f"automation:{COMPLETE}"
    assert runs[second["id"]]["status"] == "succeeded"
    assert runs[first["id"]]["status"] == "skipped"
    assert runs[first["id"]]["reason"] == f"nothing to do as of event {first['id']}"


def test_a_task_reopened_before_the_worker_got_there_gives_a_skipped_run_not_a_completed_sprint(
        app: Flask, api: Api, worker: Worker) -> None:
    first, second = two_tasks_completed_150ms_apart(app, api, "S-REOPEN")
    api.update_task("S-REOPEN-A", status="in_progress")

    runs = handle_late(app, api, [second["id"], first["id"]])

    assert runs[second["id"]]["status"] == "skipped"
    assert runs[second["id"]]["reason"].startswith("no longer valid against live state: update sprint S-REOPEN")
    assert runs[first["id"]]["status"] == "skipped"
    assert api.get("/sprints/S-REOPEN").get_json()["status"] == "active"
    assert api.events(entity_code="S-REOPEN", actor=f"automation:{COMPLETE}") == []
