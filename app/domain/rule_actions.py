"""Action planning: given the event and the current state, the effects a rule would have.

Planning is pure, so a dry-run returns exactly what the worker would do and
the worker applies exactly what was planned (through the ordinary services).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.domain import field_limits as limits
from app.domain import webhook_spec
from app.domain.entities import FINAL_STATUS, SPRINT_STATUSES, TASK_STATUSES
from app.domain.errors import Invalid
from app.domain.events import ALERT_RAISED, NOTIFICATION_CREATED, change, is_event_type
from app.domain.rules import ActionSpec
from app.domain.stream_types import ENTITY_TYPES, PRIORITIES, stream_type

SIGNAL_KINDS = {NOTIFICATION_CREATED: "notification", ALERT_RAISED: "alert"}
APPENDABLE_ENTITIES = tuple(ENTITY_TYPES)
SETTABLE = {name: t.settable for name, t in ENTITY_TYPES.items() if t.settable}
TARGETS = ("entity", "sprint")


@dataclass(frozen=True)
class Facts:
    """Current state the planner may read: the event's entity and the sprint concerned."""

    entity_type: str
    entity: Mapping[str, Any] | None = None
    sprint: Mapping[str, Any] | None = None
    sprint_tasks: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class UpdateEntity:
    entity_type: str
    code: str
    changes: dict[str, dict[str, Any]]

    @property
    def patch(self) -> dict[str, Any]:
        return {name: c["after"] for name, c in self.changes.items()}

    def describe(self) -> dict[str, Any]:
        return {"effect": "update", "entity": {"type": self.entity_type, "code": self.code},
                "changes": self.changes}


@dataclass(frozen=True)
class RaiseSignal:
    kind: str
    type: str
    priority: str
    data: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"effect": "signal", "entity": {"type": self.kind, "code": None}, "type": self.type,
                "priority": self.priority, "data": self.data}


@dataclass(frozen=True)
class StartSession:
    agent_id: str
    sprint_code: str | None
    task_code: str | None
    reason: str | None

    def describe(self) -> dict[str, Any]:
        return {"effect": "start_session", "entity": {"type": "session", "code": None},
                "agent_id": self.agent_id, "sprint_code": self.sprint_code, "task_code": self.task_code,
                "reason": self.reason}


@dataclass(frozen=True)
class AppendEvent:
    entity_type: str
    code: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"effect": "append", "entity": {"type": self.entity_type, "code": self.code},
                "type": self.type, "data": self.data}


@dataclass(frozen=True)
class CallWebhook:
    """POST the trigger's envelope to ``url``, signed; delivered by its own job, never inline."""

    url: str

    def describe(self) -> dict[str, Any]:
        return {"effect": "webhook", "entity": {"type": "webhook", "code": None}, "url": self.url}


Effect = UpdateEntity | RaiseSignal | StartSession | AppendEvent | CallWebhook
Planner = Callable[[Mapping[str, Any], Mapping[str, Any], Facts], list[Effect]]


@dataclass(frozen=True)
class ActionDef:
    """A named action: what state it must read (under lock), how it plans, how params are checked."""

    name: str
    plan: Planner
    needs: Callable[[Mapping[str, Any]], frozenset[str]] = lambda params: frozenset()
    check: Callable[[Mapping[str, Any]], list[str]] = lambda params: []


def _target(params: Mapping[str, Any], facts: Facts) -> tuple[str, Mapping[str, Any] | None]:
    if params.get("target") == "sprint":
        return "sprint", facts.sprint
    return facts.entity_type, facts.entity


def _needs_target(params: Mapping[str, Any]) -> frozenset[str]:
    return frozenset({"sprint" if params.get("target") == "sprint" else "entity"})


def _update(entity_type: str, state: Mapping[str, Any] | None, name: str, value: Any) -> list[Effect]:
    """One field to a new value; nothing when it is there already or the entity is gone or final."""
    if entity_type not in SETTABLE or state is None or name not in state or state[name] == value:
        return []
    if state.get("status") == FINAL_STATUS:
        return []
    return [UpdateEntity(entity_type, state[str(stream_type(entity_type).code_field)], {name: change(state[name], value)})]


