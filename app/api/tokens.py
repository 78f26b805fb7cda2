"""Token management for admins: list (never the secret), create (the secret shown once), revoke."""

from __future__ import annotations

from typing import Any

from flask import Response, g, url_for
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from app.api import schemas as s
from app.api.auth import auth
from app.api.context import read_uow, runtime, uow
from app.domain.paging import INT_ID_MAX, decode_cursor, page_body
from app.domain.timeparse import parse_age
from app.services import tokens

blp = Blueprint("tokens", __name__, url_prefix="/api/orchestration/tokens",
                description="Bearer tokens: who holds which role, until when, and how fast they may go.")


class Age(fields.String):
    """``30d`` or ``12h``: how long from now."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return parse_age(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class TokenCreate(Schema):
    actor = fields.String(required=True, validate=[validate.Length(min=3, max=200),
                                                   validate.Regexp(r"^[^:\s]+:\S+$", error="kind:name expected")])
    role = fields.String(required=True, validate=validate.OneOf(tokens.ROLES))
    name = fields.String(validate=validate.Length(min=1, max=200))
    expires_in = Age(metadata={"description": "lifetime like 30d or 12h; none: until revoked"})
    writes_per_second = fields.Float(validate=validate.Range(min=0, min_inclusive=False, max=1e6),
                                     metadata={"description": "this token's write limit (default: the setting)"})
    reads_per_second = fields.Float(validate=validate.Range(min=0, min_inclusive=False, max=1e6),
                                    metadata={"description": "this token's read limit (default: the setting)"})


class TokenOut(Schema):
    id = fields.Integer()
    actor = fields.String()
    role = fields.String()
    name = fields.String(allow_none=True)
    prefix = fields.String(allow_none=True, metadata={"description": "the first characters, to recognise it"})
    created_at = fields.String()
    expires_at = fields.String(allow_none=True)
    last_used_at = fields.String(allow_none=True, metadata={"description": "updated at most once a minute"})
    revoked_at = fields.String(allow_none=True)
    writes_per_second = fields.Float(allow_none=True)
    reads_per_second = fields.Float(allow_none=True)


class TokenCreated(TokenOut):
    token = fields.String(metadata={"description": "the secret: shown here once, stored only hashed"})


def _refusals(view: Any) -> Any:
    """401 and 403 as problem+json in the OpenAPI document (429 is documented for every operation)."""
    for status, why in ((401, "no valid token"), (403, "not an admin")):
        view = blp.alt_response(status, schema=s.Problem, description=why,
                                content_type="application/problem+json")(view)
    return view


@blp.route("", methods=["GET"], endpoint="list_tokens")
@auth.login_required(role="admin")
@blp.arguments(s.PageArgs, location="query")
@blp.response(200, s.page_of(TokenOut))
@_refusals
def list_tokens(args: dict[str, Any]) -> dict[str, Any]:
    """Every token in creation order, revoked and expired ones included; never the secret."""
    return page_body(*tokens.list_tokens(decode_cursor(args["after"], INT_ID_MAX), args["limit"], read_uow()))


@blp.route("", methods=["POST"], endpoint="create_token")
@auth.login_required(role="admin")
@blp.arguments(TokenCreate)
@blp.response(201, TokenCreated)
@_refusals
def create_token(data: dict[str, Any]) -> Any:
    """Create a token for an actor and role; the answer's ``token`` is the only time it is shown."""
    secret, body = tokens.issue_token(tokens.NewToken(**data), g.principal.actor, uow(), runtime().clock)
    return {**body, "token": secret}, 201, {"Location": url_for("tokens.get_token", token_id=body["id"])}


@blp.route("/<int:token_id>", methods=["GET"], endpoint="get_token")
@auth.login_required(role="admin")
@blp.response(200, TokenOut)
@_refusals
def get_token(token_id: int) -> dict[str, Any]:
    return tokens.get_token(token_id, read_uow())


@blp.route("/<int:token_id>", methods=["DELETE"], endpoint="revoke_token")
@auth.login_required(role="admin")
@blp.response(204)
@_refusals
def revoke_token(token_id: int) -> Response:
    """Revoke: the token answers 401 on every process within about a second. Revoking again is a no-op."""
    tokens.revoke_token(token_id, g.principal.actor, uow(), runtime().clock)
    runtime().tokens.invalidate()
    return Response(status=204)
