"""Archiving survives a crash at every step, and never runs twice at once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from freezegun import freeze_time

from app.services import archive, integrity
from app.store import archive_files, archive_rows
from tests.integration.test_archive import (
    NOW,
    all_events,
    assert_chains_valid,
    assert_rollups_match,
    days_ago,
    files_on_disk,
    manifests,
    run_archive,
    run_purge,
)
from tests.support import Api


class SimulatedCrash(RuntimeError):
    """Stands for the process dying at that point."""


def crash_on_second_call(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    """The first batch goes through; the run dies at this step of the second one."""
    original, calls = getattr(module, name), []

    def step(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise SimulatedCrash(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, step)


CRASH_POINTS = {
    "after the file write": (archive_files, "publish"),  # synced under its temporary name, not renamed
    "after the rename": (archive_files, "verify"),  # published, never verified, no manifest
    "after the manifest": (archive_rows, "mark_archived"),  # manifest added, transaction never committed
}


def seed(api: Api) -> None:
    with freeze_time(days_ago(100)):
        for code, priority in (("K-1", "P1"), ("K-2", "P2"), ("K-3", "P3"), ("K-0", "P0")):
            api.create_task(code, priority=priority)
            api.update_task(code, status="in_progress")
    with freeze_time(days_ago(3)):
        api.create_task("K-NEW", priority="P2")
        api.update_task("K-1", progress=40)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_run_that_crashes_mid_batch_is_completed_by_the_next_run_without_loss_or_duplicates(
        api: Api, runtime: Any, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    seed(api)
    original = all_events(api)
    crash_on_second_call(monkeypatch, *CRASH_POINTS[point])

    with freeze_time(NOW), pytest.raises(SimulatedCrash):
        run_archive(runtime, batch_size=2)
    left = files_on_disk(runtime)
    monkeypatch.undo()
    with freeze_time(days_ago(-1)):
        second = run_archive(runtime, batch_size=2)

    if point == "after the file write":
        assert any(path.endswith(".tmp") for path in left) and len(second.discarded) == 1
    else:
        assert len(second.recovered) == 1 and second.recovered[0] in left
    after = all_events(api)
    assert [(e["id"], e["hash"]) for e in after] == [(e["id"], e["hash"]) for e in original]
    archived_ids = [e["id"] for e in after if e["archived_at"]]
    assert len(archived_ids) == 6 and len(after) - len(archived_ids) == len(api.events())
    filed = [line["id"] for m in manifests(runtime) for line in archive_files.read(
        Path(runtime.settings.archive_dir) / m.path)[0]]
    assert sorted(filed) == archived_ids
    assert files_on_disk(runtime) == sorted(m.path for m in manifests(runtime))
    assert_chains_valid(after)
    assert integrity.validate_all(runtime.read_uow())["valid"]
    assert_rollups_match(runtime, after)


def test_a_run_stopped_after_a_commit_leaves_finished_batches_and_the_next_run_goes_on(
        api: Api, runtime: Any) -> None:
    seed(api)

    def stop(progress: archive.Progress) -> None:
        raise SimulatedCrash("after the commit")

    with freeze_time(NOW), pytest.raises(SimulatedCrash):
        run_archive(runtime, batch_size=2, progress=stop)
    assert sum(1 for e in all_events(api) if e["archived_at"]) == 2
    with freeze_time(NOW):
        second = run_archive(runtime, batch_size=2)

    assert (second.events, second.recovered, second.discarded) == (4, [], [])
    assert_chains_valid(all_events(api))


def test_a_file_that_does_not_match_the_rows_it_names_is_set_aside_and_its_events_archived_again(
        api: Api, runtime: Any) -> None:
    seed(api)
    root = Path(runtime.settings.archive_dir)
    forged = root / "2026/01/01/1-2.jsonl.gz"
    forged.parent.mkdir(parents=True)
    forged.write_bytes(archive_files.encode([{"id": 1, "timestamp": NOW.isoformat(), "hash": "x"}]))

    with freeze_time(NOW):
        report = run_archive(runtime)

    assert report.rejected == ["2026/01/01/1-2.jsonl.gz"] and report.events == 6
    assert (root / "2026/01/01/1-2.jsonl.gz.rejected").exists()
    assert_chains_valid(all_events(api))


def test_two_archive_runs_started_at_once_one_does_the_work_and_the_other_exits_cleanly(
        app: Flask, api: Api, runtime: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(api)
    inside, release = threading.Event(), threading.Event()
    publish, results = archive_files.publish, {}

    def held_publish(temp: Path, target: Path) -> None:
        inside.set()
        release.wait(30)
        publish(temp, target)

    monkeypatch.setattr(archive_files, "publish", held_publish)
    with freeze_time(NOW):
        first = threading.Thread(target=lambda: results.update(first=run_archive(runtime)))
        first.start()
        assert inside.wait(30)
        second = app.test_cli_runner().invoke(args=["orchestration", "archive-events"])
        purge = run_purge(runtime)
        release.set()
        first.join(30)

    assert second.exit_code == 0 and archive.BUSY_MESSAGE in second.stderr and second.stdout == ""
    assert purge.busy and purge.files == []
    assert results["first"].events == 6 and not results["first"].busy
    assert sum(1 for e in all_events(api) if e["archived_at"]) == 6
