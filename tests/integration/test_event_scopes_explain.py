"""On a 120k-event PostgreSQL log, no scope, timeline or stats query scans the whole events table.

Neither a Seq Scan nor its disguised form, a walk of the primary key in id order
that filters every row, is allowed on ``orchestration_events``.

The SQL each endpoint really sends is captured with a ``before_cursor_execute``
listener and explained with its own parameters, so the plans are the ones the
service gets, not hand-written look-alikes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, text

from app import create_app
from app.services import tokens
from bench._event_data import Shape, generate
from tests.conftest import make_settings
from tests.support import Api, postgres_database

pytestmark = pytest.mark.postgres

SHAPE = Shape()
EVENTS_TABLE = "orchestration_events"
PRIMARY_KEY = "pk_orchestration_events"
WORKFLOW = "md5('wf' || 40)::uuid::text"


@pytest.fixture(scope="module")
def big_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    with postgres_database("orch_explain") as url:
        flask_app = create_app(make_settings(url, tmp_path_factory.mktemp("explain")))
        engine = flask_app.extensions["orchestration"].engine
        with engine.begin() as connection:
            generate(connection, SHAPE)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
        yield flask_app
        engine.dispose()


@pytest.fixture(scope="module")
def big_api(big_app: Flask) -> Api:
    runtime = big_app.extensions["orchestration"]
    issued = {"reader": tokens.create_token("user:reader", "reader", runtime.uow(), runtime.clock)}
    return Api(big_app.test_client(), issued)


@pytest.fixture(scope="module")
def workflow(big_app: Flask) -> str:
    with big_app.extensions["orchestration"].engine.connect() as connection:
        return str(connection.scalar(text(f"SELECT {WORKFLOW}")))


def captured_queries(app: Flask, api: Api, path: str, params: dict[str, Any]) -> list[tuple[str, Any]]:
    """The statements touching the log or its rollups that one request sends."""
    engine = app.extensions["orchestration"].engine
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "orchestration_event" in statement and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        response = api.get(path, role="reader", query_string=params)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert response.status_code == 200, response.get_json()
    return seen


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def whole_log_scans(app: Flask, statement: str, parameters: Any) -> list[str]:
    """Plan nodes that read the events table without an index condition that narrows it:
    a Seq Scan, or a walk of the primary key in id order (``id > cursor``) that filters
    row by row hoping to meet enough matches."""
    with app.extensions["orchestration"].engine.connect() as connection:
        [[explained]] = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).all()
        folded = connection.scalar(text("SELECT folded_upto FROM orchestration_rollup_watermark"))
    found = []
    for node in plan_nodes(explained[0]["Plan"]):
        if node.get("Relation Name") != EVENTS_TABLE:
            continue
        condition = node.get("Index Cond", "")
        # a primary-key range that starts at the first id of a time window (read from the
        # (emitted_at, id) index) is that window, not the log
        windowed = re.search(r"id >= \$\d+", condition) is not None
        # a primary-key range that starts at the fold's watermark is the events not folded into
        # the rollups yet (seconds of writes; ``rollup_fold``), not the log
        tail = condition == f"(id > '{folded}'::bigint)"
        # (``id IS NOT NULL``: how a bare min(id)/max(id) under a filter walks the key from one end)
        open_ended = not condition or "id >" in condition or "IS NOT NULL" in condition
        pk_walk = node.get("Index Name") == PRIMARY_KEY and open_ended and not windowed and not tail
        if node["Node Type"] == "Seq Scan" or pk_walk:
            found.append(f"{node['Node Type']} {node.get('Index Name', '')} {condition}".strip())
    return found


INSIDE = {"from": "2026-10-12T09:30:00+00:00", "to": "2026-10-19T17:45:10+00:00"}
CASES = [
    ("/events/correlation/{workflow}", {}),
    ("/events/correlation/{task_stream}", {"type": "orchestration.task.*"}),
    ("/events/session/gsess-17", {}),
    ("/events/session/gsess-17", {"type": "orchestration.task.*", **INSIDE}),
    ("/events/entity/sprint/GS-7", {"related": "true"}),
    ("/events/entity/task/GT-70", {"related": "true", "include_archived": "true"}),
    ("/events/entity/task/GT-70", {}),
    ("/events/timeline", {"bucket": "hour", **INSIDE}),
    ("/events/timeline", {"bucket": "day", "type": "orchestration.task.*", "actor": "user:u3", **INSIDE}),
    ("/events/timeline", {"bucket": "minute", "from": "2026-10-12T09:30:00+00:00", "to": "2026-10-13T09:30:00+00:00"}),
    ("/events/timeline", {"bucket": "hour", "session_key": "gsess-17", **INSIDE}),
    ("/events/stats", {}),
    ("/events/stats", {"include_archived": "true", **INSIDE}),
    ("/events/stats", {"type": "orchestration.sprint.*", "entity_type": "sprint", **INSIDE}),
    ("/events/stats", {"entity_code": "GT-70"}),
    ("/events/stats", {"session_key": "gsess-17", "type": "custom.*"}),
    ("/events/stats", {"entity_code": "GT-70", "entity_type": "task", "type": "orchestration.task.*"}),
]


# Every /events filter alone and combined as the API allows, first page and a deep page
# (``after`` mid-log): each must be an ordered range of an index, never the log walked by id.
DEEP = "djE6NjAwMDA"  # encode_cursor(60_000): half way through the generated log
RECENT = {"from": "2026-10-26T00:00:00+00:00"}
LIST_FILTERS = [
    {"actor": "user:u3"},
    {"type": "orchestration.task.*", **RECENT},
    {"type": "orchestration.task.status_changed", "entity_type": "task"},
    {"entity_type": "sprint"},
    {"session_key": "gsess-17"},
    {"entity_code": "GT-70"},
    RECENT,
    INSIDE,
    {"actor": "user:u3", **RECENT},
    {"type": "orchestration.task.*", "actor": "agent:a2"},
    {"type": "orchestration.sprint.*", "entity_type": "sprint", **INSIDE},
    {"entity_type": "session", "session_key": "gsess-17"},
    {"actor": "agent:a1", "entity_type": "task", **INSIDE},
    {"type": "orchestration.session.resumed"},
    {"type": "custom.note"},
    {"type": "orchestration.sprint.*", **INSIDE},
    {"actor_kind": "automation"},
    {"actor_kind": "agent", "entity_type": "sprint"},
    {"entity_code": "GT-70", "type": "orchestration.task.*", **RECENT},
]
CASES += [("/events", {"limit": "100", **f}) for f in LIST_FILTERS]
CASES += [("/events", {"limit": "100", "after": DEEP, **f}) for f in LIST_FILTERS]


@pytest.mark.parametrize(("path", "params"), CASES, ids=[f"{p}?{'&'.join(q)}" for p, q in CASES])
def test_no_query_of_a_scope_timeline_or_stats_endpoint_scans_the_whole_events_table(
    big_app: Flask, big_api: Api, workflow: str, path: str, params: dict[str, Any]
) -> None:
    task_stream = "md5('task' || 70)::uuid::text"
    with big_app.extensions["orchestration"].engine.connect() as connection:
        stream = connection.scalar(text(f"SELECT {task_stream}"))
    queries = captured_queries(big_app, big_api, path.format(workflow=workflow, task_stream=stream), params)

    assert queries, "the endpoint sent no query to the log"
    assert {statement: whole_log_scans(big_app, statement, p) for statement, p in queries} == {
        statement: [] for statement, _ in queries
    }
