"""The baseline web app: one Core INSERT of a row shaped like an event, nothing else.

Same gunicorn settings as the service (``gunicorn -c gunicorn.conf.py
bench._bare_app:app``). The table (``TABLE_SQL``) has 15 columns, two of them
JSONB, and the same kind of indexes as ``orchestration_events``.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from flask import Flask, request
from sqlalchemy import create_engine, text

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS bench_bare (
  id BIGSERIAL PRIMARY KEY, event_id VARCHAR(36) NOT NULL UNIQUE, type VARCHAR(200) NOT NULL,
  entity_type VARCHAR(32) NOT NULL, entity_id INTEGER NOT NULL, entity_code VARCHAR(128),
  sequence INTEGER, actor VARCHAR(200) NOT NULL, emitted_at TIMESTAMPTZ NOT NULL,
  correlation_id VARCHAR(36) NOT NULL, causation_id VARCHAR(36), priority VARCHAR(2) NOT NULL,
  changes JSONB NOT NULL, data JSONB NOT NULL, hash VARCHAR(64) NOT NULL);
CREATE INDEX IF NOT EXISTS ix_bare_type ON bench_bare (type);
CREATE INDEX IF NOT EXISTS ix_bare_actor ON bench_bare (actor);
CREATE INDEX IF NOT EXISTS ix_bare_emitted ON bench_bare (emitted_at);
CREATE INDEX IF NOT EXISTS ix_bare_corr ON bench_bare (correlation_id);
CREATE INDEX IF NOT EXISTS ix_bare_code ON bench_bare (entity_code, id)
"""

INSERT = text(
    "INSERT INTO bench_bare (event_id, type, entity_type, entity_id, entity_code, sequence, actor, emitted_at,"
    " correlation_id, causation_id, priority, changes, data, hash) VALUES (:event_id, :type, 'task', :n,"
    " :code, :n, 'user:bench', :now, :corr, NULL, 'P2', CAST(:changes AS JSONB), '{}'::jsonb, :hash)")

app = Flask("bare")
engine = create_engine(os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/postgres"),
                       pool_pre_ping=True, pool_size=10, max_overflow=20)  # as app.store.database


@app.get("/openapi.json")
def livez() -> tuple[str, int]:
    return "ok", 200


@app.route("/api/orchestration/tasks/<code>", methods=["PATCH"])
def insert(code: str) -> tuple[dict[str, str], int]:
    body = request.get_json()
    progress = int(body.get("progress", 0))
    with engine.begin() as connection:
        connection.execute(INSERT, {
            "event_id": str(uuid.uuid4()), "type": "orchestration.task.progress_updated", "n": progress,
            "code": code, "now": datetime.now(UTC), "corr": str(uuid.uuid4()),
            "changes": f'{{"progress": {{"before": 0, "after": {progress}}}}}', "hash": "0" * 64})
    return {"task_code": code}, 200
