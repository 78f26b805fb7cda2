"""How long or how large an entity's free fields may be, declared once.

The API's schemas turn these into validators (and the OpenAPI bounds), and the
rule actions check a planned value against the same ones, so a rule cannot
write what a request would be refused for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TextLimit:
    """A string of ``min``..``max`` characters; ``None`` too when ``nullable``."""

    min: int
    max: int
    nullable: bool = False

    def fits(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        return isinstance(value, str) and self.min <= len(value) <= self.max


@dataclass(frozen=True)
class IntLimit:
    """An integer (never a bool) from ``min`` to ``max`` inclusive."""

    min: int
    max: int

    def fits(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.min <= value <= self.max


TITLE = TextLimit(1, 500)
DESCRIPTION = TextLimit(0, 20_000)
ASSIGNEE = TextLimit(1, 200, nullable=True)
PROGRESS = IntLimit(0, 100)
AGENT_ID = TextLimit(1, 200)  # a session's agent, and the reason a rule gives for starting one
