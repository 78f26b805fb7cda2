"""Marshmallow schemas: they validate requests and document the API in one place."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.api.plain_dump import PlainDump
from app.domain import field_limits as limits
from app.domain import jsonvalues
from app.domain.actors import ACTOR_KINDS
from app.domain.entities import (
    CODE_PATTERN,
    SESSION_KEY_PATTERN,
    SESSION_STATUSES,
    SPRINT_STATUSES,
    TASK_STATUSES,
)
from app.domain.events import EVENT_TYPE_PATTERN
from app.domain.field_limits import TextLimit
from app.domain.paging import DEFAULT_LIMIT, INT_ID_MAX, MAX_LIMIT
from app.domain.stream_types import ENTITY_TYPES, PRIORITIES
from app.domain.timeparse import parse_instant

PATTERN_ERROR = "must match {regex}"


class FullMatch(validate.Regexp):
    """``Regexp`` over the whole value: ``$`` alone would let ``"TASK-1\\n"`` through."""

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or re.fullmatch(str(self.regex.pattern), value) is None:
            raise ValidationError(self._format_error(value))
        return value


class JsonValue(fields.Raw):
    """Free JSON (a rule condition's ``value``): numbers normalised as ``app.domain.jsonvalues`` says."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return jsonvalues.normalise(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class JsonObject(fields.Dict):
    """A free JSON object (``metadata``, ``data``, rule ``params``): numbers normalised, and at
    most ``FIELD_LIMIT`` bytes as compact UTF-8 JSON."""

    def __init__(self, **kw: Any) -> None:
        described = {"description": f"a JSON object of at most {jsonvalues.FIELD_LIMIT} bytes (compact UTF-8); "
                                    "numbers within ±(2^53−1), whole ones answered as integers"}
        super().__init__(keys=fields.String(), metadata={**described, **kw.pop("metadata", {})}, **kw)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        loaded = super()._deserialize(value, attr, data, **kwargs)  # type: ignore[no-untyped-call]  # marshmallow's is unannotated
        try:
            loaded = jsonvalues.normalise(loaded)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if jsonvalues.serialized_size(loaded) > jsonvalues.FIELD_LIMIT:
            raise ValidationError(f"larger than {jsonvalues.FIELD_LIMIT} bytes as compact JSON")
        return loaded


def Code(**kw: Any) -> fields.String:  # noqa: N802 - reads like a field class at use sites
    return fields.String(validate=FullMatch(CODE_PATTERN, error=PATTERN_ERROR), **kw)


def Priority(**kw: Any) -> fields.String:  # noqa: N802
    return fields.String(validate=validate.OneOf(PRIORITIES), **kw)


def Metadata(**kw: Any) -> fields.Dict:  # noqa: N802
    return JsonObject(**kw)


def Text(limit: TextLimit, **kw: Any) -> fields.String:  # noqa: N802
    """A string field bounded by the domain's limit (``min`` 0 means no lower bound)."""
    return fields.String(validate=validate.Length(min=limit.min or None, max=limit.max),
                         allow_none=limit.nullable, **kw)


def Progress(**kw: Any) -> fields.Integer:  # noqa: N802
    return fields.Integer(strict=True, validate=validate.Range(min=limits.PROGRESS.min, max=limits.PROGRESS.max),
                          **kw)


def Title(**kw: Any) -> fields.String:  # noqa: N802
    return Text(limits.TITLE, **kw)


class Immutable(fields.Raw):
    """A field that exists only to say it cannot be changed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        raise ValidationError("is immutable; it cannot be changed after creation")


class Instant(fields.String):
    """``from``/``to``: ISO 8601, a date (00:00 UTC) or a relative age (``90d``, ``12h``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_instant(text, current_app.extensions["orchestration"].clock())
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class PageArgs(Schema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    after = fields.String(load_default=None)


def Version(**kw: Any) -> fields.Integer:  # noqa: N802
    """A JSON integer: ``1.9``, ``"3"`` and ``true`` are 422, never truncated or coerced."""
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=INT_ID_MAX), **kw)


class VersionedPatch(Schema):
    version = Version()


class SprintCreate(Schema):
    sprint_code = Code(required=True)
    title = Title(required=True)
    status = fields.String(load_default="planned", validate=validate.OneOf(SPRINT_STATUSES))
    priority = Priority(load_default="P2")
    metadata = Metadata(load_default=dict)


class SprintPatch(VersionedPatch):
    sprint_code = Immutable()
    title = Title()
    status = fields.String(validate=validate.OneOf(SPRINT_STATUSES))
    priority = Priority()
    metadata = Metadata()


class TaskCreate(Schema):
    task_code = Code(required=True)
    sprint_code = Code(load_default=None, allow_none=True)
    title = Title(required=True)
    description = Text(limits.DESCRIPTION, load_default="")
    status = fields.String(load_default="pending", validate=validate.OneOf(TASK_STATUSES))
    priority = Priority(load_default="P2")
    progress = Progress(load_default=0)
    assignee = Text(limits.ASSIGNEE, load_default=None)
    metadata = Metadata(load_default=dict)


class TaskPatch(VersionedPatch):
    task_code = Immutable()
    sprint_code = Code(allow_none=True)
    title = Title()
    description = Text(limits.DESCRIPTION)
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    priority = Priority()
    progress = Progress()
    assignee = Text(limits.ASSIGNEE)
    metadata = Metadata()


class DeleteBody(Schema):
    version = Version()


class SprintQuery(PageArgs):
    status = fields.String(validate=validate.OneOf(SPRINT_STATUSES))
    priority = Priority()


class TaskQuery(PageArgs):
    sprint_code = fields.String()
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    priority = Priority()
    assignee = fields.String()


class SessionStart(Schema):
    session_key = fields.String(validate=FullMatch(SESSION_KEY_PATTERN, error=PATTERN_ERROR))
    agent_id = Text(limits.AGENT_ID, required=True)
    sprint_code = Code(allow_none=True)
    task_code = Code(allow_none=True)
    metadata = Metadata(load_default=dict)


class SessionQuery(PageArgs):
    agent_id = fields.String()
    status = fields.String(validate=validate.OneOf(SESSION_STATUSES))
    sprint_code = fields.String()


class ContextBody(Schema):
    data = JsonObject(required=True)


class EventCreate(Schema):
    type = fields.String(required=True, validate=[
        validate.Length(min=1, max=200),
        FullMatch(EVENT_TYPE_PATTERN, error="dot-separated lowercase segments [a-z0-9_]: must match {regex}")])
    data = JsonObject(load_default=dict)
    entity_type = fields.String(validate=validate.OneOf(tuple(ENTITY_TYPES)))
    entity_code = fields.String(validate=validate.Length(min=1, max=128))
    session_key = fields.String(validate=FullMatch(SESSION_KEY_PATTERN, error=PATTERN_ERROR))
    event_id = fields.UUID()


class EventFilterArgs(Schema):
    type = fields.String(validate=FullMatch(r"^[A-Za-z0-9_.-]+(\.\*)?$", error="an exact type or a prefix ending in .*"))
    entity_type = fields.String()
    entity_code = fields.String()
    actor = fields.String()
    actor_kind = fields.String(validate=validate.OneOf(ACTOR_KINDS),
                               metadata={"description": "the prefix of actor before ':' (other: none of the named)"})
    session_key = fields.String()
    start = Instant(data_key="from")
    end = Instant(data_key="to")
    include_archived = fields.Boolean(load_default=False)

    @validates_schema
    def _range_is_ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise ValidationError("from must not be after to", "from")


class EventQuery(EventFilterArgs, PageArgs):
    pass


class EntityEventQuery(EventQuery):
    related = fields.Boolean(load_default=False)


# ---- responses (documentation and dumping) ----


class Problem(Schema):
    """RFC 9457 problem details, served as ``application/problem+json``."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    instance = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "validation errors by field (422)"})


class EntityRef(PlainDump):
    type = fields.String()
    id = fields.Integer()
    code = fields.String(allow_none=True)


class EventOut(PlainDump):
    """An event envelope; dumped by picking its keys (``plain_dump``): envelopes are already public."""

    id = fields.Integer()
    event_id = fields.String()
    type = fields.String()
    entity = fields.Nested(EntityRef)
    sequence = fields.Integer(allow_none=True)
    actor = fields.String()
    timestamp = fields.String()
    correlation_id = fields.String()
    correlation_chain = fields.List(fields.String())
    causation_id = fields.String(allow_none=True)
    session_key = fields.String(allow_none=True)
    priority = fields.String()
    changes = fields.Dict()
    data = fields.Dict()
    hash = fields.String()
    prev_hash = fields.String(allow_none=True)
    hash_scheme = fields.Integer(metadata={"description": "what `hash` was computed over: 1 sorted-key JSON "
                                                          "(events from before RFC 8785), 2 RFC 8785 (JCS)"})
    archived_at = fields.String(allow_none=True)


class Resource(Schema):
    id = fields.Integer()
    correlation_id = fields.String()
    version = fields.Integer()
    created_at = fields.String()
    updated_at = fields.String()


class SprintFields(Schema):
    """A sprint's own fields: what its events fold into."""

    sprint_code = fields.String()
    title = fields.String()
    status = fields.String()
    priority = fields.String()
    metadata = fields.Dict()


class TaskFields(Schema):
    """A task's own fields: what its events fold into."""

    task_code = fields.String()
    sprint_code = fields.String(allow_none=True)
    title = fields.String()
    description = fields.String()
    status = fields.String()
    priority = fields.String()
    progress = fields.Integer()
    assignee = fields.String(allow_none=True)
    metadata = fields.Dict()


class SprintOut(Resource, SprintFields):
    task_counts = fields.Dict(keys=fields.String(), values=fields.Integer())


class TaskOut(Resource, TaskFields):
    pass


class SessionOut(Resource):
    session_key = fields.String()
    agent_id = fields.String()
    sprint_code = fields.String(allow_none=True)
    task_code = fields.String(allow_none=True)
    status = fields.String()
    started_at = fields.String()
    resumed_at = fields.String(allow_none=True)
    ended_at = fields.String(allow_none=True)
    metadata = fields.Dict()


def page_of(item: type[Schema]) -> type[Schema]:
    """``{"items": [...], "next": cursor|null}`` for one item schema."""
    return type(
        f"{item.__name__.removesuffix('Out')}Page",
        (Schema,),
        {"items": fields.List(fields.Nested(item)), "next": fields.String(allow_none=True)},
    )
