"""Session forensics: ``GET /sessions/{key}/report`` and ``POST /sessions/{key}/revert``."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api import schemas as s
from app.api.auth import auth
from app.api.context import change_context, read_uow, runtime, uow
from app.domain.paging import DEFAULT_LIMIT, MAX_LIMIT
from app.services import session_report, session_revert

blp = Blueprint("session_forensics", __name__, url_prefix="/api/orchestration/sessions",
                description="What an agent session did and set off, and taking it back.")

PROBLEM = "application/problem+json"
Counts = fields.Dict(keys=fields.String(), values=fields.Integer())


class ReportQuery(Schema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT),
                           metadata={"description": "items per list (each list is paged on its own)"})
    after = fields.String(load_default=None, metadata={
        "description": "the `next` of any list of an earlier answer: that list continues, at the same "
                       "snapshot (`as_of_event_id`); the other lists start again"})


class SessionPart(Schema):
    session_key = fields.String()
    agent_id = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    resumed_at = fields.String(allow_none=True)
    ended_at = fields.String(allow_none=True)
    duration_seconds = fields.Float(allow_none=True, metadata={"description": "started to ended (or now)"})
    first_event_at = fields.String(allow_none=True)
    last_event_at = fields.String(allow_none=True)


class EventCounts(Schema):
    total = fields.Integer()
    by_type = Counts
    by_actor = Counts
    by_actor_kind = Counts


class TouchedEntity(Schema):
    entity = fields.Nested(s.EntityRef)
    events = fields.Integer()
    first_event_id = fields.Integer()
    last_event_id = fields.Integer()
    changes = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "field → {before (before the first change), after (after the last), events}"})


class RefusedAttempt(Schema):
    id = fields.Integer()
    event_id = fields.String()
    type = fields.String()
    entity = fields.Nested(s.EntityRef)
    actor = fields.String()
    timestamp = fields.String()
    status = fields.Integer(allow_none=True)
    detail = fields.String(allow_none=True)
    errors = fields.Dict()


class CausedEvent(Schema):
    id = fields.Integer()
    event_id = fields.String()
    type = fields.String()
    actor = fields.String()
    actor_kind = fields.String()
    entity = fields.Nested(s.EntityRef)
    timestamp = fields.String()
    causation_id = fields.String(allow_none=True)
    depth = fields.Integer(metadata={"description": "1: caused by one of the session's events"})
    changes = fields.Dict()


def _page(item: type[Schema], name: str) -> type[Schema]:
    return type(name, (Schema,), {"total": fields.Integer(), "items": fields.List(fields.Nested(item)),
                                  "next": fields.String(allow_none=True)})


class RuleRuns(Schema):
    total = fields.Integer()
    by_rule = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={"description": "rule → status → n"})


class BlastRadius(Schema):
    events = fields.Integer()
    max_depth = fields.Integer()
    by_depth = Counts
    by_type = Counts
    by_actor_kind = Counts
    rule_runs = fields.Nested(RuleRuns)
    items = fields.List(fields.Nested(CausedEvent))
    next = fields.String(allow_none=True)
    entities = fields.Nested(_page(TouchedEntity, "CausedEntityPage"))


class Minute(Schema):
    minute = fields.String()
    count = fields.Integer()


class SessionReport(Schema):
    session = fields.Nested(SessionPart)
    as_of_event_id = fields.Integer(metadata={"description": "the report reads the log up to this event id"})
    events = fields.Nested(EventCounts)
    entities = fields.Nested(_page(TouchedEntity, "TouchedEntityPage"))
    refused = fields.Nested(_page(RefusedAttempt, "RefusedAttemptPage"))
    blast_radius = fields.Nested(BlastRadius)
    activity = fields.List(fields.Nested(Minute), metadata={"description": "events per UTC minute with any"})


class RevertBody(Schema):
    dry_run = fields.Boolean(load_default=True)
    include_automation = fields.Boolean(load_default=False)
    force = fields.Boolean(load_default=False)
    trigger_rules = fields.Boolean(load_default=False)


class RevertConflict(Schema):
    entity = fields.Nested(s.EntityRef)
    field = fields.String()
    current = fields.Raw(allow_none=True)
    target = fields.Raw(allow_none=True)
    forced = fields.Boolean()
    changed_by = fields.List(fields.Dict())


class RevertedEntity(Schema):
    entity = fields.Nested(s.EntityRef)
    status = fields.String(metadata={"description": "planned, applied, unchanged, conflict, skipped or failed"})
    version = fields.Integer(allow_none=True)
    fields_ = fields.Dict(data_key="fields", attribute="fields", metadata={"description": "field → {current, target}"})
    conflicts = fields.List(fields.String())
    detail = fields.String(allow_none=True)
    events = fields.List(fields.Nested(s.EventOut))


class RevertOut(RevertBody):
    session_key = fields.String()
    causation_id = fields.String(allow_none=True)
    entities = fields.List(fields.Nested(RevertedEntity))
    conflicts = fields.List(fields.Nested(RevertConflict))
    summary = Counts
    reverted_event = fields.Nested(s.EventOut, allow_none=True)


@blp.route("/<key>/report", methods=["GET"])
@auth.login_required(role="reader")
@blp.arguments(ReportQuery, location="query")
@blp.response(200, SessionReport)
@blp.alt_response(404, schema=s.Problem, content_type=PROBLEM, description="no session with that key")
def session_report_view(args: dict[str, Any], key: str) -> dict[str, Any]:
    """What the session did: its events by type and actor kind, every entity it touched with the net
    change per field, refused attempts, the blast radius (events its events caused, recursively, with
    depth) and activity per minute; one snapshot, long lists keyset-paged (`limit`, `after`)."""
    return session_report.report(key, args["after"], args["limit"], read_uow(), runtime().clock)


@blp.route("/<key>/revert", methods=["POST"])
@auth.login_required(role="admin")
@blp.arguments(RevertBody)
@blp.response(200, RevertOut)
@blp.alt_response(404, schema=s.Problem, content_type=PROBLEM, description="no session with that key")
def session_revert_view(body: dict[str, Any], key: str) -> dict[str, Any]:
    """Compensating changes putting every field the session changed back to its value before the
    session (with `include_automation`, also what its rules changed); fields changed by others since
    are conflicts, left alone unless `force`. `dry_run` (default true) writes nothing."""
    options = session_revert.RevertOptions(**body)
    ctx = change_context()
    return session_revert.revert(key, options, ctx, read_uow() if options.dry_run else uow(), runtime().clock)
