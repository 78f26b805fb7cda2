"""Which events could start a rule (append-time dispatch): never a false negative."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.interest import may_trigger
from app.domain.rules import parse_trigger

COMPLETED = parse_trigger({"type": "orchestration.task.*", "conditions": [
    {"path": "status", "op": "changed_to", "value": "completed"}]})
P0 = parse_trigger({"type": "orchestration.task.priority_changed", "conditions": [
    {"path": "changes.priority.after", "op": "eq", "value": "P0"}]})
UNKNOWN_PATH = parse_trigger({"type": "orchestration.task.*", "conditions": [
    {"path": "state.status", "op": "eq", "value": "blocked"}]})


def event(event_type: str, changes: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "changes": changes, "data": {}, "priority": "P2"}


@pytest.mark.parametrize(("triggers", "envelope", "expected"), [
    ((COMPLETED,), event("orchestration.task.progress_updated", {"progress": {"before": 1, "after": 2}}), False),
    ((COMPLETED,), event("orchestration.task.status_changed", {"status": {"before": "pending",
                                                                          "after": "completed"}}), True),
    ((COMPLETED,), event("orchestration.sprint.status_changed", {"status": {"before": "active",
                                                                            "after": "completed"}}), False),
    ((P0,), event("orchestration.task.priority_changed", {"priority": {"before": "P2", "after": "P0"}}), True),
    ((P0,), event("orchestration.task.priority_changed", {"priority": {"before": "P0", "after": "P1"}}), False),
    ((COMPLETED, P0), event("orchestration.task.priority_changed", {"priority": {"before": "P1",
                                                                                 "after": "P0"}}), True),
    ((UNKNOWN_PATH,), event("orchestration.task.progress_updated", {}), True),
    ((), event("orchestration.task.status_changed", {}), False),
])
def test_an_event_is_kept_exactly_when_a_trigger_could_match_it(triggers: tuple[Any, ...],
                                                                 envelope: dict[str, Any], expected: bool) -> None:
    assert may_trigger(triggers, envelope) is expected
