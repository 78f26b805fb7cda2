"""The unit of work as views name it: they take one from the runtime and hand it to a use case.

Views never open it or reach behind it; naming it here keeps ``app.api`` from
importing the store (DESIGN.md §2).
"""

from __future__ import annotations

from app.store.uow import UnitOfWork as UnitOfWork

__all__ = ["UnitOfWork"]
