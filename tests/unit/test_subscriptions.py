"""Channels and filters of the live stream, decided on the envelope alone."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from app.domain.errors import Invalid
from app.domain.event_filter import EventFilter
from app.domain.subscriptions import Channel, Subscription, parse_channel, type_matches


def event(**over: Any) -> dict[str, Any]:
    base = {"id": 1, "type": "orchestration.task.created", "entity": {"type": "task", "id": 7, "code": "TASK-001"},
            "actor": "user:a", "session_key": None, "correlation_id": "c-1", "correlation_chain": ["w-1"],
            "timestamp": "2026-11-28T17:00:00.000000+00:00", "archived_at": None}
    return {**base, **over}


@pytest.mark.parametrize(("text", "channel"), [
    ("orchestration.task.TASK-001", Channel("task", "TASK-001")),
    ("orchestration.task.7", Channel("task", "7")),
    ("orchestration.task.*", Channel("task", None)),
    ("orchestration.*", Channel(None, None)),
])
def test_channels_parse_as_the_seed_names_them(text: str, channel: Channel) -> None:
    assert parse_channel(text) == channel


@pytest.mark.parametrize("text", ["task.TASK-001", "orchestration.task", "orchestration.Task.X", "orchestration.task.a b"])
def test_anything_else_is_not_a_channel(text: str) -> None:
    with pytest.raises(Invalid):
        parse_channel(text)


@pytest.mark.parametrize(("channel", "matches"), [
    ("orchestration.task.TASK-001", True), ("orchestration.task.7", True), ("orchestration.task.8", False),
    ("orchestration.task.*", True), ("orchestration.sprint.*", False), ("orchestration.*", True),
    ("orchestration.sprint.TASK-001", False),
])
def test_a_channel_names_an_entity_by_code_or_id(channel: str, matches: bool) -> None:
    assert Subscription(channels=(parse_channel(channel),)).matches(event()) is matches


def test_channels_are_alternatives_and_filters_all_apply() -> None:
    either = Subscription(channels=(parse_channel("orchestration.sprint.*"), parse_channel("orchestration.task.7")))
    assert either.matches(event())
    assert not Subscription(channels=either.channels, actor="user:b").matches(event())
    assert Subscription(type="orchestration.task.*", actor="user:a", correlation_id="w-1").matches(event())
    assert Subscription(correlation_id="c-1").matches(event())
    assert not Subscription(correlation_id="other").matches(event())
    assert not Subscription(session_key="s").matches(event())
    assert not Subscription().matches(event(archived_at="2026-01-01T00:00:00+00:00"))


def test_time_bounds_are_from_inclusive_to_exclusive() -> None:
    at = datetime(2026, 11, 28, 17, tzinfo=timezone.utc)
    assert Subscription(start=at).matches(event())
    assert not Subscription(end=at).matches(event())


def test_type_patterns_are_exact_or_a_prefix() -> None:
    assert type_matches("orchestration.task.*", "orchestration.task.created")
    assert not type_matches("orchestration.task.*", "orchestration.tasks.created")
    assert not type_matches("orchestration.task", "orchestration.task.created")


def test_a_subscription_is_an_event_filter_and_hands_the_log_only_what_the_log_can_apply() -> None:
    at = datetime(2026, 11, 28, tzinfo=timezone.utc)
    sub = Subscription(channels=(parse_channel("orchestration.task.*"),), correlation_id="c-1", type="orchestration.*",
                       actor_kind="user", start=at, include_archived=True)
    assert isinstance(sub, EventFilter)
    assert sub.log_filter() == EventFilter(type="orchestration.*", actor_kind="user", start=at, include_archived=True)
    assert type(sub.log_filter()) is EventFilter


@pytest.mark.parametrize(("flt", "matches"), [
    (EventFilter(), True), (EventFilter(type="orchestration.task.*"), True), (EventFilter(type="x.*"), False),
    (EventFilter(entity_type="sprint"), False), (EventFilter(entity_code="TASK-001"), True),
    (EventFilter(actor="user:b"), False), (EventFilter(actor_kind="agent"), False),
    (EventFilter(session_key="s"), False), (EventFilter(end=datetime(2026, 11, 28, 17, tzinfo=timezone.utc)), False),
])
def test_an_event_filter_decides_on_the_envelope_as_the_query_does(flt: EventFilter, matches: bool) -> None:
    assert flt.matches(event()) is matches
