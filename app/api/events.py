"""Event log endpoints: record external events, list and follow the log."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_smorest import Blueprint

from app.api import schemas as s
from app.api.auth import auth
from app.api.context import change_context, read_uow, runtime, uow
from app.domain.event_filter import EventFilter
from app.domain.paging import decode_cursor, page_body
from app.services import external_events, queries

blp = Blueprint("events", __name__, url_prefix="/api/orchestration/events",
                description="The append-only event log.")
EventPage = s.page_of(s.EventOut)
FILTER_FIELDS = ("type", "entity_type", "entity_code", "actor", "session_key", "start", "end", "include_archived",
                 "actor_kind")


def event_filter(args: dict[str, Any]) -> EventFilter:
    return EventFilter(**{k: args[k] for k in FILTER_FIELDS if k in args})


@blp.route("", methods=["POST"])
@auth.login_required(role="writer")
@blp.arguments(s.EventCreate)
@blp.response(201, s.EventOut, description="The event was recorded.")
@blp.alt_response(200, schema=s.EventOut, description="This `event_id` was already recorded by the same request "
                  "(type, stream and data): the first event, nothing recorded again.")
@blp.alt_response(409, response="CONFLICT")  # the event_id was already used for a different request
def record_event(body: dict[str, Any]) -> Any:
    """Record ``orchestration.session.*`` (but not ``started``/``resumed``/``ended``, which only the session
    endpoints write), ``orchestration.context.*`` or ``custom.*``. Types are dot-separated lowercase segments.
    ``event_id`` is an idempotency key: the same request again answers 200 with the first event; the key
    reused for a different request is 409. ``session_key`` names a session stream and cannot be combined
    with ``entity_type`` (file an entity's event in a session with ``X-Session-Key``)."""
    if "event_id" in body:
        body["event_id"] = str(body["event_id"])
    event, created = external_events.record(body, change_context(), uow(), runtime().clock)
    location = url_for("events.get_event", event_id=event["id"])
    return event, 201 if created else 200, {"Location": location}


@blp.route("", methods=["GET"])
@auth.login_required(role="reader")
@blp.arguments(s.EventQuery, location="query")
@blp.response(200, EventPage)
def list_events(args: dict[str, Any]) -> dict[str, Any]:
    """Oldest first; follow with ``after`` — an event committed late is never skipped."""
    return page_body(*queries.list_events(event_filter(args), decode_cursor(args["after"]), args["limit"], read_uow()))


@blp.route("/<bigint:event_id>", methods=["GET"])
@auth.login_required(role="reader")
@blp.response(200, s.EventOut)
def get_event(event_id: int) -> dict[str, Any]:
    return queries.get_event(event_id, read_uow())


@blp.route("/correlation/<correlation_id>", methods=["GET"])
@auth.login_required(role="reader")
@blp.arguments(s.EventQuery, location="query")
@blp.response(200, EventPage)
def correlation_events(args: dict[str, Any], correlation_id: str) -> dict[str, Any]:
    """Every event whose ``correlation_id`` is this id or whose ``correlation_chain`` holds it."""
    result = queries.by_correlation(correlation_id, event_filter(args), decode_cursor(args["after"]),
                                    args["limit"], read_uow())
    return page_body(*result)


@blp.route("/session/<key>", methods=["GET"])
@auth.login_required(role="reader")
@blp.arguments(s.EventQuery, location="query")
@blp.response(200, EventPage)
def session_events(args: dict[str, Any], key: str) -> dict[str, Any]:
    """Every event recorded in that agent session."""
    return page_body(*queries.by_session(key, event_filter(args), decode_cursor(args["after"]), args["limit"], read_uow()))


@blp.route("/entity/<entity_type>/<code>", methods=["GET"])
@auth.login_required(role="reader")
@blp.arguments(s.EntityEventQuery, location="query")
@blp.response(200, EventPage)
def entity_events(args: dict[str, Any], entity_type: str, code: str) -> dict[str, Any]:
    """The entity's stream; ``related=true`` adds its sprint or tasks and attached sessions."""
    result = queries.by_entity(entity_type, code, args["related"], event_filter(args),
                               decode_cursor(args["after"]), args["limit"], read_uow())
    return page_body(*result)
