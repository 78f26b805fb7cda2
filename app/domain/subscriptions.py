"""What a live-stream subscriber asked to see, decided on the envelope alone.

Channels are named as the seed names them: ``orchestration.<entity type>.<id
or code>``; the last part may be ``*`` (every entity of that type), and
``orchestration.*`` means everything. A subscription matches an event when
the event is on one of its channels (or it named none) and passes every
``/events``-style filter it gave (it *is* an ``EventFilter``, plus channels and
a correlation id). Pure functions, so the hub can test every
event against every subscriber without touching the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from app.domain.errors import DomainError, Invalid
from app.domain.event_filter import EventFilter
from app.domain.events import type_matches as type_matches  # where callers have always found it

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


@dataclass(frozen=True)
class Subscription(EventFilter):
    """An ``/events`` filter (AND) plus channels (OR) and a correlation id, as the stream accepts."""

    channels: tuple[Channel, ...] = ()
    correlation_id: str | None = None

    def matches(self, event: dict[str, Any]) -> bool:
        entity = event["entity"]
        if self.channels and not any(c.matches(entity) for c in self.channels):
            return False
        if self.correlation_id and self.correlation_id != event.get("correlation_id") \
                and self.correlation_id not in (event.get("correlation_chain") or ()):
            return False
        return super().matches(event)

    def log_filter(self) -> EventFilter:
        """The part the log's query can apply; channels and correlation are tested on each envelope."""
        return EventFilter(**{f.name: getattr(self, f.name) for f in fields(EventFilter)})


class TooManyStreams(DomainError):
    """The token already holds as many open streams as it may (429)."""

    status = 429
    title = "Too Many Requests"
