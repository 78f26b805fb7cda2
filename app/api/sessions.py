"""Agent session endpoints."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_smorest import Blueprint

from app.api import schemas as s
from app.api.auth import auth
from app.api.context import change_context, read_uow, runtime, uow
from app.domain.paging import INT_ID_MAX, decode_cursor, page_body
from app.services import sessions

blp = Blueprint("sessions", __name__, url_prefix="/api/orchestration/sessions",
                description="Agent sessions: the context changes belong to.")


@blp.route("", methods=["POST"])
@auth.login_required(role="writer")
@blp.arguments(s.SessionStart)
@blp.response(201, s.SessionOut)
def start_session(data: dict[str, Any]) -> Any:
    """Start a session (``orchestration.session.started``); a key is generated when not given."""
    body = sessions.start(data, change_context(), uow(), runtime().clock)
    return body, 201, {"Location": url_for("sessions.get_session", key=body["session_key"])}


@blp.route("", methods=["GET"])
@auth.login_required(role="reader")
@blp.arguments(s.SessionQuery, location="query")
@blp.response(200, s.page_of(s.SessionOut))
def list_sessions(args: dict[str, Any]) -> dict[str, Any]:
    """Sessions, oldest first."""
    chosen: dict[str, Any] = {k: args[k] for k in ("agent_id", "status", "sprint_code") if k in args}
    items, last = sessions.list_page(chosen, decode_cursor(args["after"], INT_ID_MAX), args["limit"], read_uow())
    return page_body(items, last)


@blp.route("/<key>", methods=["GET"])
@auth.login_required(role="reader")
@blp.response(200, s.SessionOut)
def get_session(key: str) -> dict[str, Any]:
    return sessions.get(key, read_uow())


@blp.route("/<key>/resume", methods=["POST"])
@auth.login_required(role="writer")
@blp.response(200, s.SessionOut)
def resume_session(key: str) -> dict[str, Any]:
    """Active or ended sessions become active again."""
    return sessions.resume(key, change_context(), uow(), runtime().clock)


@blp.route("/<key>/end", methods=["POST"])
@auth.login_required(role="writer")
@blp.response(200, s.SessionOut)
def end_session(key: str) -> dict[str, Any]:
    """Ending an ended session is a conflict (409)."""
    return sessions.end(key, change_context(), uow(), runtime().clock)


@blp.route("/<key>/context", methods=["POST"])
@auth.login_required(role="writer")
@blp.arguments(s.ContextBody)
@blp.response(201, s.EventOut)
def record_context(body: dict[str, Any], key: str) -> dict[str, Any]:
    """The context broker assembled context: ``orchestration.context.assembled``."""
    return sessions.record_context(key, body["data"], change_context(), uow(), runtime().clock)
