"""One page costs at most ``PAGE_BYTE_BUDGET`` bytes of items: it ends early with ``next``,
and following ``next`` returns every event exactly once."""

from __future__ import annotations

import uuid
from typing import Any

from app.domain.jsonvalues import serialized_size
from app.domain.paging import PAGE_BYTE_BUDGET
from tests.support import Api

BLOB = 60_000  # just under the 64 KiB field limit


def pages(api: Api, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    found, query = [], {"limit": 1000, **params}
    while True:
        body = api.get(path, query_string=query).get_json()
        found.append(body["items"])
        if not body["next"]:
            return found
        query["after"] = body["next"]


def assert_budgeted(found: list[list[dict[str, Any]]], expected_ids: list[int], key: Any = lambda i: i["id"]) -> None:
    assert len(found) > 1, "the byte budget never ended a page"
    for page in found:
        assert page, "an empty page with a next cursor"
        assert len(page) == 1 or sum(serialized_size(item) for item in page) <= PAGE_BYTE_BUDGET
    assert [key(item) for page in found for item in page] == expected_ids


def test_event_lists_stop_at_the_byte_budget_and_next_returns_everything_once(api: Api) -> None:
    api.create_task("T-BUDGET")
    workflow = str(uuid.uuid4())
    assert api.post("/sessions", json={"agent_id": "agent:b", "session_key": "budget"}).status_code == 201
    for n in range(20):
        response = api.post("/events", headers={"X-Session-Key": "budget", "X-Correlation-ID": workflow},
                            json={"type": "custom.big", "entity_type": "task", "entity_code": "T-BUDGET",
                                  "data": {"n": n, "blob": "x" * BLOB}})
        assert response.status_code == 201, response.get_json()
    every = [e["id"] for e in api.events()]  # Api.events follows next the same way
    big = every[-20:]
    assert_budgeted(pages(api, "/events"), every)
    assert_budgeted(pages(api, "/events", type="custom.big"), big)
    assert_budgeted(pages(api, "/events/entity/task/T-BUDGET"), every[:1] + big)  # the task was created first
    assert_budgeted(pages(api, "/events/session/budget"), every[1:2] + big)  # with its own started event
    assert_budgeted(pages(api, f"/events/correlation/{workflow}"), big)


def test_history_pages_count_events_and_states_against_the_budget(api: Api) -> None:
    api.create_task("T-HIST")
    for n in range(8):
        api.update_task("T-HIST", metadata={"n": n, "blob": "y" * BLOB})
    found = pages(api, "/tasks/T-HIST/history")
    assert_budgeted(found, list(range(1, 10)), key=lambda item: item["event"]["sequence"])
    assert all(item["state"]["metadata"].get("n", -1) == item["event"]["sequence"] - 2 for page in found
               for item in page)
