"""Which events could start a rule: decided once, at append time, so the others cost no message.

A rule can only fire on an event its trigger matches. The type pattern and
every condition that reads the event's own envelope (its ``changes``,
``data``, ``priority``…) are decided here, exactly as the worker would decide
them; a condition on anything else (a path this version does not know) is
assumed to hold, so the answer errs only towards evaluating an event for
nothing, never towards missing one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.domain.events import type_matches
from app.domain.rules import Condition, Trigger

# Envelope fields known before the INSERT (``id`` and ``hash`` are not: conditions on them are assumed to hold).
DECIDABLE_ROOTS = frozenset({"event_id", "type", "entity", "sequence", "actor", "timestamp", "correlation_id",
                             "correlation_chain", "causation_id", "session_key", "priority", "changes", "data",
                             "prev_hash"})


def decidable(condition: Condition) -> bool:
    if condition.op in ("changed_to", "changed_from"):
        return True  # ``status`` and ``changes.status`` both name the change
    return condition.path.split(".", 1)[0] in DECIDABLE_ROOTS


def may_trigger(triggers: Iterable[Trigger], envelope: Mapping[str, Any]) -> bool:
    """Could any of these triggers match the event? (No false negatives.)"""
    event_type = str(envelope.get("type", ""))
    return any(type_matches(t.type, event_type) and all(c.holds(envelope) for c in t.conditions if decidable(c))
               for t in triggers)
