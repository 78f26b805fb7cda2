"""Root-level endpoints for load balancers and Prometheus: ``/livez``, ``/readyz``, ``/metrics``.

No token: they reveal no data (bind ``/metrics`` to a private interface in
production, or filter it at the proxy).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint

from app import metrics
from app.api.context import read_uow, runtime
from app.services import health as health_service

blp = Blueprint("ops", __name__, url_prefix="/", description="Probes and metrics for operators.")
TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}


@blp.route("/livez", methods=["GET"])
@blp.response(200)
@blp.doc(security=[])
def livez() -> Any:
    """The process is up and answering; it checks nothing else (restart it when this fails)."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.response(200)
@blp.alt_response(503, description="Events cannot be recorded: take this instance out of rotation.")
@blp.doc(security=[])
def readyz() -> Any:
    """Can this process record events now? A write transaction is opened and rolled back."""
    database = health_service.can_record(runtime().uow())
    if database["status"] != health_service.OK:
        return {"status": health_service.UNAVAILABLE, "database": database}, 503, {"Retry-After": "5"}
    return {"status": "ok", "database": database}


@blp.route("/metrics", methods=["GET"])
@blp.doc(security=[], responses={"200": {"description": "Prometheus text exposition format.", **TEXT}})
def prometheus_metrics() -> Response:
    """Every process's counters and histograms (multiprocess mode), plus database gauges."""
    body, content_type = metrics.scrape(_state(), runtime().settings.metrics_dir)
    return Response(body, content_type=content_type)


def _state() -> metrics.StateCollector:
    """One cached collector per app, reading the database at most every few seconds."""
    found = current_app.extensions.get("orchestration_metrics_state")
    if found is None:
        found = metrics.StateCollector(partial(health_service.metrics_state, read_uow, runtime().clock))
        current_app.extensions["orchestration_metrics_state"] = found
    return found
