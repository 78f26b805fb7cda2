"""What a rule reads (facts, under lock) and how its planned effects become ordinary events.

Effects go through the same session-level cores the API uses (tracking,
sessions, signals), so a rule's change is indistinguishable from a user's but
for its actor, causation and correlation chain. Undo applies the inverse
changes as new events, refusing when the entity moved on since.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import events as catalogue
from app.domain.clock import Clock
from app.domain.errors import Conflict, NotFound
from app.domain.rule_actions import CallWebhook, Effect, Facts, RaiseSignal, StartSession, UpdateEntity
from app.domain.rules import automation_actor
from app.services import sessions, signals, tracking
from app.services.context import ChangeContext
from app.store import repositories as repo
from app.store.event_store import append
from app.store.tables import AgentSession, Event, Sprint, Task

MODELS: dict[str, Any] = {"sprint": (Sprint, "sprint_code"), "task": (Task, "task_code"),
                          "session": (AgentSession, "session_key")}
STATES = {"sprint": repo.sprint_state, "task": repo.task_state, "session": repo.session_state}


def load(session: Session, entity_type: str, code: str | None, *, lock: bool) -> Any:
    """The current row, re-read from the database (never a stale copy from this session)."""
    model, code_field = MODELS[entity_type]
    stmt = select(model).where(getattr(model, code_field) == code).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update(of=model)
    return session.scalars(stmt).unique().one_or_none()


def _live_state(entity_type: str, row: Any) -> dict[str, Any] | None:
    if row is None or getattr(row, "deleted_at", None) is not None:
        return None
    return STATES[entity_type](row)  # type: ignore[no-any-return, operator]


def _sprint_code_of(session: Session, event: Mapping[str, Any]) -> str | None:
    entity = event["entity"]
    if entity["type"] == "sprint":
        return str(entity["code"])
    if entity["type"] != "task":
        return None
    stmt = select(Sprint.sprint_code).join(Task, Task.sprint_id == Sprint.id).where(Task.task_code == entity["code"])
    return session.scalars(stmt).first()


def gather_facts(session: Session, event: Mapping[str, Any], needs: frozenset[str], *, lock: bool) -> Facts:
    """Current state for the planner; with ``lock`` the rows stay locked until the run commits.

    The sprint's tasks are read after its row lock is held, so two runs that
    each complete "the last" task see each other's commit (DESIGN §3).
    """
    entity = event["entity"]
    facts = Facts(entity["type"])
    if "entity" in needs and entity["type"] in MODELS:
        row = load(session, entity["type"], entity["code"], lock=lock)
        facts = dataclasses.replace(facts, entity=_live_state(entity["type"], row))
    if "sprint" in needs and (code := _sprint_code_of(session, event)) is not None:
        sprint = _live_state("sprint", load(session, "sprint", code, lock=lock))
        tasks = session.execute(
            select(Task.task_code, Task.status).join(Sprint, Task.sprint_id == Sprint.id)
            .where(Sprint.sprint_code == code, Task.deleted_at.is_(None)).order_by(Task.id))
        facts = dataclasses.replace(facts, sprint=sprint,
                                    sprint_tasks=tuple({"task_code": c, "status": s} for c, s in tasks))
    return facts


def effect_context(rule_name: str, trigger: Event) -> ChangeContext:
    """Who and why for a rule's events: its actor, the trigger as cause, the trigger's workflows."""
    return ChangeContext(
        actor=automation_actor(rule_name),
        correlation_chain=(trigger.correlation_id, *(trigger.correlation_chain or [])),
        causation_id=trigger.event_id,
        causation_depth=trigger.causation_depth + 1,
    )


def apply_effect(session: Session, effect: Effect, ctx: ChangeContext, clock: Clock) -> list[Event]:
    if isinstance(effect, UpdateEntity):
        return tracking.apply_update(session, tracking.KINDS[effect.entity_type], effect.code, effect.patch,
                                     ctx, clock)[1]
    if isinstance(effect, RaiseSignal):
        return signals.raise_signal(session, effect.kind, effect.type, effect.data, effect.priority, ctx, clock)
    if isinstance(effect, StartSession):
        data = {"agent_id": effect.agent_id, "sprint_code": effect.sprint_code, "task_code": effect.task_code}
        return sessions.apply_start(session, data, ctx, clock, effect.reason)[1]
    if isinstance(effect, CallWebhook):
        raise TypeError("a webhook is delivered by its own job, never applied inline")
    row = load(session, effect.entity_type, effect.code, lock=True)
    if _live_state(effect.entity_type, row) is None:
        raise NotFound(f"no {effect.entity_type} with code {effect.code!r}")
    meta = ctx.meta()
    if effect.entity_type == "session":
        meta = dataclasses.replace(meta, session_key=effect.code)
    planned = catalogue.PlannedEvent(effect.type, data=effect.data)
    return append(session, repo.stream_of(effect.entity_type, row), [planned], meta, clock())


def apply_effects(session: Session, effects: Sequence[Effect], ctx: ChangeContext, clock: Clock) -> list[Event]:
    return [row for effect in effects for row in apply_effect(session, effect, ctx, clock)]


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


def _check_unchanged(session: Session, entity_type: str, code: str | None, version: int) -> Any:
    row = load(session, entity_type, code, lock=True)
    if _live_state(entity_type, row) is None or row.version != version:
        raise Conflict(f"{entity_type} {code!r} changed since the run; undo it by hand",
                       {"entity": [f"{entity_type} {code!r} is no longer at version {version}"]})
    return row


def undo(session: Session, effects: list[dict[str, Any]], ctx: ChangeContext, clock: Clock) -> list[Event]:
    """Compensate a run's changes with new events; nothing is written unless every entity is unchanged.

    Signals and ``custom.*`` events are facts that happened and stay; a
    session the run started is ended.
    """
    produced = list(session.scalars(select(Event).where(Event.id.in_([e["id"] for e in effects])).order_by(Event.id)))
    streams: dict[tuple[str, str | None], list[Event]] = {}
    for event in produced:
        if event.entity_type in MODELS and event.sequence is not None:
            streams.setdefault((event.entity_type, event.entity_code), []).append(event)
    for (entity_type, code), events in streams.items():
        _check_unchanged(session, entity_type, code, max(e.sequence or 0 for e in events))
    compensating: list[Event] = []
    for (entity_type, code), events in streams.items():
        cause = dataclasses.replace(ctx, causation_id=events[-1].event_id)
        if entity_type == "session":
            compensating += sessions.apply_transition(session, str(code), "ended", cause, clock)[1]
        elif patch := _inverse(events):
            compensating += tracking.apply_update(session, tracking.KINDS[entity_type], str(code), patch,
                                                  cause, clock)[1]
    return compensating
