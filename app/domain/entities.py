"""Entity vocabulary: the fields each entity has and the changes it allows."""

from __future__ import annotations

import re
from typing import Any

from app.domain.errors import Conflict, Invalid
from app.domain.field_limits import PROGRESS

# Match with ``fullmatch``: ``$`` alone accepts a final newline ("TASK-1\n").
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{0,63}$")
SESSION_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

PRIORITIES = ("P0", "P1", "P2", "P3")
SPRINT_STATUSES = ("planned", "active", "completed", "cancelled")
TASK_STATUSES = ("pending", "in_progress", "blocked", "completed", "cancelled")
SESSION_STATUSES = ("active", "ended")
FINAL_STATUS = "cancelled"

CODE_FIELD = {"sprint": "sprint_code", "task": "task_code", "session": "session_key"}


STATUSES = {"sprint": SPRINT_STATUSES, "task": TASK_STATUSES, "session": SESSION_STATUSES}


def check_values(entity_type: str, state: dict[str, Any]) -> None:
    """The closed vocabularies hold whoever asks: the API's schemas check them too,
    but automation and repair reach the same use cases without a schema."""
    errors: dict[str, list[str]] = {}
    if state.get("status") not in STATUSES[entity_type]:
        errors["status"] = [f"a {entity_type} status is one of {', '.join(STATUSES[entity_type])}"]
    if "priority" in state and state["priority"] not in PRIORITIES:
        errors["priority"] = [f"one of {', '.join(PRIORITIES)}"]
    progress = state.get("progress", 0)
    if not PROGRESS.fits(progress):
        errors["progress"] = [f"an integer from {PROGRESS.min} to {PROGRESS.max}"]
    if errors:
        named = "; ".join(f"{name}: {messages[0]}" for name, messages in errors.items())
        raise Invalid(f"not a valid {entity_type} ({named})", errors)


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
