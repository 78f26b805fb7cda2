"""A large, plausible event log generated inside PostgreSQL in a few set-based statements.

Used by the EXPLAIN test and the aggregation benchmark. Rows are valid for every
query (entities exist, sequences are gap-free per stream, rollups match the log
exactly), but hashes are placeholders: this data is for plans and timings only.
The oldest fifth is archived (moved to the archive table's monthly partitions),
with its rollup counts moved the way the archiver moves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

START = datetime(2026, 10, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Shape:
    events: int = 120_000
    sprints: int = 50
    tasks: int = 2_000
    sessions: int = 500
    span: timedelta = timedelta(days=30)
    start: datetime = START

    @property
    def end(self) -> datetime:
        return self.start + self.span


ENTITIES = [
    """INSERT INTO sprints (id, sprint_code, title, status, priority, metadata, correlation_id, version,
                            created_at, updated_at)
       SELECT s, 'GS-' || s, 'Sprint ' || s, 'active', 'P2', '{}', md5('sprint' || s)::uuid::text, 0, :t0, :t0
       FROM generate_series(1, :sprints) s""",
    """INSERT INTO tasks (id, task_code, sprint_id, title, description, status, priority, progress, metadata,
                          correlation_id, version, created_at, updated_at)
       SELECT t, 'GT-' || t, 1 + t % :sprints, 'Task ' || t, '', 'in_progress', 'P2', 0, '{}',
              md5('task' || t)::uuid::text, 0, :t0, :t0
       FROM generate_series(1, :tasks) t""",
    """INSERT INTO agent_sessions (id, session_key, agent_id, sprint_id, task_id, status, started_at, metadata,
                                   correlation_id, version, created_at, updated_at)
       SELECT k, 'gsess-' || k, 'agent:a' || k % 10, NULL, 1 + k % :tasks, 'active', :t0, '{}',
              md5('session' || k)::uuid::text, 0, :t0, :t0
       FROM generate_series(1, :sessions) k""",
    "SELECT setval(pg_get_serial_sequence('sprints', 'id'), :sprints)",
    "SELECT setval(pg_get_serial_sequence('tasks', 'id'), :tasks)",
    "SELECT setval(pg_get_serial_sequence('agent_sessions', 'id'), :sessions)",
]

# One row per (stream kind, j): kind picks the entity family, j % n the entity and
# j / n + 1 its gap-free sequence; time grows with j, so each stream is in order.
EVENTS = """
WITH parts AS (
  SELECT 'task' AS kind, j, :tasks AS n, :events * 6 / 10 AS m, 'GT-' AS code,
         ARRAY['orchestration.task.status_changed', 'orchestration.task.progress_updated',
               'orchestration.task.assigned', 'orchestration.task.updated'] AS kinds
  FROM generate_series(0, (:events * 6 / 10) - 1) j
  UNION ALL
  SELECT 'sprint', j, :sprints, :events * 1 / 10, 'GS-',
         ARRAY['orchestration.sprint.status_changed', 'orchestration.sprint.updated']
  FROM generate_series(0, (:events * 1 / 10) - 1) j
  UNION ALL
  SELECT 'session', j, :sessions, :events - (:events * 6 / 10) - (:events * 1 / 10), 'gsess-',
         ARRAY['orchestration.context.assembled', 'orchestration.session.resumed', 'custom.note']
  FROM generate_series(0, :events - (:events * 6 / 10) - (:events * 1 / 10) - 1) j
), rows AS (
  SELECT kind, j, 1 + j % n AS entity_id, 1 + j / n AS seq, code,
         CASE WHEN j / n = 0 THEN 'orchestration.' || CASE kind WHEN 'session' THEN 'session.started'
                                                           ELSE kind || '.created' END
              ELSE kinds[1 + (j / n) % array_length(kinds, 1)] END AS type,
         :t0 + :span * ((j + 0.5) / m) AS at
  FROM parts
)
INSERT INTO orchestration_events (event_id, type, entity_type, entity_id, entity_code, sequence, actor, emitted_at,
                                  correlation_id, correlation_chain, causation_id, causation_depth, session_key,
                                  priority, changes, data, hash, prev_hash, archived_at)
SELECT md5(kind || '-' || j)::uuid::text, type, kind, entity_id, code || entity_id, seq,
       CASE WHEN j % 3 = 0 THEN 'agent:a' || j % 5 ELSE 'user:u' || j % 7 END,
       at, md5(kind || entity_id)::uuid::text,
       CASE WHEN j % 5 = 0 THEN jsonb_build_array(md5('wf' || j / 50)::uuid::text) ELSE '[]'::jsonb END,
       NULL, 0,
       CASE WHEN kind = 'session' THEN 'gsess-' || entity_id
            WHEN j % 3 = 0 THEN 'gsess-' || (1 + j % :sessions) END,
       'P2', '{}', '{}', encode(sha256(convert_to(kind || j, 'UTF8')), 'hex'), NULL,
       CASE WHEN at < :archive_before THEN :archive_before END
FROM rows ORDER BY at
"""

ROLLUPS = """
INSERT INTO orchestration_event_rollups (bucket_start, type, actor, entity_type, archived, count)
SELECT date_trunc('hour', emitted_at, 'UTC'), type, actor, entity_type, archived_at IS NOT NULL, count(*)
FROM orchestration_events GROUP BY 1, 2, 3, 4, 5
"""
# The rollups just made count every event: the fold's watermark stands at the last one.
FOLDED = "UPDATE orchestration_rollup_watermark SET folded_upto = (SELECT COALESCE(max(id), 0) FROM orchestration_events)"


# Archived rows leave the hot table for the archive's monthly partitions, as the archiver moves them.
MOVE_ARCHIVED = [
    """DO $$ DECLARE m timestamp; BEGIN
         FOR m IN SELECT DISTINCT date_trunc('month', emitted_at AT TIME ZONE 'UTC')
                  FROM orchestration_events WHERE archived_at IS NOT NULL LOOP
           EXECUTE format('CREATE TABLE IF NOT EXISTS orchestration_events_archive_%s PARTITION OF '
                          'orchestration_events_archive FOR VALUES FROM (%L) TO (%L)', to_char(m, 'YYYYMM'),
                          m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
         END LOOP; END $$""",
    "INSERT INTO orchestration_events_archive SELECT * FROM orchestration_events WHERE archived_at IS NOT NULL",
    "DELETE FROM orchestration_events WHERE archived_at IS NOT NULL",
]


def generate(connection: Connection, shape: Shape = Shape()) -> None:
    """Fill an empty, migrated PostgreSQL database; the caller commits and ANALYZEs."""
    params = {
        "t0": shape.start, "span": shape.span, "events": shape.events, "sprints": shape.sprints,
        "tasks": shape.tasks, "sessions": shape.sessions, "archive_before": shape.start + shape.span / 5,
    }
    for statement in ENTITIES:
        connection.execute(text(statement), params)
    connection.execute(text(EVENTS), params)
    connection.execute(text(ROLLUPS))
    connection.execute(text(FOLDED))
    for statement in MOVE_ARCHIVED:
        connection.execute(text(statement))
