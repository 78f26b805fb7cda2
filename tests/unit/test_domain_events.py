"""Granular events, hashing and time parsing: the pure rules behind the log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.domain import events
from app.domain.entities import check_status_change
from app.domain.errors import Conflict, Invalid
from app.domain.fold import fold
from app.domain.hashing import canonical_json, event_hash
from app.domain.paging import decode_cursor, encode_cursor
from app.domain.timeparse import parse_age, parse_instant

NOW = datetime(2026, 11, 28, 17, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("before", "after", "types"),
    [
        ({"status": "pending"}, {"status": "in_progress"}, ["status_changed"]),
        ({"status": "pending"}, {"status": "blocked"}, ["status_changed", "blocked"]),
        ({"assignee": None}, {"assignee": "agent:x"}, ["assigned"]),
        ({"priority": "P2"}, {"priority": "P0"}, ["priority_changed"]),
        ({"progress": 0}, {"progress": 5}, ["progress_updated"]),
        ({"title": "a", "metadata": {}}, {"title": "b", "metadata": {"x": 1}}, ["updated"]),
        ({"title": "a"}, {"title": "a"}, []),
    ],
)
def test_task_changes_map_to_granular_event_types(before: dict, after: dict, types: list[str]) -> None:
    planned = events.granular_events("task", before, after)
    assert [p.type.rsplit(".", 1)[1] for p in planned] == types


def test_sprint_metadata_has_its_own_event_and_title_goes_to_updated() -> None:
    planned = events.granular_events("sprint", {"metadata": {}, "title": "a"}, {"metadata": {"k": 1}, "title": "b"})
    assert [p.type for p in planned] == ["orchestration.sprint.metadata_updated", "orchestration.sprint.updated"]


def test_cancelled_is_final() -> None:
    check_status_change("task", "blocked", "cancelled")
    with pytest.raises(Conflict):
        check_status_change("task", "cancelled", "pending")


def test_external_types_are_session_context_and_custom_only() -> None:
    assert events.is_external_type("custom.deploy")
    assert events.is_external_type("orchestration.context.assembled")
    assert not events.is_external_type("orchestration.task.created")
    assert not events.is_external_type("custom.")


def test_the_hash_covers_content_and_the_previous_hash() -> None:
    envelope = {"event_id": "e", "type": "t", "changes": {"a": {"before": 1, "after": 2}}, "prev_hash": None}
    first = event_hash(envelope)
    assert first != event_hash({**envelope, "changes": {"a": {"before": 1, "after": 3}}})
    assert first != event_hash({**envelope, "prev_hash": "0" * 64})
    assert first == event_hash({**envelope, "id": 99, "hash": "x", "archived_at": "later"})
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_fold_starts_at_created_applies_afters_and_flags_deletion() -> None:
    stream = [
        {"type": "orchestration.task.created", "sequence": 1, "changes": {"title": {"before": None, "after": "a"}}},
        {"type": "orchestration.task.validation_failed", "sequence": None, "changes": {}},
        {"type": "orchestration.task.updated", "sequence": 2, "changes": {"title": {"before": "a", "after": "b"}}},
        {"type": "orchestration.task.deleted", "sequence": 3, "changes": {"title": {"before": "b", "after": None}}},
    ]
    assert fold(stream[:3]) == {"title": "b", "deleted": False}
    assert fold(stream) == {"title": "b", "deleted": True}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T17:00:00.123456+00:00", datetime(2026, 11, 28, 17, 0, 0, 123456, tzinfo=timezone.utc)),
        ("2026-11-28T18:00:00+01:00", datetime(2026, 11, 28, 17, 0, tzinfo=timezone.utc)),
        ("2026-11-28", datetime(2026, 11, 28, tzinfo=timezone.utc)),
        ("90d", NOW - timedelta(days=90)),
        ("12h", NOW - timedelta(hours=12)),
        ("0d", NOW),
    ],
)
def test_time_bounds_accept_iso_dates_and_ages(text: str, expected: datetime) -> None:
    assert parse_instant(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "90", "-1d", "5y", "99999999999999d", "3000000d",
                                  "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0999-12-31"])
def test_unparseable_time_bounds_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_instant(text, NOW)


def test_ages_are_multiples_of_24_hours() -> None:
    assert parse_age("2d") == timedelta(hours=48)


def test_cursors_round_trip_and_foreign_ones_are_invalid() -> None:
    assert decode_cursor(encode_cursor(1042)) == 1042
    assert decode_cursor(None) == 0
    with pytest.raises(Invalid):
        decode_cursor("not-a-cursor")
    with pytest.raises(Invalid):
        decode_cursor("djE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5")  # v1:99999999999999999999999


@pytest.mark.parametrize(
    ("entity_type", "state", "field"),
    [
        ("sprint", {"status": "blocked", "priority": "P1"}, "status"),
        ("task", {"status": "active", "priority": "P1", "progress": 0}, "status"),
        ("task", {"status": "pending", "priority": "P9", "progress": 0}, "priority"),
        ("task", {"status": "pending", "priority": "P1", "progress": 101}, "progress"),
    ],
)
def test_entity_values_stay_in_their_vocabulary_whoever_writes_them(entity_type: str, state: dict, field: str) -> None:
    from app.domain.entities import check_values

    with pytest.raises(Invalid) as refused:
        check_values(entity_type, state)
    assert refused.value.errors is not None and field in refused.value.errors
    check_values("sprint", {"status": "active", "priority": "P0"})


def test_a_page_fetched_one_row_long_says_where_to_continue() -> None:
    from app.domain.paging import page_body, trim_page

    assert trim_page([1, 2, 3], 2, lambda r: r * 10) == ([1, 2], 20)
    assert trim_page([1, 2], 2, lambda r: r * 10) == ([1, 2], None)
    assert trim_page([], 2, lambda r: r) == ([], None)
    assert page_body(["a"], None) == {"items": ["a"], "next": None}
    assert decode_cursor(page_body(["a"], 7)["next"]) == 7
