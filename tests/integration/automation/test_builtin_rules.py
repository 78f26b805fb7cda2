"""The four built-in rules, applied by a real worker, as a user of the API sees them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask

from tests.support import Api

COMPLETE_SPRINT = "automation:sprint_auto_complete"


def last_event(api: Api, code: str, type_: str) -> dict[str, Any]:
    return api.events(entity_code=code, type=type_)[-1]


def sprint_completions(api: Api, code: str) -> list[dict[str, Any]]:
    return [e for e in api.events(entity_code=code, type="orchestration.sprint.status_changed")
            if e["changes"]["status"]["after"] == "completed"]


def test_completing_both_tasks_of_a_sprint_completes_it_once_by_automation(
        api: Api, settle: Callable[..., None]) -> None:
    api.create_sprint("S-AUTO", status="active")
    api.create_task("T-A", "S-AUTO")
    task_b = api.create_task("T-B", "S-AUTO")

    api.update_task("T-A", status="completed")
    settle()
    assert api.get("/sprints/S-AUTO").get_json()["status"] == "active"

    api.update_task("T-B", status="completed")
    settle()

    assert api.get("/sprints/S-AUTO").get_json()["status"] == "completed"
    [completion] = sprint_completions(api, "S-AUTO")
    trigger = last_event(api, "T-B", "orchestration.task.status_changed")
    assert completion["actor"] == COMPLETE_SPRINT
    assert completion["causation_id"] == trigger["event_id"]
    assert trigger["correlation_id"] in completion["correlation_chain"]
    workflow = api.events(path=f"/events/correlation/{task_b['correlation_id']}")
    assert completion["event_id"] in [e["event_id"] for e in workflow]
    replay = api.post("/events/replay", json={"correlation_id": task_b["correlation_id"]}).get_json()
    assert replay["validation"]["valid"] and replay["matches_live"]
    runs = api.get("/rules/runs", query_string={"status": "skipped"}).get_json()["items"]
    assert [r["rule_name"] for r in runs] == ["sprint_auto_complete"]


def test_ten_sprints_of_three_tasks_completed_by_concurrent_threads_each_complete_exactly_once(
        app: Flask, api: Api, settle: Callable[..., None]) -> None:
    codes = [(f"S-C{s}", [f"T-C{s}-{t}" for t in range(3)]) for s in range(10)]
    for sprint, tasks in codes:
        api.create_sprint(sprint, status="active")
        for task in tasks:
            api.create_task(task, sprint)
    barrier = threading.Barrier(10)

    def complete(task: str) -> int:
        client = app.test_client()
        if task.endswith("-0"):
            barrier.wait()
        response = client.patch(f"/api/orchestration/tasks/{task}", json={"status": "completed"},
                                headers={"Authorization": f"Bearer {api.tokens['writer']}"})
        return response.status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(complete, [task for _, tasks in codes for task in tasks]))
    settle()

    assert statuses == [200] * 30
    for sprint, _ in codes:
        assert [e["actor"] for e in sprint_completions(api, sprint)] == [COMPLETE_SPRINT]
        assert api.get(f"/sprints/{sprint}").get_json()["status"] == "completed"


def test_a_blocked_task_raises_a_notification_that_names_it(api: Api, settle: Callable[..., None]) -> None:
    task = api.create_task("T-BLOCK", priority="P1")
    api.update_task("T-BLOCK", status="blocked")
    settle()

    [note] = api.events(type="orchestration.notification.created")
    trigger = last_event(api, "T-BLOCK", "orchestration.task.status_changed")
    assert note["entity"]["type"] == "notification" and note["sequence"] == 1
    assert note["data"]["task_code"] == "T-BLOCK" and note["data"]["reason"] == "task_blocked"
    assert note["priority"] == "P1"
    assert note["actor"] == "automation:notify_blocked_task"
    assert note["causation_id"] == trigger["event_id"]
    assert task["correlation_id"] in note["correlation_chain"]
    report = api.get(f"/events/correlation/{task['correlation_id']}/validate").get_json()
    assert (report["valid"], report["streams"]) == (True, 2)


def test_a_task_that_becomes_p0_or_is_created_p0_raises_an_alert(api: Api, settle: Callable[..., None]) -> None:
    api.create_task("T-HOT", priority="P0")
    api.create_task("T-WARM", priority="P2")
    api.update_task("T-WARM", priority="P0")
    api.update_task("T-WARM", title="still P0: no new alert")
    settle()

    alerts = api.events(type="orchestration.alert.raised")
    assert sorted(a["data"]["task_code"] for a in alerts) == ["T-HOT", "T-WARM"]
    assert {a["entity"]["type"] for a in alerts} == {"alert"}
    assert {a["priority"] for a in alerts} == {"P0"}


def test_an_activated_sprint_gets_an_agent_session_started_by_automation(
        api: Api, settle: Callable[..., None]) -> None:
    api.create_sprint("S-GO")
    response = api.patch("/sprints/S-GO", json={"status": "active"})
    assert response.status_code == 200
    settle()

    [started] = api.events(type="orchestration.session.started")
    assert started["data"] == {"reason": "sprint_activated"}
    assert started["actor"] == "automation:session_on_sprint_activated"
    [session] = api.get("/sessions", query_string={"sprint_code": "S-GO"}).get_json()["items"]
    assert session["agent_id"] == "automation" and session["status"] == "active"
