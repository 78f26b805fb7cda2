"""A poison message (an event whose processing always fails) is dead-lettered and never stalls automation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.integration.automation.test_delivery import runs_of
from tests.integration.automation.workers import Worker
from tests.support import Api

MAX_DELIVERIES = 3  # ORCH_OUTBOX_MAX_DELIVERIES of the test workers (workers.worker_env)


def test_a_poison_event_ends_dead_with_rule_failed_after_bounded_deliveries_and_the_rest_flow(
        api: Api, settle: Callable[..., None], worker: Worker, runtime: Any) -> None:
    api.create_task("T-POISON")
    poison = api.post("/events", json={"type": "custom.test.poison", "entity_type": "task",
                                       "entity_code": "T-POISON", "data": {}}).get_json()
    api.create_task("T-AFTER", priority="P0")
    [after] = api.events(entity_code="T-AFTER", type="orchestration.task.created")
    runtime.dispatcher([poison["id"], after["id"]])  # one message with the poison first: the next must not wait

    settle(60)  # the outbox drains: the poison left it

    [run] = runs_of(api, event_id=poison["event_id"])
    assert (run["rule_name"], run["status"], run["attempts"]) == ("test_poison_target", "dead", MAX_DELIVERIES)
    assert "ValueError" in run["error"]
    [failed] = [e for e in api.events(type="orchestration.automation.rule_failed")
                if e["causation_id"] == poison["event_id"]]
    assert failed["data"]["attempts"] == MAX_DELIVERIES and failed["data"]["rule"] == "test_poison_target"
    assert worker.count(rf"evaluating event {poison['id']} failed") == MAX_DELIVERIES
    assert api.events(type="custom.test.never") == []
    alerts = [e for e in api.events(type="orchestration.alert.raised") if e["causation_id"] == after["event_id"]]
    assert len(alerts) == 1
    assert api.get(f"/events/correlation/{poison['correlation_id']}/validate").get_json()["valid"] is True
