"""Timeline and statistics over the log: exact, and as fast for a year as for an hour.

The counting strategy (rollups for whole hours, the raw log for the edges and
for filters rollups do not carry) lives in ``app.store.rollups``; this module
turns counts into the two answers callers see.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from app.domain import buckets
from app.domain.clock import Clock, iso
from app.store import rollups
from app.store.event_queries import EventFilter
from app.store.uow import UnitOfWork

STAT_GROUPS = {"by_type": "type", "by_actor": "actor", "by_entity_type": "entity_type", "by_day": "day"}


def stats(flt: EventFilter, uow: UnitOfWork) -> dict[str, Any]:
    """Totals over ``[from, to)``; open bounds mean all time on that side."""
    with uow:
        groups = {name: rollups.counts(uow.session, flt, (key,)) for name, key in STAT_GROUPS.items()}
    result: dict[str, Any] = {"total": sum(groups["by_type"].values())}
    for name, found in groups.items():
        result[name] = {key[0]: n for key, n in sorted(found.items())}
    return result


def timeline(flt: EventFilter, unit: str, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """Every bucket of the window, empty ones too; edge buckets count only ``[from, to)``."""
    start, end = buckets.timeline_window(flt.start, flt.end, unit, clock())
    flt = dataclasses.replace(flt, start=start, end=end)
    with uow:
        found = rollups.counts(uow.session, flt, (unit, "type"))
    by_bucket: dict[Any, Counter[str]] = {s: Counter() for s in buckets.bucket_starts(start, end, unit)}
    for (label, event_type), n in found.items():
        by_bucket[buckets.label_start(label, unit)][event_type] += n
    return {
        "bucket": unit,
        "from": iso(start),
        "to": iso(end),
        "buckets": [
            {"start": iso(s), "count": sum(c.values()), "by_type": dict(sorted(c.items()))}
            for s, c in by_bucket.items()
        ],
    }
