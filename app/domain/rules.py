"""Rule matching: a trigger (event-type pattern + conditions on the envelope) decides.

Pure functions over the public event envelope (CONTRACT §3), so a dry-run and
the worker reach the same verdict and a unit test needs no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.domain.errors import Invalid
from app.domain.events import TYPE_FILTER_PATTERN, type_matches
from app.domain.runs import Verdict

OPERATORS = ("eq", "ne", "in", "changed_to", "changed_from", "gt", "lt", "exists")
DEFAULT_DEPTH_LIMIT = 5
ACTOR_PREFIX = "automation:"
_MISSING = object()


def automation_actor(rule_name: str) -> str:
    """The actor of every event a rule causes."""
    return f"{ACTOR_PREFIX}{rule_name}"


def resolve(event: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of the envelope (``changes.status.after``), or a sentinel."""
    value: Any = event
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _changed(event: Mapping[str, Any], path: str) -> tuple[Any, Any] | None:
    """(before, after) of a field the event changed; ``status`` and ``changes.status`` both work."""
    name = path.removeprefix("changes.")
    change = resolve(event, f"changes.{name}")
    if not isinstance(change, Mapping) or change.get("before") == change.get("after"):
        return None
    return change.get("before"), change.get("after")


def _ordered(actual: Any, value: Any, op: str) -> bool:
    numeric = (int, float)
    same_kind = (isinstance(actual, numeric) and isinstance(value, numeric)
                 and not isinstance(actual, bool) and not isinstance(value, bool)) or (
        isinstance(actual, str) and isinstance(value, str))
    if not same_kind:
        return False
    return bool(actual > value) if op == "gt" else bool(actual < value)


@dataclass(frozen=True)
class Condition:
    """One test on the envelope: ``{"path": "changes.priority.after", "op": "eq", "value": "P0"}``."""

    path: str
    op: str
    value: Any = None

    def actual(self, event: Mapping[str, Any]) -> Any:
        if self.op in ("changed_to", "changed_from"):
            return _changed(event, self.path)
        found = resolve(event, self.path)
        return None if found is _MISSING else found

    def holds(self, event: Mapping[str, Any]) -> bool:
        if self.op in ("changed_to", "changed_from"):
            change = _changed(event, self.path)
            return change is not None and change[1 if self.op == "changed_to" else 0] == self.value
        found = resolve(event, self.path)
        if self.op == "exists":
            return (found is not _MISSING and found is not None) == (self.value is not False)
        if found is _MISSING:
            return self.op == "ne"
        if self.op == "eq":
            return bool(found == self.value)
        if self.op == "ne":
            return bool(found != self.value)
        if self.op == "in":
            return found in self.value
        return _ordered(found, self.value, self.op)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class Trigger:
    """An event-type pattern (exact or ``prefix.*``) and conditions that must all hold."""

    type: str
    conditions: tuple[Condition, ...] = ()

    def matches(self, event: Mapping[str, Any]) -> bool:
        return type_matches(self.type, str(event.get("type", ""))) and all(
            c.holds(event) for c in self.conditions)

    def explain(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Each test with its outcome: what a dry-run shows."""
        type_test = {"path": "type", "op": "matches", "value": self.type, "actual": event.get("type"),
                     "holds": type_matches(self.type, str(event.get("type", "")))}
        return [type_test, *({**c.as_dict(), "actual": c.actual(event), "holds": c.holds(event)}
                             for c in self.conditions)]

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "conditions": [c.as_dict() for c in self.conditions]}


@dataclass(frozen=True)
class ActionSpec:
    """A named action and its parameters (``{"name": "set_status", "params": {...}}``)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params)}


@dataclass(frozen=True)
class RuleDef:
    """A rule as the engine sees it, whether stored or defined in code."""

    id: int
    name: str
    trigger: Trigger
    action: ActionSpec
    enabled: bool = True


@dataclass(frozen=True)
class Match:
    """A rule whose trigger matched; ``loop`` when the causation depth limit stops it."""

    rule: RuleDef
    verdict: Verdict


def reacts_to_itself(rule: RuleDef, event: Mapping[str, Any]) -> bool:
    return event.get("actor") == automation_actor(rule.name)


def evaluate_rules(event: Mapping[str, Any], rules: Iterable[RuleDef], *, depth: int = 0,
                   depth_limit: int = DEFAULT_DEPTH_LIMIT) -> list[Match]:
    """Enabled rules whose trigger matches, never one reacting to an event it caused.

    ``depth`` is the event's causation depth: at the limit a match is a
    ``loop`` verdict, which the caller records instead of acting.
    """
    verdict = Verdict.LOOP if depth >= depth_limit else Verdict.APPLY
    return [Match(rule, verdict) for rule in rules
            if rule.enabled and not reacts_to_itself(rule, event) and rule.trigger.matches(event)]


def _condition(raw: Any, index: int, errors: list[str]) -> Condition | None:
    where = f"conditions[{index}]"
    if not isinstance(raw, Mapping) or set(raw) - {"path", "op", "value"}:
        errors.append(f"{where}: an object with path, op and value")
        return None
    path, op, value = raw.get("path"), raw.get("op"), raw.get("value")
    if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
        errors.append(f"{where}.path: a dotted path into the event envelope")
    if op not in OPERATORS:
        errors.append(f"{where}.op: one of {', '.join(OPERATORS)}")
    elif op == "in" and not isinstance(value, list):
        errors.append(f"{where}.value: a list for op 'in'")
    elif op == "exists" and value is not None and not isinstance(value, bool):
        errors.append(f"{where}.value: true, false or absent for op 'exists'")
    return Condition(path, op, value) if isinstance(path, str) and isinstance(op, str) else None


def parse_trigger(raw: Any) -> Trigger:
    """Validate a stored or submitted trigger; errors are reported under ``trigger``."""
    errors: list[str] = []
    if not isinstance(raw, Mapping) or set(raw) - {"type", "conditions"}:
        raise Invalid("the trigger is malformed", {"trigger": ["an object with type and conditions"]})
    pattern, conditions = raw.get("type"), raw.get("conditions", [])
    if not isinstance(pattern, str) or TYPE_FILTER_PATTERN.fullmatch(pattern) is None:
        errors.append("type: an exact event type or a prefix ending in .*")
    if not isinstance(conditions, list):
        errors.append("conditions: a list")
        conditions = []
    parsed = [_condition(c, i, errors) for i, c in enumerate(conditions)]
    if errors:
        raise Invalid("the trigger is invalid", {"trigger": errors})
    return Trigger(str(pattern), tuple(c for c in parsed if c is not None))
