"""Token lifecycle: created, listed without the secret, expired, revoked, and recorded as events."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event as sql_event
from sqlalchemy import text

from app import create_app
from tests.conftest import make_settings
from tests.support import Api

BASE = "/api/orchestration"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cli(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["orchestration", *args])
    assert result.exit_code == 0, result.output
    return str(result.output)


def listed(app: Flask) -> dict[str, dict[str, str]]:
    """``list-tokens`` parsed: id -> column -> value."""
    header, *rows = cli(app, "list-tokens").splitlines()
    names = header.split("\t")
    return {row.split("\t")[0]: dict(zip(names, row.split("\t"), strict=True)) for row in rows}


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def create(api: Api, **body: Any) -> dict[str, Any]:
    response = api.post("/tokens", json={"actor": "agent:planner", "role": "writer", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_an_admin_creates_a_token_that_is_shown_once_and_listed_without_its_secret(api: Api) -> None:
    created = create(api, name="planner loop", expires_in="30d")
    secret = created["token"]
    assert created["prefix"] == secret[:8] and created["name"] == "planner loop"
    assert created["expires_at"] is not None and created["revoked_at"] is None
    response = api.get(f"/tokens/{created['id']}")
    assert response.status_code == 200 and "token" not in response.get_json()
    assert api.post("/sprints", headers=bearer(secret), role=None,
                    json={"sprint_code": "S-1", "title": "t"}).status_code == 201
    page = api.get("/tokens").get_json()
    assert {t["id"] for t in page["items"]} >= {created["id"]} and page["next"] is None
    assert secret not in str(page) and all("token" not in item for item in page["items"])
    assert set(page["items"][0]) >= {"id", "actor", "role", "name", "prefix", "created_at", "expires_at",
                                     "last_used_at", "revoked_at"}


def test_creation_and_revocation_are_recorded_outside_any_stream_without_the_secret(api: Api) -> None:
    created = create(api, name="ci")
    assert api.delete(f"/tokens/{created['id']}").status_code == 204
    events = api.events(type="orchestration.token.*")
    assert [e["type"] for e in events] == ["orchestration.token.created", "orchestration.token.revoked"]
    for event in events:
        assert event["actor"] == "user:admin" and event["sequence"] is None and event["prev_hash"] is None
        assert event["entity"] == {"type": "token", "id": created["id"], "code": created["prefix"]}
        assert event["data"] == {"actor": "agent:planner", "role": "writer", "name": "ci",
                                 "prefix": created["prefix"], "expires_at": None}
        assert created["token"] not in str(event)
    validation = api.get(f"/events/correlation/{events[0]['correlation_id']}/validate").get_json()
    assert validation["valid"] is True and validation["events"] == 2


def test_a_revoked_token_is_refused_at_once_and_revoking_again_changes_nothing(api: Api) -> None:
    created = create(api)
    assert api.get("/sprints", headers=bearer(created["token"]), role=None).status_code == 200
    assert api.delete(f"/tokens/{created['id']}").status_code == 204
    response = api.get("/sprints", headers=bearer(created["token"]), role=None)
    assert response.status_code == 401 and response.content_type == "application/problem+json"
    assert api.delete(f"/tokens/{created['id']}").status_code == 204
    assert len(api.events(type="orchestration.token.revoked")) == 1
    assert api.get(f"/tokens/{created['id']}").get_json()["revoked_at"] is not None
    assert api.delete("/tokens/999999").status_code == 404


def test_a_token_past_its_expiry_gets_401(app: Flask, api: Api, runtime: Any) -> None:
    clock = Clock(T0)
    runtime.clock = clock
    from_api = create(api, expires_in="1h")["token"]
    from_cli = cli(app, "create-token", "--actor", "agent:ci", "--role", "reader", "--expires-in", "2h").strip()
    assert api.get("/sprints", headers=bearer(from_api), role=None).status_code == 200
    clock.now = T0 + timedelta(minutes=90)
    assert api.get("/sprints", headers=bearer(from_api), role=None).status_code == 401
    assert api.get("/sprints", headers=bearer(from_cli), role=None).status_code == 200
    clock.now = T0 + timedelta(hours=2)
    assert api.get("/sprints", headers=bearer(from_cli), role=None).status_code == 401
    expiries = {row["actor"]: row["expires_at"] for row in listed(app).values()}
    assert expiries["agent:ci"] == (T0 + timedelta(hours=2)).isoformat(timespec="microseconds")


def test_bad_token_requests_are_refused_with_422(api: Api) -> None:
    for body in ({"actor": "nobody", "role": "writer"}, {"actor": "agent:x", "role": "root"},
                 {"actor": "agent:x", "role": "reader", "expires_in": "soon"},
                 {"actor": "agent:x", "role": "reader", "expires_in": "0h"},
                 {"actor": "agent:x", "role": "reader", "writes_per_second": 0},
                 {"actor": "agent:x", "role": "reader", "token": "chosen-by-me"}):
        response = api.post("/tokens", json=body)
        assert response.status_code == 422, (body, response.get_json())
    assert api.events(type="orchestration.token.*") == []


def test_list_tokens_shows_last_used_at_moving_at_most_once_a_minute(app: Flask, api: Api, runtime: Any) -> None:
    clock = Clock(T0)
    runtime.clock = clock
    token = cli(app, "create-token", "--actor", "agent:loop", "--role", "reader", "--name", "loop").strip()
    token_id = next(i for i, row in listed(app).items() if row["actor"] == "agent:loop")
    assert listed(app)[token_id]["last_used_at"] == "-"

    def used_at(expected: datetime) -> bool:
        return listed(app)[token_id]["last_used_at"] == expected.isoformat(timespec="microseconds")

    stamps: list[str] = []
    sql_event.listen(runtime.engine, "before_cursor_execute",
                     lambda *a: stamps.append(a[2]) if a[2].lstrip().upper().startswith("UPDATE API_TOKENS") else None)
    assert api.get("/sprints", headers=bearer(token), role=None).status_code == 200
    wait_for(lambda: used_at(T0), "the first use to be recorded")
    for second in range(1, 60, 3):  # twenty requests within the minute: no write
        clock.now = T0 + timedelta(seconds=second)
        assert api.get("/sprints", headers=bearer(token), role=None).status_code == 200
    clock.now = T0 + timedelta(seconds=61)
    assert api.get("/sprints", headers=bearer(token), role=None).status_code == 200
    wait_for(lambda: used_at(T0 + timedelta(seconds=61)), "the use a minute later to be recorded")
    assert len(stamps) == 2
    assert listed(app)[token_id]["name"] == "loop"


def test_secrets_appear_in_no_list_event_output_or_log(app: Flask, api: Api, runtime: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    from_cli = cli(app, "create-token", "--actor", "agent:a", "--role", "writer").strip()
    created = create(api, name="b")
    secrets_ = [from_cli, created["token"]]
    for secret in secrets_:
        api.post("/sprints", headers=bearer(secret), role=None, json={"sprint_code": f"S-{secret[:4]}", "title": "t"})
        api.get("/sprints", headers=bearer(secret), role=None)
    token_id = next(i for i, row in listed(app).items() if row["actor"] == "agent:a")
    revoked = cli(app, "revoke-token", token_id)
    api.delete(f"/tokens/{created['id']}")
    api.get("/sprints", headers=bearer(from_cli), role=None)
    with runtime.engine.connect() as connection:
        events = " ".join(str(r) for r in connection.execute(text("SELECT * FROM orchestration_events")))
        tokens_table = " ".join(str(r) for r in connection.execute(text("SELECT * FROM api_tokens")))
    seen = {"events": events, "api_tokens": tokens_table, "cli list": cli(app, "list-tokens"),
            "cli revoke": revoked, "api list": str(api.get("/tokens").get_json()), "logs": caplog.text}
    assert "orchestration.token.revoked" in events
    for where, content in seen.items():
        for secret in secrets_:
            assert secret not in content, where


def test_revocation_reaches_another_process_cache_through_the_epoch(database_url: str, tmp_path: Path,
                                                                    api: Api) -> None:
    """A second app over the same database stands for another process: it polls the epoch, nobody tells it."""
    other = create_app(make_settings(database_url, tmp_path, token_epoch_poll=0.2))
    try:
        created = create(api)
        client = other.test_client()
        assert client.get(f"{BASE}/sprints", headers=bearer(created["token"])).status_code == 200
        assert api.delete(f"/tokens/{created['id']}").status_code == 204
        wait_for(lambda: client.get(f"{BASE}/sprints", headers=bearer(created["token"])).status_code == 401,
                 "the other process to drop the revoked token", timeout=5)
    finally:
        other.extensions["orchestration"].engine.dispose()


def test_the_token_endpoints_and_the_429_answer_are_in_the_openapi_document(api: Api) -> None:
    spec = api.client.get("/openapi.json").get_json()
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths[f"{BASE}/tokens"]) and "delete" in paths[f"{BASE}/tokens/{{token_id}}"]
    assert paths[f"{BASE}/tokens"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/TokenCreated")
    too_many = {"$ref": "#/components/responses/TOO_MANY_REQUESTS"}
    assert paths[f"{BASE}/sprints"]["post"]["responses"]["429"] == too_many
    assert "429" not in paths[f"{BASE}/health"]["get"]["responses"]
    assert "Retry-After" in spec["components"]["responses"]["TOO_MANY_REQUESTS"]["headers"]
