"""Replaying streams: the state after each event, in the shape callers see.

``app.domain.fold`` starts a state only at a ``created`` event; a stream's
first event opens it whatever its type (a session opens with ``started``, an
alert with ``raised``), so replay, snapshots and history go through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from app.domain.fold import apply_event

OPENING_SEQUENCE = 1


def apply(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any] | None:
    """The state after one envelope; the event at sequence 1 starts it from its ``after`` values."""
    if event.get("sequence") == OPENING_SEQUENCE:
        return {name: c["after"] for name, c in event["changes"].items()} | {"deleted": False}
    return apply_event(state, event)


def replay(events: Iterable[dict[str, Any]], state: dict[str, Any] | None = None) -> dict[str, Any] | None:
    for event in events:
        state = apply(state, event)
    return state


def states(events: Iterable[dict[str, Any]],
           state: dict[str, Any] | None = None) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Each event with the state right after it."""
    for event in events:
        state = apply(state, event)
        yield event, state


def public_state(state: dict[str, Any]) -> dict[str, Any]:
    """The fields as they were, plus ``deleted``: history stays readable after a delete."""
    return {name: value for name, value in state.items() if name != "deleted"} | {
        "deleted": bool(state.get("deleted", False))
    }


def state_at_event(state: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    """The flat answer to "what was it at time t": fields, ``version``, ``as_of``, ``as_of_event_id``."""
    return public_state(state) | {
        "version": last["sequence"],
        "as_of": last["timestamp"],
        "as_of_event_id": last["event_id"],
    }


def differences(live: dict[str, Any], folded: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Fields whose live value differs from the log's: ``{name: {"live": …, "log": …}}``."""
    names = dict.fromkeys([*folded, *live])
    return {
        name: {"live": live.get(name), "log": folded.get(name)}
        for name in names
        if live.get(name) != folded.get(name)
    }
