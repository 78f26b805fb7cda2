"""``GET /events/stream`` (Server-Sent Events) and the tickets browsers open it with."""

from __future__ import annotations

import functools
import select
import socket
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, g, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api import schemas as s
from app.api.auth import auth
from app.api.context import runtime, uow
from app.api.guards import refuse_unstorable_text
from app.domain.errors import Invalid
from app.domain.paging import BIGINT_ID_MAX
from app.domain.subscriptions import Subscription, parse_channel
from app.services import stream_slots, stream_tickets, tokens
from app.services.event_stream import Follower, Hub

blp = Blueprint("stream", __name__, url_prefix="/api/orchestration/events/stream",
                description="The live event stream (Server-Sent Events).")
HUB = "orchestration_stream_hub"
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
SSE_DOC = {
    "200": {"description": "An endless `text/event-stream`: `id:` (the event's global id), `event:` (its type), "
                           "`data:` (the envelope as one line of JSON); `:` comments are heartbeats.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}}},
    "401": {"description": "no valid token or ticket", "content": PROBLEM},
    "429": {"description": "this token already holds its cap of open streams", "content": PROBLEM},
}


class StreamQuery(s.EventFilterArgs):
    channel = fields.List(fields.String(), load_default=list,
                          metadata={"description": "orchestration.<entity type>.<id or code>; repeatable; "
                                                   "`orchestration.task.*` for every task"})
    correlation_id = fields.String(validate=validate.Length(max=64))
    after = fields.Integer(validate=validate.Range(min=0, max=BIGINT_ID_MAX),
                           metadata={"description": "resume after this event id (Last-Event-ID wins)"})
    ticket = fields.String(metadata={"description": "a ticket from POST /events/stream/tickets"})


class TicketOut(Schema):
    ticket = fields.String()
    expires_at = fields.DateTime()
    expires_in = fields.Float()


def _bearer() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _caller() -> tuple[tokens.Principal, str] | None:
    """A ticket (from ``?ticket=``) or the bearer header; (principal, token hash)."""
    rt = runtime()
    ticket = request.args.get("ticket")
    if ticket:
        return stream_tickets.redeem(ticket, rt.uow(), rt.clock)
    token = _bearer()
    principal = rt.tokens.verify(token, rt.clock()) if token else None  # revocation-aware, cached
    return (principal, tokens.digest(token)) if principal and token else None


def stream_auth(view: Callable[..., Any]) -> Callable[..., Any]:
    """Every role may read the stream; who the caller is decides the cap."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        found = _caller()
        if found is None:
            return auth.auth_error_callback(401)
        g.principal, g.stream_token_hash = found
        refuse_unstorable_text()
        return view(*args, **kwargs)

    return guarded


def _hub() -> Hub:
    hub = current_app.extensions.get(HUB)
    if hub is None:
        rt = runtime()
        hub = current_app.extensions.setdefault(HUB, Hub(rt.read_uow, rt.bell, rt.settings.stream_poll_interval))
    hub.start()
    return hub  # type: ignore[no-any-return]


def _start_position(args: dict[str, Any], hub: Hub) -> int:
    header = (request.headers.get("Last-Event-ID") or "").strip()
    if header:
        digits = header.isascii() and header.isdigit() and len(header) <= len(str(BIGINT_ID_MAX))
        if not digits or int(header) > BIGINT_ID_MAX:  # length first: int() refuses 4,300+ digits with a 500
            raise Invalid("Last-Event-ID must be an event id", {"Last-Event-ID": ["not an event id"]})
        return int(header)
    return args["after"] if "after" in args else hub.tail()


def _subscription(args: dict[str, Any]) -> Subscription:
    keys = ("type", "entity_type", "entity_code", "actor", "actor_kind", "session_key", "correlation_id", "start", "end",
            "include_archived")
    channels = tuple(parse_channel(c) for c in args["channel"])
    return Subscription(channels=channels, **{k: args[k] for k in keys if k in args})


def _hung_up(sock: socket.socket | None) -> bool:
    """Has the client closed its end? Readable with nothing to read means it has."""
    if sock is None:  # not under gunicorn (tests' client): the body ends when it is closed
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


@blp.route("", methods=["GET"])
@stream_auth
@blp.arguments(StreamQuery, location="query")
@blp.doc(responses=SSE_DOC, security=[{"bearerAuth": []}, {}])
def stream(args: dict[str, Any]) -> Response:
    """Follow the log live. Starts at the tail, or exactly after ``Last-Event-ID`` / ``after``.

    Auth: ``Authorization: Bearer`` or ``?ticket=`` (single use, seconds long).
    The connection ends cleanly after ``ORCH_STREAM_MAX_SECONDS``; reconnect
    with ``Last-Event-ID`` and nothing is missed or repeated.
    """
    settings = runtime().settings
    subscription = _subscription(args)
    hub = _hub()
    position = _start_position(args, hub)
    slot = stream_slots.hold(settings.stream_slot_dir, g.stream_token_hash, settings.stream_max_per_token)
    follower = Follower(hub, subscription, position, runtime().read_uow)
    frames = follower.frames(settings.stream_heartbeat, settings.stream_max_seconds,
                             functools.partial(_hung_up, request.environ.get("gunicorn.socket")))
    body = stream_slots.released_after(slot, frames)
    response = Response(body, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(slot.release)
    return response


@blp.route("/tickets", methods=["POST"])
@auth.login_required(role="reader")
@blp.response(201, TicketOut)
def create_ticket() -> dict[str, Any]:
    """A single-use ticket for ``GET /events/stream?ticket=…``, valid for a few seconds.

    For browsers: ``EventSource`` cannot send headers, and the long-lived token
    must never appear in a URL. The stream it opens counts against this token's cap.
    """
    rt = runtime()
    token_hash = tokens.digest(_bearer() or "")
    ticket, expires = stream_tickets.issue(token_hash, rt.settings.stream_ticket_ttl, uow(), rt.clock)
    remaining = (expires - rt.clock()).total_seconds()
    return {"ticket": ticket, "expires_at": expires, "expires_in": round(max(remaining, 0.0), 3)}

