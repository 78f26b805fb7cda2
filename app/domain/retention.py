"""Retention policy arithmetic: which events leave the hot table, and when.

The boundary is exact and strict: with ``archive_after = 90d`` and a run at
instant ``now``, the cutoff is ``now - 90×24h`` and an event is eligible when
its ``timestamp < cutoff``. An event stamped exactly at the cutoff stays hot;
one stamped a microsecond earlier is archived. Kept priorities (``P0`` by
default) are held whatever the age. Purging uses the same rule with
``delete_after`` (``365d``), applied to every event of an archive file: a file
goes when its newest event is past the cutoff.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.clock import as_utc
from app.domain.stream_types import PRIORITIES
from app.domain.timeparse import parse_age

DEFAULT_ARCHIVE_AFTER = "90d"
DEFAULT_DELETE_AFTER = "365d"
DEFAULT_KEEP_PRIORITIES = ("P0",)
# Events per archive file: one file, one manifest and one short transaction each (a few
# statements per file on PostgreSQL, so larger files move rows faster).
DEFAULT_BATCH_SIZE = 10_000


@dataclass(frozen=True)
class RetentionPolicy:
    """How long events stay hot, how long archived ones are kept, and what is never archived."""

    archive_after: timedelta
    delete_after: timedelta
    keep_priorities: frozenset[str]

    @classmethod
    def from_config(cls, archive_after: str = DEFAULT_ARCHIVE_AFTER, delete_after: str = DEFAULT_DELETE_AFTER,
                    keep_priorities: Iterable[str] = DEFAULT_KEEP_PRIORITIES) -> RetentionPolicy:
        """Parse the configured ages (``90d``, ``12h``); unknown priorities are a configuration error."""
        keep = frozenset(keep_priorities)
        unknown = sorted(keep - set(PRIORITIES))
        if unknown:
            raise ValueError(f"unknown priorities to keep: {', '.join(unknown)}")
        return cls(parse_age(archive_after), parse_age(delete_after), keep)

    def archive_cutoff(self, now: datetime, older_than: str | None = None) -> datetime:
        """Events stamped strictly before this instant are old enough to archive."""
        return as_utc(now) - (parse_age(older_than) if older_than else self.archive_after)

    def purge_cutoff(self, now: datetime, older_than: str | None = None) -> datetime:
        """Archived events stamped strictly before this instant are old enough to delete."""
        return as_utc(now) - (parse_age(older_than) if older_than else self.delete_after)

    def archivable_priorities(self) -> tuple[str, ...]:
        return tuple(p for p in PRIORITIES if p not in self.keep_priorities)

    def is_archivable(self, priority: str, timestamp: datetime, cutoff: datetime) -> bool:
        return priority not in self.keep_priorities and as_utc(timestamp) < cutoff


@dataclass(frozen=True)
class PriorityTally:
    """What a dry run would do with the hot events of one priority."""

    priority: str
    archive: int
    held: int
    kept: bool


def tally(policy: RetentionPolicy, hot_counts: Mapping[tuple[str, bool], int]) -> list[PriorityTally]:
    """Per priority, from ``{(priority, older_than_cutoff): count}`` of hot events.

    A kept priority holds everything; any other holds only what is too recent.
    """
    priorities = sorted(set(PRIORITIES) | {p for p, _ in hot_counts})
    rows = []
    for priority in priorities:
        old, recent = hot_counts.get((priority, True), 0), hot_counts.get((priority, False), 0)
        kept = priority in policy.keep_priorities
        rows.append(PriorityTally(priority, 0 if kept else old, old + recent if kept else recent, kept))
    return rows


def newest_is_past(timestamps: Iterable[datetime], cutoff: datetime) -> bool:
    """A whole archive file may be purged only when every event in it is past the cutoff."""
    stamps = [as_utc(t) for t in timestamps]
    return bool(stamps) and max(stamps) < cutoff
