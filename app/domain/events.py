"""The event catalogue and the diff that turns a change into granular events."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.domain.stream_types import ENTITY_TYPES

PREFIX = "orchestration"

# Field -> granular event suffix, per entity (declared with the stream types); others go to ".updated".
GRANULAR_FIELDS: dict[str, dict[str, str]] = {name: dict(t.granular) for name, t in ENTITY_TYPES.items()}
# The order events of one request take, so sequences are deterministic.
SUFFIX_ORDER = (
    "status_changed",
    "blocked",
    "assigned",
    "priority_changed",
    "progress_updated",
    "metadata_updated",
    "updated",
)
EXTERNAL_TYPE_PREFIXES = ("orchestration.session.", "orchestration.context.", "custom.")
EXTERNAL_TYPE_PATTERNS = ("orchestration.session.*", "orchestration.context.*", "custom.*")
# Every event type: dot-separated lowercase segments, at least two (``custom.deployed``).
# Matched with ``fullmatch`` (``$`` alone would accept a final newline).
EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
# A type filter or rule trigger: an exact type, or one or more segments then ``.*``.
TYPE_FILTER_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*|(\.[a-z0-9_]+))$")

CONTEXT_ASSEMBLED = "orchestration.context.assembled"
NOTIFICATION_CREATED = "orchestration.notification.created"
ALERT_RAISED = "orchestration.alert.raised"
RULE_FAILED = "orchestration.automation.rule_failed"
TOKEN_CREATED = "orchestration.token.created"
TOKEN_REVOKED = "orchestration.token.revoked"
SESSION_REVERTED = "orchestration.session.reverted"


def event_type(entity_type: str, suffix: str) -> str:
    return f"{PREFIX}.{entity_type}.{suffix}"


@dataclass(frozen=True)
class PlannedEvent:
    """An event decided by the domain, before the store gives it a place."""

    type: str
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    event_id: str | None = None


def change(before: Any, after: Any) -> dict[str, Any]:
    return {"before": before, "after": after}


def created_event(entity_type: str, state: dict[str, Any]) -> PlannedEvent:
    """The full initial state as ``after`` values."""
    changes = {name: change(None, value) for name, value in state.items()}
    return PlannedEvent(event_type(entity_type, "created"), changes)


def deleted_event(entity_type: str, state: dict[str, Any]) -> PlannedEvent:
    """The final state as ``before`` values."""
    changes = {name: change(value, None) for name, value in state.items()}
    return PlannedEvent(event_type(entity_type, "deleted"), changes)


def granular_events(
    entity_type: str, before: dict[str, Any], after: dict[str, Any]
) -> list[PlannedEvent]:
    """One event per granular type that applies; nothing when nothing changed."""
    granular = GRANULAR_FIELDS.get(entity_type, {})
    by_suffix: dict[str, dict[str, dict[str, Any]]] = {}
    for name, new in after.items():
        old = before.get(name)
        if old == new:
            continue
        suffix = granular.get(name, "updated")
        by_suffix.setdefault(suffix, {})[name] = change(old, new)
    if entity_type == "task" and "status_changed" in by_suffix and after["status"] == "blocked":
        by_suffix["blocked"] = {}
    return [
        PlannedEvent(event_type(entity_type, suffix), by_suffix[suffix])
        for suffix in SUFFIX_ORDER
        if suffix in by_suffix
    ]


# The session lifecycle is written only by the session endpoints that own it (a revert too);
# POST /events may add other orchestration.session.* types (notes, heartbeats) to a session's stream.
OWNED_EXTERNAL_TYPES = frozenset(
    f"{PREFIX}.session.{suffix}" for suffix in ("started", "resumed", "ended", "reverted")
)


def is_event_type(name: str) -> bool:
    return EVENT_TYPE_PATTERN.fullmatch(name) is not None


def is_external_type(name: str) -> bool:
    """What ``POST /events`` may record: the allowed prefixes, the grammar, not a lifecycle type."""
    return name.startswith(EXTERNAL_TYPE_PREFIXES) and is_event_type(name) and name not in OWNED_EXTERNAL_TYPES


def type_matches(pattern: str, name: str) -> bool:
    """``pattern`` is an exact type or a prefix ending in ``.*``."""
    if pattern.endswith(".*"):
        return name.startswith(pattern[:-1])
    return name == pattern
