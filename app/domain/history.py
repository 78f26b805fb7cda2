"""Replaying streams: the state after each event, in the shape callers see."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from app.domain.fold import apply_event as apply
from app.domain.fold import fold as replay

__all__ = ["apply", "differences", "public_state", "replay", "state_at_event", "states"]


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
