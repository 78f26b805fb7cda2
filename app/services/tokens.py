"""API tokens: random, shown once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select

from app.domain.clock import Clock
from app.domain.errors import Invalid
from app.store.tables import ApiToken
from app.store.uow import UnitOfWork

ROLES = ("reader", "writer", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class Principal:
    actor: str
    role: str

    def has_role(self, needed: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[needed]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(actor: str, role: str, uow: UnitOfWork, clock: Clock) -> str:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", {"role": ["unknown role"]})
    if ":" not in actor or not actor.split(":", 1)[1]:
        raise Invalid("actor must look like user:alice or agent:planner", {"actor": ["kind:name expected"]})
    token = secrets.token_urlsafe(32)
    with uow:
        uow.session.add(ApiToken(token_hash=digest(token), actor=actor, role=role, created_at=clock()))
        uow.commit()
    return token


CACHE_SECONDS = 30.0
TokenCache = dict[str, tuple[Principal, float]]


def authenticate(token: str, uow: UnitOfWork, known: TokenCache | None = None) -> Principal | None:
    """The lookup is by digest; the final comparison is constant-time.

    A known token is remembered for a few seconds, saving a query on every
    request; there is no revocation path yet that this delay could weaken.
    ``known`` maps digest -> (principal, monotonic expiry); misses always ask the database.
    """
    wanted = digest(token)
    known = {} if known is None else known
    cached = known.get(wanted)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    with uow:
        row = uow.session.scalars(
            select(ApiToken).where(ApiToken.token_hash == wanted, ApiToken.revoked_at.is_(None))
        ).one_or_none()
        if row is None or not hmac.compare_digest(row.token_hash, wanted):
            return None
        principal = Principal(row.actor, row.role)
    known[wanted] = (principal, time.monotonic() + CACHE_SECONDS)
    return principal
