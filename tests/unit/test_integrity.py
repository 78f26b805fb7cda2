"""Chain integrity, judged on envelopes alone: each kind of damage is named where it is."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.hashing import event_hash
from app.domain.integrity import Head, check_loose, check_stream

ENTITY = {"type": "task", "id": 7, "code": "T-7"}
START = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)


def chain(length: int, *, first_id: int = 100) -> list[dict[str, Any]]:
    """A valid stream: created, then updates, one second apart, each hashed onto the previous."""
    events: list[dict[str, Any]] = []
    prev_hash = None
    for sequence in range(1, length + 1):
        event = {
            "id": first_id + sequence,
            "event_id": f"00000000-0000-0000-0000-{sequence:012d}",
            "type": "orchestration.task.created" if sequence == 1 else "orchestration.task.updated",
            "entity": ENTITY,
            "sequence": sequence,
            "actor": "user:alice",
            "timestamp": (START + timedelta(seconds=sequence)).isoformat(timespec="microseconds"),
            "correlation_id": "c0ffee00-0000-0000-0000-000000000000",
            "correlation_chain": [],
            "causation_id": None,
            "session_key": None,
            "priority": "P2",
            "changes": {"title": {"before": f"t{sequence - 1}", "after": f"t{sequence}"}},
            "data": {},
            "prev_hash": prev_hash,
        }
        event["hash"] = prev_hash = event_hash(event)
        events.append(event)
    return events


def kinds_at(problems: list[Any]) -> list[tuple[str, int | None]]:
    return [(p.kind, p.sequence) for p in problems]


def test_an_untouched_stream_has_no_problem_even_when_read_out_of_order() -> None:
    events = chain(5)
    assert check_stream(ENTITY, list(reversed(events)), head=Head(5, events[-1]["hash"])) == []


def test_an_edited_event_is_a_hash_mismatch_at_its_sequence_only() -> None:
    events = chain(5)
    events[2] = {**events[2], "data": {"edited": True}}
    problems = check_stream(ENTITY, events)
    assert kinds_at(problems) == [("hash_mismatch", 3)]
    assert problems[0].event_id == events[2]["event_id"]
    assert "content" in problems[0].detail


def test_a_removed_event_is_a_gap_where_it_was_and_nothing_else() -> None:
    events = chain(5)
    del events[1]
    problems = check_stream(ENTITY, events)
    assert kinds_at(problems) == [("gap", 2)]
    assert problems[0].event_id is None


def test_several_removed_events_make_one_gap_naming_the_span() -> None:
    events = chain(6)
    del events[1:4]
    [problem] = check_stream(ENTITY, events)
    assert (problem.kind, problem.sequence, problem.detail) == ("gap", 2, "sequence 2..4 is missing")


def test_a_removed_last_event_is_a_gap_only_the_entity_row_can_reveal() -> None:
    events = chain(4)
    head = Head(4, events[-1]["hash"])
    assert check_stream(ENTITY, events[:-1]) == []
    assert kinds_at(check_stream(ENTITY, events[:-1], head=head)) == [("gap", 4)]


def test_a_row_whose_last_hash_differs_from_its_last_event_is_a_hash_mismatch() -> None:
    events = chain(3)
    assert kinds_at(check_stream(ENTITY, events, head=Head(3, "0" * 64))) == [("hash_mismatch", 3)]


def test_two_swapped_sequences_are_out_of_order_and_fail_their_hashes_at_both_places() -> None:
    events = chain(5)
    events[1], events[2] = {**events[1], "sequence": 3}, {**events[2], "sequence": 2}
    problems = check_stream(ENTITY, events)
    assert {("out_of_order", 2), ("out_of_order", 3), ("hash_mismatch", 2), ("hash_mismatch", 3)} <= set(
        kinds_at(problems))
    assert {p.sequence for p in problems} <= {2, 3, 4}


def test_a_swap_far_apart_is_out_of_order_exactly_at_the_two_sequences() -> None:
    events = chain(6)
    events[1], events[4] = {**events[1], "sequence": 5}, {**events[4], "sequence": 2}
    out_of_order = [p.sequence for p in check_stream(ENTITY, events) if p.kind == "out_of_order"]
    assert out_of_order == [2, 5]


def test_a_timestamp_that_goes_back_is_out_of_order() -> None:
    events = chain(3)
    events[2] = {**events[2], "timestamp": START.isoformat(timespec="microseconds")}
    events[2]["hash"] = event_hash({**events[2]})
    assert kinds_at(check_stream(ENTITY, events)) == [("out_of_order", 3)]


def test_events_at_the_same_instant_are_in_order() -> None:
    events = chain(3)
    same = events[0]["timestamp"]
    rebuilt, prev_hash = [], None
    for event in events:
        event = {**event, "timestamp": same, "prev_hash": prev_hash}
        event["hash"] = prev_hash = event_hash(event)
        rebuilt.append(event)
    assert check_stream(ENTITY, rebuilt) == []


def test_a_repeated_sequence_is_a_duplicate() -> None:
    events = chain(3)
    copy = {**events[1], "id": 999, "event_id": "dup"}
    problems = check_stream(ENTITY, [*events, copy])
    assert ("duplicate", 2) in kinds_at(problems)
    assert [p for p in problems if p.kind == "duplicate"][0].event_id == "dup"


def test_a_stream_without_its_created_event_and_without_an_anchor_is_missing_created() -> None:
    events = chain(4)[2:]
    assert kinds_at(check_stream(ENTITY, events)) == [("missing_created", 1)]


def test_a_purge_anchor_right_before_the_first_event_present_replaces_the_purged_prefix() -> None:
    events = chain(6)
    anchors = {3: events[2]["hash"]}
    assert check_stream(ENTITY, events[3:], anchors=anchors, head=Head(6, events[-1]["hash"])) == []


def test_a_purge_anchor_bridges_a_hole_in_the_middle_of_a_stream() -> None:
    events = chain(6)
    kept = [events[0], *events[3:]]  # sequence 1 was kept (P0); 2..3 were archived and purged
    assert check_stream(ENTITY, kept, anchors={3: events[2]["hash"]}, head=Head(6, events[-1]["hash"])) == []
    assert kinds_at(check_stream(ENTITY, kept)) == [("gap", 2)]
    assert kinds_at(check_stream(ENTITY, kept, anchors={2: events[1]["hash"]})) == [("gap", 2)]


@pytest.mark.parametrize(("anchors", "expected"), [
    ({2: "whatever"}, [("missing_created", 1)]),
    ({3: "f" * 64}, [("hash_mismatch", 4)]),
])
def test_an_anchor_that_does_not_fit_does_not_vouch_for_the_stream(anchors: dict[int, str],
                                                                    expected: list[Any]) -> None:
    assert kinds_at(check_stream(ENTITY, chain(6)[3:], anchors=anchors)) == expected


def test_a_first_event_of_the_wrong_type_is_missing_created() -> None:
    events = chain(2)
    events[0] = {**events[0], "type": "orchestration.task.updated"}
    events[0]["hash"] = event_hash(events[0])
    events[1] = {**events[1], "prev_hash": events[0]["hash"]}
    events[1]["hash"] = event_hash(events[1])
    assert kinds_at(check_stream(ENTITY, events)) == [("missing_created", 1)]


def test_an_entity_whose_events_are_all_gone_is_missing_created() -> None:
    assert kinds_at(check_stream(ENTITY, [], head=Head(3, "x"))) == [("missing_created", 1)]
    assert check_stream(ENTITY, [], head=Head(0, None)) == []


def test_events_outside_a_stream_are_checked_against_their_own_hash() -> None:
    loose = {**chain(1)[0], "sequence": None, "type": "orchestration.task.validation_failed"}
    loose["hash"] = event_hash(loose)
    assert check_loose([loose]) == []
    [problem] = check_loose([{**loose, "data": {"status": 200}}])
    assert (problem.kind, problem.sequence, problem.event_id) == ("hash_mismatch", None, loose["event_id"])


def test_a_problem_renders_as_the_contract_names_it() -> None:
    [problem] = check_stream(ENTITY, chain(3)[1:])
    assert problem.as_dict() == {
        "kind": "missing_created", "entity": ENTITY, "sequence": 1,
        "detail": problem.detail, "event_id": chain(3)[1]["event_id"],
    }
    assert dataclasses.is_dataclass(problem)
