"""Who asked for a change, within which workflow: what every event of one change shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.domain.errors import Conflict


@dataclass(frozen=True)
class ChangeContext:
    """Carried from the request (or the automation run) into the events it causes.

    The one type for it in every layer: the event store takes it as the events'
    metadata (``EventMeta`` is another name for it).
    """

    actor: str
    session_key: str | None = None
    correlation_chain: tuple[str, ...] = field(default_factory=tuple)
    causation_id: str | None = None
    causation_depth: int = 0
    expected_version: int | None = None
    # False for compensations (undo, repair): their events start no rules unless the caller asks.
    trigger_rules: bool = True

    def meta(self) -> ChangeContext:
        """The metadata of the events: the context itself (kept for callers of the former twin type)."""
        return self

    def check_version(self, version: int) -> None:
        """Optimistic concurrency: a stale If-Match/version is a conflict, before any write."""
        if self.expected_version is not None and self.expected_version != version:
            raise Conflict(
                f"version mismatch: expected {self.expected_version}, current is {version}",
                {"version": [f"current version is {version}"]},
            )
