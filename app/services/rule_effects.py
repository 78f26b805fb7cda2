"""What a rule reads (facts, under lock) and how its planned effects become ordinary events.

Effects go through the same cores the API uses (tracking, sessions, signal
events), so a rule's change is indistinguishable from a user's but for its
actor, causation and correlation chain. Undo applies the inverse changes as
new events, refusing when the entity moved on since.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from app.domain import events as catalogue
from app.domain.changes import ChangeContext
from app.domain.clock import Clock
from app.domain.errors import Conflict, NotFound
from app.domain.rule_actions import CallWebhook, Effect, Facts, RaiseSignal, StartSession, UpdateEntity
from app.domain.rules import automation_actor
from app.domain.stream_types import has_rows, stream_type
from app.services import sessions, signal_events, tracking
from app.store.tables import Event
from app.store.uow import Repositories


def _sprint_of(repos: Repositories, event: Mapping[str, Any], *, lock: bool) -> tuple[str, Any] | None:
    """The sprint concerned (its code and row): the event's own, or the one its task is in now."""
    entity = event["entity"]
    if entity["type"] == "sprint":
        return str(entity["code"]), repos.streams["sprint"].find(entity["code"], lock=lock)
    if entity["type"] != "task":
        return None
    row = repos.streams.sprint_of_task(entity["code"], lock=lock)
    return (row.sprint_code, row) if row is not None else None


def gather_facts(repos: Repositories, event: Mapping[str, Any], needs: frozenset[str], *, lock: bool) -> Facts:
    """Current state for the planner; with ``lock`` the rows stay locked until the run commits.

    The sprint's tasks are read after its row lock is held, so two runs that
    each complete "the last" task see each other's commit (DESIGN §3).
    """
    entity = event["entity"]
    facts = Facts(entity["type"])
    if "entity" in needs and has_rows(entity["type"]):
        rows = repos.streams[entity["type"]]
        facts = dataclasses.replace(facts, entity=rows.live(rows.find(entity["code"], lock=lock)))
    if "sprint" in needs and (found := _sprint_of(repos, event, lock=lock)) is not None:
        code, row = found
        facts = dataclasses.replace(facts, sprint=repos.streams["sprint"].live(row),
                                    sprint_tasks=repos.streams.sprint_tasks(code))
    return facts


def effect_context(rule_name: str, trigger: Event) -> ChangeContext:
    """Who and why for a rule's events: its actor, the trigger as cause, the trigger's workflows."""
    return ChangeContext(
        actor=automation_actor(rule_name),
        correlation_chain=(trigger.correlation_id, *(trigger.correlation_chain or [])),
        causation_id=trigger.event_id,
        causation_depth=trigger.causation_depth + 1,
    )


def apply_effect(repos: Repositories, effect: Effect, ctx: ChangeContext, clock: Clock) -> list[Event]:
    if isinstance(effect, UpdateEntity):
        return tracking.apply_update(repos, stream_type(effect.entity_type), effect.code, effect.patch, ctx, clock)[1]
    if isinstance(effect, RaiseSignal):
        return signal_events.raise_signal(repos, effect.kind, effect.type, effect.data, effect.priority, ctx, clock)
    if isinstance(effect, StartSession):
        data = {"agent_id": effect.agent_id, "sprint_code": effect.sprint_code, "task_code": effect.task_code}
        return sessions.apply_start(repos, data, ctx, clock, effect.reason)[1]
    if isinstance(effect, CallWebhook):
        raise TypeError("a webhook is delivered by its own job, never applied inline")
    rows = repos.streams[effect.entity_type]
    row = rows.find(effect.code, lock=True)
    if rows.live(row) is None:
        raise NotFound(f"no {effect.entity_type} with code {effect.code!r}")
    planned = catalogue.PlannedEvent(effect.type, data=effect.data)
    return repos.events.append_to_stream(rows.ref(row), [planned], ctx, clock())


def apply_effects(repos: Repositories, effects: Sequence[Effect], ctx: ChangeContext, clock: Clock) -> list[Event]:
    return [row for effect in effects for row in apply_effect(repos, effect, ctx, clock)]


def summary(event: Event) -> dict[str, Any]:
    """How a run remembers an event it produced (undo reads these back)."""
    return {"id": event.id, "event_id": event.event_id, "type": event.type, "sequence": event.sequence,
            "entity": {"type": event.entity_type, "id": event.entity_id, "code": event.entity_code}}


def _inverse(events: list[Event]) -> dict[str, Any]:
    """Each changed field back to its value before the first of these events."""
    patch: dict[str, Any] = {}
    for event in events:
        for name, change in (event.changes or {}).items():
            patch.setdefault(name, change.get("before"))
    return patch


def _check_unchanged(repos: Repositories, entity_type: str, code: str | None, version: int) -> None:
    rows = repos.streams[entity_type]
    row = rows.find(code, lock=True)
    if rows.live(row) is None or row.version != version:
        raise Conflict(f"{entity_type} {code!r} changed since the run; undo it by hand",
                       {"entity": [f"{entity_type} {code!r} is no longer at version {version}"]})


def undo(repos: Repositories, effects: list[dict[str, Any]], ctx: ChangeContext, clock: Clock) -> list[Event]:
    """Compensate a run's changes with new events; nothing is written unless every entity is unchanged.

    Signals and ``custom.*`` events are facts that happened and stay; a
    session the run started is ended.
    """
    streams: dict[tuple[str, str | None], list[Event]] = {}
    for event in repos.events.by_ids([e["id"] for e in effects]):
        if has_rows(event.entity_type) and event.sequence is not None:
            streams.setdefault((event.entity_type, event.entity_code), []).append(event)
    for (entity_type, code), events in streams.items():
        _check_unchanged(repos, entity_type, code, max(e.sequence or 0 for e in events))
    compensating: list[Event] = []
    for (entity_type, code), events in streams.items():
        cause = dataclasses.replace(ctx, causation_id=events[-1].event_id)
        if entity_type == "session":
            compensating += sessions.apply_transition(repos, str(code), "ended", cause, clock)[1]
        elif patch := _inverse(events):
            compensating += tracking.apply_update(repos, stream_type(entity_type), str(code), patch, cause, clock)[1]
    return compensating
