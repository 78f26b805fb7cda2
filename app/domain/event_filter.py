"""The filter vocabulary of every event list (CONTRACT §2, ``GET /events``), as a domain value.

One type for everyone who narrows the log: the store turns it into SQL, the
live stream tests envelopes against it (``matches``), and use cases pass it
along. Empty values filter nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.domain.actors import actor_kind as kind_of
from app.domain.events import type_matches


@dataclass(frozen=True)
class EventFilter:
    type: str | None = None
    entity_type: str | None = None
    entity_code: str | None = None
    actor: str | None = None
    session_key: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    include_archived: bool = False
    actor_kind: str | None = None

    def matches(self, event: dict[str, Any]) -> bool:
        """Whether an envelope passes every filter given (the same answer the store's query gives)."""
        entity = event["entity"]
        checks = (
            not self.type or type_matches(self.type, event["type"]),
            not self.entity_type or entity.get("type") == self.entity_type,
            not self.entity_code or entity.get("code") == self.entity_code,
            not self.actor or event.get("actor") == self.actor,
            not self.actor_kind or kind_of(event.get("actor")) == self.actor_kind,
            not self.session_key or event.get("session_key") == self.session_key,
            self.include_archived or event.get("archived_at") is None,
        )
        return all(checks) and self._time_passes(event)

    def _time_passes(self, event: dict[str, Any]) -> bool:
        if self.start is None and self.end is None:
            return True
        moment = datetime.fromisoformat(event["timestamp"])
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)
