"""Judging a rule as of its trigger's place in the log, then re-checking against live state.

A rule plans its effects from the state folded up to its trigger event, so the
plan is a pure function of the log. Before applying, the worker plans again
from live state under lock: an effect the live plan no longer contains (a task
was reopened meanwhile) is not applied, and the run is ``skipped`` with the
reason. A field update planned for event N is left to a later event M of the
log when M matches the same rule and plans an update of the same field: the
change is credited to the last event after which it was due, whatever order
workers happen to see N and M in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from app.domain.rule_actions import Effect, UpdateEntity

NOTHING_TO_DO = "nothing to do as of event {event}"
SUPERSEDED = "superseded by event {later}, which makes the same change as of its own place in the log"
NO_LONGER_VALID = "no longer valid against live state: {effects}"


def effect_key(effect: Effect) -> str:
    """What makes two planned effects the same change: for an update, the values it sets
    (the ``before`` values may differ between the state as of the event and live state)."""
    described = effect.describe()
    if isinstance(effect, UpdateEntity):
        described = {**described, "changes": effect.patch}
    return json.dumps(described, sort_keys=True, default=str)


def updated_fields(effects: Iterable[Effect]) -> frozenset[tuple[str, str, str]]:
    """(entity type, code, field) of every field update in a plan."""
    return frozenset((e.entity_type, e.code, name) for e in effects if isinstance(e, UpdateEntity)
                     for name in e.changes)


def stale(planned: list[Effect], live: list[Effect]) -> list[Effect]:
    """Planned effects that live state no longer calls for."""
    wanted = {effect_key(e) for e in live}
    return [e for e in planned if effect_key(e) not in wanted]


def describe_stale(effects: list[Effect]) -> str:
    parts = []
    for effect in effects:
        described: dict[str, Any] = effect.describe()
        entity = described.get("entity", {})
        what = f"{entity.get('type')} {entity.get('code')}" if entity.get("code") else str(entity.get("type"))
        detail = f" {effect.patch}" if isinstance(effect, UpdateEntity) else ""
        parts.append(f"{described['effect']} {what}{detail}")
    return NO_LONGER_VALID.format(effects="; ".join(parts))
