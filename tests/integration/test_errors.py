"""Bad input: a clear problem+json, and nothing written except validation_failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from app import create_app
from tests.conftest import make_settings
from tests.support import Api


def snapshot(runtime: Any) -> dict[str, Any]:
    with runtime.engine.connect() as connection:
        return {
            "events": connection.execute(text("SELECT count(*) FROM orchestration_events")).scalar(),
            "tasks": connection.execute(text("SELECT task_code, title, status, version FROM tasks ORDER BY id")).all(),
            "sprints": connection.execute(text("SELECT sprint_code, title, version FROM sprints ORDER BY id")).all(),
        }


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
    assert "Traceback" not in response.get_data(as_text=True)
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/tasks", {"data": "{not json", "content_type": "application/json"}, 400),
        ("PATCH", "/tasks/T-1", {"data": "[1,", "content_type": "application/json"}, 400),
        ("POST", "/tasks", {"json": {"task_code": "t-lower", "title": "x"}}, 422),
        ("POST", "/tasks", {"json": {"task_code": "T-9", "title": "x", "id": 5}}, 422),
        ("POST", "/tasks", {"json": {"task_code": "T-9", "title": "x", "progress": 101}}, 422),
        ("POST", "/tasks", {"json": {"task_code": "T-9", "title": "x", "sprint_code": "NOPE"}}, 422),
        ("POST", "/tasks", {"json": {"task_code": "T-1", "title": "dup"}}, 409),
        ("POST", "/sprints", {"json": {"sprint_code": "S-1", "title": "dup"}}, 409),
        ("POST", "/sprints", {"json": {"title": "no code"}}, 422),
        ("GET", "/tasks/NOPE", {}, 404),
        ("PATCH", "/tasks/NOPE", {"json": {"title": "x"}}, 404),
        ("DELETE", "/sprints/NOPE", {}, 404),
        ("GET", "/events/999999", {}, 404),
        ("GET", "/events/263932010745251495936", {}, 404),
        ("GET", "/rules/9223372036854775806", {}, 404),
        ("GET", "/rules/runs", {"query_string": {"rule_id": 5154483986}}, 422),
        ("GET", "/rules/runs", {"query_string": {"event_id": "\u00b2"}}, 422),
        ("POST", "/rules/1/dry-run", {"json": {"event_id": "\u00b2"}}, 422),
        ("POST", "/events", {"data": '{"type": "custom.x", "session_key": "k", "data": {"v": NaN}}',
                             "content_type": "application/json"}, 422),
        ("POST", "/rules", {"data": '{"name": "nan", "trigger": {"type": "custom.x", "conditions": [{"path": '
                                    '"data.v", "op": "gt", "value": Infinity}]}, "action": {"name": "emit_event", '
                                    '"params": {"type": "custom.y"}}}', "content_type": "application/json"}, 422),
        ("POST", "/rules/1/dry-run", {"json": {"event_id": 2**64}}, 422),
        ("POST", "/tasks", {"json": {"task_code": "T-9", "title": "x", "assignee": "nul\u0000"}}, 422),
        ("POST", "/tasks", {"json": {"task_code": "T-9", "title": "x", "metadata": {"k": ["\ud800"]}}}, 422),
        ("GET", "/events/stats", {"query_string": {"entity_type": "a\u0000b"}}, 422),
        ("DELETE", "/rules/9626921914029004800", {}, 404),
        ("POST", "/rules", {"json": {"name": "", "trigger": {"type": "0", "conditions": []},
                                     "action": {"name": "0", "params": {}}}}, 422),
        ("GET", "/events", {"query_string": {"limit": 0}}, 422),
        ("GET", "/events", {"query_string": {"limit": 1001}}, 422),
        ("GET", "/events", {"query_string": {"from": "last tuesday"}}, 422),
        ("GET", "/events", {"query_string": {"after": "garbage"}}, 422),
        ("GET", "/events", {"query_string": {"after": "djE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"}}, 422),
        ("GET", "/events", {"query_string": {"from": "99999999999999d"}}, 422),
        ("GET", "/events", {"query_string": {"to": "9999-12-31T23:59:59-01:00"}}, 422),
        ("GET", "/events/stats", {"query_string": {"from": "9999-12-31T23:30:00Z"}}, 422),
        ("GET", "/events/timeline", {"query_string": {"to": "0001-01-02", "bucket": "day"}}, 422),
        ("GET", "/tasks/T-1/history", {"query_string": {"at": "0001-01-01T00:00:00+05:00"}}, 422),
        ("GET", "/events/entity/alert/99999999999999999999999", {}, 404),
        ("GET", "/events/entity/alert/\u00b2", {}, 404),
        ("POST", "/sessions/nope/end", {}, 404),
    ],
)
def test_bad_requests_get_their_status_and_change_nothing(api: Api, runtime: Any, method: str, path: str,
                                                         kwargs: dict[str, Any], status: int) -> None:
    api.create_sprint("S-1")
    api.create_task("T-1", "S-1")
    before = snapshot(runtime)
    assert_problem(api.call(method, path, **kwargs), status)
    assert snapshot(runtime) == before


def test_a_body_over_the_limit_is_413_and_records_nothing(api: Api, runtime: Any) -> None:
    api.create_task("T-1")
    before = snapshot(runtime)
    big = {"task_code": "T-BIG", "title": "x", "description": "a" * (1024 * 1024 + 10)}
    assert_problem(api.post("/tasks", json=big), 413)
    assert_problem(api.patch("/tasks/T-1", json={"description": big["description"]}), 413)
    assert snapshot(runtime) == before


def test_validation_errors_name_each_field(api: Api) -> None:
    body = assert_problem(api.post("/tasks", json={"task_code": "bad code", "priority": "P9", "extra": 1}), 422)
    assert set(body["errors"]) == {"task_code", "title", "priority", "extra"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [
        ({"task_code": "T-2"}, {}, 422, "task_code"),
        ({"status": "done"}, {}, 422, "status"),
        ({"title": None}, {}, 422, "title"),
        ({"correlation_id": "x"}, {}, 422, "correlation_id"),
        ({"title": "x"}, {"If-Match": '"7"'}, 409, "version"),
        ({"title": "x", "version": 3}, {}, 409, "version"),
    ],
)
def test_a_rejected_patch_records_validation_failed_outside_the_stream(
        api: Api, runtime: Any, body: dict[str, Any], headers: dict[str, str], status: int, field: str) -> None:
    api.create_task("T-1")
    before = snapshot(runtime)
    problem = assert_problem(api.patch("/tasks/T-1", json=body, headers=headers, role="writer"), status)
    assert field in problem["errors"]
    after = snapshot(runtime)
    assert after["tasks"] == before["tasks"] and after["events"] == before["events"] + 1
    [event] = api.events(type="orchestration.task.validation_failed")
    assert event["sequence"] is None and event["prev_hash"] is None
    assert event["entity"]["code"] == "T-1" and event["actor"] == "user:writer"
    assert event["data"]["status"] == status and field in event["data"]["errors"]
    assert api.get("/tasks/T-1").get_json()["version"] == 1


def test_leaving_cancelled_is_a_conflict_recorded_as_validation_failed(api: Api) -> None:
    api.create_sprint("S-C")
    api.patch("/sprints/S-C", json={"status": "cancelled"})
    assert_problem(api.patch("/sprints/S-C", json={"status": "active"}), 409)
    assert [e["type"].rsplit(".", 1)[1] for e in api.events(entity_code="S-C")] == [
        "created", "status_changed", "validation_failed"]


def test_a_stale_delete_is_refused_and_recorded(api: Api) -> None:
    api.create_task("T-D")
    api.update_task("T-D", progress=1)
    assert_problem(api.delete("/tasks/T-D", headers={"If-Match": "1"}), 409)
    assert api.get("/tasks/T-D").status_code == 200
    assert len(api.events(type="orchestration.task.validation_failed")) == 1
    assert api.delete("/tasks/T-D", headers={"If-Match": "2"}).status_code == 204


def test_if_match_accepts_bare_and_quoted_versions(api: Api) -> None:
    api.create_task("T-IM")
    assert api.patch("/tasks/T-IM", json={"progress": 1}, headers={"If-Match": "1"}).headers["ETag"] == '"2"'
    assert api.patch("/tasks/T-IM", json={"progress": 2}, headers={"If-Match": '"2"'}).status_code == 200


def test_an_unreachable_database_is_503_with_retry_after(tmp_path: Path) -> None:
    app = create_app(make_settings("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=1", tmp_path))
    client = app.test_client()
    for path in ("/api/orchestration/sprints", "/api/orchestration/health"):
        response = client.get(path, headers={"Authorization": "Bearer whatever"})
        assert_problem(response, 503) if path.endswith("sprints") else None
        assert response.status_code == 503 and response.headers["Retry-After"]


def test_unknown_routes_and_methods_are_problems_too(api: Api) -> None:
    assert_problem(api.get("/nowhere"), 404)
    assert_problem(api.call("PUT", "/sprints"), 405)


def test_unstorable_text_is_judged_only_after_authentication(api: Api) -> None:
    body = {"task_code": "T-NUL", "title": "x\u0000"}
    assert_problem(api.post("/tasks", json=body, role=None), 401)
    problem = assert_problem(api.post("/tasks", json=body), 422)
    assert problem["errors"] == {"title": ["contains a NUL character or an unpaired surrogate"]}


def test_a_rule_keeps_its_name_its_events_carry_it(api: Api) -> None:
    rule = {"name": "named_once", "trigger": {"type": "custom.x"},
            "action": {"name": "emit_event", "params": {"type": "custom.y"}}}
    rule_id = api.post("/rules", json=rule).get_json()["id"]
    problem = assert_problem(api.patch(f"/rules/{rule_id}", json={"name": "renamed"}), 422)
    assert "name" in problem["errors"]
    assert api.get(f"/rules/{rule_id}").get_json()["name"] == "named_once"
