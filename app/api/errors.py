"""Every failure as RFC 9457 problem+json.

The body answered is kept in ``g.problem`` for after-request hooks
(``rejections`` records refused entity changes from it).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, g, json, request
from werkzeug.exceptions import HTTPException

from app.domain.errors import DomainError
from app.services import health

log = logging.getLogger(__name__)

PROBLEM_TYPE = "urn:orchestration:problem:{}"
SLUGS = {
    400: "malformed-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 409: "conflict", 413: "payload-too-large",
    422: "validation-error", 429: "too-many-requests", 500: "internal-error", 503: "unavailable",
}


def problem(status: int, title: str, detail: str, errors: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE.format(SLUGS.get(status, str(status))),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    g.problem = body
    return response


def flatten_messages(messages: Any) -> dict[str, list[str]]:
    """webargs nests by location (``json``, ``query``); callers want ``{field: [message]}``."""
    flat: dict[str, list[str]] = {}
    if not isinstance(messages, dict):
        return {"_schema": [str(messages)]}
    for location, per_field in messages.items():
        if location not in ("json", "query", "headers", "form", "view_args") or not isinstance(per_field, dict):
            flat[str(location)] = _as_list(per_field)
            continue
        for name, value in per_field.items():
            flat.setdefault(str(name), []).extend(_as_list(value))
    return flat


def _as_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) if not isinstance(v, dict) else json.dumps(v) for v in value]
    if isinstance(value, dict):
        return [f"{k}: {'; '.join(_as_list(v))}" for k, v in value.items()]
    return [str(value)]


def handle_http(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = None
    if "messages" in data or "errors" in data:
        errors = flatten_messages(data.get("errors") or data.get("messages"))
    detail = {
        400: "The body is not valid JSON.",
        413: f"The body is larger than the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes.",
        422: "The request failed validation; see errors.",
    }.get(status, error.description or error.name)
    headers = dict(data.get("headers") or {})
    headers.update({k: v for k, v in error.get_headers() if k in ("Allow", "Retry-After")})
    return problem(status, error.name, detail, errors, headers)


def handle_domain(error: DomainError) -> Response:
    return problem(error.status, error.title, error.detail, error.errors)


def handle_unexpected(error: Exception) -> Response:
    """A database that cannot be reached is a 503 to retry; anything else is a bug (500)."""
    if health.database_unreachable(error):
        log.warning("database unavailable: %s", getattr(error, "orig", error))
        return problem(503, "Service Unavailable", "The database is unreachable; retry shortly.",
                       headers={"Retry-After": "5"})
    log.exception("unhandled error", exc_info=error)
    return problem(500, "Internal Server Error", "An unexpected error occurred; it has been logged.")


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(DomainError, handle_domain)
    app.register_error_handler(Exception, handle_unexpected)
