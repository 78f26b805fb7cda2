"""Bearer tokens with roles; the actor on every event comes from here.

Authentication also applies the token's request-rate limit, so a refused
request (429) is decided before any view runs and nothing is recorded.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Response, g, request
from flask_httpauth import HTTPTokenAuth
from werkzeug.exceptions import TooManyRequests

from app.api.context import runtime
from app.api.errors import problem
from app.api.guards import refuse_unstorable_text
from app.services import tokens
from app.services.tokens import Principal

auth = HTTPTokenAuth(scheme="Bearer")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@auth.verify_token
def _verify(token: str) -> Principal | None:
    if not token:
        return None
    rt = runtime()
    principal = rt.tokens.verify(token, rt.clock())
    g.principal = principal
    if principal is not None:
        _throttle(principal)
        refuse_unstorable_text()  # after authentication: a stranger learns nothing but 401
    return principal


def _throttle(principal: Principal) -> None:
    """429 with Retry-After when the token's bucket for this kind of request is empty."""
    write = request.method not in READ_METHODS
    wait = runtime().limiter.admit(principal, write)
    if wait > 0:
        rate = runtime().limiter.rate_for(principal, write)
        kind = "writes" if write else "reads"
        raise TooManyRequests(f"This token may make {rate:g} {kind} per second; retry after the "
                              f"Retry-After delay.", retry_after=max(1, math.ceil(wait)))


def current_token_id() -> int | None:
    """The id of the token the current request authenticated with (per-token caps, e.g. open streams)."""
    principal = g.get("principal")
    return principal.token_id if principal is not None else None


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


OPEN_OPERATIONS = ("/api/orchestration/health",)
TOO_MANY_REQUESTS = {
    "description": "Over the token's request-rate limit; nothing was recorded.",
    "headers": {"Retry-After": {"description": "seconds until the token may try again",
                                "schema": {"type": "integer"}}},
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def document_rate_limit(api: Any) -> None:
    """Every authenticated operation may answer 429: say so once, in the OpenAPI document."""
    api.spec.components.response("TOO_MANY_REQUESTS", TOO_MANY_REQUESTS)
    for path, operations in api.spec._paths.items():  # apispec keeps registered paths here
        if not path.startswith("/api/orchestration") or path in OPEN_OPERATIONS:
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("429", {"$ref": "#/components/responses/TOO_MANY_REQUESTS"})
