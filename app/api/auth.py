"""Bearer tokens with roles; the actor on every event comes from here."""

from __future__ import annotations

from flask import Response, g
from flask_httpauth import HTTPTokenAuth

from app.api.context import runtime
from app.api.errors import problem
from app.api.guards import refuse_unstorable_text
from app.services import tokens
from app.services.tokens import Principal

auth = HTTPTokenAuth(scheme="Bearer")


@auth.verify_token
def _verify(token: str) -> Principal | None:
    if not token:
        return None
    rt = runtime()
    principal = tokens.authenticate(token, rt.read_uow(), rt.token_cache)
    g.principal = principal
    if principal is not None:
        refuse_unstorable_text()  # after authentication: a stranger learns nothing but 401
    return principal


@auth.get_user_roles
def _roles(principal: Principal) -> list[str]:
    """A role includes those below it: admin ⊃ writer ⊃ reader."""
    return [role for role in tokens.ROLES if principal.has_role(role)]


@auth.error_handler
def _refuse(status: int) -> Response:
    if status == 403:
        return problem(403, "Forbidden", "Your token's role does not allow this operation.")
    response = problem(401, "Unauthorized", "A valid bearer token is required.")
    response.headers["WWW-Authenticate"] = 'Bearer realm="orchestration"'
    return response
