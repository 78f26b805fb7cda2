"""Replaying streams: the state after each event, in the shape callers see."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from app.domain.fold import apply_event as apply
from app.domain.fold import fold as replay

__all__ = ["apply", "differences", "public_state", "replay", "state_at_event", "states"]


Resume = Callable[[int], "dict[str, Any] | None"]


def states(events: Iterable[dict[str, Any]], state: dict[str, Any] | None = None, last: int = 0,
           resume: Resume | None = None) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Each event of one stream with the state right after it, folding on from
    ``state`` (the state after sequence ``last``).

    Where sequences are missing (a purged stretch), ``resume(sequence)`` gives
    the state after the last missing one, when it is known.
    """
    for event in events:
        sequence = event.get("sequence")
        if resume is not None and sequence is not None and sequence > last + 1:
            state = resume(sequence - 1) or state
        state = apply(state, event)
        last = sequence if sequence is not None else last
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
