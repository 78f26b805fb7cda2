"""Session forensics, pure: net changes, activity per minute, and the revert plan of one entity.

Events here are light dicts read from the log: ``id``, ``event_id``, ``type``,
``entity`` (type/id/code), ``sequence``, ``actor``, ``timestamp`` (datetime),
``causation_id``, ``session_key``, ``changes``, ``data``.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.domain.clock import iso
from app.domain.errors import Invalid
from app.domain.events import SESSION_REVERTED
from app.domain.paging import BIGINT_ID_MAX
from app.domain.stream_types import TRACKED

__all__ = ["SESSION_REVERTED", "EntityPlan", "net_changes", "plan_entity", "prune_compensations"]

REVERT_REASON = "session_revert"
REVERTIBLE = TRACKED
SECTIONS = ("entities", "refused", "caused", "caused_entities")

Light = Mapping[str, Any]
L = TypeVar("L", bound=Mapping[str, Any])


def net_changes(events: Iterable[Light]) -> dict[str, dict[str, Any]]:
    """Per field: its value before the first of these events changed it, and after the last.

    ``events`` are one entity's, oldest first; a field changed and changed back
    shows ``before == after``.
    """
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        for name, change in (event.get("changes") or {}).items():
            entry = found.setdefault(name, {"before": change.get("before"), "after": None, "events": 0})
            entry["after"] = change.get("after")
            entry["events"] += 1
    return found


def is_compensation(event: Light, session_key: str) -> bool:
    """An event a revert of this session wrote (never part of what the session did or set off)."""
    data = event.get("data") or {}
    return data.get("reason") == REVERT_REASON and data.get("session_key") == session_key


def prune_compensations(caused: Sequence[L], session_key: str) -> list[L]:
    """Caused events minus a revert's compensations and whatever those set off in turn.

    ``caused`` must list every parent before its children (the causation tree by depth).
    """
    dropped: set[str] = set()
    kept = []
    for event in caused:
        if is_compensation(event, session_key) or event.get("causation_id") in dropped:
            dropped.add(event["event_id"])
        else:
            kept.append(event)
    return kept


@dataclass
class EntityPlan:
    """What a revert does to one entity: the patch, the conflicts, or why it leaves it alone."""

    patch: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None


def plan_entity(revert_set: Sequence[Light], later: Sequence[Light], live: Mapping[str, Any] | None,
                *, force: bool) -> EntityPlan:
    """Put each field the revert set changed back to its value before the set's first change of it.

    ``later`` holds the entity's other stream events after the set's first one
    (neither the set's nor a revert's): a field any of them changed is a
    conflict, left alone unless ``force``. A field already at its target needs
    nothing.
    """
    kinds = {e["type"].rsplit(".", 1)[-1] for e in revert_set}
    if "created" in kinds:
        return EntityPlan(skipped="created in the session: revert does not delete it")
    if live is None or "deleted" in kinds:
        return EntityPlan(skipped="deleted: a deleted entity accepts no change")
    plan = EntityPlan()
    for name, change in net_changes(revert_set).items():
        target, current = change["before"], live.get(name)
        if current == target:
            continue
        others = [e for e in later if name in (e.get("changes") or {})]
        if others:
            plan.conflicts.append({"field": name, "current": current, "target": target, "forced": force,
                                   "changed_by": [_who(e) for e in others]})
            if not force:
                continue
        plan.patch[name] = target
        plan.fields[name] = {"current": current, "target": target}
    return plan


def _who(event: Light) -> dict[str, Any]:
    return {"id": event["id"], "event_id": event["event_id"], "actor": event["actor"],
            "timestamp": iso(event["timestamp"])}


def count_by(events: Iterable[Light], key: str) -> dict[str, int]:
    return dict(sorted(Counter(str(e[key]) for e in events).items()))


# ---- report cursors: which list, the snapshot bound, and the last key of the page ----


def encode_cursor(section: str, upto: int, last: int) -> str:
    return base64.urlsafe_b64encode(f"r1:{section}:{upto}:{last}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[str, int, int] | None:
    """(section, upto, last) from a cursor this service issued; None for no cursor."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, section, upto, last = raw.split(":")
        if version != "r1" or section not in SECTIONS or not (upto.isdigit() and last.isdigit()):
            raise ValueError(raw)
        if max(int(upto), int(last)) > BIGINT_ID_MAX:
            raise ValueError(raw)
        return section, int(upto), int(last)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid("the cursor is not one this service issued", {"after": ["invalid cursor"]}) from None
