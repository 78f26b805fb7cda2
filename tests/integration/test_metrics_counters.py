"""Counters in one process (no multiprocess folder): what is counted, and what is not."""

from __future__ import annotations

from typing import Any

from flask import Flask
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from app.domain.events import PlannedEvent
from app.services.context import ChangeContext
from app.store import repositories as repo
from app.store.event_store import append
from tests.support import Api


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_events_are_counted_once_committed_and_a_refused_change_counts_only_its_validation_failed(
        api: Api) -> None:
    created = value("orch_events_appended_total", type="orchestration.task.created")
    changed = value("orch_events_appended_total", type="orchestration.task.status_changed")
    refused = value("orch_events_appended_total", type="orchestration.task.validation_failed")
    api.create_task("T-COUNT")
    assert api.patch("/tasks/T-COUNT", json={"status": "completed"}, headers={"If-Match": "9"}).status_code == 409

    assert value("orch_events_appended_total", type="orchestration.task.created") == created + 1
    assert value("orch_events_appended_total", type="orchestration.task.status_changed") == changed
    assert value("orch_events_appended_total", type="orchestration.task.validation_failed") == refused + 1
    assert value("orch_http_requests_total", method="PATCH", route="/api/orchestration/tasks/<code>",
                 status="409") >= 1


def test_a_rules_savepoints_count_at_the_commit_and_a_rolled_back_one_counts_nothing(api: Api, runtime: Any) -> None:
    """Rule effects are appended in savepoints: released ones count when the transaction commits, a rolled-back
    one never, and nothing counts if the transaction itself rolls back."""
    api.create_task("T-SP")
    progress = value("orch_events_appended_total", type="orchestration.task.progress_updated")

    def append_progress(session: Any, n: int) -> None:
        row = repo.find_task(session, "T-SP", lock=True)
        before, row.progress = row.progress, n
        append(session, repo.stream_of("task", row),
               [PlannedEvent("orchestration.task.progress_updated", {"progress": {"before": before, "after": n}})],
               ChangeContext(actor="user:rule").meta(), runtime.clock())

    session = runtime.writer()
    with session.begin_nested():
        append_progress(session, 10)
    assert value("orch_events_appended_total", type="orchestration.task.progress_updated") == progress
    failed = session.begin_nested()
    append_progress(session, 20)
    failed.rollback()
    session.commit()
    session.close()
    assert value("orch_events_appended_total", type="orchestration.task.progress_updated") == progress + 1

    session = runtime.writer()
    with session.begin_nested():
        append_progress(session, 30)
    session.rollback()
    session.close()
    assert value("orch_events_appended_total", type="orchestration.task.progress_updated") == progress + 1


def test_an_archive_run_from_the_cli_is_counted_with_its_rows_but_a_dry_run_is_not(app: Flask, api: Api) -> None:
    runs = value("orch_retention_runs_total", job="archive", outcome="done")
    rows = value("orch_retention_rows_total", job="archive")
    api.create_task("T-OLD", priority="P2")
    runner = app.test_cli_runner()

    assert runner.invoke(args=["orchestration", "archive-events", "--older-than", "0s", "--dry-run"]).exit_code == 0
    assert value("orch_retention_runs_total", job="archive", outcome="done") == runs
    result = runner.invoke(args=["orchestration", "archive-events", "--older-than", "0s"])
    assert result.exit_code == 0, result.output
    assert value("orch_retention_runs_total", job="archive", outcome="done") == runs + 1
    assert value("orch_retention_rows_total", job="archive") == rows + 1
    assert value("orch_retention_duration_seconds_count", job="archive") >= 1


def test_metrics_split_the_events_table_into_hot_and_archived_rows(app: Flask, api: Api) -> None:
    api.create_task("T-A", priority="P2")
    api.create_task("T-B", priority="P0")  # kept forever: stays hot
    result = app.test_cli_runner().invoke(args=["orchestration", "archive-events", "--older-than", "0s"])
    assert result.exit_code == 0, result.output
    engine = app.extensions["orchestration"].engine
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:  # the row total is the planner's estimate: make it current
            connection.execute(text("ANALYZE orchestration_events"))

    scraped = {s.name + repr(sorted(s.labels.items())): s.value for family in
               text_string_to_metric_families(api.client.get("/metrics").get_data(as_text=True))
               for s in family.samples}
    assert scraped["orch_events_rows[('state', 'archived')]"] == 1
    assert scraped["orch_events_rows[('state', 'hot')]"] == 1
    assert scraped["orch_events_bytes[('state', 'hot')]"] > 0
    assert scraped["orch_outbox_pending[]"] == 1  # only the P0 creation waits for a rule (alert_p0_task)
