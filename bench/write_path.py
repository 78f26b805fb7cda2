"""The request's share of a write: a recorded change vs a bare insert, same process, same minute.

Baseline: a minimal Flask view that inserts one row into a plain table over the
same engine. Measured: ``POST /tasks`` and ``PATCH /tasks/{code}`` through the
full stack (auth, schema, row lock, events with hash chain, outbox, rollups).
The figure that matters is the ratio; absolute numbers vary with the machine.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from sqlalchemy import text

from app import create_app
from app.config import Settings
from app.services import tokens
from tests.support import postgres_database, sqlite_database

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "400"))


def rate(action: Callable[[int], None], rounds: int = ROUNDS) -> float:
    start = time.perf_counter()
    for n in range(rounds):
        action(n)
    return rounds / (time.perf_counter() - start)


def run(url: str, label: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(database_url=url, rate_limit_writes=1e6, rate_limit_reads=1e6, archive_dir=tmp, broker_dir=tmp, dispatch_after_commit=False))
        rt = app.extensions["orchestration"]
        with rt.engine.begin() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS bench_baseline (title TEXT)"))
        token = tokens.create_token("user:bench", "admin", rt.uow(), rt.clock)
        headers = {"Authorization": f"Bearer {token}"}
        bare = Flask("baseline")

        @bare.post("/insert")
        def insert() -> tuple[str, int]:
            with rt.engine.begin() as connection:
                connection.execute(text("INSERT INTO bench_baseline (title) VALUES ('x')"))
            return "", 201

        baseline_client, client = bare.test_client(), app.test_client()
        baseline = rate(lambda n: baseline_client.post("/insert"))
        creates = rate(lambda n: client.post("/api/orchestration/tasks", headers=headers,
                                             json={"task_code": f"B-{n}", "title": "bench"}))
        patches = rate(lambda n: client.patch(f"/api/orchestration/tasks/B-{n}", headers=headers,
                                              json={"status": "in_progress", "progress": 10}))
        print(f"{label:10s} baseline {baseline:7.0f}/s  create {creates:7.0f}/s (x{creates / baseline:.2f})"
              f"  patch(2 events) {patches:7.0f}/s (x{patches / baseline:.2f})")
        rt.engine.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run(sqlite_database(Path(tmp)), "sqlite")
    with postgres_database("orch_bench") as url:
        run(url, "postgresql")


if __name__ == "__main__":
    main()
