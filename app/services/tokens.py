"""API tokens: random, shown once, stored only as SHA-256; created, listed and revoked by operators.

Creation and revocation through the CLI or the admin API are recorded as
``orchestration.token.created`` / ``.revoked`` events that stand outside any
entity stream (like ``validation_failed``) and never hold the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.domain import events as catalogue
from app.domain.changes import ChangeContext
from app.domain.clock import Clock, as_utc, iso
from app.domain.errors import Invalid, NotFound
from app.domain.paging import trim_page
from app.store import token_rows
from app.store.event_store import StreamRef
from app.store.tables import ApiToken
from app.store.uow import UnitOfWork

ROLES = ("reader", "writer", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
PREFIX_LENGTH = 8
# Who the log names for operator actions taken with database access rather than a token.
CLI_ACTOR = "system:cli"
# Token lifecycle is the security audit trail: kept forever under the default retention.
EVENT_PRIORITY = "P0"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as; the token's limits travel with it so a cached one needs no query."""

    actor: str
    role: str
    token_id: int | None = None
    expires_at: datetime | None = None
    writes_per_second: float | None = None
    reads_per_second: float | None = None

    def has_role(self, needed: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[needed]

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and as_utc(self.expires_at) <= now


@dataclass(frozen=True)
class NewToken:
    actor: str
    role: str
    name: str | None = None
    expires_in: timedelta | None = None
    writes_per_second: float | None = None
    reads_per_second: float | None = None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check(spec: NewToken) -> None:
    if spec.role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", {"role": ["unknown role"]})
    if ":" not in spec.actor or not spec.actor.split(":", 1)[1]:
        raise Invalid("actor must look like user:alice or agent:planner", {"actor": ["kind:name expected"]})
    if spec.expires_in is not None and spec.expires_in <= timedelta(0):
        raise Invalid("expires_in must be a positive age like 30d or 12h", {"expires_in": ["must be positive"]})
    for name in ("writes_per_second", "reads_per_second"):
        value = getattr(spec, name)
        if value is not None and not value > 0:
            raise Invalid(f"{name} must be positive", {name: ["must be greater than 0"]})


def _new_row(spec: NewToken, token: str, now: datetime) -> ApiToken:
    return ApiToken(token_hash=digest(token), actor=spec.actor, role=spec.role, created_at=now, name=spec.name,
                    prefix=token[:PREFIX_LENGTH], expires_at=now + spec.expires_in if spec.expires_in else None,
                    correlation_id=str(uuid.uuid4()), writes_per_second=spec.writes_per_second,
                    reads_per_second=spec.reads_per_second)


def create_token(actor: str, role: str, uow: UnitOfWork, clock: Clock) -> str:
    """A token row and nothing else: for fixtures and benchmarks that seed credentials.

    Operators go through ``issue_token`` (CLI, admin API), which also records the event.
    """
    spec = NewToken(actor, role)
    _check(spec)
    token = secrets.token_urlsafe(32)
    with uow:
        uow.session.add(_new_row(spec, token, clock()))
        uow.commit()
    return token


def issue_token(spec: NewToken, by: str, uow: UnitOfWork, clock: Clock) -> tuple[str, dict[str, Any]]:
    """Create a token for ``spec.actor``; returns the secret (shown once) and the public record."""
    _check(spec)
    token = secrets.token_urlsafe(32)
    with uow:
        now = clock()
        row = _new_row(spec, token, now)
        uow.session.add(row)
        uow.session.flush()
        _record(uow, row, catalogue.TOKEN_CREATED, by, now)
        body = describe(row)
        uow.commit()
    return token, body


def revoke_token(token_id: int, by: str, uow: UnitOfWork, clock: Clock) -> dict[str, Any]:
    """Set ``revoked_at`` and raise the epoch every process polls; revoking twice changes nothing."""
    with uow:
        row = token_rows.by_id(uow.session, token_id, lock=True)
        if row is None:
            raise NotFound(f"no token with id {token_id}")
        if row.revoked_at is None:
            now = clock()
            row.revoked_at = now
            row.correlation_id = row.correlation_id or str(uuid.uuid4())
            token_rows.bump_epoch(uow.session)
            _record(uow, row, catalogue.TOKEN_REVOKED, by, now)
        body = describe(row)
        uow.commit()
    return body


def _record(uow: UnitOfWork, row: ApiToken, event_type: str, by: str, now: datetime) -> None:
    stream = StreamRef("token", row.id, row.prefix, row.correlation_id or str(uuid.uuid4()), EVENT_PRIORITY)
    data = {"actor": row.actor, "role": row.role, "name": row.name, "prefix": row.prefix,
            "expires_at": iso(row.expires_at)}
    uow.events.append_to_stream(stream, [catalogue.PlannedEvent(event_type, data=data)], ChangeContext(actor=by), now,
                                in_stream=False, dispatch=False)


def describe(row: ApiToken) -> dict[str, Any]:
    """The public record of a token: everything but the secret and its digest."""
    return {"id": row.id, "actor": row.actor, "role": row.role, "name": row.name, "prefix": row.prefix,
            "created_at": iso(row.created_at), "expires_at": iso(row.expires_at),
            "last_used_at": iso(row.last_used_at), "revoked_at": iso(row.revoked_at),
            "writes_per_second": row.writes_per_second, "reads_per_second": row.reads_per_second}


def list_tokens(after_id: int, limit: int, uow: UnitOfWork) -> tuple[list[dict[str, Any]], int | None]:
    """Every token, revoked and expired ones too, in creation order."""
    with uow:
        rows, last = trim_page(token_rows.page(uow.session, after_id, limit), limit, lambda r: r.id)
        return [describe(r) for r in rows], last


def get_token(token_id: int, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        row = token_rows.by_id(uow.session, token_id)
        if row is None:
            raise NotFound(f"no token with id {token_id}")
        return describe(row)


def lookup(token: str, uow: UnitOfWork, now: datetime) -> tuple[Principal, datetime | None] | None:
    """The principal of a live token and its last use, by digest (final comparison constant-time)."""
    wanted = digest(token)
    with uow:
        row = token_rows.by_digest(uow.session, wanted)
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, wanted):
            return None
        principal = Principal(row.actor, row.role, row.id, row.expires_at, row.writes_per_second,
                              row.reads_per_second)
        return (None if principal.expired(now) else (principal, row.last_used_at))
