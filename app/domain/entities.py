"""Entity vocabulary: the fields each entity has and the changes it allows."""

from __future__ import annotations

import re
from typing import Any

from app.domain.errors import Conflict, Invalid
from app.domain.field_limits import PROGRESS
from app.domain.stream_types import PRIORITIES, SESSION, SPRINT, TASK, stream_type

# Match with ``fullmatch``: ``$`` alone accepts a final newline ("TASK-1\n").
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{0,63}$")
SESSION_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

# The vocabularies are declared with their stream types; these names are what the schemas import.
SPRINT_STATUSES = SPRINT.statuses
TASK_STATUSES = TASK.statuses
SESSION_STATUSES = SESSION.statuses
FINAL_STATUS = "cancelled"


def check_values(entity_type: str, state: dict[str, Any]) -> None:
    """The closed vocabularies hold whoever asks: the API's schemas check them too,
    but automation and repair reach the same use cases without a schema."""
    errors: dict[str, list[str]] = {}
    statuses = stream_type(entity_type).statuses
    if state.get("status") not in statuses:
        errors["status"] = [f"a {entity_type} status is one of {', '.join(statuses)}"]
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
