"""Schemas of the ``/rules`` endpoints: structure here, rule semantics in ``app.domain.rules``."""

from __future__ import annotations

import uuid
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.api.schemas import EventFilterArgs, EventOut, FullMatch, Immutable, JsonObject, JsonValue, PageArgs
from app.domain.events import TYPE_FILTER_PATTERN
from app.domain.paging import BIGINT_ID_MAX, INT_ID_MAX
from app.domain.rules import OPERATORS
from app.services.rules_admin import RUN_STATUSES

RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


class EventRef(fields.Field[int | str]):
    """An event named by its ``id`` (integer) or its ``event_id`` (UUID)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= BIGINT_ID_MAX:
            return value
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19 \
                and 0 < int(value) <= BIGINT_ID_MAX:
            return int(value)
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise ValidationError("an event id (integer) or event_id (UUID)") from None


class ConditionIn(Schema):
    path = fields.String(required=True, validate=validate.Length(min=1, max=200))
    op = fields.String(required=True, validate=validate.OneOf(OPERATORS))
    value = JsonValue(allow_none=True)


class TriggerIn(Schema):
    type = fields.String(required=True, validate=[
        validate.Length(min=1, max=200),
        FullMatch(TYPE_FILTER_PATTERN, error="an event type or a prefix ending in .*: must match {regex}")])
    conditions = fields.List(fields.Nested(ConditionIn), load_default=list)


class ActionIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    params = JsonObject(load_default=dict)


class RuleCreate(Schema):
    name = fields.String(required=True, validate=FullMatch(RULE_NAME, error="must match {regex}"))
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    trigger = fields.Nested(TriggerIn, required=True)
    action = fields.Nested(ActionIn, required=True)
    enabled = fields.Boolean(load_default=True)


class RulePatch(Schema):
    # The name is the rule's identity in its events' actor (automation:<name>) and in the guard
    # that keeps a rule from reacting to itself: renaming would blind that guard.
    name = Immutable()
    description = fields.String(validate=validate.Length(max=2000))
    trigger = fields.Nested(TriggerIn)
    action = fields.Nested(ActionIn)
    enabled = fields.Boolean()


class RuleQuery(PageArgs):
    enabled = fields.Boolean()
    builtin = fields.Boolean()


EVENT_REF = {"description": "the event's id (integer) or its event_id (UUID)", "example": 42}


class RunQuery(PageArgs):
    rule_id = fields.Integer(validate=validate.Range(min=1, max=INT_ID_MAX))
    event_id = EventRef(metadata=EVENT_REF)
    status = fields.String(validate=validate.OneOf(RUN_STATUSES))


class DryRunBody(Schema):
    event_id = EventRef(required=True, metadata=EVENT_REF)


class RuleOut(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    trigger = fields.Dict()
    action = fields.Dict()
    enabled = fields.Boolean()
    builtin = fields.Boolean()
    created_at = fields.String()
    updated_at = fields.String()


class RunOut(Schema):
    id = fields.Integer()
    rule_id = fields.Integer()
    rule_name = fields.String()
    event_id = fields.Integer(metadata={"description": "the triggering event's id"})
    status = fields.String(metadata={"description": ", ".join(RUN_STATUSES)})
    attempts = fields.Integer()
    effects = fields.List(fields.Dict(), metadata={"description": "the events the run produced"})
    error = fields.String(allow_none=True)
    reason = fields.String(allow_none=True, metadata={
        "description": "why a skipped run did nothing: nothing to do as of its event, superseded by a later "
                       "event, or no longer valid against live state"})
    delivery = fields.Dict(allow_none=True, metadata={
        "description": "webhook runs: url, status, every attempt (status_code, duration_ms, outcome, "
                       "response_excerpt), next_attempt_at, deadline_at"})
    created_at = fields.String()
    finished_at = fields.String(allow_none=True)


class DryRunOut(Schema):
    rule = fields.Dict()
    event = fields.Dict()
    fires = fields.Boolean()
    outcome = fields.String(metadata={"description": "would_apply, nothing_to_do, no_match, own_event, loop, unknown_action"})
    conditions = fields.List(fields.Dict())
    planned = fields.List(fields.Dict())
    previous_run = fields.Dict(allow_none=True)


class UndoBody(Schema):
    trigger_rules = fields.Boolean(load_default=False, metadata={
        "description": "The compensating events start no automation rules unless this is true."})


class UndoOut(Schema):
    run = fields.Nested(RunOut)
    events = fields.List(fields.Nested(EventOut))


class BacktestBody(EventFilterArgs, PageArgs):
    """A stored rule (``rule_id``) or a draft (``rule``: the body of ``POST /rules``), a window and filters."""

    rule_id = fields.Integer(validate=validate.Range(min=1, max=INT_ID_MAX))
    rule = fields.Nested(RuleCreate)

    @validates_schema
    def _one_rule(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("rule_id" in data) == ("rule" in data):
            raise ValidationError("give exactly one of rule_id or rule", "rule_id")


class BacktestItem(Schema):
    event = fields.Nested(EventOut)
    conditions = fields.List(fields.Dict(), metadata={"description": "each test with its actual value"})
    effects = fields.List(fields.Dict(), metadata={"description": "what the rule would do as of this event"})
    outcome = fields.String(metadata={"description": "would_apply, nothing_to_do, loop, unknown_action"})


class BacktestOut(Schema):
    rule = fields.Dict()
    summary = fields.Dict(metadata={"description": (
        "events_scanned, matches, would_apply, effects_by_type, scanned_from_id/scanned_through_id/"
        "window_last_id (progress), actual: what enabled rules did on the scanned events (runs by rule "
        "and status; for a stored rule, the events where it would apply but did not, and the reverse)")})
    items = fields.List(fields.Nested(BacktestItem))
    next = fields.String(allow_none=True)
