"""Rule matching and action planning are pure: the same verdict for the worker and a dry-run."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.errors import Invalid
from app.domain.rule_actions import (
    ACTIONS,
    BUILTIN_RULES,
    AppendEvent,
    Facts,
    RaiseSignal,
    StartSession,
    UpdateEntity,
    parse_action,
)
from app.domain.rules import (
    ActionSpec,
    Condition,
    RuleDef,
    Trigger,
    automation_actor,
    evaluate_rules,
    parse_trigger,
)


def envelope(type_: str = "orchestration.task.status_changed", **overrides: Any) -> dict[str, Any]:
    base = {
        "id": 7, "event_id": "e-7", "type": type_, "entity": {"type": "task", "id": 3, "code": "T-1"},
        "sequence": 2, "actor": "user:alice", "priority": "P1", "correlation_id": "c-1",
        "correlation_chain": [], "changes": {"status": {"before": "in_progress", "after": "completed"}},
        "data": {"reason": "done", "score": 7},
    }
    return base | overrides


@pytest.mark.parametrize(("path", "op", "value", "expected"), [
    ("status", "changed_to", "completed", True),
    ("changes.status", "changed_to", "completed", True),
    ("status", "changed_to", "blocked", False),
    ("status", "changed_from", "in_progress", True),
    ("status", "changed_from", "pending", False),
    ("priority", "changed_to", "P0", False),
    ("priority", "eq", "P1", True),
    ("priority", "ne", "P1", False),
    ("data.missing", "ne", "x", True),
    ("entity.type", "in", ["task", "sprint"], True),
    ("entity.type", "in", ["session"], False),
    ("data.score", "gt", 5, True),
    ("data.score", "lt", 5, False),
    ("data.reason", "gt", 5, False),
    ("data.reason", "exists", None, True),
    ("data.missing", "exists", None, False),
    ("data.missing", "exists", False, True),
    ("changes.status.after", "eq", "completed", True),
])
def test_each_operator_reads_the_envelope_path(path: str, op: str, value: Any, expected: bool) -> None:
    assert Condition(path, op, value).holds(envelope()) is expected


def test_changed_to_ignores_a_field_that_did_not_change() -> None:
    same = envelope(changes={"status": {"before": "completed", "after": "completed"}})
    assert not Condition("status", "changed_to", "completed").holds(same)


def test_a_trigger_needs_its_type_pattern_and_every_condition() -> None:
    trigger = Trigger("orchestration.task.*", (Condition("status", "changed_to", "completed"),
                                               Condition("priority", "eq", "P1")))
    assert trigger.matches(envelope())
    assert not trigger.matches(envelope("orchestration.sprint.status_changed"))
    assert not trigger.matches(envelope(priority="P2"))
    explained = trigger.explain(envelope(priority="P2"))
    assert [c["holds"] for c in explained] == [True, True, False]
    assert explained[2]["actual"] == "P2"


def rule(name: str, trigger: Trigger, enabled: bool = True) -> RuleDef:
    return RuleDef(1, name, trigger, ActionSpec("set_status", {"status": "blocked"}), enabled)


def test_evaluate_rules_returns_enabled_matches_but_never_a_rule_reacting_to_its_own_event() -> None:
    any_task = Trigger("orchestration.task.*")
    rules = [rule("a", any_task), rule("b", any_task), rule("off", any_task, enabled=False),
             rule("other", Trigger("orchestration.sprint.*"))]

    matches = evaluate_rules(envelope(actor=automation_actor("a")), rules)

    assert [m.rule.name for m in matches] == ["b"]
    assert matches[0].verdict == "apply"


def test_at_the_causation_depth_limit_a_match_is_a_loop() -> None:
    rules = [rule("a", Trigger("orchestration.task.*"))]
    assert [m.verdict for m in evaluate_rules(envelope(), rules, depth=4, depth_limit=5)] == ["apply"]
    assert [m.verdict for m in evaluate_rules(envelope(), rules, depth=5, depth_limit=5)] == ["loop"]


@pytest.mark.parametrize("raw", [
    {"type": "orchestration.*.x"},
    {"type": ""},
    {"type": "orchestration.task.*", "conditions": [{"path": "status", "op": "like", "value": 1}]},
    {"type": "orchestration.task.*", "conditions": [{"path": "", "op": "eq", "value": 1}]},
    {"type": "orchestration.task.*", "conditions": [{"path": "a", "op": "in", "value": "x"}]},
    {"type": "orchestration.task.*", "conditions": "status"},
    {"type": "orchestration.task.*", "extra": 1},
])
def test_a_malformed_trigger_is_invalid_under_trigger(raw: dict[str, Any]) -> None:
    with pytest.raises(Invalid) as caught:
        parse_trigger(raw)
    assert "trigger" in (caught.value.errors or {})


@pytest.mark.parametrize("raw", [
    {"name": "explode", "params": {}},
    {"name": "set_status", "params": {}},
    {"name": "set_status", "params": {"status": "done"}},
    {"name": "set_field", "params": {"field": "progress", "value": 101}},
    {"name": "set_field", "params": {"field": "code", "value": "X"}},
    {"name": "emit_event", "params": {"type": "orchestration.task.created"}},
    {"name": "complete_sprint", "params": {"now": True}},
])
def test_a_bad_action_is_invalid_under_action(raw: dict[str, Any]) -> None:
    with pytest.raises(Invalid) as caught:
        parse_action(raw, ACTIONS)
    assert "action" in (caught.value.errors or {})


def plan(action: str, params: dict[str, Any], facts: Facts, event: dict[str, Any] | None = None) -> list[Any]:
    return ACTIONS[action].plan(event or envelope(), params, facts)


def sprint(status: str = "active") -> dict[str, Any]:
    return {"sprint_code": "S-1", "title": "S", "status": status, "priority": "P2", "metadata": {}}


@pytest.mark.parametrize(("sprint_status", "tasks", "completes"), [
    ("active", ["completed", "completed"], True),
    ("active", ["completed", "in_progress"], False),
    ("active", ["completed", "cancelled"], True),
    ("active", ["cancelled"], False),
    ("completed", ["completed"], False),
    ("cancelled", ["completed"], False),
])
def test_complete_sprint_reads_every_live_task(sprint_status: str, tasks: list[str], completes: bool) -> None:
    facts = Facts("task", sprint=sprint(sprint_status),
                  sprint_tasks=tuple({"task_code": f"T-{i}", "status": s} for i, s in enumerate(tasks)))

    effects = plan("complete_sprint", {}, facts)

    expected = [UpdateEntity("sprint", "S-1", {"status": {"before": sprint_status, "after": "completed"}})]
    assert effects == (expected if completes else [])


def test_set_status_plans_nothing_when_the_value_is_already_there_or_the_entity_is_gone() -> None:
    task = {"task_code": "T-1", "status": "completed", "progress": 0}
    assert plan("set_status", {"status": "completed"}, Facts("task", entity=task)) == []
    assert plan("set_status", {"status": "blocked"}, Facts("task", entity=None)) == []
    [effect] = plan("set_status", {"status": "blocked"}, Facts("task", entity=task))
    assert effect.patch == {"status": "blocked"}
    assert ACTIONS["set_status"].needs({"status": "x", "target": "sprint"}) == frozenset({"sprint"})


def test_emit_event_raises_a_signal_naming_the_task_with_its_priority() -> None:
    [signal] = plan("emit_event", {"type": "orchestration.alert.raised", "data": {"reason": "priority_p0"}},
                    Facts("task"), envelope(priority="P0"))
    assert isinstance(signal, RaiseSignal)
    assert (signal.kind, signal.priority) == ("alert", "P0")
    assert signal.data["task_code"] == "T-1" and signal.data["reason"] == "priority_p0"


def test_emit_event_of_a_custom_type_goes_on_the_event_stream() -> None:
    [effect] = plan("emit_event", {"type": "custom.ping", "data": {"n": 1}}, Facts("task"))
    assert effect == AppendEvent("task", "T-1", "custom.ping", {"n": 1})


def test_start_session_carries_the_sprint_and_the_reason() -> None:
    [effect] = plan("start_session", {"agent_id": "automation", "reason": "sprint_activated"},
                    Facts("sprint", entity=sprint()), envelope("orchestration.sprint.status_changed"))
    assert effect == StartSession("automation", "S-1", None, "sprint_activated")


def test_the_four_built_in_rules_are_valid_and_fire_on_what_the_contract_says() -> None:
    by_name = {r["name"]: parse_trigger(r["trigger"]) for r in BUILTIN_RULES}
    for raw in BUILTIN_RULES:
        parse_action(raw["action"], ACTIONS)
    completed = envelope()
    blocked = envelope(changes={"status": {"before": "pending", "after": "blocked"}})
    created_p0 = envelope("orchestration.task.created", changes={"priority": {"before": None, "after": "P0"}})
    activated = envelope("orchestration.sprint.status_changed",
                         changes={"status": {"before": "planned", "after": "active"}})
    fired = {name: [e["type"] for e in (completed, blocked, created_p0, activated) if t.matches(e)]
             for name, t in by_name.items()}
    assert fired == {
        "sprint_auto_complete": ["orchestration.task.status_changed"],
        "notify_blocked_task": ["orchestration.task.status_changed"],
        "alert_p0_task": ["orchestration.task.created"],
        "session_on_sprint_activated": ["orchestration.sprint.status_changed"],
    }


def test_set_status_never_plans_a_change_to_a_session_or_a_signal() -> None:
    session = {"session_key": "sess-1", "status": "ended"}
    assert plan("set_status", {"status": "active"}, Facts("session", entity=session)) == []
