"""Sprint and task endpoints: one blueprint factory, since both behave alike."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask_smorest import Blueprint
from marshmallow import Schema

from app.api import schemas as s
from app.api.auth import auth
from app.api.context import change_context, read_uow, runtime, uow
from app.api.rejections import records_rejections
from app.domain.paging import INT_ID_MAX, decode_cursor, page_body
from app.services import tracking


def _with_etag(body: dict[str, Any], status: int = 200, **headers: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    return body, status, {"ETag": f'"{body["version"]}"', **headers}


def make_blueprint(name: str, plural: str, create: type[Schema], patch: type[Schema],
                   query: type[Schema], out: type[Schema]) -> Blueprint:
    kind = tracking.KINDS[name]
    filters = [f for f in query().fields if f not in ("limit", "after")]
    blp = Blueprint(plural, __name__, url_prefix=f"/api/orchestration/{plural}",
                    description=f"{name.capitalize()}s: every change is recorded as events.")

    @blp.route("", methods=["POST"], endpoint=f"create_{name}")
    @auth.login_required(role="writer")
    @blp.arguments(create)
    @blp.response(201, out)
    def create_view(data: dict[str, Any]) -> Any:
        """Create; emits ``created`` with the full initial state."""
        body = tracking.create(kind, data, change_context(), uow(), runtime().clock)
        location = url_for(f"{plural}.get_{name}", code=body[str(kind.code_field)])
        return _with_etag(body, 201, Location=location)

    @blp.route("", methods=["GET"], endpoint=f"list_{name}s")
    @auth.login_required(role="reader")
    @blp.arguments(query, location="query")
    @blp.response(200, s.page_of(out))
    def list_view(args: dict[str, Any]) -> dict[str, Any]:
        """Live (not deleted) entities, oldest first."""
        chosen = {f: args[f] for f in filters if f in args}
        items, last = tracking.list_page(kind, chosen, decode_cursor(args["after"], INT_ID_MAX), args["limit"], read_uow())
        return page_body(items, last)

    @blp.route("/<code>", methods=["GET"], endpoint=f"get_{name}")
    @auth.login_required(role="reader")
    @blp.response(200, out)
    def get_view(code: str) -> Any:
        return _with_etag(tracking.get(kind, code, read_uow()))

    @blp.route("/<code>", methods=["PATCH"], endpoint=f"update_{name}")
    @records_rejections(name)
    @auth.login_required(role="writer")
    @blp.arguments(patch)
    @blp.response(200, out)
    def update_view(changes: dict[str, Any], code: str) -> Any:
        """Partial update; one event per granular change. ``If-Match`` or ``version`` guards it."""
        ctx = change_context(changes)
        return _with_etag(tracking.update(kind, code, changes, ctx, uow(), runtime().clock))

    @blp.route("/<code>", methods=["DELETE"], endpoint=f"delete_{name}")
    @records_rejections(name)
    @auth.login_required(role="writer")
    @blp.arguments(s.DeleteBody, required=False)
    @blp.response(204)
    def delete_view(body: dict[str, Any] | None, code: str) -> Response:
        """Soft delete: the history stays readable; the code is never reused."""
        tracking.delete(kind, code, change_context(dict(body or {})), uow(), runtime().clock)
        return Response(status=204)

    return blp


sprints = make_blueprint("sprint", "sprints", s.SprintCreate, s.SprintPatch, s.SprintQuery, s.SprintOut)
tasks = make_blueprint("task", "tasks", s.TaskCreate, s.TaskPatch, s.TaskQuery, s.TaskOut)
