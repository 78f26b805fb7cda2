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
from app.domain.actors import by_actor_kind
from app.domain.clock import Clock, iso
from app.domain.event_filter import EventFilter
from app.store import rollups
from app.store.uow import UnitOfWork

BREAKDOWNS = {"by_type": "type", "by_actor": "actor", "by_entity_type": "entity_type", "by_day": "day"}
STAT_KEYS = ("day", "type", "actor", "entity_type")


def stats(flt: EventFilter, uow: UnitOfWork) -> dict[str, Any]:
    """Totals over ``[from, to)``; open bounds mean all time on that side.

    Each breakdown is counted on its own (``rollups.marginals``): what is read back
    is bounded by the days, types, actors and entity types there are, never by
    their combinations.
    """
    with uow:
        found = rollups.marginals(uow.session, flt, STAT_KEYS)
    result: dict[str, Any] = {"total": sum(found["day"].values())}
    for name, key in BREAKDOWNS.items():
        result[name] = dict(sorted(found[key].items()))
    result["by_actor_kind"] = by_actor_kind(result["by_actor"])  # exact: each actor has one kind
    return result


def timeline(flt: EventFilter, unit: str, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """Every bucket of the window, empty ones too; edge buckets count only ``[from, to)``."""
    start, end = buckets.timeline_window(flt.start, flt.end, unit, clock())
    flt = dataclasses.replace(flt, start=start, end=end)
    with uow:
        found = rollups.counts(uow.session, flt, (unit, "type"))
    by_bucket = {buckets.label(s, unit): (s, Counter[str]()) for s in buckets.bucket_starts(start, end, unit)}
    for (label, event_type), n in found.items():
        by_bucket[label][1][event_type] += n
    return {
        "bucket": unit,
        "from": iso(start),
        "to": iso(end),
        "buckets": [
            {"start": iso(s), "count": sum(c.values()), "by_type": dict(sorted(c.items()))}
            for s, c in by_bucket.values()
        ],
    }
