"""Replay: a chain folded from scratch equals the live rows; drifted rows are repaired by events."""

from __future__ import annotations

import uuid
from typing import Any

from app.domain.fold import fold
from tests.integration.replay_helpers import count, execute, fields_of
from tests.support import Api

TABLES = ("orchestration_events", "orchestration_snapshots", "orchestration_outbox", "sprints", "tasks")


def workflow(api: Api) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A sprint and a task changed under one X-Correlation-ID."""
    chain = str(uuid.uuid4())
    headers = {"X-Correlation-ID": chain}
    assert api.post("/sprints", json={"sprint_code": "S-R", "title": "Sprint"}, headers=headers).status_code == 201
    body = {"task_code": "T-R", "title": "Task", "sprint_code": "S-R"}
    assert api.post("/tasks", json=body, headers=headers).status_code == 201
    api.patch("/tasks/T-R", json={"status": "in_progress", "progress": 30}, headers=headers)
    api.patch("/sprints/S-R", json={"status": "active", "metadata": {"goal": "ship"}}, headers=headers)
    api.patch("/tasks/T-R", json={"assignee": "agent:coder"}, headers=headers)
    return chain, api.get("/sprints/S-R").get_json(), api.get("/tasks/T-R").get_json()


def run(api: Api, correlation_id: str, role: str = "admin", **body: Any) -> Any:
    return api.post("/events/replay", json={"correlation_id": correlation_id, **body}, role=role)


def snapshot_of_tables(runtime: Any) -> dict[str, int]:
    return {table: count(runtime, table) for table in TABLES}


def test_a_dry_run_folds_the_chain_from_empty_state_into_the_live_rows_and_writes_nothing(
        api: Api, runtime: Any) -> None:
    chain, sprint, task = workflow(api)
    before = snapshot_of_tables(runtime)

    response = run(api, chain)

    assert response.status_code == 200
    body = response.get_json()
    events = api.events(path=f"/events/correlation/{chain}")
    assert [s["event"] for s in body["steps"]] == events
    assert body["validation"]["valid"] is True and body["dry_run"] is True
    assert body["matches_live"] is True and body["drift"] == [] and body["repairs"] == []
    finals = {f["entity"]["type"]: f for f in body["final_states"]}
    assert fields_of("sprint", finals["sprint"]["state"]) == fields_of("sprint", sprint)
    assert fields_of("task", finals["task"]["state"]) == fields_of("task", task)
    assert (finals["sprint"]["version"], finals["task"]["version"]) == (sprint["version"], task["version"])
    assert all(f["matches_live"] is True for f in body["final_states"])
    assert snapshot_of_tables(runtime) == before
    assert api.get("/tasks/T-R").get_json() == task


def test_each_step_shows_the_state_of_its_entity_right_after_the_event(api: Api) -> None:
    chain, _, _ = workflow(api)
    steps = run(api, chain).get_json()["steps"]
    last_task_step = [s for s in steps if s["event"]["entity"]["type"] == "task"][-1]
    assert last_task_step["state"]["assignee"] == "agent:coder"
    first = steps[0]
    assert first["event"]["type"] == "orchestration.sprint.created" and first["state"]["status"] == "planned"


def test_dry_run_is_the_default_and_the_body_is_strict(api: Api) -> None:
    chain, _, _ = workflow(api)
    assert run(api, chain).get_json()["dry_run"] is True
    for body in ({"correlation_id": chain, "actor": "x"}, {"correlation_id": "not-a-uuid"}, {},
                 {"correlation_id": chain, "dry_run": "maybe"}):
        response = api.post("/events/replay", json=body)
        assert response.status_code == 422, body
    assert run(api, str(uuid.uuid4())).status_code == 404


def test_only_an_admin_may_replay(api: Api) -> None:
    chain, _, _ = workflow(api)
    assert run(api, chain, role="writer").status_code == 403
    assert run(api, chain, role="reader").status_code == 403
    assert api.post("/events/replay", json={"correlation_id": chain}, role=None).status_code == 401


def test_a_dry_run_reports_a_row_changed_behind_the_services_back_and_leaves_it(api: Api, runtime: Any) -> None:
    chain, _, task = workflow(api)
    execute(runtime, "UPDATE tasks SET title = 'hacked', progress = 99 WHERE task_code = 'T-R'")

    body = run(api, chain).get_json()

    assert body["matches_live"] is False
    assert body["drift"] == [{"entity": {"type": "task", "id": task["id"], "code": "T-R"}, "differences": {
        "title": {"live": "hacked", "log": "Task"}, "progress": {"live": 99, "log": 30}}}]
    assert api.get("/tasks/T-R").get_json()["title"] == "hacked"


def test_replay_without_dry_run_repairs_the_drifted_row_with_compensating_events(api: Api, runtime: Any) -> None:
    chain, sprint, task = workflow(api)
    execute(runtime, "UPDATE tasks SET title = 'hacked', progress = 99 WHERE task_code = 'T-R'")

    body = run(api, chain, dry_run=False).get_json()

    [repair] = body["repairs"]
    assert repair["entity"]["code"] == "T-R"
    assert [(e["type"], e["changes"]) for e in repair["events"]] == [
        ("orchestration.task.progress_updated", {"progress": {"before": 99, "after": 30}}),
        ("orchestration.task.updated", {"title": {"before": "hacked", "after": "Task"}}),
    ]
    assert {e["actor"] for e in repair["events"]} == {"user:admin"}
    assert [e["sequence"] for e in repair["events"]] == [task["version"] + 1, task["version"] + 2]
    assert all(e["data"]["reason"] == "replay_repair" and chain in e["correlation_chain"] for e in repair["events"])
    live = api.get("/tasks/T-R").get_json()
    assert fields_of("task", live) == fields_of("task", task)
    assert live["version"] == task["version"] + 2
    assert fields_of("task", fold(api.events(entity_type="task", entity_code="T-R")) or {}) == fields_of("task", live)
    assert api.get(f"/events/correlation/{chain}/validate").get_json()["valid"] is True
    assert api.get(f"/events/correlation/{task['correlation_id']}/validate").get_json()["valid"] is True
    again = run(api, chain).get_json()
    assert again["matches_live"] is True and again["drift"] == []
    assert api.get("/sprints/S-R").get_json()["version"] == sprint["version"]


def test_a_drifted_sprint_is_repaired_through_its_own_correlation_id(api: Api, runtime: Any) -> None:
    _, sprint, _ = workflow(api)
    execute(runtime, "UPDATE sprints SET status = 'cancelled', priority = 'P0' WHERE sprint_code = 'S-R'")

    body = run(api, sprint["correlation_id"], dry_run=False).get_json()

    assert [e["type"] for e in body["repairs"][0]["events"]] == [
        "orchestration.sprint.status_changed", "orchestration.sprint.updated"]
    live = api.get("/sprints/S-R").get_json()
    assert (live["status"], live["priority"]) == ("active", "P2")
    assert run(api, sprint["correlation_id"]).get_json()["matches_live"] is True


def test_replay_refuses_to_repair_from_a_broken_chain_and_writes_nothing(api: Api, runtime: Any) -> None:
    chain, _, task = workflow(api)
    execute(runtime, "UPDATE tasks SET title = 'hacked' WHERE task_code = 'T-R'")
    execute(runtime, "UPDATE orchestration_events SET actor = 'user:mallory' "
                     "WHERE entity_type = 'task' AND sequence = 2")
    before = snapshot_of_tables(runtime)

    response = run(api, chain, dry_run=False)

    assert response.status_code == 409
    assert snapshot_of_tables(runtime) == before
    assert api.get("/tasks/T-R").get_json()["title"] == "hacked"
    dry = run(api, chain).get_json()
    assert dry["validation"]["valid"] is False
    assert [(p["kind"], p["sequence"]) for p in dry["validation"]["problems"]] == [("hash_mismatch", 2)]


def test_an_entity_the_chain_leaves_behind_is_not_compared_with_its_row(api: Api) -> None:
    chain, _, _ = workflow(api)
    api.patch("/tasks/T-R", json={"title": "changed later, outside the workflow"})
    finals = {f["entity"]["type"]: f for f in run(api, chain).get_json()["final_states"]}
    assert finals["task"]["matches_live"] is None
    assert finals["task"]["state"]["title"] == "Task"
    assert finals["sprint"]["matches_live"] is True


def test_a_deleted_entity_replays_to_its_deleted_row(api: Api) -> None:
    task = api.create_task("T-DEL")
    assert api.delete("/tasks/T-DEL").status_code == 204
    body = run(api, task["correlation_id"]).get_json()
    [final] = body["final_states"]
    assert final["state"]["deleted"] is True and final["matches_live"] is True


def test_sessions_and_signals_in_a_chain_replay_from_their_opening_event(api: Api, runtime: Any) -> None:
    from app.domain.events import NOTIFICATION_CREATED
    from app.services.context import ChangeContext
    from app.services.signal_events import raise_signal

    task = api.create_task("T-SIG")
    headers = {"X-Correlation-ID": task["correlation_id"]}
    assert api.post("/sessions", json={"agent_id": "agent:a", "session_key": "sess-sig"},
                    headers=headers).status_code == 201
    assert api.post("/sessions/sess-sig/end", headers=headers).status_code == 200
    with runtime.uow() as uow:
        ctx = ChangeContext(actor="automation:notify", correlation_chain=(task["correlation_id"],))
        raise_signal(uow, "notification", NOTIFICATION_CREATED, {"task": "T-SIG"}, "P2", ctx, runtime.clock)
        uow.commit()

    body = run(api, task["correlation_id"]).get_json()

    assert body["validation"]["valid"] is True and body["validation"]["streams"] == 3
    finals = {f["entity"]["type"]: f for f in body["final_states"]}
    assert finals["session"]["state"]["status"] == "ended" and finals["session"]["matches_live"] is True
    assert finals["notification"]["state"] == {"kind": "notification", "data": {"task": "T-SIG"}, "deleted": False}
    assert finals["notification"]["matches_live"] is True
    assert body["matches_live"] is True
