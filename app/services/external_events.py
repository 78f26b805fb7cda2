"""``POST /events``: events from outside, on a sprint, task or session stream."""

from __future__ import annotations

from typing import Any

from app.domain import events as catalogue
from app.domain.changes import ChangeContext
from app.domain.clock import Clock
from app.domain.errors import Conflict, Invalid, NotFound
from app.store.errors import DuplicateRow
from app.store.event_store import envelope
from app.store.uow import UnitOfWork


def record(body: dict[str, Any], ctx: ChangeContext, uow: UnitOfWork,
           clock: Clock) -> tuple[dict[str, Any], bool]:
    """Record one event; returns (envelope, created). A repeated ``event_id`` records nothing."""
    if not catalogue.is_external_type(body["type"]):
        owned = ", ".join(sorted(catalogue.OWNED_EXTERNAL_TYPES))
        raise Invalid(
            f"type {body['type']!r} cannot be recorded from outside",
            {"type": [f"allowed: {', '.join(catalogue.EXTERNAL_TYPE_PATTERNS)}, except {owned} "
                      "(only the session endpoints write those)"]},
        )
    entity_type, code = _stream_of(body, ctx)
    event_id = body.get("event_id")
    try:
        with uow:
            if event_id and (existing := uow.events.first_with_event_id(event_id)) is not None:
                return _same_request(existing, body, entity_type, code), False
            rows = uow.streams[entity_type]
            try:
                row = rows.get(code, lock=True, deleted=entity_type == "session")
            except NotFound as missing:
                field = "entity_code" if body.get("entity_type") else "session_key"
                raise Invalid(missing.detail, {field: [missing.detail]}) from None
            planned = catalogue.PlannedEvent(body["type"], data=body.get("data") or {}, event_id=event_id)
            [event] = uow.events.append_to_stream(rows.ref(row), [planned], ctx, clock())
            uow.commit()
            return envelope(event), True
    except DuplicateRow:
        if event_id:
            with uow:
                found = uow.events.first_with_event_id(event_id)
            if found is not None:
                return _same_request(found, body, entity_type, code), False
        raise


def _same_request(existing: dict[str, Any], body: dict[str, Any], entity_type: str, code: str) -> dict[str, Any]:
    """An ``event_id`` is an idempotency key: the same request again is answered with the first
    event (200); the key reused for another request (type, stream or data) is a conflict."""
    differs = [name for name, same in (
        ("type", existing["type"] == body["type"]),
        ("entity", (existing["entity"]["type"], existing["entity"]["code"]) == (entity_type, code)),
        ("data", existing["data"] == (body.get("data") or {})),
    ) if not same]
    if differs:
        raise Conflict(f"event_id {existing['event_id']} was already used for a different request",
                       {"event_id": [f"already recorded with a different {', '.join(differs)}"]})
    return existing


def _stream_of(body: dict[str, Any], ctx: ChangeContext) -> tuple[str, str]:
    if body.get("entity_type"):
        if body.get("session_key"):
            raise Invalid("session_key names a session's stream; with entity_type, file the event in a "
                          "session with X-Session-Key", {"session_key": ["not allowed with entity_type"]})
        if not body.get("entity_code"):
            raise Invalid("entity_code is required with entity_type", {"entity_code": ["required"]})
        return body["entity_type"], body["entity_code"]
    if body.get("entity_code"):
        raise Invalid("entity_type is required with entity_code", {"entity_type": ["required"]})
    key = body.get("session_key") or ctx.session_key
    if not key:
        raise Invalid(
            "name the stream: entity_type + entity_code, or a session_key (body or X-Session-Key)",
            {"entity_type": ["required without session_key"], "session_key": ["required without entity_type"]},
        )
    return "session", key