def plan_set_status(event: Mapping[str, Any], params: Mapping[str, Any], facts: Facts) -> list[Effect]:
    entity_type, state = _target(params, facts)
    return _update(entity_type, state, "status", params["status"])


def plan_set_field(event: Mapping[str, Any], params: Mapping[str, Any], facts: Facts) -> list[Effect]:
    entity_type, state = _target(params, facts)
    if params["field"] not in SETTABLE.get(entity_type, ()):
        return []
    return _update(entity_type, state, params["field"], params["value"])


def plan_emit_event(event: Mapping[str, Any], params: Mapping[str, Any], facts: Facts) -> list[Effect]:
    """Notifications and alerts become their own entity; ``custom.*`` goes on the event's stream."""
    entity = event["entity"]
    data = dict(params.get("data") or {})
    kind = SIGNAL_KINDS.get(params["type"])
    if kind is not None:
        named = {"entity": dict(entity), f"{entity['type']}_code": entity["code"],
                 f"{entity['type']}_id": entity["id"], "event_type": event["type"]}
        return [RaiseSignal(kind, params["type"], str(event["priority"]), {**named, **data})]
    if entity["type"] not in APPENDABLE_ENTITIES or entity["code"] is None:
        return []
    return [AppendEvent(entity["type"], entity["code"], params["type"], data)]


def plan_complete_sprint(event: Mapping[str, Any], params: Mapping[str, Any], facts: Facts) -> list[Effect]:
    """Every live, non-cancelled task of the sprint is completed: the sprint is too."""
    sprint = facts.sprint
    if sprint is None or sprint["status"] in ("completed", FINAL_STATUS):
        return []
    counted = [t for t in facts.sprint_tasks if t["status"] != FINAL_STATUS]
    if not counted or any(t["status"] != "completed" for t in counted):
        return []
    return _update("sprint", sprint, "status", "completed")


def plan_start_session(event: Mapping[str, Any], params: Mapping[str, Any], facts: Facts) -> list[Effect]:
    state = facts.entity
    if state is None or facts.entity_type not in ("sprint", "task"):
        return []
    task_code = state.get("task_code") if facts.entity_type == "task" else None
    return [StartSession(str(params.get("agent_id", "automation")), state.get("sprint_code"), task_code,
                         params.get("reason"))]


def plan_webhook(event: Mapping[str, Any], params: Mapping[str, Any], facts: Facts) -> list[Effect]:
    """Every matching event is sent: the receiver, not the rule, decides what it means."""
    return [CallWebhook(str(params["url"]))]


def _check_webhook(params: Mapping[str, Any]) -> list[str]:
    errors = _check_keys(params, {"url", "secret"}, {"url", "secret"})
    return errors + webhook_spec.check_url(params.get("url")) + webhook_spec.check_secret(params.get("secret"))


def _check_status(params: Mapping[str, Any]) -> list[str]:
    allowed = SPRINT_STATUSES if params.get("target") == "sprint" else (*TASK_STATUSES, *SPRINT_STATUSES)
    errors = _check_keys(params, {"status", "target"}, {"status"})
    if "status" in params and params["status"] not in allowed:
        errors.append(f"params.status: one of {', '.join(dict.fromkeys(allowed))}")
    return errors + _check_target(params)


def _check_field(params: Mapping[str, Any]) -> list[str]:
    errors = _check_keys(params, {"field", "value", "target"}, {"field", "value"}) + _check_target(params)
    name, value = params.get("field"), params.get("value")
    fields_ = SETTABLE["sprint"] if params.get("target") == "sprint" else SETTABLE["task"]
    if name not in fields_:
        return [*errors, f"params.field: one of {', '.join(fields_)}"]
    if not _value_fits(str(name), value):
        errors.append(f"params.value: not a valid {name}")
    return errors


def _value_fits(name: str, value: Any) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "status": lambda v: v in (*TASK_STATUSES, *SPRINT_STATUSES),
        "priority": lambda v: v in PRIORITIES,
        "progress": limits.PROGRESS.fits,
        "title": limits.TITLE.fits,
        "description": limits.DESCRIPTION.fits,
        "assignee": limits.ASSIGNEE.fits,
        "metadata": lambda v: isinstance(v, dict),
    }
    return checks[name](value)


