"""HTTP layer: flask-smorest blueprints over the services."""

from __future__ import annotations

import uuid

from flask import Flask, Response, g, request
from flask_smorest import Api

from app.api import errors, guards, observe, rejections
from app.api.schemas import Problem


class OrchestrationApi(Api):  # type: ignore[misc]  # flask-smorest ships no types: Api is Any
    """flask-smorest with its error handler replaced by problem+json."""

    ERROR_SCHEMA = Problem

    def _register_error_handlers(self) -> None:
        errors.register(self._app)


def init_api(app: Flask) -> None:
    app.config.update(
        API_TITLE="Orchestration service",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",  # served from the swagger-ui-bundle package (app/api/console.py)
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
            "info": {"description": "Sprints, tasks and agent sessions; every change is an event."},
        },
    )
    app.url_map.converters.update(int=guards.IntId, bigint=guards.BigIntId)
    api = OrchestrationApi(app)
    api.register_converter(guards.IntId, guards.id_schema)
    api.register_converter(guards.BigIntId, guards.id_schema)
    from app.api import (
        aggregation,
        auth,
        console,
        events,
        health,
        ops,
        replay,
        rules,
        session_forensics,
        sessions,
        stream,
        tokens,
        tracked,
    )

    for blp in (tracked.sprints, tracked.tasks, sessions.blp, events.blp, aggregation.blp, replay.blp, rules.blp, health.blp,
                ops.blp):
        api.register_blueprint(blp)
    api.register_blueprint(tokens.blp)
    api.register_blueprint(stream.blp)
    api.register_blueprint(console.blp)
    app.register_blueprint(console.assets)
    api.register_blueprint(session_forensics.blp)
    _document_errors_as_problems(api)
    auth.document_rate_limit(api)
    app.before_request(_bind_request_ids)
    observe.init(app)
    app.before_request(guards.refuse_oversized_bodies)
    app.after_request(_echo_request_ids)
    rejections.init(app)


def _document_errors_as_problems(api: Api) -> None:
    """flask-smorest documents error responses as application/json; ours are problem+json."""
    for registry in (api.spec.components.responses, api.spec.components.responses_lazy):
        for response in registry.values():
            content = response.get("content", {})
            if "application/json" in content:
                content["application/problem+json"] = content.pop("application/json")


def _bind_request_ids() -> None:
    g.request_id = str(uuid.uuid4())
    given = request.headers.get("X-Correlation-ID", "")
    try:
        g.correlation_id = str(uuid.UUID(given))
    except ValueError:
        g.correlation_id = str(uuid.uuid4())


def _echo_request_ids(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id") or str(uuid.uuid4())
    response.headers["X-Correlation-ID"] = g.get("correlation_id") or str(uuid.uuid4())
    return response
