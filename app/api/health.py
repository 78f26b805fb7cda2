"""Liveness and readiness: can events be recorded right now?"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from sqlalchemy import text

from app.api.context import read_uow, runtime
from app.relay import broker_status
from app.services import outbox

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
    """No auth. 503 (with ``Retry-After``) when events cannot be recorded.

    A broker that is down makes the service ``degraded``, still 200: events
    are recorded and the outbox delivers them to the rules when it returns.
    """
    database = database_status()
    ok = database["status"] == "ok"
    broker = broker_status(runtime().settings)
    status = ("ok" if broker["status"] == "ok" else "degraded") if ok else "unavailable"
    lag = outbox.backlog(read_uow(), runtime().clock) if ok else None
    body = {"status": status, "database": database, "broker": broker, "outbox": lag}
    return body, 200 if ok else 503, ({} if ok else {"Retry-After": "5"})
