"""Replay endpoints: entity history and state at an instant, chain validation, replay."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema

from app.api import replay_schemas as rs
from app.api.auth import auth
from app.api.context import change_context, read_uow, runtime, uow
from app.domain.paging import decode_cursor, page_body
from app.services import replay as service

blp = Blueprint("replay", __name__, url_prefix="/api/orchestration",
                description="History, state at any instant, chain integrity and replay.")


def _history_view(entity_type: str, plural: str, out: type[Schema]) -> None:
    @blp.route(f"/{plural}/<code>/history", methods=["GET"], endpoint=f"{entity_type}_history")
    @auth.login_required(role="reader")
    @blp.arguments(rs.HistoryQuery, location="query")
    @blp.response(200, out)
    def view(args: dict[str, Any], code: str) -> dict[str, Any]:
        """Every state with the event that produced it, oldest first; ``?at=`` answers the one
        state at that instant (inclusive) as a flat object, 404 before the entity existed."""
        if args.get("at") is not None:
            return service.state_at(entity_type, code, args["at"], read_uow())
        items, last = service.history(entity_type, code, decode_cursor(args["after"]), args["limit"],
                                      args["include_archived"], read_uow())
        return page_body(items, last)


_history_view("sprint", "sprints", rs.SprintHistory)
_history_view("task", "tasks", rs.TaskHistory)


@blp.route("/events/correlation/<correlation_id>/validate", methods=["GET"])
@auth.login_required(role="reader")
@blp.response(200, rs.ValidationReport)
def validate_chain(correlation_id: str) -> dict[str, Any]:
    """Integrity of every stream the correlation touches, up to its last event there."""
    return service.validate_event_chain(correlation_id, read_uow())


@blp.route("/events/replay", methods=["POST"])
@auth.login_required(role="admin")
@blp.arguments(rs.ReplayBody)
@blp.response(200, rs.ReplayOut)
def replay_chain(body: dict[str, Any]) -> dict[str, Any]:
    """Validate, fold from empty state, compare with the live rows; ``dry_run: false`` repairs
    drifted sprints and tasks with compensating events (409 when the chain does not validate)."""
    dry_run = body["dry_run"]
    return service.replay_events(str(body["correlation_id"]), read_uow() if dry_run else uow(),
                                 dry_run=dry_run, ctx=change_context(), clock=runtime().clock,
                                 trigger_rules=body["trigger_rules"])
