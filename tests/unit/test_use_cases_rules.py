"""Rule planning, effects, undo and replay's repair, run as use cases over the in-memory unit of work."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.changes import ChangeContext
from app.domain.errors import Conflict, NotFound
from app.domain.events import NOTIFICATION_CREATED
from app.domain.fold import fold
from app.domain.rule_actions import ACTIONS, AppendEvent, RaiseSignal, StartSession, UpdateEntity
from app.services import repair, rule_effects, rule_facts, tracking
from app.services.integrity import ChainRead
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.test_use_cases_tracking import USER, Clock, sprint, task

RULE = ChangeContext(actor="automation:test", causation_depth=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def uow(clock: Clock) -> FakeUnitOfWork:
    """Sprint S1 (active) with T1 completed and T2 in progress."""
    fake = FakeUnitOfWork()
    tracking.create(tracking.SPRINT, sprint(status="active"), USER, fake, clock)
    tracking.create(tracking.TASK, task("T1", sprint_code="S1", status="completed"), USER, fake, clock)
    tracking.create(tracking.TASK, task("T2", sprint_code="S1", status="in_progress"), USER, fake, clock)
    return fake


def last_event(uow: FakeUnitOfWork) -> dict[str, Any]:
    return uow.log()[-1]


def facts(uow: FakeUnitOfWork, needs: frozenset[str]) -> Any:
    with uow:
        return rule_effects.gather_facts(uow, last_event(uow), needs, lock=True)  # type: ignore[arg-type]


def test_facts_of_a_task_event_hold_its_sprint_and_the_sprints_live_tasks(uow: FakeUnitOfWork) -> None:
    found = facts(uow, frozenset({"entity", "sprint"}))
    assert found.entity["task_code"] == "T2" and found.sprint["status"] == "active"
    assert found.sprint_tasks == ({"task_code": "T1", "status": "completed"},
                                  {"task_code": "T2", "status": "in_progress"})


def test_facts_leave_out_a_deleted_task(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.delete(tracking.TASK, "T1", USER, uow, clock)
    tracking.update(tracking.TASK, "T2", {"progress": 5}, USER, uow, clock)
    assert [t["task_code"] for t in facts(uow, frozenset({"sprint"})).sprint_tasks] == ["T2"]


def test_complete_sprint_plans_nothing_while_a_task_is_open(uow: FakeUnitOfWork) -> None:
    plan = ACTIONS["complete_sprint"].plan(last_event(uow), {}, facts(uow, frozenset({"sprint"})))
    assert plan == []


def test_completing_the_last_task_plans_and_applies_the_sprints_completion(uow: FakeUnitOfWork,
                                                                           clock: Clock) -> None:
    tracking.update(tracking.TASK, "T2", {"status": "completed"}, USER, uow, clock)
    [effect] = ACTIONS["complete_sprint"].plan(last_event(uow), {}, facts(uow, frozenset({"sprint"})))
    assert effect == UpdateEntity("sprint", "S1", {"status": {"before": "active", "after": "completed"}})
    with uow:
        [event] = rule_effects.apply_effects(uow, [effect], RULE, clock)  # type: ignore[arg-type]
        uow.commit()
    assert event.type == "orchestration.sprint.status_changed" and event.actor == "automation:test"
    assert tracking.get(tracking.SPRINT, "S1", uow)["status"] == "completed"


def test_effects_not_committed_leave_no_trace(uow: FakeUnitOfWork, clock: Clock) -> None:
    before = len(uow.log())
    with uow:
        rule_effects.apply_effects(uow, [UpdateEntity("task", "T2", {"status": {"before": "in_progress",  # type: ignore[arg-type]
                                                                                "after": "blocked"}})], RULE, clock)
    assert len(uow.log()) == before and tracking.get(tracking.TASK, "T2", uow)["status"] == "in_progress"


def test_a_raised_signal_is_a_one_event_stream_with_its_state_in_changes(uow: FakeUnitOfWork,
                                                                         clock: Clock) -> None:
    with uow:
        [event] = rule_effects.apply_effects(uow, [RaiseSignal("notification", NOTIFICATION_CREATED, "P1",  # type: ignore[arg-type]
                                                               {"why": "test"})], RULE, clock)
        uow.commit()
    assert event.entity_type == "notification" and event.sequence == 1 and event.priority == "P1"
    assert fold([uow.log("notification")[0]]) == {"kind": "notification", "data": {"why": "test"}, "deleted": False}


def test_an_effect_starting_a_session_files_it_under_the_new_key(uow: FakeUnitOfWork, clock: Clock) -> None:
    with uow:
        [event] = rule_effects.apply_effects(uow, [StartSession("agent:bot", "S1", None, "sprint active")],  # type: ignore[arg-type]
                                             RULE, clock)
        uow.commit()
    assert event.type == "orchestration.session.started" and event.data == {"reason": "sprint active"}
    assert event.session_key == event.entity_code and event.session_key.startswith("sess-")


def test_an_appended_event_needs_a_live_entity(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.delete(tracking.TASK, "T1", USER, uow, clock)
    with uow, pytest.raises(NotFound):
        rule_effects.apply_effects(uow, [AppendEvent("task", "T1", "custom.x")], RULE, clock)  # type: ignore[arg-type]
    with uow:
        [event] = rule_effects.apply_effects(uow, [AppendEvent("task", "T2", "custom.x", {"a": 1})], RULE, clock)  # type: ignore[arg-type]
    assert event.sequence == 2 and event.data == {"a": 1}


def test_undo_puts_the_changed_fields_back_with_compensating_events(uow: FakeUnitOfWork, clock: Clock) -> None:
    with uow:
        produced = rule_effects.apply_effects(uow, [UpdateEntity("task", "T2", {"status": {  # type: ignore[arg-type]
            "before": "in_progress", "after": "blocked"}})], RULE, clock)
        uow.commit()
    with uow:
        compensating = rule_effects.undo(uow, [rule_effects.summary(e) for e in produced],  # type: ignore[arg-type]
                                         ChangeContext(actor="user:ann"), clock)
        uow.commit()
    assert tracking.get(tracking.TASK, "T2", uow)["status"] == "in_progress"
    assert compensating[0].causation_id == produced[-1].event_id


def test_undo_refuses_when_the_entity_moved_on(uow: FakeUnitOfWork, clock: Clock) -> None:
    with uow:
        produced = rule_effects.apply_effects(uow, [UpdateEntity("task", "T2", {"progress": {  # type: ignore[arg-type]
            "before": 0, "after": 50}})], RULE, clock)
        uow.commit()
    tracking.update(tracking.TASK, "T2", {"title": "since"}, USER, uow, clock)
    with uow, pytest.raises(Conflict, match="changed since the run"):
        rule_effects.undo(uow, [rule_effects.summary(e) for e in produced], USER, clock)  # type: ignore[arg-type]


class LogStates:
    """``rule_facts.States`` over the fake's log: states folded as of an event id."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def state(self, entity_type: str, entity_id: int, upto_id: int) -> dict[str, Any] | None:
        return fold(e for e in self.uow.log(entity_type) if e["entity"]["id"] == entity_id and e["id"] <= upto_id)

    def entity_id(self, entity_type: str, code: str) -> int | None:
        return next((e["entity"]["id"] for e in self.uow.log(entity_type) if e["entity"]["code"] == code), None)

    def sprint_task_candidates(self, sprint_id: int, sprint_code: str, upto_id: int) -> list[int]:
        return sorted({e["entity"]["id"] for e in self.uow.log("task")})


