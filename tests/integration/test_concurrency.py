"""Concurrent writers: gap-free sequences, and readers that never skip a late commit."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from app.domain.events import PlannedEvent
from app.domain.paging import encode_cursor
from app.services.context import ChangeContext
from app.store import repositories as repo
from app.store.event_fence import INFLIGHT_BASE, visible_bound
from app.store.event_store import append
from app.store.tables import Event
from tests.support import PG_ADMIN_URL, Api


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_twenty_threads_patching_one_task_leave_a_gap_free_stream(app: Flask, api: Api) -> None:
    api.create_task("T-RACE")
    barrier = threading.Barrier(20)

    def patch(n: int) -> int:
        client = app.test_client()
        barrier.wait()
        response = client.patch("/api/orchestration/tasks/T-RACE", json={"progress": n + 1, "title": f"t{n}"},
                                headers={"Authorization": f"Bearer {api.tokens['writer']}"})
        return response.status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(patch, range(20)))

    assert statuses == [200] * 20
    events = api.events(entity_code="T-RACE")
    sequences = [e["sequence"] for e in events]
    assert sequences == list(range(1, len(events) + 1))
    assert len(events) == 1 + 20 * 2
    assert api.get("/tasks/T-RACE").get_json()["version"] == sequences[-1]
    assert [e["prev_hash"] for e in events[1:]] == [e["hash"] for e in events[:-1]]


def test_a_reader_following_after_does_not_skip_a_transaction_that_started_first_and_committed_last(
        app: Flask, api: Api, runtime: Any) -> None:
    """Transaction A appends first but commits last; B appends later and commits in between.

    With ids taken at insert time, B's event is visible with a higher id before
    A's; a reader that moved its cursor past B would then skip A. On PostgreSQL
    writers do not wait for each other (B commits at once), but a reader stops at
    the visible bound, below A while A is in flight, so it sees A then B.
    """
    api.create_task("T-A")
    api.create_task("T-B")
    cursor = api.events()[-1]["id"]

    session_a = runtime.writer()
    row = repo.find_task(session_a, "T-A", lock=True)
    row.progress = 50
    [event_a] = append(session_a, repo.stream_of("task", row),
                       [PlannedEvent("orchestration.task.progress_updated", {"progress": {"before": 0, "after": 50}})],
                       ChangeContext(actor="user:a").meta(), runtime.clock())

    b_done = threading.Event()

    def writer_b() -> None:
        client = app.test_client()
        client.patch("/api/orchestration/tasks/T-B", json={"progress": 10},
                     headers={"Authorization": f"Bearer {api.tokens['writer']}"})
        b_done.set()

    thread_b = threading.Thread(target=writer_b)
    thread_b.start()
    if runtime.engine.dialect.name == "postgresql":
        assert b_done.wait(10), "B waited for A: PostgreSQL writers must not serialize on each other"
    else:
        assert not b_done.wait(1.0), "SQLite has one writer at a time: B waits for A"

    def follow(after_id: int) -> list[int]:
        items = api.get("/events", query_string={"after": encode_cursor(after_id)}).get_json()["items"]
        return [e["id"] for e in items]

    assert follow(cursor) == [], "B's event was shown while A's earlier one was still in flight"
    session_a.commit()
    session_a.close()
    thread_b.join(10)
    seen = follow(cursor)
    assert seen[0] == event_a.id and len(seen) == 2 and seen == sorted(seen)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_writers_in_flight_in_another_database_do_not_hold_readers_back_here(api: Api, runtime: Any) -> None:
    """``pg_locks`` lists every database's advisory locks, and other databases' never conflict with ours."""
    api.create_task("T-1")
    elsewhere = create_engine(PG_ADMIN_URL)
    try:
        with elsewhere.connect() as other, runtime.read_uow() as uow:
            other.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": INFLIGHT_BASE})
            assert visible_bound(uow.session) == uow.session.execute(select(func.max(Event.id))).scalar_one()
    finally:
        elsewhere.dispose()
