"""Tokens and roles: who may do what, and where the actor comes from."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from tests.support import Api

WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
OPEN_PATHS = {"/api/orchestration/health"}


def required_role(method: str, rule: str) -> str:
    """CONTRACT §1: reader for every GET, writer for changes, admin for rules, replay and tokens."""
    if rule.startswith("/api/orchestration/tokens"):
        return "admin"  # token management: every method
    if method == "GET" or rule == "/api/orchestration/events/stream/tickets":  # a ticket is for reading
        return "reader"
    if rule.startswith("/api/orchestration/rules"):
        return "admin"
    if rule == "/api/orchestration/events/replay":
        return "admin"
    if re.fullmatch(r"/api/orchestration/sessions/[^/]+/revert", rule):  # a session revert is admin's
        return "admin"
    return "writer"


def every_endpoint(app: Flask) -> list[tuple[str, str]]:
    pairs = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/orchestration") or rule.rule in OPEN_PATHS:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            path = re.sub(r"<[^>]+>", lambda m: "1" if m.group(0).startswith(("<int:", "<bigint:")) else "X-1",
                          rule.rule)
            if path.startswith("/api/orchestration/tokens/"):
                path = "/api/orchestration/tokens/999999"  # never revoke the very tokens the test speaks with
            pairs.append((method, path))
    return pairs


def test_every_endpoint_refuses_a_missing_or_unknown_token_with_401(app: Flask, api: Api) -> None:
    for method, path in every_endpoint(app):
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
            response = api.client.open(path, method=method, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)
            assert response.content_type == "application/problem+json"


def test_every_endpoint_refuses_a_role_too_low_with_403_and_admits_the_right_one(app: Flask, api: Api) -> None:
    ranks = ["reader", "writer", "admin"]
    for method, path in every_endpoint(app):
        needed = required_role(method, path)
        for role in ranks:
            response = api.client.open(path, method=method, json={},
                                       headers={"Authorization": f"Bearer {api.tokens[role]}"})
            if ranks.index(role) < ranks.index(needed):
                assert response.status_code == 403, (method, path, role)
            else:
                assert response.status_code not in (401, 403), (method, path, role, response.get_json())


ALLOWED: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
    ("reader", "GET", "/sprints", None, 200),
    ("reader", "GET", "/sprints/S-R", None, 200),
    ("reader", "GET", "/tasks", None, 200),
    ("reader", "GET", "/tasks/T-R", None, 200),
    ("reader", "GET", "/sessions", None, 200),
    ("reader", "GET", "/sessions/sess-r", None, 200),
    ("reader", "GET", "/events", None, 200),
    ("reader", "GET", "/events/entity/task/T-R", None, 200),
    ("writer", "POST", "/sprints", {"sprint_code": "S-W", "title": "w"}, 201),
    ("writer", "PATCH", "/sprints/S-R", {"title": "w"}, 200),
    ("writer", "POST", "/tasks", {"task_code": "T-W", "title": "w"}, 201),
    ("writer", "PATCH", "/tasks/T-R", {"progress": 5}, 200),
    ("writer", "POST", "/sessions", {"agent_id": "agent:w"}, 201),
    ("writer", "POST", "/sessions/sess-r/context", {"data": {"docs": 3}}, 201),
    ("writer", "POST", "/sessions/sess-r/end", None, 200),
    ("writer", "POST", "/sessions/sess-r/resume", None, 200),
    ("writer", "POST", "/events", {"type": "custom.ping", "entity_type": "task", "entity_code": "T-R"}, 201),
    ("writer", "DELETE", "/tasks/T-R", None, 204),
    ("writer", "DELETE", "/sprints/S-R", None, 204),
]


def test_each_role_gets_2xx_where_the_contract_allows_it(api: Api) -> None:
    api.create_sprint("S-R")
    api.create_task("T-R", "S-R")
    assert api.post("/sessions", json={"agent_id": "agent:r", "session_key": "sess-r"}).status_code == 201
    for role, method, path, body, status in ALLOWED:
        response = api.call(method, path, role=role, json=body)
        assert response.status_code == status, (role, method, path, response.get_json())


def test_the_actor_comes_from_the_token_and_an_actor_in_the_body_is_rejected(api: Api) -> None:
    response = api.post("/sprints", role="writer", json={"sprint_code": "S-A", "title": "t", "actor": "user:mallory"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"actor": ["Unknown field."]}
    assert api.events() == []
    api.post("/sprints", role="writer", json={"sprint_code": "S-A", "title": "t"})
    assert [e["actor"] for e in api.events()] == ["user:writer"]


def test_the_database_holds_no_plaintext_token(api: Api, runtime: Any) -> None:
    with runtime.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_tokens")).mappings().all()
    stored = " ".join(str(v) for row in rows for v in row.values())
    for token in api.tokens.values():
        assert token not in stored
        assert hashlib.sha256(token.encode()).hexdigest() in stored


def test_health_docs_and_openapi_need_no_token(api: Api) -> None:
    assert api.get("/health", role=None).status_code == 200
    spec = api.client.get("/openapi.json")
    assert spec.status_code == 200 and "/api/orchestration/tasks/{code}" in spec.get_json()["paths"]
    assert api.client.get("/docs").status_code == 200


@pytest.mark.parametrize("role", ["reader", "writer", "admin"])
def test_the_cli_prints_a_token_alone_that_then_authenticates(app: Flask, role: str) -> None:
    result = app.test_cli_runner().invoke(args=["orchestration", "create-token", "--actor", "agent:planner",
                                                "--role", role])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert "\n" not in token and len(token) >= 40
    response = app.test_client().get("/api/orchestration/sprints", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_the_cli_refuses_an_unknown_role(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["orchestration", "create-token", "--actor", "user:x", "--role", "root"])
    assert result.exit_code != 0
