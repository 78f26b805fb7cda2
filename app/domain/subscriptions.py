"""What a live-stream subscriber asked to see, decided on the envelope alone.

Channels are named as the seed names them: ``orchestration.<entity type>.<id
or code>``; the last part may be ``*`` (every entity of that type), and
``orchestration.*`` means everything. A subscription matches an event when
the event is on one of its channels (or it named none) and passes every
``/events``-style filter it gave. Pure functions, so the hub can test every
event against every subscriber without touching the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.domain.actors import actor_kind
from app.domain.errors import DomainError, Invalid

CHANNEL = re.compile(r"^orchestration\.(?:\*|([a-z][a-z0-9_]{0,63})\.(\*|[^\s]{1,128}))$")


@dataclass(frozen=True)
class Channel:
    entity_type: str | None  # None: every entity type
    key: str | None  # None: every entity of the type; else a numeric id or a code

    def matches(self, entity: dict[str, Any]) -> bool:
        if self.entity_type is not None and entity.get("type") != self.entity_type:
            return False
        if self.key is None:
            return True
        return self.key == entity.get("code") or self.key == str(entity.get("id"))


def parse_channel(text: str) -> Channel:
    match = CHANNEL.match(text)
    if not match:
        raise Invalid("a channel looks like orchestration.task.TASK-001, orchestration.task.7 or "
                      "orchestration.task.*", {"channel": [f"not a channel: {text!r}"]})
    entity_type, key = match.group(1), match.group(2)
    return Channel(entity_type, None if key in (None, "*") else key)


def type_matches(pattern: str, event_type: str) -> bool:
    """An exact type, or a prefix ending in ``.*`` (as the ``/events`` filter)."""
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern


@dataclass(frozen=True)
class Subscription:
    """Channels (OR) and filters (AND); empty values filter nothing, as in ``/events``."""

    channels: tuple[Channel, ...] = ()
    type: str | None = None
    entity_type: str | None = None
    entity_code: str | None = None
    actor: str | None = None
    actor_kind: str | None = None
    session_key: str | None = None
    correlation_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    include_archived: bool = False

    def matches(self, event: dict[str, Any]) -> bool:
        entity = event["entity"]
        if self.channels and not any(c.matches(entity) for c in self.channels):
            return False
        return self._filters_pass(event) and self._time_passes(event)

    def _filters_pass(self, event: dict[str, Any]) -> bool:
        entity = event["entity"]
        checks = (
            not self.type or type_matches(self.type, event["type"]),
            not self.entity_type or entity.get("type") == self.entity_type,
            not self.entity_code or entity.get("code") == self.entity_code,
            not self.actor or event.get("actor") == self.actor,
            not self.actor_kind or actor_kind(event.get("actor")) == self.actor_kind,
            not self.session_key or event.get("session_key") == self.session_key,
            not self.correlation_id or self.correlation_id == event.get("correlation_id")
            or self.correlation_id in (event.get("correlation_chain") or ()),
            self.include_archived or event.get("archived_at") is None,
        )
        return all(checks)

    def _time_passes(self, event: dict[str, Any]) -> bool:
        if self.start is None and self.end is None:
            return True
        moment = datetime.fromisoformat(event["timestamp"])
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)


class TooManyStreams(DomainError):
    """The token already holds as many open streams as it may (429)."""

    status = 429
    title = "Too Many Requests"
