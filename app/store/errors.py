"""What the store says when the database refuses a write, in terms a use case can catch without SQLAlchemy."""

from __future__ import annotations

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# Errors worth retrying: the database was unreachable, busy, or chose us as a deadlock victim.
TRANSIENT: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)


class DuplicateRow(Exception):
    """A UNIQUE constraint refused the write: another transaction got there first."""
