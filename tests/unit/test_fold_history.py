"""Replaying a stream: every kind of stream opens at sequence 1; deletes keep the last fields."""

from __future__ import annotations

from typing import Any

from app.domain.fold import fold
from app.domain.history import differences, public_state, replay, state_at_event, states


def event(sequence: int | None, kind: str, changes: dict[str, Any], entity: str = "task") -> dict[str, Any]:
    return {"sequence": sequence, "type": f"orchestration.{entity}.{kind}", "changes": changes,
            "timestamp": f"2026-11-28T17:00:0{sequence or 0}.000000+00:00", "event_id": f"e{sequence}"}


CREATED = event(1, "created", {"title": {"before": None, "after": "a"}, "status": {"before": None, "after": "pending"}})
RETITLED = event(2, "updated", {"title": {"before": "a", "after": "b"}})
REJECTED = event(None, "validation_failed", {})
BLOCKED = event(3, "blocked", {})
DELETED = event(4, "deleted", {"title": {"before": "b", "after": None}, "status": {"before": "pending", "after": None}})


def test_replay_agrees_with_fold_on_sprint_and_task_streams() -> None:
    stream = [CREATED, RETITLED, REJECTED, BLOCKED, DELETED]
    assert replay(stream) == fold(stream) == {"title": "b", "status": "pending", "deleted": True}


def test_a_session_opens_with_started_the_first_event_of_its_stream() -> None:
    started = event(1, "started", {"status": {"before": None, "after": "active"}}, entity="session")
    ended = event(2, "ended", {"status": {"before": "active", "after": "ended"}}, entity="session")
    assert fold([started, ended]) == replay([started, ended]) == {"status": "ended", "deleted": False}
    assert fold([ended]) is None


def test_states_pairs_each_event_with_the_state_right_after_it() -> None:
    pairs = list(states([RETITLED], {"title": "a", "status": "pending", "deleted": False}))
    assert pairs == [(RETITLED, {"title": "b", "status": "pending", "deleted": False})]


def test_a_deleted_entity_keeps_its_last_fields_and_says_it_is_deleted() -> None:
    assert public_state(replay([CREATED, DELETED]) or {}) == {"title": "a", "status": "pending", "deleted": True}
    assert public_state({"title": "a"}) == {"title": "a", "deleted": False}


def test_the_state_at_an_event_carries_its_version_time_and_id() -> None:
    state = replay([CREATED, RETITLED]) or {}
    assert state_at_event(state, RETITLED) == {
        "title": "b", "status": "pending", "deleted": False,
        "version": 2, "as_of": RETITLED["timestamp"], "as_of_event_id": "e2",
    }


def test_differences_name_each_drifted_field_with_both_values() -> None:
    assert differences({"title": "x", "status": "pending"}, {"title": "a", "status": "pending"}) == {
        "title": {"live": "x", "log": "a"}
    }
    assert differences({"a": 1}, {"a": 1}) == {}
