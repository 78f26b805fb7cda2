"""Storage for the live stream: tickets (issue, redeem once) and the log's current tail."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.store.event_fence import visible_bound
from app.store.tables import ApiToken, Event, StreamTicket

# Spent and expired tickets are deleted lazily, once they are this old.
TICKET_KEEP = timedelta(hours=1)


def add_ticket(session: Session, ticket_hash: str, token_hash: str, now: datetime, ttl: timedelta) -> datetime:
    session.execute(delete(StreamTicket).where(StreamTicket.expires_at < now - TICKET_KEEP))
    expires = now + ttl
    session.add(StreamTicket(ticket_hash=ticket_hash, token_hash=token_hash, created_at=now, expires_at=expires))
    return expires


def spend_ticket(session: Session, ticket_hash: str, now: datetime) -> ApiToken | None:
    """Mark the ticket used (one conditional UPDATE: two redeemers cannot both win); its live token."""
    spent = session.execute(
        update(StreamTicket)
        .where(StreamTicket.ticket_hash == ticket_hash, StreamTicket.used_at.is_(None),
               StreamTicket.expires_at > now)
        .values(used_at=now)
        .returning(StreamTicket.token_hash)
    ).scalar_one_or_none()
    if spent is None:
        return None
    return session.scalars(
        select(ApiToken).where(ApiToken.token_hash == spent, ApiToken.revoked_at.is_(None))
    ).one_or_none()


def latest_event_id(session: Session) -> int:
    """Where "the live tail" starts: every event up to this id has committed or rolled back
    (``event_fence.visible_bound``), so following from here skips nothing."""
    bound = visible_bound(session)  # nothing above it is settled, nothing at or below it is still coming
    if bound is not None:
        return bound
    return int(session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0)
