"""Health that tells the truth: database, broker and outbox lag, judged separately.

Events that cannot be recorded make the service unavailable (503); a broker
that is down, or a dispatch older than the threshold, only makes it degraded
(200): events are still recorded and the outbox delivers them later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.domain.clock import Clock
from app.services import outbox
from app.store import observability
from app.store.uow import UnitOfWork

UNAVAILABLE, DEGRADED, OK = "unavailable", "degraded", "ok"


@dataclass(frozen=True)
class Probes:
    """What health needs from the process's wiring; the broker check is the relay's."""

    uow: Callable[[], UnitOfWork]
    read_uow: Callable[[], UnitOfWork]
    broker: Callable[[], dict[str, Any]]
    clock: Clock
    max_outbox_age: float


def can_record(uow: UnitOfWork) -> dict[str, Any]:
    """Can events be recorded now? A write transaction is opened and rolled back (never committed)."""
    try:
        with uow:
            uow.health.begin_write()
        return {"status": OK}
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot record events"
        return {"status": UNAVAILABLE, "error": type(exc).__name__}


def database_unreachable(error: BaseException) -> bool:
    """Whether a failure means the database is down (answer 503 and retry) rather than a bug (500)."""
    return observability.unreachable(error)


def report(probes: Probes) -> dict[str, Any]:
    """The health body; ``status`` is ``ok``, ``degraded`` or ``unavailable``."""
    database = can_record(probes.uow())
    broker = probes.broker()
    if database["status"] != OK:
        return {"status": UNAVAILABLE, "database": database, "broker": broker, "outbox": None}
    lag = outbox.backlog(probes.read_uow(), probes.clock)
    lagging = lag["oldest_pending_age_seconds"] > probes.max_outbox_age
    lag = {**lag, "status": "lagging" if lagging else OK, "max_age_seconds": probes.max_outbox_age}
    status = OK if broker["status"] == OK and not lagging else DEGRADED
    return {"status": status, "database": database, "broker": broker, "outbox": lag}


def metrics_state(read_uow: Callable[[], UnitOfWork], clock: Clock) -> dict[str, Any]:
    """The database gauges of ``/metrics``: outbox lag and the events table's size."""
    lag = outbox.backlog(read_uow(), clock)
    uow = read_uow()
    with uow:
        table = uow.health.event_table_stats()
    return {"outbox_pending": lag["pending"], "outbox_oldest_age": lag["oldest_pending_age_seconds"], **table}
