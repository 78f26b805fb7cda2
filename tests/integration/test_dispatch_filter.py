"""Append-time dispatch: only events some enabled rule could fire on get an outbox row (and a message)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.store.tables import OutboxEntry
from tests.support import Api


def queued(runtime: Any) -> set[int]:
    with runtime.engine.connect() as connection:
        return set(connection.scalars(select(OutboxEntry.event_id)))


def new_events(api: Api, code: str, seen: set[int]) -> dict[str, int]:
    return {e["type"]: e["id"] for e in api.events(entity_code=code) if e["id"] not in seen}


def test_a_progress_update_gets_no_outbox_row_and_a_status_change_a_rule_watches_does(
        api: Api, runtime: Any) -> None:
    assert api.get("/rules").status_code == 200  # the built-in rules are seeded
    api.create_task("T-FILTER")
    before, seen = queued(runtime), {e["id"] for e in api.events()}

    api.update_task("T-FILTER", progress=40)
    assert queued(runtime) == before

    api.update_task("T-FILTER", status="blocked")
    written = new_events(api, "T-FILTER", seen)
    assert queued(runtime) - before == {written["orchestration.task.status_changed"]}
    assert written["orchestration.task.blocked"] not in queued(runtime)


def test_a_rule_created_or_disabled_after_the_cache_was_filled_decides_the_very_next_event(
        api: Api, runtime: Any) -> None:
    assert api.get("/rules").status_code == 200
    api.create_task("T-CACHE")
    api.update_task("T-CACHE", progress=1)  # fills this process's rule index
    before = queued(runtime)

    rule = api.post("/rules", json={"name": "watch_progress", "trigger": {
        "type": "orchestration.task.progress_updated", "conditions": [
            {"path": "changes.progress.after", "op": "gt", "value": 50}]},
        "action": {"name": "set_field", "params": {"field": "assignee", "value": "agent:reviewer"}}})
    assert rule.status_code == 201, rule.get_json()
    seen = {e["id"] for e in api.events()}
    api.update_task("T-CACHE", progress=20)  # the condition does not hold: still nothing to evaluate
    api.update_task("T-CACHE", progress=60)
    written = [e["id"] for e in api.events(entity_code="T-CACHE") if e["id"] not in seen]
    assert queued(runtime) - before == {written[-1]}

    assert api.patch(f"/rules/{rule.get_json()['id']}", json={"enabled": False}).status_code == 200
    settled = queued(runtime)
    api.update_task("T-CACHE", progress=70)
    assert queued(runtime) == settled


def test_events_are_kept_for_evaluation_before_any_worker_seeded_the_built_in_rules(
        api: Api, runtime: Any) -> None:
    with runtime.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM automation_rules")
    from app.services import rule_registry

    rule_registry._present.clear()  # this process saw them seeded; forget it as a fresh one would
    api.create_task("T-EARLY")
    api.update_task("T-EARLY", progress=5)
    early = {e["id"] for e in api.events(entity_code="T-EARLY")}
    assert early <= queued(runtime)
    assert api.get("/rules").status_code == 200  # seeds them again for the tests that follow


def test_a_replay_repair_starts_rules_only_when_asked(api: Api, runtime: Any) -> None:
    assert api.get("/rules").status_code == 200
    for code, trigger_rules in (("T-REPAIR-0", False), ("T-REPAIR-1", True)):
        task = api.create_task(code)
        api.update_task(code, status="blocked")  # the log says blocked; a rule watches that change
        with runtime.engine.begin() as connection:
            connection.exec_driver_sql(f"UPDATE tasks SET status = 'pending' WHERE task_code = '{code}'")
        before = queued(runtime)

        response = api.post("/events/replay", json={"correlation_id": task["correlation_id"], "dry_run": False,
                                                    "trigger_rules": trigger_rules})

        assert response.status_code == 200, response.get_json()
        [repair] = response.get_json()["repairs"]
        changed = [e["id"] for e in repair["events"] if e["type"] == "orchestration.task.status_changed"]
        assert api.get(f"/tasks/{code}").get_json()["status"] == "blocked"
        assert queued(runtime) - before == (set(changed) if trigger_rules else set())
