"""Schemas of the replay endpoints: history, state at an instant, validation, replay."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, missing, validates_schema

from app.api.plain_dump import PlainDump
from app.api.schemas import EntityRef, EventOut, Instant, PageArgs, SprintFields, TaskFields
from app.domain.integrity import KINDS


class HistoryQuery(PageArgs):
    at = Instant(metadata={"description": "An instant (ISO 8601, a date or an age like 2h): answer the one "
                                          "state at that instant (inclusive) instead of a page."})
    include_archived = fields.Boolean(load_default=False)

    @validates_schema
    def _at_is_not_a_page(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("at") is not None and data.get("after"):
            raise ValidationError("at answers one state; it cannot be combined with after", "at")


class ReplayBody(Schema):
    correlation_id = fields.UUID(required=True)
    dry_run = fields.Boolean(load_default=True)
    trigger_rules = fields.Boolean(load_default=False, metadata={
        "description": "Repairs are compensating events and start no automation rules unless this is true."})


class HistoryItem(PlainDump):
    event = fields.Nested(EventOut)
    state = fields.Dict(allow_none=True, metadata={"description": "The entity's fields and `deleted` right "
                                                                  "after the event."})


class StateFields(Schema):
    deleted = fields.Boolean()
    version = fields.Integer()
    as_of = fields.String(metadata={"description": "Timestamp of the last event applied."})
    as_of_event_id = fields.String(metadata={"description": "event_id of the last event applied."})


class HistoryPageFields(Schema):
    items = fields.List(fields.Nested(HistoryItem))
    next = fields.String(allow_none=True)

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """Keys only: a state dict has no ``items`` key, and ``dict.items`` is not one."""
        return obj.get(attr, missing)


class SprintHistory(HistoryPageFields, StateFields, SprintFields):
    """Without ``at``: ``items`` and ``next``. With ``at``: the flat state (the other fields)."""


class TaskHistory(HistoryPageFields, StateFields, TaskFields):
    """Without ``at``: ``items`` and ``next``. With ``at``: the flat state (the other fields)."""


class ProblemOut(Schema):
    kind = fields.String(metadata={"enum": list(KINDS)})
    entity = fields.Nested(EntityRef)
    sequence = fields.Integer(allow_none=True)
    detail = fields.String()
    event_id = fields.String(allow_none=True, metadata={"description": "The event at fault, when one exists."})


class ValidationReport(Schema):
    correlation_id = fields.String()
    valid = fields.Boolean()
    events = fields.Integer(metadata={"description": "Events checked (whole streams, archived included)."})
    streams = fields.Integer()
    problems = fields.List(fields.Nested(ProblemOut))


class FinalState(Schema):
    entity = fields.Nested(EntityRef)
    state = fields.Dict(allow_none=True)
    version = fields.Integer()
    matches_live = fields.Boolean(allow_none=True, metadata={
        "description": "null when the chain stops before the entity's current version or it has no row to compare"})


class Drift(Schema):
    entity = fields.Nested(EntityRef)
    differences = fields.Dict(metadata={"description": "{field: {live, log}}"})


class Repair(Schema):
    entity = fields.Nested(EntityRef)
    events = fields.List(fields.Nested(EventOut))
    detail = fields.String()


class ReplayOut(Schema):
    validation = fields.Nested(ValidationReport)
    steps = fields.List(fields.Nested(HistoryItem))
    final_states = fields.List(fields.Nested(FinalState))
    matches_live = fields.Boolean()
    dry_run = fields.Boolean()
    drift = fields.List(fields.Nested(Drift))
    repairs = fields.List(fields.Nested(Repair))
