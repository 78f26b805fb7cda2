"""Request → ChangeContext: actor, session key, correlation, expected version."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import current_app, g, request

from app.domain.entities import SESSION_KEY_PATTERN
from app.domain.errors import Invalid
from app.domain.paging import INT_ID_MAX
from app.runtime import Runtime
from app.services import sessions
from app.services.context import ChangeContext
from app.services.uow import UnitOfWork

IF_MATCH = re.compile(r'\s*(?:W/)?"?([0-9]+)"?\s*')


def runtime() -> Runtime:
    return current_app.extensions["orchestration"]  # type: ignore[no-any-return]


def uow() -> UnitOfWork:
    return runtime().uow()


def read_uow() -> UnitOfWork:
    return runtime().read_uow()


def request_correlation() -> str | None:
    """The caller's X-Correlation-ID (a UUID) or None; a bad one is a 422."""
    raw = request.headers.get("X-Correlation-ID")
    if not raw:
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise Invalid("X-Correlation-ID must be a UUID", {"X-Correlation-ID": ["not a UUID"]}) from None


# A session's own endpoints act on it whatever its state (resume an ended one).
OWN_SESSION_ENDPOINTS = frozenset({"sessions.resume_session", "sessions.end_session", "sessions.record_context"})


def session_key() -> str | None:
    """X-Session-Key: a well-formed key of an existing session that has not ended."""
    raw = request.headers.get("X-Session-Key")
    if raw and not SESSION_KEY_PATTERN.fullmatch(raw):
        raise Invalid("X-Session-Key is not a valid session key", {"X-Session-Key": ["invalid session key"]})
    own = request.endpoint in OWN_SESSION_ENDPOINTS and (request.view_args or {}).get("key") == raw
    if raw and not own:
        sessions.check_open(raw, read_uow())
    return raw or None


def expected_version(body: dict[str, Any] | None = None) -> int | None:
    """If-Match (bare or quoted) or ``version`` in the body; both must agree."""
    header = request.headers.get("If-Match")
    from_header = None
    if header and header.strip() != "*":
        match = IF_MATCH.fullmatch(header)
        if not match or len(match.group(1)) > len(str(INT_ID_MAX)) or int(match.group(1)) > INT_ID_MAX:
            raise Invalid("If-Match must be a version number", {"If-Match": ["expected a version like 3 or \"3\""]})
        from_header = int(match.group(1))
    from_body = (body or {}).pop("version", None)
    if from_header is not None and from_body is not None and from_header != from_body:
        raise Invalid("If-Match and version disagree", {"version": ["differs from If-Match"]})
    return from_header if from_header is not None else from_body


def change_context(body: dict[str, Any] | None = None) -> ChangeContext:
    correlation = request_correlation()
    return ChangeContext(
        actor=g.principal.actor,
        session_key=session_key(),
        correlation_chain=(correlation,) if correlation else (),
        expected_version=expected_version(body),
    )


def change_context_for_rejection() -> ChangeContext:
    """Best effort: a malformed header must not stop the rejection from being recorded."""
    try:
        correlation = request_correlation()
        key = session_key()
    except Invalid:
        correlation, key = None, None
    return ChangeContext(actor=g.principal.actor, session_key=key,
                         correlation_chain=(correlation,) if correlation else ())
