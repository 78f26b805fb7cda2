"""What a change knows about who asked for it and within which workflow."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.domain.errors import Conflict
from app.store.event_store import EventMeta


@dataclass(frozen=True)
class ChangeContext:
    """Carried from the request (or the automation run) into the events it causes."""

    actor: str
    session_key: str | None = None
    correlation_chain: tuple[str, ...] = field(default_factory=tuple)
    causation_id: str | None = None
    causation_depth: int = 0
    expected_version: int | None = None
    trigger_rules: bool = True

    def meta(self) -> EventMeta:
        return EventMeta(
            actor=self.actor,
            session_key=self.session_key,
            correlation_chain=self.correlation_chain,
            causation_id=self.causation_id,
            causation_depth=self.causation_depth,
            trigger_rules=self.trigger_rules,
        )

    def check_version(self, version: int) -> None:
        """Optimistic concurrency: a stale If-Match/version is a conflict, before any write."""
        if self.expected_version is not None and self.expected_version != version:
            raise Conflict(
                f"version mismatch: expected {self.expected_version}, current is {version}",
                {"version": [f"current version is {version}"]},
            )
