"""Session forensics, pure: actor kinds, net changes, revert plans and report cursors."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from app.domain import forensics as fx
from app.domain.actors import actor_kind, by_actor_kind
from app.domain.errors import Invalid

T = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def ev(i: int, changes: dict[str, tuple[Any, Any]], kind: str = "updated", actor: str = "agent:a",
       **extra: Any) -> dict[str, Any]:
    return {"id": i, "event_id": f"e{i}", "type": f"orchestration.task.{kind}", "actor": actor, "timestamp": T,
            "sequence": i, "changes": {k: {"before": b, "after": a} for k, (b, a) in changes.items()}, **extra}


@pytest.mark.parametrize(("actor", "kind"), [("user:alice", "user"), ("agent:planner", "agent"),
                                             ("automation:rule", "automation"), ("service:ci", "other"),
                                             ("user", "other"), ("users:x", "other"), ("", "other")])
def test_an_actor_kind_is_its_known_prefix_before_the_colon(actor: str, kind: str) -> None:
    assert actor_kind(actor) == kind


def test_counts_by_actor_fold_into_counts_by_kind() -> None:
    assert by_actor_kind({"user:a": 2, "user:b": 1, "service:x": 4}) == {"other": 4, "user": 3}


def test_net_change_runs_from_before_the_first_change_to_after_the_last() -> None:
    found = fx.net_changes([ev(1, {"status": ("pending", "blocked")}), ev(2, {"title": ("a", "b")}),
                            ev(3, {"status": ("blocked", "completed")})])
    assert found == {"status": {"before": "pending", "after": "completed", "events": 2},
                     "title": {"before": "a", "after": "b", "events": 1}}


def test_a_revert_plan_restores_fields_and_leaves_those_changed_since_by_others() -> None:
    ours = [ev(1, {"status": ("pending", "blocked"), "title": ("a", "b")})]
    later = [ev(2, {"title": ("b", "c")}, actor="user:bob")]
    plan = fx.plan_entity(ours, later, {"status": "blocked", "title": "c"}, force=False)
    assert plan.patch == {"status": "pending"}
    assert [(c["field"], c["current"], c["target"]) for c in plan.conflicts] == [("title", "c", "a")]
    assert fx.plan_entity(ours, later, {"status": "blocked", "title": "c"}, force=True).patch == {
        "status": "pending", "title": "a"}


def test_a_field_already_back_at_its_value_needs_nothing_and_is_no_conflict() -> None:
    plan = fx.plan_entity([ev(1, {"status": ("pending", "blocked")})], [], {"status": "pending"}, force=False)
    assert plan.patch == {} and plan.conflicts == []


def test_created_and_deleted_entities_are_left_alone_with_a_reason() -> None:
    assert fx.plan_entity([ev(1, {"title": (None, "a")}, kind="created")], [], {"title": "a"}, force=True).skipped
    assert fx.plan_entity([ev(1, {"title": ("a", "b")})], [], None, force=True).skipped


def test_a_revert_s_compensations_and_what_they_set_off_are_pruned_from_the_causation_tree() -> None:
    tree = [ev(1, {}, causation_id="s"), ev(2, {}, causation_id="s", data={"reason": fx.REVERT_REASON,
                                                                           "session_key": "k"}),
            ev(3, {}, causation_id="e2"), ev(4, {}, causation_id="e1")]
    assert [e["id"] for e in fx.prune_compensations(tree, "k")] == [1, 4]
    assert [e["id"] for e in fx.prune_compensations(tree, "other")] == [1, 2, 3, 4]


def test_report_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    assert fx.decode_cursor(fx.encode_cursor("refused", 99, 7)) == ("refused", 99, 7)
    assert fx.decode_cursor(None) is None
    for bad in ("nonsense", fx.encode_cursor("everything", 1, 1), "djE6MTI"):
        with pytest.raises(Invalid):
            fx.decode_cursor(bad)