def test_a_plan_as_of_an_event_ignores_what_happened_after_it(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.update(tracking.TASK, "T2", {"status": "completed"}, USER, uow, clock)
    completing = last_event(uow)
    tracking.update(tracking.TASK, "T1", {"status": "in_progress"}, USER, uow, clock)  # reopened later
    plan, found = rule_facts.plan_as_of(LogStates(uow), ACTIONS["complete_sprint"], {}, completing)
    assert [e.describe()["entity"] for e in plan] == [{"type": "sprint", "code": "S1"}]
    assert found.facts.sprint is not None and found.facts.sprint["status"] == "active"
    assert found.facts.sprint_tasks == ({"task_code": "T1", "status": "completed"},
                                        {"task_code": "T2", "status": "completed"})
    assert {kind for kind, _ in found.streams} == {"sprint", "task"} and len(found.streams) == 3


def test_a_plan_as_of_an_earlier_event_sees_the_open_task(uow: FakeUnitOfWork, clock: Clock) -> None:
    earlier = last_event(uow)
    tracking.update(tracking.TASK, "T2", {"status": "completed"}, USER, uow, clock)
    plan, _ = rule_facts.plan_as_of(LogStates(uow), ACTIONS["complete_sprint"], {}, earlier)
    assert plan == []


def drifted(uow: FakeUnitOfWork) -> tuple[tuple[str, int], dict[str, Any]]:
    """T2's row changed behind the service's back: its title differs from its log."""
    row = next(r for r in uow.rows("task") if r.task_code == "T2")
    row.title = "edited in the database"
    return ("task", row.id), fold(e for e in uow.log("task") if e["entity"]["id"] == row.id) or {}


def test_replay_sees_a_row_that_drifted_from_its_log(uow: FakeUnitOfWork) -> None:
    key, folded = drifted(uow)
    with uow:
        live = repair.live_state(uow, key)  # type: ignore[arg-type]
        found = repair.drift([{"entity": {"type": "task", "id": key[1]}, "matches_live": False,
                               "state": folded}], {key: live})
    assert repair.matches_live(live, folded, 1) is False
    assert found[0]["differences"] == {"title": {"live": "edited in the database", "log": "Task T2"}}


def test_a_row_at_another_version_than_the_fold_is_not_compared(uow: FakeUnitOfWork) -> None:
    key, folded = drifted(uow)
    with uow:
        assert repair.matches_live(repair.live_state(uow, key), folded, 2) is None  # type: ignore[arg-type]


def test_repair_sets_the_row_back_to_its_fold_with_granular_events(uow: FakeUnitOfWork, clock: Clock) -> None:
    key, folded = drifted(uow)
    read = ChainRead("corr")
    with uow:
        repairs = repair.repair(uow, read, [{"entity": {"type": "task", "id": key[1]}}], {key: (1, folded)},  # type: ignore[arg-type]
                                "corr", ChangeContext(actor="system:replay", trigger_rules=False), clock)
        uow.commit()
    [done] = repairs
    assert done["detail"] == "row set back to its events' fold"
    assert [e["type"] for e in done["events"]] == ["orchestration.task.updated"]
    assert done["events"][0]["data"] == {"reason": "replay_repair", "replayed_correlation_id": "corr"}
    assert tracking.get(tracking.TASK, "T2", uow)["title"] == "Task T2"
    assert all(done["events"][0]["id"] not in ids for ids in uow.dispatched)  # compensations start no rules


def test_repair_refuses_a_damaged_chain(uow: FakeUnitOfWork, clock: Clock) -> None:
    key, folded = drifted(uow)
    read = ChainRead("corr", problems=[object()])  # type: ignore[list-item]
    with uow, pytest.raises(Conflict, match="does not validate"):
        repair.repair(uow, read, [{"entity": {"type": "task", "id": key[1]}}], {key: (1, folded)}, "corr",  # type: ignore[arg-type]
                      USER, clock)
