"""Facts as of an event's place in the log, and a rule's plan from them.

The worker, dry-run and backtesting all plan through ``judge``; they differ
only in where folded states come from: ``DatabaseStates`` reads them from the
log (snapshots + fold), the backtester from states it folds as it scans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.domain.rule_actions import ActionDef, Effect, Facts
from app.domain.rule_judgement import SUPERSEDED, updated_fields
from app.domain.rules import RuleDef, evaluate_rules
from app.domain.stream_types import ENTITY_TYPES
from app.store import as_of

STATEFUL = tuple(ENTITY_TYPES)
Stream = tuple[str, int]


class States(Protocol):
    """Where folded states come from: ``state`` includes the ``deleted`` flag; None before creation."""

    def state(self, entity_type: str, entity_id: int, upto_id: int) -> dict[str, Any] | None: ...

    def entity_id(self, entity_type: str, code: str) -> int | None: ...

    def sprint_task_candidates(self, sprint_id: int, sprint_code: str, upto_id: int) -> list[int]: ...


@dataclass
class DatabaseStates:
    """States folded from the stored log on demand (the worker's and dry-run's source).

    A state as of an event never changes, so each is folded once per run:
    the trigger's own task is not folded again as one of its sprint's tasks,
    and the sprint's other tasks are folded together in one read.
    """

    db: Any  # the unit of work's database session, handed to the store's as-of reads
    folded: dict[tuple[str, int, int], dict[str, Any] | None] = field(default_factory=dict)

    def state(self, entity_type: str, entity_id: int, upto_id: int) -> dict[str, Any] | None:
        key = (entity_type, entity_id, upto_id)
        if key not in self.folded:
            self.folded[key] = as_of.state_at(self.db, entity_type, entity_id, upto_id)
        return self.folded[key]

    def entity_id(self, entity_type: str, code: str) -> int | None:
        return as_of.entity_id(self.db, entity_type, code)

    def sprint_task_candidates(self, sprint_id: int, sprint_code: str, upto_id: int) -> list[int]:
        candidates = as_of.sprint_task_candidates(self.db, sprint_id, sprint_code, upto_id)
        missing = [i for i in candidates if ("task", i, upto_id) not in self.folded]
        if missing:
            for task_id, state in as_of.states_at(self.db, "task", missing, upto_id).items():
                self.folded[("task", task_id, upto_id)] = state
        return candidates


@dataclass
class AsOfFacts:
    """The facts, and the streams they were read from (where a later event may change them)."""

    facts: Facts
    streams: set[Stream] = field(default_factory=set)


def _public(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """A deleted entity is gone for a rule, as it is for the API."""
    if state is None or state.get("deleted"):
        return None
    return {name: value for name, value in state.items() if name != "deleted"}


def facts_as_of(states: States, event: Mapping[str, Any], needs: frozenset[str]) -> AsOfFacts:
    """What the planner may read, as it was right after ``event``."""
    entity, upto = event["entity"], int(event["id"])
    found = AsOfFacts(Facts(entity["type"]))
    if not needs or entity["type"] not in STATEFUL:
        return found
    own = states.state(entity["type"], entity["id"], upto)
    if "entity" in needs:
        found.facts = Facts(entity["type"], entity=_public(own))
        found.streams.add((entity["type"], entity["id"]))
    if "sprint" in needs:
        code = entity["code"] if entity["type"] == "sprint" else (own or {}).get("sprint_code")
        if entity["type"] in ("sprint", "task") and code is not None:
            _sprint_facts(states, found, str(code), upto)
    return found


def _sprint_facts(states: States, found: AsOfFacts, code: str, upto: int) -> None:
    sprint_id = states.entity_id("sprint", code)
    if sprint_id is None:
        return
    tasks = []
    for task_id in states.sprint_task_candidates(sprint_id, code, upto):
        found.streams.add(("task", task_id))
        task = states.state("task", task_id, upto)  # read in place: this loop runs per task per match
        if task is not None and not task.get("deleted") and task.get("sprint_code") == code:
            tasks.append({"task_code": task["task_code"], "status": task["status"]})
    found.streams.add(("sprint", sprint_id))
    found.facts = Facts(found.facts.entity_type, entity=found.facts.entity,
                        sprint=_public(states.state("sprint", sprint_id, upto)), sprint_tasks=tuple(tasks))


def plan_as_of(states: States, action: ActionDef, params: Mapping[str, Any],
               event: Mapping[str, Any]) -> tuple[list[Effect], AsOfFacts]:
    """The rule's plan as of the event: a pure function of the log up to it."""
    found = facts_as_of(states, event, action.needs(params))
    return action.plan(event, params, found.facts), found


def superseded_by(states: DatabaseStates, rule: RuleDef, action: ActionDef, event: Mapping[str, Any],
                  planned: list[Effect], streams: set[Stream]) -> str | None:
    """A later event on the streams the plan read that matches the rule and updates the same
    fields as of its own place: the change is that event's to make (see ``rule_judgement``)."""
    fields = updated_fields(planned)
    if not fields:
        return None
    pattern = rule.trigger.type
    prefix = pattern[:-1] if pattern.endswith(".*") else pattern
    for later in as_of.later_events(states.db, streams, int(event["id"]), prefix):
        if not evaluate_rules(later, [rule]):
            continue
        plan, _ = plan_as_of(states, action, rule.action.params, later)
        if updated_fields(plan) & fields:
            return SUPERSEDED.format(later=later["id"])
    return None
