"""Validation that used to store wrong data: each rule refuses, and nothing is filed wrongly."""

from __future__ import annotations

import uuid

from tests.support import Api


def test_codes_keys_and_rule_names_with_a_trailing_newline_are_refused(api: Api) -> None:
    api.create_task("TASK-1")
    assert api.post("/tasks", json={"task_code": "TASK-1\n", "title": "t"}).status_code == 422
    assert api.post("/sprints", json={"sprint_code": "S-1\n", "title": "t"}).status_code == 422
    assert api.post("/sessions", json={"agent_id": "a", "session_key": "k\n"}).status_code == 422
    rule = {"name": "r\n", "trigger": {"type": "custom.*"}, "action": {"name": "complete_sprint", "params": {}}}
    assert api.post("/rules", json=rule).status_code == 422
    assert api.patch("/tasks/TASK-1", json={"sprint_code": "S-1\n"}).status_code == 422
    assert api.get("/tasks/TASK-1%0A").status_code == 404
    assert [t["task_code"] for t in api.get("/tasks").get_json()["items"]] == ["TASK-1"]


def test_a_version_must_be_a_json_integer(api: Api) -> None:
    api.create_task("T-V")
    for wrong in (1.9, "1", True, 1.0, 2**31):
        response = api.patch("/tasks/T-V", json={"version": wrong, "title": "x"})
        assert response.status_code == 422 and "version" in response.get_json()["errors"], wrong
        assert api.delete("/tasks/T-V", json={"version": wrong}).status_code == 422
    assert api.patch("/tasks/T-V", json={"title": "x"}, headers={"If-Match": "9" * 5000}).status_code == 422
    assert api.patch("/tasks/T-V", json={"version": 1, "title": "x"}).status_code == 200
    assert api.get("/tasks/T-V").get_json()["version"] == 2


def test_event_types_follow_the_grammar_on_post_and_in_rules(api: Api) -> None:
    api.create_task("T-E")
    for wrong in ("custom.*", "custom. x\n", "custom.X", "custom", "custom.a-b"):
        body = {"type": wrong, "entity_type": "task", "entity_code": "T-E"}
        assert api.post("/events", json=body).status_code == 422, wrong
        emit = {"name": "e_" + uuid.uuid4().hex[:6], "trigger": {"type": "custom.*"},
                "action": {"name": "emit_event", "params": {"type": wrong}}}
        assert api.post("/rules", json=emit).status_code == 422, wrong
    for wrong in ("custom. x\n", "custom.X", "*", "custom", "custom.a-b", "custom.*\n", "custom.*.x"):
        trigger = {"name": "t_" + uuid.uuid4().hex[:6], "trigger": {"type": wrong},
                   "action": {"name": "complete_sprint", "params": {}}}
        assert api.post("/rules", json=trigger).status_code == 422, wrong
    assert api.post("/events", json={"type": "custom.deploy_2.done", "entity_type": "task",
                                     "entity_code": "T-E"}).status_code == 201


def test_x_session_key_must_name_an_open_session_except_on_its_own_endpoints(api: Api) -> None:
    api.create_task("T-S")
    assert api.post("/sessions", json={"agent_id": "a", "session_key": "open"}).status_code == 201
    assert api.post("/sessions", json={"agent_id": "a", "session_key": "done"}).status_code == 201
    assert api.post("/sessions/done/end").status_code == 200
    for key in ("missing", "done"):
        response = api.patch("/tasks/T-S", json={"title": key}, headers={"X-Session-Key": key})
        assert response.status_code == 422 and "X-Session-Key" in response.get_json()["errors"]
        assert api.post("/events", json={"type": "custom.x"}, headers={"X-Session-Key": key}).status_code == 422
    assert api.events(path="/events/session/missing") == []
    assert api.post("/sessions/done/context", json={"data": {}}, headers={"X-Session-Key": "done"}).status_code == 201
    assert api.post("/sessions/done/resume", headers={"X-Session-Key": "done"}).status_code == 200
    assert api.patch("/tasks/T-S", json={"title": "in"}, headers={"X-Session-Key": "open"}).status_code == 200
    assert api.events(path="/events/session/open")[-1]["type"] == "orchestration.task.updated"


def test_post_events_keeps_lifecycle_types_to_their_owners_and_refuses_an_ambiguous_stream(api: Api) -> None:
    api.create_task("T-L")
    assert api.post("/sessions", json={"agent_id": "a", "session_key": "live"}).status_code == 201
    for owned in ("orchestration.session.started", "orchestration.session.resumed", "orchestration.session.ended"):
        assert api.post("/events", json={"type": owned, "session_key": "live"}).status_code == 422
        assert api.post("/events", json={"type": owned, "entity_type": "task", "entity_code": "T-L"}).status_code == 422
    assert api.get("/sessions/live").get_json()["status"] == "active"
    assert api.post("/events", json={"type": "orchestration.session.note", "session_key": "live"}).status_code == 201
    assert api.post("/events", json={"type": "orchestration.context.assembled", "session_key": "live"}).status_code == 201
    both = api.post("/events", json={"type": "custom.x", "entity_type": "task", "entity_code": "T-L",
                                     "session_key": "live"})
    assert both.status_code == 422 and "session_key" in both.get_json()["errors"]


def test_an_event_id_is_an_idempotency_key(api: Api) -> None:
    api.create_task("T-I")
    api.create_task("T-J")
    key = str(uuid.uuid4())
    body = {"event_id": key, "type": "custom.deployed", "entity_type": "task", "entity_code": "T-I",
            "data": {"env": "prod", "n": 1.0}}
    first = api.post("/events", json=body)
    assert first.status_code == 201
    again = api.post("/events", json={**body, "data": {"n": 1, "env": "prod"}})  # the same request, normalised
    assert again.status_code == 200 and again.get_json() == first.get_json()
    for changed in ({"type": "custom.other"}, {"entity_code": "T-J"}, {"data": {"env": "dev"}}):
        conflict = api.post("/events", json={**body, **changed})
        assert conflict.status_code == 409 and conflict.mimetype == "application/problem+json", changed
        assert "event_id" in conflict.get_json()["errors"]
    assert [e["event_id"] for e in api.events(type="custom.*")] == [key]
