"""What a change knows about who asked for it: ``ChangeContext`` lives in the domain, shared with the store."""

from __future__ import annotations

from app.domain.changes import ChangeContext

__all__ = ["ChangeContext"]
