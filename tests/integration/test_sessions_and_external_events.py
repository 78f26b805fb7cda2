"""Agent sessions and events recorded from outside."""

from __future__ import annotations

import uuid

from tests.support import Api


def test_a_session_starts_resumes_ends_and_records_context_on_its_own_stream(api: Api) -> None:
    api.create_sprint("S-SES")
    started = api.post("/sessions", json={"agent_id": "agent:planner", "sprint_code": "S-SES",
                                          "metadata": {"model": "m1"}})
    assert started.status_code == 201
    body = started.get_json()
    key = body["session_key"]
    assert key.startswith("sess-") and body["status"] == "active" and body["sprint_code"] == "S-SES"
    assert started.headers["Location"].endswith(f"/sessions/{key}")

    assert api.post(f"/sessions/{key}/end").get_json()["status"] == "ended"
    assert api.post(f"/sessions/{key}/end").status_code == 409
    resumed = api.post(f"/sessions/{key}/resume").get_json()
    assert resumed["status"] == "active" and resumed["resumed_at"] is not None
    context = api.post(f"/sessions/{key}/context", json={"data": {"documents": 4}})
    assert context.status_code == 201 and context.get_json()["type"] == "orchestration.context.assembled"

    assert api.post(f"/sessions/{key}/resume").status_code == 200  # an active session may resume too
    events = api.events(path=f"/events/session/{key}")[:4]
    assert [e["type"].split(".", 1)[1] for e in events] == [
        "session.started", "session.ended", "session.resumed", "context.assembled"]
    assert [e["sequence"] for e in events] == [1, 2, 3, 4]
    assert events[1]["changes"]["status"] == {"before": "active", "after": "ended"}
    assert events[3]["data"] == {"documents": 4}
    assert {e["session_key"] for e in events} == {key}


def test_sessions_list_filters_by_agent_status_and_sprint(api: Api) -> None:
    api.create_sprint("S-L")
    api.post("/sessions", json={"agent_id": "agent:a", "session_key": "k1", "sprint_code": "S-L"})
    api.post("/sessions", json={"agent_id": "agent:b", "session_key": "k2"})
    api.post("/sessions/k2/end")
    keys = lambda **q: [s["session_key"] for s in api.get("/sessions", query_string=q).get_json()["items"]]  # noqa: E731
    assert keys() == ["k1", "k2"]
    assert keys(agent_id="agent:b") == ["k2"]
    assert keys(status="active") == ["k1"]
    assert keys(sprint_code="S-L") == ["k1"]
    assert api.post("/sessions", json={"agent_id": "agent:c", "session_key": "k1"}).status_code == 409


def test_changes_made_in_a_session_carry_its_key(api: Api) -> None:
    api.post("/sessions", json={"agent_id": "agent:a", "session_key": "sess-work"})
    api.post("/tasks", json={"task_code": "T-S", "title": "t"}, headers={"X-Session-Key": "sess-work"})
    assert [e["type"] for e in api.events(path="/events/session/sess-work")] == [
        "orchestration.session.started", "orchestration.task.created"]
    assert api.post("/tasks", json={"task_code": "T-S2", "title": "t"},
                    headers={"X-Session-Key": "bad key!"}).status_code == 422


def test_external_events_of_allowed_types_join_the_named_stream(api: Api) -> None:
    api.create_task("T-X")
    response = api.post("/events", role="writer", json={
        "type": "custom.deployed", "data": {"env": "prod"}, "entity_type": "task", "entity_code": "T-X"})
    assert response.status_code == 201
    event = response.get_json()
    assert event["sequence"] == 2 and event["actor"] == "user:writer" and event["data"] == {"env": "prod"}
    assert api.get("/tasks/T-X").get_json()["version"] == 2


def test_external_events_default_to_the_session_stream(api: Api) -> None:
    api.post("/sessions", json={"agent_id": "agent:a", "session_key": "sess-x"})
    by_header = api.post("/events", json={"type": "orchestration.session.heartbeat"},
                         headers={"X-Session-Key": "sess-x"})
    by_body = api.post("/events", json={"type": "orchestration.context.assembled", "session_key": "sess-x"})
    assert by_header.status_code == 201 and by_body.status_code == 201
    assert by_header.get_json()["entity"]["code"] == "sess-x" and by_body.get_json()["sequence"] == 3


def test_external_events_with_a_repeated_event_id_are_recorded_once(api: Api) -> None:
    api.post("/sessions", json={"agent_id": "agent:a", "session_key": "sess-i"})
    body = {"type": "custom.step", "session_key": "sess-i", "event_id": str(uuid.uuid4()), "data": {"n": 1}}
    first = api.post("/events", json=body)
    second = api.post("/events", json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json() == second.get_json()
    assert first.get_json()["event_id"] == body["event_id"]
    assert len(api.events(type="custom.step")) == 1


def test_external_events_refuse_internal_types_and_streamless_bodies(api: Api) -> None:
    api.create_task("T-Y")
    refused = api.post("/events", json={"type": "orchestration.task.completed", "entity_type": "task",
                                        "entity_code": "T-Y"})
    assert refused.status_code == 422 and "custom.*" in refused.get_json()["errors"]["type"][0]
    assert api.post("/events", json={"type": "custom.x"}).status_code == 422
    assert api.post("/events", json={"type": "custom.x", "entity_type": "task", "entity_code": "NOPE"}).status_code == 422
    assert len(api.events()) == 1


def test_lists_filter_and_page_with_opaque_cursors(api: Api) -> None:
    api.create_sprint("S-P")
    for n in range(5):
        api.create_task(f"T-P{n}", "S-P" if n % 2 else None, priority="P1" if n < 2 else "P3")
    first = api.get("/tasks", query_string={"limit": 2}).get_json()
    second = api.get("/tasks", query_string={"limit": 2, "after": first["next"]}).get_json()
    third = api.get("/tasks", query_string={"limit": 2, "after": second["next"]}).get_json()
    codes = [t["task_code"] for page in (first, second, third) for t in page["items"]]
    assert codes == [f"T-P{n}" for n in range(5)] and third["next"] is None
    assert [t["task_code"] for t in api.get("/tasks", query_string={"sprint_code": "S-P"}).get_json()["items"]] == [
        "T-P1", "T-P3"]
    assert [t["task_code"] for t in api.get("/tasks", query_string={"priority": "P1"}).get_json()["items"]] == [
        "T-P0", "T-P1"]
    assert api.get("/sprints/S-P").get_json()["task_counts"]["pending"] == 2
