"""What the store says when the database refuses a write, in terms a use case can catch without SQLAlchemy."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class LogNotSettled(Exception):
    """An earlier event was still in flight after waiting (``event_fence.wait_settled``): try again later."""


# Errors worth retrying: the database was unreachable, busy, or chose us as a deadlock victim.
TRANSIENT: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout, LogNotSettled)


class DuplicateRow(IntegrityError):
    """A UNIQUE constraint refused the write: another transaction got there first.

    Still an ``IntegrityError`` for callers that catch that; use cases catch it by this name.
    """

    @classmethod
    def of(cls, exc: IntegrityError) -> DuplicateRow:
        return cls(exc.statement, exc.params, exc.orig or exc)
