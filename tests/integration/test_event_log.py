"""The event log as callers see it: one event per granular change, chained and gap-free."""

from __future__ import annotations

import uuid

from app.domain.hashing import event_hash
from tests.support import Api


def test_the_seed_example_records_created_then_two_status_changes_chained_by_hash(api: Api) -> None:
    api.create_sprint("SPRINT-1")
    task = api.create_task("TASK-001", "SPRINT-1")
    api.create_task("TASK-002", "SPRINT-1")
    api.create_task("TASK-003", "SPRINT-1")
    api.update_task("TASK-001", status="in_progress")
    api.update_task("TASK-001", status="completed")

    events = api.events(path=f"/events/correlation/{task['correlation_id']}")

    assert [e["type"] for e in events] == [
        "orchestration.task.created",
        "orchestration.task.status_changed",
        "orchestration.task.status_changed",
    ]
    assert [e["sequence"] for e in events] == [1, 2, 3]
    assert events[1]["changes"] == {"status": {"before": "pending", "after": "in_progress"}}
    assert events[2]["changes"] == {"status": {"before": "in_progress", "after": "completed"}}
    assert events[0]["prev_hash"] is None
    assert [e["prev_hash"] for e in events[1:]] == [e["hash"] for e in events[:-1]]
    assert all(event_hash(e) == e["hash"] for e in events)


def test_an_event_carries_the_full_envelope(api: Api) -> None:
    workflow = str(uuid.uuid4())
    api.create_sprint("S-ENV", priority="P1")
    response = api.post("/sessions", json={"agent_id": "agent:planner", "session_key": "sess-env"})
    assert response.status_code == 201
    response = api.patch("/sprints/S-ENV", json={"status": "active"}, role="writer",
                         headers={"X-Correlation-ID": workflow, "X-Session-Key": "sess-env"})
    assert response.status_code == 200
    assert response.headers["X-Correlation-ID"] == workflow
    assert response.headers["ETag"] == '"2"'

    [event] = api.events(entity_code="S-ENV", type="orchestration.sprint.status_changed")

    assert event["entity"] == {"type": "sprint", "id": response.get_json()["id"], "code": "S-ENV"}
    assert event["actor"] == "user:writer"
    assert event["session_key"] == "sess-env"
    assert event["correlation_id"] == response.get_json()["correlation_id"]
    assert event["correlation_chain"] == [workflow]
    assert event["causation_id"] is None
    assert event["priority"] == "P1"
    assert event["archived_at"] is None
    assert event["timestamp"].endswith("+00:00") and len(event["timestamp"].split(".")[1]) == 12
    assert api.get(f"/events/{event['id']}").get_json() == event


def test_one_patch_of_several_fields_emits_one_event_per_granular_type_in_one_sequence(api: Api) -> None:
    api.create_task("T-MULTI")
    api.update_task("T-MULTI", status="blocked", assignee="agent:coder", priority="P1", progress=10,
                    title="Renamed", metadata={"k": 1})

    events = api.events(entity_code="T-MULTI")

    assert [(e["type"].rsplit(".", 1)[1], e["sequence"]) for e in events] == [
        ("created", 1), ("status_changed", 2), ("blocked", 3), ("assigned", 4),
        ("priority_changed", 5), ("progress_updated", 6), ("updated", 7),
    ]
    assert events[2]["changes"] == {}
    assert events[6]["changes"] == {
        "title": {"before": "Task T-MULTI", "after": "Renamed"},
        "metadata": {"before": {}, "after": {"k": 1}},
    }
    assert api.get("/tasks/T-MULTI").get_json()["version"] == 7


def test_a_request_that_changes_nothing_emits_nothing(api: Api) -> None:
    task = api.create_task("T-SAME", priority="P1")
    again = api.update_task("T-SAME", priority="P1", title=task["title"])
    assert again["version"] == 1
    assert len(api.events(entity_code="T-SAME")) == 1


def test_folding_an_entitys_events_gives_exactly_its_row(api: Api) -> None:
    from app.domain.fold import fold

    api.create_sprint("S-FOLD")
    api.create_sprint("S-OTHER")
    api.create_task("T-FOLD", "S-FOLD", metadata={"a": [1, 2]})
    api.update_task("T-FOLD", status="in_progress", progress=40, assignee="user:bob")
    api.update_task("T-FOLD", sprint_code="S-OTHER", description="moved", metadata={"a": []})
    row = api.get("/tasks/T-FOLD").get_json()

    state = fold(api.events(entity_code="T-FOLD", entity_type="task"))

    assert state is not None and state.pop("deleted") is False
    assert state == {k: row[k] for k in state}
    assert set(state) == set(row) - {"id", "correlation_id", "version", "created_at", "updated_at"}


def test_deleted_entities_answer_404_keep_their_history_and_never_free_their_code(api: Api) -> None:
    api.create_sprint("S-DEL")
    assert api.delete("/sprints/S-DEL", headers={"If-Match": '"1"'}).status_code == 204
    assert api.get("/sprints/S-DEL").status_code == 404
    assert api.patch("/sprints/S-DEL", json={"title": "x"}).status_code == 404
    assert api.post("/sprints", json={"sprint_code": "S-DEL", "title": "again"}).status_code == 409
    events = api.events(path="/events/entity/sprint/S-DEL")
    assert [e["type"] for e in events] == ["orchestration.sprint.created", "orchestration.sprint.deleted"]
    assert events[1]["changes"]["title"] == {"before": "Sprint S-DEL", "after": None}


def test_every_response_carries_request_and_correlation_ids_and_a_generated_one_joins_no_chain(api: Api) -> None:
    created = api.post("/sprints", json={"sprint_code": "S-IDS", "title": "t"})
    assert created.headers["Location"].endswith("/api/orchestration/sprints/S-IDS")
    generated = created.headers["X-Correlation-ID"]
    assert str(uuid.UUID(generated)) == generated and uuid.UUID(created.headers["X-Request-ID"])
    [event] = api.events(entity_code="S-IDS")
    assert event["correlation_chain"] == [] and generated not in (event["correlation_id"],)
    assert api.events(path=f"/events/correlation/{generated}") == []
    for response in (api.get("/health", role=None), api.get("/nowhere"), api.get("/sprints", role=None)):
        assert uuid.UUID(response.headers["X-Request-ID"]) and uuid.UUID(response.headers["X-Correlation-ID"])
    other = api.get("/sprints/S-IDS")
    assert other.headers["X-Request-ID"] != created.headers["X-Request-ID"]
    task = api.post("/tasks", json={"task_code": "T-IDS", "title": "t"})
    assert task.headers["Location"].endswith("/api/orchestration/tasks/T-IDS") and task.headers["ETag"] == '"1"'
