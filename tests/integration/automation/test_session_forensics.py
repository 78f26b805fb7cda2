"""Session forensics end to end on PostgreSQL with a real worker: the report, and the revert.

An agent session changes several tasks, blocks one (a rule raises a
notification), completes a sprint's last task (a rule completes the sprint)
and is refused twice; then another actor edits one of the fields it changed.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from app.services import integrity, tokens
from tests.support import Api

KEY = "sess-forensics"


@pytest.fixture
def database_url(pg_url: str) -> str:
    """PostgreSQL only: the production stack (private Redis, real worker)."""
    return pg_url


@pytest.fixture
def api(app: Flask) -> Api:
    runtime = app.extensions["orchestration"]
    issued = {role: tokens.create_token(f"user:{role}", role, runtime.uow(), runtime.clock)
              for role in tokens.ROLES}
    issued["agent"] = tokens.create_token("agent:planner", "writer", runtime.uow(), runtime.clock)
    return Api(app.test_client(), issued)


def in_session(api: Api, method: str, path: str, **kw: Any) -> Any:
    return api.call(method, path, role="agent", headers={"X-Session-Key": KEY, **kw.pop("headers", {})}, **kw)


def report(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get(f"/sessions/{KEY}/report", role="reader", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def revert(api: Api, **body: Any) -> dict[str, Any]:
    response = api.post(f"/sessions/{KEY}/revert", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def state(api: Api, kind: str, code: str, at: str | None = None) -> dict[str, Any]:
    response = api.get(f"/{kind}s/{code}/history" if at else f"/{kind}s/{code}",
                       query_string={"at": at} if at else None)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return {k: v for k, v in body.items() if k in FIELDS[kind]}


FIELDS = {"task": ("title", "status", "priority", "progress", "assignee", "sprint_code", "description", "metadata"),
          "sprint": ("title", "status", "priority", "metadata")}


def run_session(api: Api, settle: Any) -> str:
    """The scenario; returns the instant the session started."""
    api.create_sprint("S1")
    api.create_task("B", "S1")
    api.create_task("A", "S1", status="completed")  # after B: the sprint still has an open task
    api.create_task("C")
    api.create_task("D")
    settle()  # the rules see the set-up before the session starts
    started = api.post("/sessions", role="agent", json={"agent_id": "agent:planner", "session_key": KEY})
    assert started.status_code == 201
    for path, body in (("/tasks/C", {"title": "C renamed", "priority": "P1"}), ("/tasks/C", {"progress": 50}),
                       ("/tasks/D", {"status": "blocked", "assignee": "agent:planner"}),
                       ("/tasks/B", {"status": "completed"})):
        assert in_session(api, "PATCH", path, json=body).status_code == 200
    assert in_session(api, "PATCH", "/tasks/D", json={"progress": 5}, headers={"If-Match": "1"}).status_code == 409
    assert in_session(api, "PATCH", "/tasks/C", json={"progress": 200}).status_code == 422
    assert in_session(api, "POST", f"/sessions/{KEY}/end").status_code == 200
    settle()
    assert api.update_task("C", priority="P3")["priority"] == "P3"  # someone else, after the session
    return str(api.events(f"/events/session/{KEY}")[0]["timestamp"])


def test_a_session_report_then_its_revert_with_conflicts_automation_and_idempotence(
        api: Api, app: Flask, settle: Any) -> None:
    before_session = run_session(api, settle)
    found = report(api)

    assert found["session"]["agent_id"] == "agent:planner" and found["session"]["status"] == "ended"
    assert found["events"]["by_actor_kind"] == {"agent": found["events"]["total"]}
    assert found["events"]["by_type"]["orchestration.task.validation_failed"] == 2
    touched = {i["entity"]["code"]: {f: (c["before"], c["after"]) for f, c in i["changes"].items()}
               for i in found["entities"]["items"]}
    assert touched == {
        "C": {"title": ("Task C", "C renamed"), "priority": ("P2", "P1"), "progress": (0, 50)},
        "D": {"status": ("pending", "blocked"), "assignee": (None, "agent:planner")},
        "B": {"status": ("pending", "completed")},
    }
    assert sorted((r["entity"]["code"], r["status"]) for r in found["refused"]["items"]) == [("C", 422), ("D", 409)]
    blast = found["blast_radius"]
    caused = {(e["type"], e["actor"], e["depth"]) for e in blast["items"]}
    assert caused == {("orchestration.notification.created", "automation:notify_blocked_task", 1),
                      ("orchestration.sprint.status_changed", "automation:sprint_auto_complete", 1)}
    session_ids = {e["event_id"] for e in api.events(f"/events/session/{KEY}")}
    assert all(e["causation_id"] in session_ids for e in blast["items"])
    assert {i["entity"]["code"]: i["changes"] for i in blast["entities"]["items"]}["S1"] == {
        "status": {"before": "planned", "after": "completed", "events": 1}}
    assert blast["rule_runs"]["by_rule"]["notify_blocked_task"] == {"succeeded": 1}
    assert sum(m["count"] for m in found["activity"]) == found["events"]["total"]

    plan = revert(api)
    assert plan["dry_run"] is True and plan["reverted_event"] is None
    assert [(c["entity"]["code"], c["field"], c["current"], c["target"]) for c in plan["conflicts"]] == [
        ("C", "priority", "P3", "P2")]
    assert plan["conflicts"][0]["changed_by"][0]["actor"] == "user:admin"
    assert state(api, "task", "C")["title"] == "C renamed"  # a dry run writes nothing

    applied = revert(api, dry_run=False)
    assert {e["entity"]["code"]: e["status"] for e in applied["entities"]} == {"B": "applied", "C": "applied",
                                                                               "D": "applied"}
    compensations = [ev for e in applied["entities"] for ev in e["events"]]
    last_event = api.events(f"/events/session/{KEY}")[-2]  # the session's last event before the revert
    assert last_event["type"] == "orchestration.session.ended"
    assert all(ev["actor"] == "user:admin" and ev["causation_id"] == last_event["event_id"]
               and KEY in ev["correlation_chain"] for ev in compensations)
    assert applied["reverted_event"]["type"] == "orchestration.session.reverted"
    assert applied["reverted_event"]["entity"]["code"] == KEY
    settle()
    assert state(api, "sprint", "S1")["status"] == "completed"  # automation stays without include_automation
    assert state(api, "task", "C")["priority"] == "P3"  # the conflict was left alone
    assert not [e for e in api.events("/events", type="orchestration.notification.*")
                if e["causation_id"] in {c["event_id"] for c in compensations}]

    with_automation = revert(api, dry_run=False, include_automation=True)
    assert {e["entity"]["code"]: e["status"] for e in with_automation["entities"]}["S1"] == "applied"
    assert state(api, "sprint", "S1")["status"] == "planned"

    events_before = len(api.events())
    again = revert(api, dry_run=False, include_automation=True)
    assert again["reverted_event"] is None and len(api.events()) == events_before
    assert {e["status"] for e in again["entities"]} <= {"unchanged", "conflict", "skipped"}

    for kind, code in (("task", "B"), ("task", "C"), ("task", "D"), ("sprint", "S1")):
        now, then = state(api, kind, code), state(api, kind, code, at=before_session)
        if code == "C":
            now.pop("priority"), then.pop("priority")
        assert now == then, (kind, code)
    validation = integrity.validate_all(app.extensions["orchestration"].read_uow())
    assert validation["problems"] == []

    refused = api.post("/events", json={"type": "orchestration.session.reverted", "session_key": KEY})
    assert refused.status_code == 422
    text = app.test_cli_runner().invoke(args=["orchestration", "session-report", KEY])
    assert text.exit_code == 0 and "task C (3 events): priority 'P2' → 'P1'; title 'Task C' → 'C renamed'" in text.output
    dry = app.test_cli_runner().invoke(args=["orchestration", "revert-session", KEY])
    assert dry.exit_code == 0 and "C.priority: now 'P3'" in dry.output
