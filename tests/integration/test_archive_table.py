"""Archived rows live in their own table: the hot table keeps hot events only, and what
callers could reach before (one event by id, an idempotent retry, the stream's anchors)
still reaches archived events."""

from __future__ import annotations

from typing import Any

from freezegun import freeze_time
from sqlalchemy import text

from tests.integration.test_archive import NOW, days_ago, run_archive, run_purge
from tests.support import Api


def count(runtime: Any, sql: str) -> int:
    with runtime.engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())


def test_archiving_moves_rows_out_of_the_hot_table_and_one_event_is_still_readable_by_id(
        api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(120)):
        api.create_task("T-MOVE", priority="P2")
        posted = api.post("/events", json={"type": "custom.note", "entity_type": "task", "entity_code": "T-MOVE",
                                           "data": {"n": 1}, "event_id": "8c1d6b2e-5f0a-4c55-9d1e-2b7f3a4c5d6e"})
        assert posted.status_code == 201
    with freeze_time(NOW):
        report = run_archive(runtime)

    assert report.events == 2 and report.streams == 1
    assert count(runtime, "SELECT count(*) FROM orchestration_events") == 0
    assert count(runtime, "SELECT count(*) FROM orchestration_events_archive WHERE archived_at IS NOT NULL") == 2
    one = api.get(f"/events/{posted.get_json()['id']}")
    assert one.status_code == 200 and one.get_json()["archived_at"] is not None
    again = api.post("/events", json={"type": "custom.note", "entity_type": "task", "entity_code": "T-MOVE",
                                      "data": {"n": 1}, "event_id": "8c1d6b2e-5f0a-4c55-9d1e-2b7f3a4c5d6e"})
    assert again.status_code == 200 and again.get_json()["id"] == posted.get_json()["id"]


def test_a_run_snapshots_each_stream_once_at_its_last_archived_event_however_many_files(
        api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(120)):
        api.create_task("T-ONCE", priority="P2")
        for progress in range(1, 6):
            api.update_task("T-ONCE", progress=progress)
    with freeze_time(NOW):
        report = run_archive(runtime, batch_size=2)

    assert len(report.files) == 3 and report.streams == 1
    assert count(runtime, "SELECT count(*) FROM orchestration_snapshots") == 1
    assert count(runtime, "SELECT max(sequence) FROM orchestration_snapshots") == 6


def test_purging_part_of_a_stream_anchors_it_where_the_purge_stopped(api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(500)):
        api.create_task("T-PART", priority="P2")
        api.update_task("T-PART", progress=10)
    with freeze_time(days_ago(100)):
        api.update_task("T-PART", progress=20)
    with freeze_time(NOW):
        run_archive(runtime, batch_size=2)  # one run, one snapshot at sequence 3
        assert run_purge(runtime).events == 2  # the first file only: sequences 1-2

    task = api.get("/tasks/T-PART").get_json()
    report = api.get(f"/events/correlation/{task['correlation_id']}/validate").get_json()
    assert report["valid"] is True, report["problems"]
    items = api.get("/tasks/T-PART/history", query_string={"include_archived": "true"}).get_json()["items"]
    assert [(i["event"]["sequence"], i["state"]["progress"]) for i in items] == [(3, 20)]
