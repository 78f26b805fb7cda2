"""The replay fold: an entity's state is the fold of its events' ``changes``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

OPENING_SEQUENCE = 1


def apply_event(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any] | None:
    """Apply one envelope; the stream's first event opens the state, ``deleted`` flags it.

    The opening event is ``created`` for sprints and tasks, ``started`` for a
    session, ``raised``/``created`` for signals: whatever sits at sequence 1.
    Events outside the stream (``validation_failed``) and events without
    changes (custom events, ``task.blocked``) leave the state as it was.
    """
    kind = event["type"].rsplit(".", 1)[-1]
    if event.get("sequence") is None:
        return state
    if event["sequence"] == OPENING_SEQUENCE:
        return {name: c["after"] for name, c in event["changes"].items()} | {"deleted": False}
    if state is None:
        return None
    if kind == "deleted":
        return {**state, "deleted": True}
    return {**state, **{name: c["after"] for name, c in event["changes"].items()}}


def fold(events: Iterable[dict[str, Any]], state: dict[str, Any] | None = None) -> dict[str, Any] | None:
    for event in events:
        state = apply_event(state, event)
    return state
