"""Compensating events (rule-run undo, replay repair) start no rules unless the caller asks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.automation.test_rules_api import completed_by_rule
from tests.support import Api


def sessions_for(api: Api, sprint: str) -> int:
    response = api.get("/sessions", query_string={"sprint_code": sprint, "limit": 1000})
    assert response.status_code == 200, response.get_json()
    return len(response.get_json()["items"])


@pytest.mark.parametrize("trigger_rules", [False, True])
def test_undoing_an_auto_completion_starts_a_second_session_only_when_asked(
        api: Api, settle: Callable[..., None], trigger_rules: bool) -> None:
    sprint = f"S-COMP-{int(trigger_rules)}"
    run = completed_by_rule(api, settle, sprint)
    assert sessions_for(api, sprint) == 1  # the sprint's activation at creation started one

    body = {"trigger_rules": True} if trigger_rules else None
    response = api.post(f"/rules/runs/{run['id']}/undo", json=body)
    assert response.status_code == 200, response.get_json()
    assert api.get(f"/sprints/{sprint}").get_json()["status"] == "active"
    settle()  # an empty outbox: nothing is left that could still start a session

    assert sessions_for(api, sprint) == (2 if trigger_rules else 1)
    started = [r for r in api.get("/rules/runs", query_string={"limit": 1000}).get_json()["items"]
               if r["rule_name"] == "session_on_sprint_activated" and r["status"] == "succeeded"
               and r["event_id"] == response.get_json()["events"][0]["id"]]
    assert len(started) == (1 if trigger_rules else 0)


def test_undo_rejects_a_trigger_rules_that_is_not_a_boolean(api: Api, settle: Callable[..., None]) -> None:
    run = completed_by_rule(api, settle, "S-COMP-BAD")
    response = api.post(f"/rules/runs/{run['id']}/undo", json={"trigger_rules": "maybe"})
    assert response.status_code == 422
    assert api.get("/sprints/S-COMP-BAD").get_json()["status"] == "completed"
