"""Purge deletes archived events past retention, files and rows together; restore brings them back exactly."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from freezegun import freeze_time

from app.domain.clock import iso
from app.domain.hashing import event_hash
from app.store import archive_files
from tests.integration.test_archive import (
    NOW,
    all_events,
    assert_chains_valid,
    assert_rollups_match,
    codes,
    days_ago,
    files_on_disk,
    manifests,
    rollup_totals,
    run_archive,
    run_purge,
)
from tests.support import Api


def two_archive_files(api: Api, runtime: Any) -> tuple[str, str]:
    """OLD (400 days) archived in one file, MID (200 days) in another; KEEP (P0) and NEW stay hot."""
    with freeze_time(days_ago(400)):
        api.create_task("OLD", priority="P2")
        api.update_task("OLD", status="in_progress")
        api.create_task("KEEP", priority="P0")
    with freeze_time(days_ago(300)):
        run_archive(runtime)
    with freeze_time(days_ago(200)):
        api.create_task("MID", priority="P3")
    with freeze_time(NOW):
        run_archive(runtime)
        api.create_task("NEW", priority="P1")
    old, mid = (m.path for m in manifests(runtime))
    return old, mid


def cli(app: Flask, *args: str) -> Any:
    with freeze_time(NOW):
        return app.test_cli_runner().invoke(args=["orchestration", *args])


def test_purge_removes_archived_events_past_365_days_files_and_rows_and_nothing_else(
        api: Api, runtime: Any) -> None:
    old_file, mid_file = two_archive_files(api, runtime)
    before = all_events(api)

    with freeze_time(NOW):
        report = run_purge(runtime)

    assert (report.files, report.events, report.held) == ([old_file], 2, [])
    after = all_events(api)
    assert after == [e for e in before if e["entity"]["code"] != "OLD"]
    assert codes(after) == {"KEEP", "MID", "NEW"}
    assert files_on_disk(runtime) == [mid_file]
    assert [m.purged_at for m in manifests(runtime)] == [NOW, None]
    assert_rollups_match(runtime, after)
    assert api.get("/tasks/OLD").get_json()["status"] == "in_progress"


def test_a_file_holding_any_event_younger_than_the_age_waits_until_all_of_it_is_past(
        api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(400)):
        api.create_task("EARLY", priority="P2")
    with freeze_time(days_ago(300)):
        api.create_task("LATER", priority="P2")
    with freeze_time(NOW):
        run_archive(runtime)
        assert run_purge(runtime).files == []
        assert run_purge(runtime, older_than="299d").events == 2
    assert all_events(api) == []


def test_the_purge_dry_run_lists_what_would_go_and_deletes_nothing(app: Flask, api: Api, runtime: Any) -> None:
    old_file, _ = two_archive_files(api, runtime)
    before = all_events(api)

    result = cli(app, "purge-archived", "--older-than", "365d", "--dry-run")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [old_file, f"would purge 2 archived events stamped before "
                                          f"{iso(days_ago(365))} in 1 files"]
    assert all_events(api) == before and len(files_on_disk(runtime)) == 2


def test_purge_holds_a_file_that_is_missing_or_altered_because_its_rows_are_then_the_only_copy(
        app: Flask, api: Api, runtime: Any) -> None:
    old_file, _ = two_archive_files(api, runtime)
    (Path(runtime.settings.archive_dir) / old_file).unlink()
    before = all_events(api)

    result = cli(app, "purge-archived")

    assert result.exit_code == 0 and f"held {old_file}" in result.stderr
    assert all_events(api) == before


def test_restore_archive_brings_a_purged_file_back_exactly_and_again_is_harmless(
        app: Flask, api: Api, runtime: Any, tmp_path: Path) -> None:
    old_file, _ = two_archive_files(api, runtime)
    backup = tmp_path / "backup.jsonl.gz"
    shutil.copy(Path(runtime.settings.archive_dir) / old_file, backup)
    before, rollups = all_events(api), rollup_totals(runtime)
    with freeze_time(NOW):
        run_purge(runtime)

    restored = cli(app, "restore-archive", str(backup))
    again = cli(app, "restore-archive", str(backup))

    assert restored.exit_code == 0, restored.output
    assert f"restored 2 events from {backup} as {old_file}" in restored.stdout
    assert again.exit_code == 0 and "restored 0 events" in again.stdout and "(2 were still present)" in again.stdout
    after = all_events(api)
    assert after == before and all(event_hash(e) == e["hash"] for e in after)
    assert_chains_valid(after)
    assert rollup_totals(runtime) == rollups
    assert [m.purged_at for m in manifests(runtime)] == [None, None]
    assert (Path(runtime.settings.archive_dir) / old_file).read_bytes() == backup.read_bytes()


def test_restore_refuses_a_file_that_no_manifest_records_and_writes_nothing(
        app: Flask, api: Api, runtime: Any, tmp_path: Path) -> None:
    old_file, _ = two_archive_files(api, runtime)
    lines = [json.loads(line) for line in gzip.decompress(
        (Path(runtime.settings.archive_dir) / old_file).read_bytes()).splitlines()]
    lines[0]["data"] = {"forged": True}
    forged = tmp_path / "forged.jsonl.gz"
    forged.write_bytes(gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode()))
    garbage = tmp_path / "garbage.jsonl.gz"
    garbage.write_bytes(b"not gzip at all")
    with freeze_time(NOW):
        run_purge(runtime)
    before = all_events(api)

    refused = cli(app, "restore-archive", str(forged))
    unreadable = cli(app, "restore-archive", str(garbage))

    assert refused.exit_code == 1 and "no archive manifest records" in refused.output
    assert unreadable.exit_code == 1 and "not a readable gzip JSON Lines file" in unreadable.output
    assert all_events(api) == before


def test_a_purge_stopped_between_its_commit_and_the_unlink_leaves_a_file_the_next_purge_removes(
        api: Api, runtime: Any, monkeypatch: Any) -> None:
    old_file, mid_file = two_archive_files(api, runtime)

    def stop(path: Path) -> bool:
        raise OSError("stopped before unlink")

    monkeypatch.setattr(archive_files, "remove", stop)
    with freeze_time(NOW), pytest.raises(OSError):
        run_purge(runtime)
    assert codes(all_events(api)) == {"KEEP", "MID", "NEW"} and len(files_on_disk(runtime)) == 2
    monkeypatch.undo()
    with freeze_time(NOW):
        report = run_purge(runtime)

    assert (report.cleaned, report.files) == ([old_file], [])
    assert files_on_disk(runtime) == [mid_file]
