"""The worker's batch (``automation_batch.evaluate_batch``) driven directly, on both databases.

One message's events and the other pending ones in one transaction; a
redelivery changes nothing; a poison event is isolated; and a batch that has
appended never waits long on a row a writer holds (PostgreSQL).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.services import automation, automation_batch
from app.store.tables import OutboxEntry
from tests.integration.test_worker_statements import counting
from tests.support import FLAG_SPRINT_RULE, Api, evaluate_beside_a_writer_holding_the_sprint

ALERT = "orchestration.alert.raised"


def pending(runtime: Any) -> list[int]:
    with runtime.read_uow() as uow:
        return list(uow.session.scalars(select(OutboxEntry.event_id).order_by(OutboxEntry.event_id)))


def batch(runtime: Any, event_ids: list[int]) -> dict[int, int]:
    return automation_batch.evaluate_batch(event_ids, runtime.uow(), runtime.clock, depth_limit=5, final=False,
                                           max_deliveries=3)


def p0_triggers(api: Api, runtime: Any, count: int) -> list[int]:
    """``count`` tasks raised to P0, each a pending trigger of ``alert_p0_task``; the creations drained."""
    for n in range(count):
        api.create_task(f"T-B{n}")
    batch(runtime, pending(runtime))
    assert pending(runtime) == []
    for n in range(count):
        api.update_task(f"T-B{n}", priority="P0")
    triggers = pending(runtime)
    assert len(triggers) == count
    return triggers


def alerts_by_trigger(api: Api) -> dict[str, int]:
    found: dict[str, int] = {}
    for alert in api.events(type=ALERT):
        found[alert["causation_id"]] = found.get(alert["causation_id"], 0) + 1
    return found


def test_one_message_takes_on_every_pending_event_a_transaction_per_max_effects(api: Api, runtime: Any) -> None:
    count = automation_batch.MAX_EFFECTS + 1
    triggers = p0_triggers(api, runtime, count)

    with counting(runtime.engine) as counted:
        assert batch(runtime, triggers[:1]) == {}

    assert pending(runtime) == []
    assert counted.transactions == 2
    assert sorted(alerts_by_trigger(api).values()) == [1] * count
    for trigger in triggers:
        runs = api.get("/rules/runs", query_string={"event_id": trigger}).get_json()["items"]
        assert [(r["rule_name"], r["status"]) for r in runs] == [("alert_p0_task", "succeeded")]


def test_a_batch_delivered_again_changes_nothing(api: Api, runtime: Any) -> None:
    triggers = p0_triggers(api, runtime, 3)
    batch(runtime, triggers)
    before = api.events(type=ALERT)

    assert batch(runtime, triggers) == {}
    assert automation_batch.evaluate_batch(triggers, runtime.uow(), runtime.clock, depth_limit=5, final=True,
                                           max_deliveries=3) == {}

    assert api.events(type=ALERT) == before and len(before) == 3


def test_a_poison_event_is_isolated_and_its_batch_mates_finish(api: Api, runtime: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    triggers = p0_triggers(api, runtime, 4)
    poison = triggers[1]
    real = automation.envelope

    def envelope_or_poison(event: Any) -> Any:
        if event.id == poison:
            raise ValueError("simulated: this event cannot be decoded")
        return real(event)

    monkeypatch.setattr(automation, "envelope", envelope_or_poison)

    assert batch(runtime, triggers) == {poison: 1}

    assert pending(runtime) == [poison]
    assert len(alerts_by_trigger(api)) == 3
    monkeypatch.undo()
    assert batch(runtime, [poison]) == {}
    assert pending(runtime) == [] and len(alerts_by_trigger(api)) == 4


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_batch_that_appended_never_waits_long_for_a_writers_row(api: Api, runtime: Any) -> None:
    """notify_blocked_task appends (in flight until COMMIT); flag_sprint wants the sprint a writer holds.

    The batch judges every rule (and locks its rows) before any effect
    appends, and once it has appended it waits for a row only a few
    milliseconds before committing early, so the log's visible bound is never
    held down behind a writer's row; the writer then appends and commits, and
    both rules apply.
    """
    assert api.post("/rules", json=FLAG_SPRINT_RULE).status_code == 201
    api.create_sprint("S-LOCK")
    api.create_task("T-LOCK", "S-LOCK")
    batch(runtime, pending(runtime))
    api.update_task("T-LOCK", status="blocked")
    [changed] = api.events(entity_code="T-LOCK", type="orchestration.task.status_changed")

    failures = evaluate_beside_a_writer_holding_the_sprint(runtime, "S-LOCK", lambda: batch(runtime, [changed["id"]]))

    assert failures == []
    assert api.get("/sprints/S-LOCK").get_json()["title"] == "has a blocked task"
    assert len(api.events(type="orchestration.notification.created")) == 1
    assert pending(runtime) == []
