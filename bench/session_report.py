"""``GET /sessions/{key}/report`` for a large session, against listing that session's events.

On PostgreSQL: a background log (``BENCH_SESSION_BACKGROUND`` events, default
200k, from ``bench._event_data``) plus one session of ``BENCH_SESSION_EVENTS``
events (default 10,000) over ``BENCH_SESSION_ENTITIES`` tasks (default 1,000),
100 refused attempts, and a blast radius of 1,000 automation events at depth 1
and 100 at depth 2. Rounds interleave the report (one HTTP request, first page
of every list) with the baseline: reading the same session's events through
``GET /events/session/{key}`` (pages of 1000). Prints the median of each and
their ratio; the target is a report under 500 ms on this machine.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from app import create_app
from app.config import Settings
from app.services import tokens
from bench._event_data import Shape, generate
from tests.support import postgres_database

BACKGROUND = int(os.environ.get("BENCH_SESSION_BACKGROUND", "200000"))
EVENTS = int(os.environ.get("BENCH_SESSION_EVENTS", "10000"))
ENTITIES = int(os.environ.get("BENCH_SESSION_ENTITIES", "1000"))
ROUNDS = int(os.environ.get("BENCH_SESSION_ROUNDS", "7"))
KEY = "bench-session"
BASE = "/api/orchestration"

SESSION_ROW = """
INSERT INTO agent_sessions (session_key, agent_id, status, started_at, ended_at, metadata, correlation_id,
                            version, created_at, updated_at)
VALUES (CAST(:key AS varchar), 'agent:bench', 'ended', :t0, :t0 + interval '3 hours', '{}', md5(CAST(:key AS text))::uuid::text, 0, :t0, :t0)
"""
# The session's changes: task 1 + j % entities, a sequence far above the background's, progress j -> j + 1.
SESSION_EVENTS = """
INSERT INTO orchestration_events (event_id, type, entity_type, entity_id, entity_code, sequence, actor, emitted_at,
    correlation_id, correlation_chain, causation_id, causation_depth, session_key, priority, changes, data, hash)
SELECT md5('bench-s' || j)::uuid::text, 'orchestration.task.progress_updated', 'task', 1 + j % :entities,
       'GT-' || (1 + j % :entities), 100000 + j / :entities, 'agent:bench', :t0 + interval '1 second' * j,
       md5('task' || (1 + j % :entities))::uuid::text, '[]', NULL, 0, :key, 'P2',
       jsonb_build_object('progress', jsonb_build_object('before', j % 100, 'after', (j + 1) % 100)), '{}',
       md5('h' || j) || md5('x' || j)
FROM generate_series(0, :events - 1) j ORDER BY j
"""
REFUSED = """
INSERT INTO orchestration_events (event_id, type, entity_type, entity_id, entity_code, sequence, actor, emitted_at,
    correlation_id, correlation_chain, causation_depth, session_key, priority, changes, data, hash)
SELECT md5('bench-r' || j)::uuid::text, 'orchestration.task.validation_failed', 'task', 1 + j, 'GT-' || (1 + j),
       NULL, 'agent:bench', :t0 + interval '1 second' * j, md5('task' || (1 + j))::uuid::text, '[]', 0, :key, 'P2',
       '{}', '{"status": 409, "detail": "version mismatch", "errors": {}}', md5('r' || j) || md5('y' || j)
FROM generate_series(0, 99) j
"""
# Automation caused by every tenth session event (depth 1), and by every tenth of those (depth 2).
CAUSED = """
INSERT INTO orchestration_events (event_id, type, entity_type, entity_id, entity_code, sequence, actor, emitted_at,
    correlation_id, correlation_chain, causation_id, causation_depth, session_key, priority, changes, data, hash)
SELECT md5(:tag || j)::uuid::text, 'orchestration.task.assigned', 'task', 1 + j % :entities,
       'GT-' || (1 + j % :entities), :base_seq + j / :entities, 'automation:bench', :t0 + interval '1 second' * j,
       md5('task' || (1 + j % :entities))::uuid::text, '[]', md5(:parent || (j * :step))::uuid::text, 1, NULL,
       'P2', jsonb_build_object('assignee', jsonb_build_object('before', NULL, 'after', 'bot')), '{}',
       md5('c' || j) || md5(:tag || j)
FROM generate_series(0, :count - 1) j
"""


def build(connection: Any, shape: Shape) -> None:
    params = {"t0": shape.end, "key": KEY, "events": EVENTS, "entities": ENTITIES}
    generate(connection, shape)
    for statement in (SESSION_ROW, SESSION_EVENTS, REFUSED):
        connection.execute(text(statement), params)
    connection.execute(text(CAUSED), params | {"tag": "bench-c", "parent": "bench-s", "step": 10,
                                               "count": EVENTS // 10, "base_seq": 200000})
    connection.execute(text(CAUSED), params | {"tag": "bench-d", "parent": "bench-c", "step": 10,
                                               "count": EVENTS // 100, "base_seq": 300000})


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    shape = Shape(events=BACKGROUND, tasks=max(2_000, ENTITIES))
    with postgres_database("orch_bench_sess") as url, tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(database_url=url, archive_dir=tmp, broker_dir=tmp, dispatch_after_commit=False))
        rt = app.extensions["orchestration"]
        with rt.engine.begin() as connection:
            build(connection, shape)
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        headers = {"Authorization": f"Bearer {tokens.create_token('user:bench', 'reader', rt.uow(), rt.clock)}"}
        client = app.test_client()

        def report() -> None:
            body = client.get(f"{BASE}/sessions/{KEY}/report", headers=headers).get_json()
            assert body["entities"]["total"] == ENTITIES and body["blast_radius"]["max_depth"] == 2, body["events"]

        def listing() -> None:
            cursor, seen = None, 0
            while True:
                query = {"limit": 1000, **({"after": cursor} if cursor else {})}
                body = client.get(f"{BASE}/events/session/{KEY}", headers=headers, query_string=query).get_json()
                seen, cursor = seen + len(body["items"]), body["next"]
                if not cursor:
                    break
            assert seen == EVENTS + 100

        report(), listing()  # warm caches and check the answers once
        rounds = [(timed(report), timed(listing)) for _ in range(ROUNDS)]
        served, baseline = (statistics.median(r[i] for r in rounds) * 1000 for i in (0, 1))
        print(f"session of {EVENTS:,} events over {ENTITIES:,} entities (+{BACKGROUND:,} background events, "
              f"{EVENTS // 10 + EVENTS // 100:,} caused): report {served:.0f} ms, listing the session's events "
              f"{baseline:.0f} ms (report/listing x{served / baseline:.2f}); target < 500 ms")
        rt.engine.dispose()


if __name__ == "__main__":
    main()
