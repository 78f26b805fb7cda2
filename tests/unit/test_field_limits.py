"""Field limits are declared once: the API's schemas, rule actions and the entity check agree on every bound."""

from __future__ import annotations

from typing import Any

import pytest

from app.api.schemas import SessionStart, TaskCreate, TaskPatch
from app.domain import field_limits as limits
from app.domain.entities import check_values
from app.domain.errors import Invalid
from app.domain.rule_actions import ACTIONS, parse_action


def _schema_accepts(name: str, value: Any) -> bool:
    return name not in TaskPatch().validate({name: value})


def _rule_accepts(name: str, value: Any) -> bool:
    try:
        parse_action({"name": "set_field", "params": {"field": name, "value": value}}, ACTIONS)
    except Invalid:
        return False
    return True


EDGES = [
    ("title", "x" * limits.TITLE.max, True), ("title", "x" * (limits.TITLE.max + 1), False), ("title", "", False),
    ("description", "", True), ("description", "x" * limits.DESCRIPTION.max, True),
    ("description", "x" * (limits.DESCRIPTION.max + 1), False),
    ("assignee", None, True), ("assignee", "a" * limits.ASSIGNEE.max, True),
    ("assignee", "a" * (limits.ASSIGNEE.max + 1), False), ("assignee", "", False),
    ("progress", limits.PROGRESS.min, True), ("progress", limits.PROGRESS.max, True),
    ("progress", limits.PROGRESS.max + 1, False), ("progress", -1, False), ("progress", True, False),
]


@pytest.mark.parametrize(("name", "value", "fits"), EDGES)
def test_the_schema_and_a_rule_action_draw_the_same_line(name: str, value: Any, fits: bool) -> None:
    assert (_schema_accepts(name, value), _rule_accepts(name, value)) == (fits, fits)


def test_the_entity_check_reads_the_progress_limit() -> None:
    state = {"status": "pending", "priority": "P2"}
    check_values("task", {**state, "progress": limits.PROGRESS.max})
    with pytest.raises(Invalid) as refused:
        check_values("task", {**state, "progress": limits.PROGRESS.max + 1})
    assert refused.value.errors == {"progress": [f"an integer from {limits.PROGRESS.min} to {limits.PROGRESS.max}"]}


def test_creation_defaults_and_agent_ids_follow_the_same_limits() -> None:
    assert TaskCreate().validate({"task_code": "T-1", "title": "t", "assignee": None}) == {}
    assert "agent_id" in SessionStart().validate({"agent_id": "a" * (limits.AGENT_ID.max + 1)})
    assert "agent_id" not in SessionStart().validate({"agent_id": "a" * limits.AGENT_ID.max})
    assert ACTIONS["start_session"].check({"agent_id": "a" * (limits.AGENT_ID.max + 1)}) != []