def _check_emit(params: Mapping[str, Any]) -> list[str]:
    errors = _check_keys(params, {"type", "data"}, {"type"})
    kind = params.get("type")
    if not isinstance(kind, str) or not (kind in SIGNAL_KINDS or (kind.startswith("custom.") and is_event_type(kind))):
        errors.append(f"params.type: {NOTIFICATION_CREATED}, {ALERT_RAISED} or custom.*")
    if not isinstance(params.get("data", {}), dict):
        errors.append("params.data: an object")
    return errors


def _check_session(params: Mapping[str, Any]) -> list[str]:
    errors = _check_keys(params, {"agent_id", "reason"}, set())
    for name in ("agent_id", "reason"):
        if name in params and not limits.AGENT_ID.fits(params[name]):
            errors.append(f"params.{name}: a non-empty string")
    return errors


def _check_keys(params: Mapping[str, Any], allowed: set[str], required: set[str]) -> list[str]:
    unknown = sorted(set(params) - allowed)
    missing = sorted(required - set(params))
    return [f"params.{k}: unknown parameter" for k in unknown] + [f"params.{k}: required" for k in missing]


def _check_target(params: Mapping[str, Any]) -> list[str]:
    return [] if params.get("target", "entity") in TARGETS else [f"params.target: one of {', '.join(TARGETS)}"]


ACTIONS: dict[str, ActionDef] = {
    "set_status": ActionDef("set_status", plan_set_status, _needs_target, _check_status),
    "set_field": ActionDef("set_field", plan_set_field, _needs_target, _check_field),
    "emit_event": ActionDef("emit_event", plan_emit_event, check=_check_emit),
    "complete_sprint": ActionDef("complete_sprint", plan_complete_sprint, lambda p: frozenset({"sprint"}),
                                 lambda p: _check_keys(p, set(), set())),
    "start_session": ActionDef("start_session", plan_start_session, lambda p: frozenset({"entity"}),
                               _check_session),
    "webhook": ActionDef("webhook", plan_webhook, check=_check_webhook),
}


def parse_action(raw: Any, known: Mapping[str, ActionDef]) -> ActionSpec:
    """Validate an action against the actions this process knows; errors go under ``action``."""
    if not isinstance(raw, Mapping) or set(raw) - {"name", "params"} or not isinstance(raw.get("params", {}), Mapping):
        raise Invalid("the action is malformed", {"action": ["an object with name and params"]})
    name, params = raw.get("name"), dict(raw.get("params") or {})
    if name not in known:
        raise Invalid("unknown action", {"action": [f"name: one of {', '.join(sorted(known))}"]})
    errors = known[str(name)].check(params)
    if errors:
        raise Invalid("the action's parameters are invalid", {"action": errors})
    return ActionSpec(str(name), params)


def _changed_to(field_name: str, value: str) -> dict[str, Any]:
    return {"path": field_name, "op": "changed_to", "value": value}


BUILTIN_RULES: tuple[dict[str, Any], ...] = (
    {"name": "sprint_auto_complete",
     "description": "When the last open task of a sprint is completed, the sprint becomes completed.",
     "trigger": {"type": "orchestration.task.*", "conditions": [_changed_to("status", "completed")]},
     "action": {"name": "complete_sprint", "params": {}}},
    {"name": "notify_blocked_task",
     "description": "When a task becomes blocked, emit orchestration.notification.created.",
     "trigger": {"type": "orchestration.task.*", "conditions": [_changed_to("status", "blocked")]},
     "action": {"name": "emit_event", "params": {"type": NOTIFICATION_CREATED, "data": {"reason": "task_blocked"}}}},
    {"name": "alert_p0_task",
     "description": "When a task's priority becomes P0 (also at creation), emit orchestration.alert.raised.",
     "trigger": {"type": "orchestration.task.*", "conditions": [_changed_to("priority", "P0")]},
     "action": {"name": "emit_event", "params": {"type": ALERT_RAISED, "data": {"reason": "priority_p0"}}}},
    {"name": "session_on_sprint_activated",
     "description": "When a sprint becomes active, start an agent session for it.",
     "trigger": {"type": "orchestration.sprint.*", "conditions": [_changed_to("status", "active")]},
     "action": {"name": "start_session", "params": {"agent_id": "automation", "reason": "sprint_activated"}}},
)
