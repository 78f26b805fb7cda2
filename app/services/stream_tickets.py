"""Stream tickets: what a browser's EventSource shows instead of the long-lived token.

A reader asks for a ticket with its bearer token; the ticket (random, stored
hashed, valid ``stream_ticket_ttl`` seconds) opens exactly one stream on that
token's behalf, so the token never appears in a URL, a log or a history.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from app.domain.clock import Clock
from app.services.tokens import Principal, digest
from app.store import stream_access
from app.store.uow import UnitOfWork

PREFIX = "st_"


def issue(token_hash: str, ttl_seconds: float, uow: UnitOfWork, clock: Clock) -> tuple[str, datetime]:
    ticket = PREFIX + secrets.token_urlsafe(24)
    with uow:
        expires = stream_access.add_ticket(uow.session, digest(ticket), token_hash, clock(),
                                           timedelta(seconds=ttl_seconds))
        uow.commit()
    return ticket, expires


def redeem(ticket: str, uow: UnitOfWork, clock: Clock) -> tuple[Principal, str] | None:
    """(principal, token hash) of the token that asked for the ticket; None if unknown, spent or expired."""
    now = clock()
    with uow:
        token = stream_access.spend_ticket(uow.session, digest(ticket), now)
        if token is None:
            return None
        principal = Principal(token.actor, token.role, token.id, token.expires_at, token.writes_per_second,
                              token.reads_per_second)
        token_hash = token.token_hash
        uow.commit()
    return None if principal.expired(now) else (principal, token_hash)
