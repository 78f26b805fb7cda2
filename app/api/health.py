"""Liveness and readiness: can events be recorded right now?"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from sqlalchemy import text

from app.api.context import runtime

blp = Blueprint("health", __name__, url_prefix="/api/orchestration", description="Service health.")


def database_status() -> dict[str, Any]:
    try:
        with runtime().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok"}
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot record events"
        return {"status": "unavailable", "error": type(exc).__name__}


@blp.route("/health", methods=["GET"])
@blp.response(200)
def health() -> Any:
    """No auth. 503 (with ``Retry-After``) when events cannot be recorded."""
    database = database_status()
    ok = database["status"] == "ok"
    body = {"status": "ok" if ok else "unavailable", "database": database}
    return body, 200 if ok else 503, ({} if ok else {"Retry-After": "5"})
