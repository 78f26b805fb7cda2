"""Shared by the replay and integrity tests: pages followed to the end, rows changed behind
the service's back, snapshot cadence."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from app.store.snapshots import SNAPSHOT_EVERY
from tests.support import Api

STATE_FIELDS = {
    "sprint": ("sprint_code", "title", "status", "priority", "metadata"),
    "task": ("task_code", "sprint_code", "title", "description", "status", "priority", "progress",
             "assignee", "metadata"),
}


def history(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every history item, following ``next``."""
    return api.events(path=path, role="reader", **params)


def fields_of(entity_type: str, body: dict[str, Any]) -> dict[str, Any]:
    return {name: body[name] for name in STATE_FIELDS[entity_type]}


def execute(runtime: Any, sql: str, **params: Any) -> Any:
    """Straight to the database, as an operator (or an attacker) would."""
    with runtime.engine.begin() as connection:
        return connection.execute(text(sql), params)


def count(runtime: Any, table: str) -> int:
    return int(execute(runtime, f"SELECT count(*) FROM {table}").scalar_one())


def snapshot_every(runtime: Any, n: int) -> None:
    """What ``Settings.snapshot_every`` sets on the writer sessions."""
    runtime.writer.configure(info={SNAPSHOT_EVERY: n})
