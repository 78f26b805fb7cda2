"""Token rows: lookups by digest, pages for the admin list, last-use stamps and the revocation epoch."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.store.tables import ApiToken, TokenEpoch

EPOCH_ROW = 1


def by_digest(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash)).one_or_none()


def by_id(session: Session, token_id: int, *, lock: bool = False) -> ApiToken | None:
    stmt = select(ApiToken).where(ApiToken.id == token_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).one_or_none()


def page(session: Session, after_id: int, limit: int) -> list[ApiToken]:
    """``limit + 1`` rows in id order after ``after_id`` (the caller trims and makes the cursor)."""
    stmt = select(ApiToken).where(ApiToken.id > after_id).order_by(ApiToken.id).limit(limit + 1)
    return list(session.scalars(stmt))


def read_epoch(session: Session) -> int:
    return int(session.scalar(select(TokenEpoch.epoch).where(TokenEpoch.id == EPOCH_ROW)) or 0)


def bump_epoch(session: Session) -> None:
    """Raise the counter in the caller's transaction, so it moves exactly when the revocation commits."""
    moved = session.execute(update(TokenEpoch).where(TokenEpoch.id == EPOCH_ROW)
                            .values(epoch=TokenEpoch.epoch + 1))
    if not getattr(moved, "rowcount", 0):
        session.add(TokenEpoch(id=EPOCH_ROW, epoch=1))


def stamp_last_used(session: Session, used: dict[int, datetime]) -> None:
    """Move ``last_used_at`` forward only: a late flush never moves it back."""
    for token_id, at in sorted(used.items()):
        session.execute(update(ApiToken)
                        .where(ApiToken.id == token_id,
                               (ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at < at))
                        .values(last_used_at=at))
