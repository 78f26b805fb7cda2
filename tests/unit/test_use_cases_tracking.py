"""Tracking, sessions and external events, run as use cases over the in-memory unit of work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.changes import ChangeContext
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.fold import fold
from app.domain.history import public_state
from app.services import external_events, sessions, tracking
from tests.unit.fakes import FakeUnitOfWork

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
USER = ChangeContext(actor="user:ann")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def sprint(code: str = "S1", **fields: Any) -> dict[str, Any]:
    return {"sprint_code": code, "title": f"Sprint {code}", "status": "planned", "priority": "P2", "metadata": {},
            **fields}


def task(code: str = "T1", **fields: Any) -> dict[str, Any]:
    return {"task_code": code, "title": f"Task {code}", "description": None, "status": "pending", "priority": "P2",
            "progress": 0, "assignee": None, "metadata": {}, "sprint_code": None, **fields}


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def types(uow: FakeUnitOfWork, entity_type: str | None = None) -> list[str]:
    return [e["type"].removeprefix("orchestration.") for e in uow.log(entity_type)]


def test_creating_a_sprint_records_its_full_state_as_the_first_event(uow: FakeUnitOfWork, clock: Clock) -> None:
    body = tracking.create(tracking.SPRINT, sprint(status="active"), USER, uow, clock)
    [created] = uow.log("sprint")
    assert body["version"] == 1 and body["status"] == "active" and body["task_counts"]["pending"] == 0
    assert created["type"] == "orchestration.sprint.created" and created["sequence"] == 1
    assert created["changes"]["status"] == {"before": None, "after": "active"}
    assert created["actor"] == "user:ann" and created["prev_hash"] is None


def test_a_created_task_is_dispatched_after_commit(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.TASK, task(), USER, uow, clock)
    assert uow.dispatched == [[uow.log()[0]["id"]]]


def test_a_code_is_never_reused(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.TASK, task(), USER, uow, clock)
    tracking.delete(tracking.TASK, "T1", USER, uow, clock)
    with pytest.raises(Conflict, match="never reused"):
        tracking.create(tracking.TASK, task(), USER, uow, clock)


def test_a_task_in_an_unknown_sprint_is_invalid_and_leaves_nothing(uow: FakeUnitOfWork, clock: Clock) -> None:
    with pytest.raises(Invalid) as raised:
        tracking.create(tracking.TASK, task(sprint_code="S-NONE"), USER, uow, clock)
    assert raised.value.errors == {"sprint_code": ["unknown sprint 'S-NONE'"]}
    assert uow.log() == [] and list(uow.rows("task")) == []


def test_a_task_in_a_deleted_sprint_is_invalid(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.SPRINT, sprint(), USER, uow, clock)
    tracking.delete(tracking.SPRINT, "S1", USER, uow, clock)
    with pytest.raises(Invalid):
        tracking.create(tracking.TASK, task(sprint_code="S1"), USER, uow, clock)


def test_an_update_records_one_event_per_granular_change(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.TASK, task(), USER, uow, clock)
    body = tracking.update(tracking.TASK, "T1", {"status": "in_progress", "title": "renamed", "progress": 40},
                           USER, uow, clock)
    assert body["version"] == 4 and body["title"] == "renamed" and body["progress"] == 40
    assert types(uow) == ["task.created", "task.status_changed", "task.progress_updated", "task.updated"]
    assert uow.log()[3]["changes"] == {"title": {"before": "Task T1", "after": "renamed"}}


def test_an_update_that_changes_nothing_records_nothing_and_commits_nothing(uow: FakeUnitOfWork,
                                                                             clock: Clock) -> None:
    tracking.create(tracking.TASK, task(), USER, uow, clock)
    commits = uow.commits
    body = tracking.update(tracking.TASK, "T1", {"status": "pending"}, USER, uow, clock)
    assert body["version"] == 1 and len(uow.log()) == 1 and uow.commits == commits


def test_events_of_a_stream_are_hash_chained(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.TASK, task(), USER, uow, clock)
    tracking.update(tracking.TASK, "T1", {"status": "in_progress"}, USER, uow, clock)
    first, second = uow.log()
    assert second["prev_hash"] == first["hash"] and second["sequence"] == 2


def test_a_stale_expected_version_is_a_conflict_before_any_write(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.TASK, task(), USER, uow, clock)
    stale = ChangeContext(actor="user:ann", expected_version=7)
    with pytest.raises(Conflict, match="version mismatch"):
        tracking.update(tracking.TASK, "T1", {"status": "blocked"}, stale, uow, clock)
    assert tracking.get(tracking.TASK, "T1", uow)["status"] == "pending"


def test_cancelled_is_final(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.TASK, task(status="cancelled"), USER, uow, clock)
    with pytest.raises(Conflict, match="cancelled is final"):
        tracking.update(tracking.TASK, "T1", {"status": "pending"}, USER, uow, clock)


def test_a_sprint_cannot_take_a_task_only_status(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.SPRINT, sprint(), USER, uow, clock)
    with pytest.raises(Invalid, match="sprint status"):
        tracking.update(tracking.SPRINT, "S1", {"status": "blocked"}, USER, uow, clock)


def test_moving_a_task_between_sprints_updates_both_counts(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.SPRINT, sprint("S1"), USER, uow, clock)
    tracking.create(tracking.SPRINT, sprint("S2"), USER, uow, clock)
    tracking.create(tracking.TASK, task(sprint_code="S1"), USER, uow, clock)
    tracking.update(tracking.TASK, "T1", {"sprint_code": "S2"}, USER, uow, clock)
    assert tracking.get(tracking.SPRINT, "S1", uow)["task_counts"]["pending"] == 0
    assert tracking.get(tracking.SPRINT, "S2", uow)["task_counts"]["pending"] == 1


def test_a_deleted_task_is_gone_for_reads_but_its_history_stays(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.TASK, task(), USER, uow, clock)
    tracking.delete(tracking.TASK, "T1", USER, uow, clock)
    with pytest.raises(NotFound):
        tracking.get(tracking.TASK, "T1", uow)
    assert types(uow) == ["task.created", "task.deleted"]
    assert fold(uow.log("task"))["deleted"] is True  # type: ignore[index]


def test_list_page_is_keyset_paged_and_filtered(uow: FakeUnitOfWork, clock: Clock) -> None:
    for n in range(5):
        tracking.create(tracking.TASK, task(f"T{n}", priority="P0" if n % 2 else "P2"), USER, uow, clock)
    page, last = tracking.list_page(tracking.TASK, {"priority": "P2"}, 0, 2, uow)
    assert [t["task_code"] for t in page] == ["T0", "T2"] and last is not None
    rest, end = tracking.list_page(tracking.TASK, {"priority": "P2"}, last, 2, uow)
    assert [t["task_code"] for t in rest] == ["T4"] and end is None


def test_a_rejection_is_recorded_outside_the_stream_and_not_dispatched(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.TASK, task(), USER, uow, clock)
    tracking.record_rejection("task", "T1", 422, "bad", {"status": ["no"]}, USER, uow, clock)
    rejected = uow.log()[-1]
    assert rejected["type"] == "orchestration.task.validation_failed" and rejected["sequence"] is None
    assert tracking.get(tracking.TASK, "T1", uow)["version"] == 1 and len(uow.dispatched) == 1


def test_a_rejection_of_a_missing_entity_records_nothing(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.record_rejection("task", "T-NONE", 404, "missing", None, USER, uow, clock)
    assert uow.log() == []


def test_the_fold_of_a_task_stream_is_its_row(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.SPRINT, sprint(), USER, uow, clock)
    tracking.create(tracking.TASK, task(), USER, uow, clock)
    for patch in ({"status": "in_progress"}, {"sprint_code": "S1", "progress": 10}, {"metadata": {"k": 1}}):
        tracking.update(tracking.TASK, "T1", patch, USER, uow, clock)
    live = {k: v for k, v in tracking.get(tracking.TASK, "T1", uow).items() if k in public_state(fold(uow.log("task")) or {})}
    assert public_state(fold(uow.log("task")) or {}) == live | {"deleted": False}


def test_starting_a_session_files_its_event_under_its_own_key(uow: FakeUnitOfWork, clock: Clock) -> None:
    tracking.create(tracking.TASK, task(priority="P0"), USER, uow, clock)
    other = ChangeContext(actor="agent:a", session_key="someone-else")
    body = sessions.start({"agent_id": "agent:a", "session_key": "k1", "task_code": "T1"}, other, uow, clock)
    [started] = uow.log("session")
    assert body["status"] == "active" and body["task_code"] == "T1"
    assert started["session_key"] == "k1" and started["priority"] == "P0"


def test_a_session_key_is_taken_once(uow: FakeUnitOfWork, clock: Clock) -> None:
    sessions.start({"agent_id": "agent:a", "session_key": "k1"}, USER, uow, clock)
    with pytest.raises(Conflict, match="is taken"):
        sessions.start({"agent_id": "agent:b", "session_key": "k1"}, USER, uow, clock)


def test_a_session_on_an_unknown_task_is_invalid(uow: FakeUnitOfWork, clock: Clock) -> None:
    with pytest.raises(Invalid) as raised:
        sessions.start({"agent_id": "agent:a", "task_code": "T-NONE"}, USER, uow, clock)
    assert "task_code" in raised.value.errors and list(uow.rows("session")) == []


def test_ending_twice_is_a_conflict_and_resuming_reopens(uow: FakeUnitOfWork, clock: Clock) -> None:
    sessions.start({"agent_id": "agent:a", "session_key": "k1"}, USER, uow, clock)
    ended = sessions.end("k1", USER, uow, clock)
    with pytest.raises(Conflict, match="already ended"):
        sessions.end("k1", USER, uow, clock)
    resumed = sessions.resume("k1", USER, uow, clock)
    assert ended["status"] == "ended" and ended["ended_at"] is not None
    assert resumed["status"] == "active" and resumed["version"] == 3
    assert types(uow, "session") == ["session.started", "session.ended", "session.resumed"]


def test_check_open_refuses_a_missing_or_ended_session(uow: FakeUnitOfWork, clock: Clock) -> None:
    with pytest.raises(Invalid, match="names no session"):
        sessions.check_open("k1", uow)
    sessions.start({"agent_id": "agent:a", "session_key": "k1"}, USER, uow, clock)
    sessions.check_open("k1", uow)
    sessions.end("k1", USER, uow, clock)
    with pytest.raises(Invalid, match="ended session"):
        sessions.check_open("k1", uow)


def test_recorded_context_is_an_event_on_the_session_stream(uow: FakeUnitOfWork, clock: Clock) -> None:
    sessions.start({"agent_id": "agent:a", "session_key": "k1"}, USER, uow, clock)
    event = sessions.record_context("k1", {"tokens": 12}, USER, uow, clock)
    assert event["type"] == "orchestration.context.assembled" and event["sequence"] == 2
    assert event["data"] == {"tokens": 12} and event["session_key"] == "k1"


def test_an_external_event_with_a_repeated_event_id_is_answered_with_the_first(uow: FakeUnitOfWork,
                                                                               clock: Clock) -> None:
    tracking.create(tracking.TASK, task(), USER, uow, clock)
    body = {"type": "custom.ci.passed", "entity_type": "task", "entity_code": "T1", "data": {"run": 1},
            "event_id": "0b0b0b0b-0000-4000-8000-000000000001"}
    first, created = external_events.record(body, USER, uow, clock)
    again, created_again = external_events.record(body, USER, uow, clock)
    assert created and not created_again and again == first
    with pytest.raises(Conflict, match="different request"):
        external_events.record({**body, "data": {"run": 2}}, USER, uow, clock)


def test_an_external_event_on_a_missing_stream_is_invalid(uow: FakeUnitOfWork, clock: Clock) -> None:
    with pytest.raises(Invalid) as raised:
        external_events.record({"type": "custom.x", "entity_type": "task", "entity_code": "T-NONE"}, USER, uow,
                               clock)
    assert "entity_code" in raised.value.errors


def test_an_external_event_under_a_session_header_lands_on_the_session(uow: FakeUnitOfWork, clock: Clock) -> None:
    sessions.start({"agent_id": "agent:a", "session_key": "k1"}, USER, uow, clock)
    event, _ = external_events.record({"type": "custom.note"}, ChangeContext(actor="agent:a", session_key="k1"),
                                      uow, clock)
    assert event["entity"]["type"] == "session" and event["session_key"] == "k1" and event["sequence"] == 2
