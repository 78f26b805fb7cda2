"""Purge goes by whole partitions and id ranges where that is exact, and by the file's own ids where not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import text

from app.domain.errors import Conflict
from tests.integration.test_archive import (
    NOW,
    all_events,
    assert_chains_valid,
    assert_rollups_match,
    codes,
    days_ago,
    files_on_disk,
    manifests,
    run_archive,
    run_purge,
)
from tests.support import Api


def partitions(runtime: Any) -> list[str]:
    if runtime.engine.dialect.name != "postgresql":
        return []
    with runtime.engine.connect() as connection:
        return list(connection.scalars(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'orchestration_events_archive'::regclass ORDER BY 1")))


def test_a_due_file_sharing_its_month_with_a_younger_file_leaves_that_files_rows_and_counts(
        api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(395)):  # 2025-05-02
        api.create_task("EARLY", priority="P2")
        api.update_task("EARLY", status="in_progress")
    with freeze_time(days_ago(300)):
        run_archive(runtime)
    with freeze_time(days_ago(380)):  # 2025-05-17: same month, same partition
        api.create_task("LATE", priority="P2")
    with freeze_time(NOW):
        run_archive(runtime)
    early_file, late_file = (m.path for m in manifests(runtime))
    before = all_events(api)

    with freeze_time(NOW):
        report = run_purge(runtime, older_than="390d")

    assert (report.files, report.events, report.held) == ([early_file], 2, [])
    after = all_events(api)
    assert after == [e for e in before if e["entity"]["code"] == "LATE"] and codes(after) == {"LATE"}
    assert files_on_disk(runtime) == [late_file]
    assert_rollups_match(runtime, after)
    if runtime.engine.dialect.name == "postgresql":  # the shared partition stays, holding LATE's event only
        assert "orchestration_events_archive_202505" in partitions(runtime)
        with runtime.engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM orchestration_events_archive_202505")) == 1


def test_a_file_whose_id_range_holds_another_files_event_is_purged_by_its_own_ids(
        api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(100)):
        api.create_task("OLD-1", priority="P2")
    with freeze_time(days_ago(50)):
        api.create_task("YOUNG", priority="P2")
    with freeze_time(days_ago(100)):
        api.create_task("OLD-2", priority="P2")
    with freeze_time(NOW):
        run_archive(runtime, older_than="90d")  # OLD-1 and OLD-2
        run_archive(runtime, older_than="40d")  # YOUNG, whose id lies between theirs
    first, second = manifests(runtime)
    assert first.first_id < second.first_id == second.last_id < first.last_id

    with freeze_time(NOW):
        report = run_purge(runtime, older_than="99d")

    assert (report.files, report.events, report.held) == ([first.path], 2, [])
    after = all_events(api)
    assert codes(after) == {"YOUNG"} and all(e["archived_at"] for e in after)
    assert files_on_disk(runtime) == [second.path]
    assert_rollups_match(runtime, after)
    assert_chains_valid(after)


def test_a_purge_whose_ranges_hold_more_rows_than_the_manifests_say_deletes_nothing(
        api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(400)):
        api.create_task("OLD", priority="P2")
        api.update_task("OLD", status="in_progress")
    with freeze_time(days_ago(300)):
        run_archive(runtime)
    [manifest] = manifests(runtime)
    with runtime.engine.begin() as connection:  # a manifest that under-counts its file's rows
        connection.execute(text("UPDATE orchestration_archive_manifests SET event_count = 1"))
    before = all_events(api)

    with freeze_time(NOW):
        if runtime.engine.dialect.name == "postgresql":  # by ranges: the counts disagree, the run stops
            with pytest.raises(Conflict, match="their manifests say 1"):
                run_purge(runtime)
        else:  # by the file's ids: the file no longer matches its manifest, it is held
            report = run_purge(runtime)
            assert (report.events, report.held) == (0, [manifest.path])

    assert all_events(api) == before
    assert (Path(runtime.settings.archive_dir) / manifest.path).exists()
