"""Per-request observability: bound log fields, one request log line, HTTP metrics.

The request line carries ``request_id``, ``correlation_id``, ``actor``,
``route`` (the URL rule, never the raw path: no ids or query strings, so no
ticket or token), ``status`` and ``duration_ms``; every other line logged
while the request runs carries the ids too (structlog contextvars).
"""

from __future__ import annotations

import time

import structlog
from flask import Flask, Response, g, request

from app import metrics

log = structlog.get_logger("app.request")
UNMATCHED = "<unmatched>"


def init(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)


def _start() -> None:
    """Runs after the request ids are bound (``app.api._bind_request_ids``)."""
    g.started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=g.get("request_id"), correlation_id=g.get("correlation_id"))


def _finish(response: Response) -> Response:
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    principal = g.get("principal")
    actor = principal.actor if principal is not None else None
    metrics.request_observed(request.method, route, response.status_code, seconds)
    log.info("request", method=request.method, route=route, status=response.status_code,
             duration_ms=round(seconds * 1000, 2), actor=actor)
    structlog.contextvars.clear_contextvars()
    return response
