"""``/events/timeline`` and ``/events/stats``: counts over the log with the filters of ``/events``."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api import schemas as s
from app.api.auth import auth
from app.api.context import read_uow, runtime
from app.api.events import event_filter
from app.domain.buckets import UNITS
from app.services import aggregation

blp = Blueprint("aggregation", __name__, url_prefix="/api/orchestration/events",
                description="Event counts: timeline buckets and statistics, exact and rollup-backed.")


class TimelineQuery(s.EventFilterArgs):
    bucket = fields.String(load_default="hour", validate=validate.OneOf(UNITS),
                           metadata={"description": "minute (at most 7 days), hour (420 days) or day"})


class TimelineBucket(Schema):
    start = fields.String()
    count = fields.Integer()
    by_type = fields.Dict(keys=fields.String(), values=fields.Integer())


class TimelineOut(Schema):
    bucket = fields.String()
    start = fields.String(attribute="from", data_key="from")
    end = fields.String(attribute="to", data_key="to")
    buckets = fields.List(fields.Nested(TimelineBucket))


class StatsOut(Schema):
    total = fields.Integer()
    by_type = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_actor = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_actor_kind = fields.Dict(keys=fields.String(), values=fields.Integer(),
                                metadata={"description": "user, agent, automation, other"})
    by_entity_type = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_day = fields.Dict(keys=fields.String(), values=fields.Integer())


@blp.route("/timeline", methods=["GET"])
@auth.login_required(role="reader")
@blp.arguments(TimelineQuery, location="query")
@blp.response(200, TimelineOut)
def event_timeline(args: dict[str, Any]) -> dict[str, Any]:
    """Counts per bucket (and per type) over ``[from, to)``, empty buckets included.

    Without ``to`` the window ends with the bucket holding now; without ``from``
    it spans 1 hour of minutes, 24 hours of hours or 30 days of days. A timeline
    holds at most 10080 buckets (7 days of minutes, 420 days of hours): 422 beyond.
    """
    return aggregation.timeline(event_filter(args), args["bucket"], read_uow(), runtime().clock)


@blp.route("/stats", methods=["GET"])
@auth.login_required(role="reader")
@blp.arguments(s.EventFilterArgs, location="query")
@blp.response(200, StatsOut)
def event_stats(args: dict[str, Any]) -> dict[str, Any]:
    """Totals by type, actor, entity type and UTC day; open ``from``/``to`` mean all time.

    Exact, and as cheap for a year as for an hour: whole hours are read from
    hourly rollups (plus the events the fold job has not counted into them
    yet), partial edge hours from the log. ``entity_code`` and ``session_key`` are counted from the
    log through their indexes.
    """
    return aggregation.stats(event_filter(args), read_uow())
