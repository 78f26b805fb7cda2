"""The stream-type registry, domain half: one declaration per kind of stream.

Every layer reads these declarations (the store pairs each with its table,
projection and field writer in ``app.store.stream_registry``), so a new
stream type is one declaration here, one there, and its migration; a unit
test fails when the layers disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIORITIES = ("P0", "P1", "P2", "P3")
DEFAULT_PRIORITY = "P2"


@dataclass(frozen=True)
class StreamType:
    """One kind of stream: how its entities are named, the shape of their state, their vocabulary."""

    name: str
    # The state field that names an entity for all time (codes are never reused); None: named by id.
    code_field: str | None
    # The keys of the live state the log folds to (the domain's view of a row).
    fields: tuple[str, ...]
    statuses: tuple[str, ...] = ()
    # Fields a rule's ``set_field`` / ``set_status`` may change.
    settable: tuple[str, ...] = ()
    # Created, updated and soft-deleted through the tracking use cases (and repaired from the log).
    tracked: bool = False
    # The event type suffix a stream of this type opens with (integrity checks it).
    opening: str = "created"
    # Field -> granular event suffix; changed fields not listed become one ``.updated`` event.
    granular: tuple[tuple[str, str], ...] = ()
    # How messages name an entity and its code: "no agent session with key 'k'".
    label: str = ""
    code_word: str = "code"

    @property
    def called(self) -> str:
        return self.label or self.name

    def missing(self, code: object) -> str:
        return f"no {self.called} with {self.code_word} {code!r}"

    def taken(self, code: object) -> str:
        return f"{self.name} {self.code_word} {code!r} is taken"


SPRINT = StreamType(
    "sprint", "sprint_code", ("sprint_code", "title", "status", "priority", "metadata"),
    statuses=("planned", "active", "completed", "cancelled"),
    settable=("title", "status", "priority", "metadata"), tracked=True,
    granular=(("status", "status_changed"), ("metadata", "metadata_updated")),
)
TASK = StreamType(
    "task", "task_code",
    ("task_code", "sprint_code", "title", "description", "status", "priority", "progress", "assignee", "metadata"),
    statuses=("pending", "in_progress", "blocked", "completed", "cancelled"),
    settable=("title", "description", "status", "priority", "progress", "assignee", "metadata"), tracked=True,
    granular=(("status", "status_changed"), ("assignee", "assigned"), ("priority", "priority_changed"),
              ("progress", "progress_updated")),
)
SESSION = StreamType(
    "session", "session_key",
    ("session_key", "agent_id", "sprint_code", "task_code", "status", "started_at", "resumed_at", "ended_at",
     "metadata"),
    statuses=("active", "ended"), opening="started", label="agent session", code_word="key",
)
# Notifications, alerts, rule failures and ``custom.*`` kinds: one-event entities named by id;
# the stream's entity type is the signal's kind.
SIGNAL = StreamType("signal", None, ("kind", "data"))
SIGNAL_KINDS = ("notification", "alert", "rule_failure")

ENTITY_TYPES: dict[str, StreamType] = {t.name: t for t in (SPRINT, TASK, SESSION)}
STREAM_TYPES: tuple[StreamType, ...] = (SPRINT, TASK, SESSION, SIGNAL)
TRACKED = tuple(name for name, t in ENTITY_TYPES.items() if t.tracked)


def stream_type(entity_type: str) -> StreamType:
    """The declaration of a stream's entity type; any name not declared is a signal kind."""
    return ENTITY_TYPES.get(entity_type, SIGNAL)


def has_rows(entity_type: str) -> bool:
    """Sprints, tasks and sessions have rows of their own, found by code; signals do not."""
    return entity_type in ENTITY_TYPES
