"""Health for people and monitors: database, broker and outbox lag, each with its own status."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask_smorest import Blueprint

from app.api.context import read_uow, runtime
from app.relay import broker_status
from app.services import health as health_service

blp = Blueprint("health", __name__, url_prefix="/api/orchestration", description="Service health.")


def probes() -> health_service.Probes:
    rt = runtime()
    return health_service.Probes(uow=rt.uow, read_uow=read_uow, broker=partial(broker_status, rt.settings),
                                 clock=rt.clock, max_outbox_age=rt.settings.health_max_outbox_age)


@blp.route("/health", methods=["GET"])
@blp.response(200)
@blp.alt_response(503, description="Events cannot be recorded (database unreachable or read-only).")
@blp.doc(security=[])
def health() -> Any:
    """No auth. 503 (with ``Retry-After``) when events cannot be recorded.

    200 ``"degraded"`` when the broker is down or the oldest pending dispatch
    is older than ``ORCH_HEALTH_MAX_OUTBOX_AGE`` seconds: events are still
    recorded and the outbox delivers them to the rules once workers catch up.
    """
    body = health_service.report(probes())
    if body["status"] == health_service.UNAVAILABLE:
        return body, 503, {"Retry-After": "5"}
    return body
