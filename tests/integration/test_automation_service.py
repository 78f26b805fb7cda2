"""The automation service driven directly: races and guards a worker cannot be made to show on cue.

The real-worker tests live in tests/integration/automation/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError

from app.domain.rule_actions import RaiseSignal
from app.services import automation, rule_registry
from app.store.tables import OutboxEntry, Rule
from tests.support import FLAG_SPRINT_RULE, Api, evaluate_beside_a_writer_holding_the_sprint

calls = {"n": 0}


def flaky_once(event: Any, params: Any, facts: Any) -> list[Any]:
    calls["n"] += 1
    if calls["n"] == 1:
        raise OperationalError("SELECT 1", {}, Exception("database is busy"))
    return [RaiseSignal("notification", "orchestration.notification.created", "P2", {"why": "flaky"})]


@pytest.fixture
def flaky_rule(runtime: Any) -> Iterator[None]:
    calls["n"] = 0
    rule_registry.register_rule({"type": "custom.flaky"}, flaky_once, name="test_flaky_once")
    with runtime.uow() as uow:  # its row exists before the trigger is appended, as a worker seeds it at start
        rule_registry.ensure_rules(uow, runtime.clock)
        uow.commit()
    yield
    rule_registry._code_rules.pop("test_flaky_once", None)
    rule_registry._actions.pop("code:test_flaky_once", None)
    with runtime.uow() as uow:
        uow.session.execute(delete(Rule).where(Rule.name == "test_flaky_once"))
        uow.commit()


def evaluate(runtime: Any, event_id: int) -> None:
    automation.evaluate_event(event_id, runtime.uow(), runtime.clock, depth_limit=5, final=False)


def test_a_late_failed_attempt_never_overwrites_the_run_a_duplicate_delivery_completed(
        api: Api, runtime: Any, flaky_rule: None, monkeypatch: pytest.MonkeyPatch) -> None:
    api.create_task("T-F")
    event_id = api.post("/events", json={"type": "custom.flaky", "entity_type": "task", "entity_code": "T-F"}
                        ).get_json()["id"]
    record_failure = automation._record_failed_attempt

    def duplicate_delivery_first(uow: Any, rule_id: int, ev: int, exc: BaseException, clock: Any) -> None:
        evaluate(runtime, ev)  # the sweep's re-publish lands between the rollback and the bookkeeping
        record_failure(uow, rule_id, ev, exc, clock)

    monkeypatch.setattr(automation, "_record_failed_attempt", duplicate_delivery_first)
    with pytest.raises(OperationalError):
        evaluate(runtime, event_id)
    monkeypatch.undo()
    evaluate(runtime, event_id)  # the first delivery's Celery retry

    [run] = api.get("/rules/runs", query_string={"event_id": event_id}).get_json()["items"]
    assert run["status"] == "succeeded" and len(run["effects"]) == 1
    assert len(api.events(type="orchestration.notification.created")) == 1
    with runtime.read_uow() as uow:
        assert list(uow.session.scalars(select(OutboxEntry.event_id).where(OutboxEntry.event_id == event_id))) == []


def drain(runtime: Any) -> None:
    with runtime.read_uow() as uow:
        pending = list(uow.session.scalars(select(OutboxEntry.event_id).order_by(OutboxEntry.event_id)))
    automation.evaluate_events(pending, runtime.uow(), runtime.clock, depth_limit=5, final=False)


def test_a_rule_cannot_give_a_sprint_a_task_only_status(api: Api, runtime: Any) -> None:
    rule = {"name": "sprints_blocked", "trigger": {"type": "orchestration.sprint.created"},
            "action": {"name": "set_status", "params": {"status": "blocked"}}}
    assert api.post("/rules", json=rule).status_code == 201
    api.create_sprint("S-BAD")
    drain(runtime)

    assert api.get("/sprints/S-BAD").get_json()["status"] == "planned"
    runs = api.get("/rules/runs", query_string={"status": "dead"}).get_json()["items"]
    assert [r["rule_name"] for r in runs] == ["sprints_blocked"] and "status" in runs[0]["error"]
    assert len(api.events(type="orchestration.automation.rule_failed")) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_rules_of_one_event_never_wait_for_a_row_after_appending(
        api: Api, runtime: Any) -> None:
    """notify_blocked_task appends first (in flight until COMMIT); a user rule then locks the sprint.

    Meanwhile a writer holds that sprint row, then appends and commits, as
    every API change does. Were both rules in one transaction, the first
    one's events would hold the log's visible bound down while the second
    waits for the row; applied one transaction per rule, the writer goes first
    and both rules apply.
    """
    assert api.post("/rules", json=FLAG_SPRINT_RULE).status_code == 201
    api.create_sprint("S-LOCK")
    api.create_task("T-LOCK", "S-LOCK")
    drain(runtime)
    api.update_task("T-LOCK", status="blocked")
    [changed] = api.events(entity_code="T-LOCK", type="orchestration.task.status_changed")

    failures = evaluate_beside_a_writer_holding_the_sprint(runtime, "S-LOCK", lambda: evaluate(runtime, changed["id"]))

    assert failures == []
    assert api.get("/sprints/S-LOCK").get_json()["title"] == "has a blocked task"
    assert len(api.events(type="orchestration.notification.created")) == 1
