"""GET /events/stream: live, in order, resumable exactly, filtered, authenticated and capped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.api.stream import HUB
from app.services import tokens
from tests.conftest import make_settings
from tests.integration.stream_support import SseReader, wait_for
from tests.support import Api, wipe

STREAM = "/events/stream"


@pytest.fixture
def stream_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    flask_app = create_app(make_settings(database_url, tmp_path, stream_heartbeat=0.2, stream_poll_interval=0.1,
                                         stream_max_per_token=2))
    runtime = flask_app.extensions["orchestration"]
    wipe(runtime.engine)
    yield flask_app
    if HUB in flask_app.extensions:
        flask_app.extensions[HUB].stop()
    runtime.engine.dispose()


@pytest.fixture
def sapi(stream_app: Flask) -> Api:
    rt = stream_app.extensions["orchestration"]
    issued = {role: tokens.create_token(f"user:{role}", role, rt.uow(), rt.clock) for role in tokens.ROLES}
    return Api(stream_app.test_client(), issued)


def subscribe(api: Api, role: str = "reader", headers: dict[str, str] | None = None, **params: Any) -> SseReader:
    response = api.get(STREAM, role=role, headers=headers, query_string=params, buffered=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    return SseReader(response)


def hub_has_read(app: Flask, event_id: int) -> None:
    wait_for(lambda: app.extensions[HUB].cursor >= event_id)


def test_subscribers_get_changes_in_order_and_a_resume_gets_exactly_what_was_missed(sapi: Api, stream_app: Flask) -> None:
    sapi.create_task("PRE")  # before the subscription: never delivered
    live = subscribe(sapi)
    sapi.create_task("T-1")
    sapi.update_task("T-1", status="in_progress", assignee="agent:coder")
    logged = [e for e in sapi.events() if e["entity"]["code"] == "T-1"]
    received = live.events(len(logged))
    assert [int(m["id"]) for m in received] == [e["id"] for e in logged]
    assert [m["event"] for m in received] == [e["type"] for e in logged]
    assert [m["envelope"] for m in received] == logged
    live.close()

    sapi.update_task("T-1", progress=40)
    sapi.create_task("T-2")
    sapi.update_task("T-2", status="blocked")
    missed = [e for e in sapi.events() if e["id"] > logged[-1]["id"]]
    resumed = subscribe(sapi, headers={"Last-Event-ID": received[-1]["id"]})
    assert [m["envelope"] for m in resumed.events(len(missed))] == missed
    hub_has_read(stream_app, missed[-1]["id"])
    assert resumed.next_is_heartbeat()  # nothing repeated, nothing more
    sapi.update_task("T-2", progress=5)
    assert resumed.next_event()["envelope"] == sapi.events()[-1]
    resumed.close()


def test_after_resumes_like_last_event_id_and_the_header_wins(sapi: Api) -> None:
    sapi.create_task("A")
    sapi.update_task("A", progress=1)
    first, second = sapi.events()[-2:]
    by_param = subscribe(sapi, after=first["id"])
    assert by_param.next_event()["envelope"] == second
    both = subscribe(sapi, headers={"Last-Event-ID": str(second["id"])}, after=0)
    sapi.update_task("A", progress=2)
    assert both.next_event()["envelope"] == sapi.events()[-1]
    by_param.close()
    both.close()


def test_channels_and_filters_deliver_only_what_they_match(sapi: Api) -> None:
    sapi.create_sprint("S-1")
    tail = sapi.events()[-1]["id"]
    sapi.post("/sessions", json={"agent_id": "agent:x", "session_key": "sess-1"})
    sapi.create_task("T-A", "S-1")
    task_b = sapi.create_task("T-B")
    sapi.patch("/tasks/T-B", json={"status": "blocked"}, headers={"X-Session-Key": "sess-1"})
    sapi.patch("/tasks/T-A", role="writer", json={"progress": 10},
               headers={"X-Correlation-ID": "6f1c1a8e-3a57-4a8e-9f57-0d6b1f0a2c11"})
    sapi.patch("/sprints/S-1", json={"title": "renamed"})
    rt = sapi.client.application.extensions["orchestration"]
    agent = tokens.create_token("agent:bot", "writer", rt.uow(), rt.clock)
    sapi.patch("/tasks/T-B", role=None, headers={"Authorization": f"Bearer {agent}"}, json={"progress": 5})
    log = [e for e in sapi.events() if e["id"] > tail]
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"channel": "orchestration.task.T-A"}, lambda e: e["entity"]["code"] == "T-A"),
        ({"channel": f"orchestration.task.{task_b['id']}"}, lambda e: e["entity"] == {"type": "task", "id": task_b["id"], "code": "T-B"}),
        ({"channel": ["orchestration.task.T-A", "orchestration.sprint.*"]},
         lambda e: e["entity"]["code"] == "T-A" or e["entity"]["type"] == "sprint"),
        ({"channel": "orchestration.task.*", "type": "orchestration.task.status_changed"},
         lambda e: e["type"] == "orchestration.task.status_changed"),
        ({"actor": "user:writer"}, lambda e: e["actor"] == "user:writer"),
        ({"actor_kind": "agent"}, lambda e: e["actor"].startswith("agent:")),
        ({"session_key": "sess-1"}, lambda e: e["session_key"] == "sess-1"),
        ({"correlation_id": "6f1c1a8e-3a57-4a8e-9f57-0d6b1f0a2c11"},
         lambda e: "6f1c1a8e-3a57-4a8e-9f57-0d6b1f0a2c11" in e["correlation_chain"]),
        ({"entity_type": "session"}, lambda e: e["entity"]["type"] == "session"),
        ({"type": "orchestration.sprint.*"}, lambda e: e["type"].startswith("orchestration.sprint.")),
    ]
    for params, wanted in cases:  # the hub starts at the tail: these resume through the log itself
        expected = [e for e in log if wanted(e)]
        assert expected and len(expected) < len(log), params
        reader = subscribe(sapi, role="admin", after=tail, **params)
        assert [m["envelope"] for m in reader.events(len(expected))] == expected, params
        assert reader.next_is_heartbeat(), params
        reader.close()


def test_a_live_channel_subscriber_sees_only_its_entity(sapi: Api, stream_app: Flask) -> None:
    sapi.create_task("MINE")
    sapi.create_task("OTHER")
    mine = subscribe(sapi, channel="orchestration.task.MINE")
    sapi.update_task("OTHER", progress=3)
    sapi.update_task("MINE", progress=4)
    received = mine.next_event()["envelope"]
    assert (received["entity"]["code"], received["changes"]) == ("MINE", {"progress": {"before": 0, "after": 4}})
    hub_has_read(stream_app, sapi.events()[-1]["id"])
    assert mine.next_is_heartbeat()
    mine.close()


def test_no_token_or_a_bad_one_is_401_and_bad_parameters_422(sapi: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = sapi.get(STREAM, role=None, headers=headers)
        assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert sapi.get(STREAM, role=None, query_string={"ticket": "st_forged"}).status_code == 401
    assert sapi.get(STREAM, query_string={"channel": "tasks.T-1"}).status_code == 422
    assert sapi.get(STREAM, headers={"Last-Event-ID": "abc"}).status_code == 422


def test_a_ticket_opens_one_stream_once_and_never_carries_the_token(sapi: Api) -> None:
    assert sapi.post(f"{STREAM}/tickets", role=None).status_code == 401
    issued = sapi.post(f"{STREAM}/tickets", role="reader")
    assert issued.status_code == 201
    body = issued.get_json()
    ticket = body["ticket"]
    assert ticket.startswith("st_") and sapi.tokens["reader"] not in ticket and body["expires_in"] > 0
    response = sapi.get(STREAM, role=None, query_string={"ticket": ticket}, buffered=False)
    assert response.status_code == 200
    response.close()
    assert sapi.get(STREAM, role=None, query_string={"ticket": ticket}).status_code == 401


def test_the_per_token_cap_answers_429_and_a_closed_stream_frees_its_slot(sapi: Api) -> None:
    first, second = subscribe(sapi), subscribe(sapi)
    refused = sapi.get(STREAM, role="reader")
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert subscribe(sapi, role="writer").next_message().startswith("retry:")  # another token has its own cap
    first.close()
    third = subscribe(sapi)
    second.close()
    third.close()


def test_a_stream_ends_cleanly_at_its_lifetime_saying_where_to_resume(database_url: str, tmp_path: Path) -> None:
    short = create_app(make_settings(database_url, tmp_path, stream_heartbeat=0.1, stream_max_seconds=0.5))
    rt = short.extensions["orchestration"]
    wipe(rt.engine)
    api = Api(short.test_client(), {"admin": tokens.create_token("user:a", "admin", rt.uow(), rt.clock)})
    api.create_task("L")
    reader = subscribe(api, role="admin", after=0)
    last = reader.next_event()["id"]
    messages = []
    while True:
        try:
            messages.append(reader.next_message())
        except StopIteration:
            break
    assert messages[-1].startswith(": lifetime reached") and f"Last-Event-ID: {last}" in messages[-1]
    assert all(m.startswith(": heartbeat") for m in messages[:-1])
    short.extensions[HUB].stop()
    rt.engine.dispose()
