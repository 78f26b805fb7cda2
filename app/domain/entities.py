"""Entity vocabulary: the fields each entity has and the changes it allows."""

from __future__ import annotations

import re
from typing import Any

from app.domain.errors import Conflict

CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{0,63}$")
SESSION_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

PRIORITIES = ("P0", "P1", "P2", "P3")
SPRINT_STATUSES = ("planned", "active", "completed", "cancelled")
TASK_STATUSES = ("pending", "in_progress", "blocked", "completed", "cancelled")
SESSION_STATUSES = ("active", "ended")
FINAL_STATUS = "cancelled"

SPRINT_FIELDS = ("sprint_code", "title", "status", "priority", "metadata")
TASK_FIELDS = (
    "task_code",
    "sprint_code",
    "title",
    "description",
    "status",
    "priority",
    "progress",
    "assignee",
    "metadata",
)
SESSION_FIELDS = (
    "session_key",
    "agent_id",
    "sprint_code",
    "task_code",
    "status",
    "started_at",
    "resumed_at",
    "ended_at",
    "metadata",
)
FIELDS_BY_ENTITY: dict[str, tuple[str, ...]] = {
    "sprint": SPRINT_FIELDS,
    "task": TASK_FIELDS,
    "session": SESSION_FIELDS,
}
CODE_FIELD = {"sprint": "sprint_code", "task": "task_code", "session": "session_key"}
TRACKED_ENTITIES = ("sprint", "task")


def check_status_change(entity_type: str, before: str, after: str) -> None:
    """``cancelled`` is final: any move away from it is a conflict."""
    if before == FINAL_STATUS and after != FINAL_STATUS:
        raise Conflict(
            f"{entity_type} is cancelled; cancelled is final",
            {"status": [f"cannot move from {before} to {after}"]},
        )


def apply_patch(state: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The state after a partial update; fields absent from the patch stay."""
    return {**state, **{k: v for k, v in patch.items() if k in state}}
