"""Archiving: which events leave the hot table, what the files hold, and reading across the boundary.

The helpers at the top are shared by the other ``test_archive_*`` modules.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import func, select

from app.domain.clock import iso
from app.domain.errors import NotFound
from app.domain.hashing import event_hash
from app.services import archive, archive_purge, integrity, replay, rollup_fold
from app.store.tables import ArchiveManifest, EventRollup, Snapshot
from tests.support import Api

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def days_ago(days: float, **extra: float) -> datetime:
    return NOW - timedelta(days=days, **extra)


def run_archive(runtime: Any, **job: Any) -> archive.ArchiveReport:
    progress = job.pop("progress", None)
    cold = archive.cold_storage(runtime.settings, runtime.engine)
    return archive.archive_events(archive.ArchiveJob(**job), cold, runtime.uow(), runtime.read_uow(),
                                  runtime.clock, progress)


def run_purge(runtime: Any, older_than: str | None = None, dry_run: bool = False) -> archive_purge.PurgeReport:
    cold = archive.cold_storage(runtime.settings, runtime.engine)
    return archive_purge.purge_archived(older_than, dry_run, cold, runtime.uow(), runtime.read_uow(), runtime.clock)


def all_events(api: Api) -> list[dict[str, Any]]:
    return api.events(include_archived="true")


def codes(events: list[dict[str, Any]]) -> set[str]:
    return {e["entity"]["code"] for e in events}


def manifests(runtime: Any) -> list[ArchiveManifest]:
    with runtime.read_uow() as uow:
        found = list(uow.session.scalars(select(ArchiveManifest).order_by(ArchiveManifest.first_id)))
        uow.session.expunge_all()
        return found


def files_on_disk(runtime: Any) -> list[str]:
    root = Path(runtime.settings.archive_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def rollup_totals(runtime: Any) -> dict[bool, int]:
    """The rollup table's counts by ``archived``, once the fold has caught up with the log
    (between folds, readers add the hot events above the watermark themselves)."""
    rollup_fold.fold(runtime.uow())
    with runtime.read_uow() as uow:
        stmt = select(EventRollup.archived, func.sum(EventRollup.count)).group_by(EventRollup.archived)
        return {bool(archived): int(n) for archived, n in uow.session.execute(stmt) if n}


def assert_rollups_match(runtime: Any, events: list[dict[str, Any]]) -> None:
    archived = sum(1 for e in events if e["archived_at"])
    expected = {flag: n for flag, n in {True: archived, False: len(events) - archived}.items() if n}
    assert rollup_totals(runtime) == expected


def assert_chains_valid(events: list[dict[str, Any]]) -> None:
    """Every stream: sequence 1..n without gaps, each hash recomputes, each prev_hash links."""
    streams: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for event in events:
        assert event_hash(event) == event["hash"]
        if event["sequence"] is not None:
            streams.setdefault((event["entity"]["type"], event["entity"]["id"]), []).append(event)
    for stream in streams.values():
        stream.sort(key=lambda e: e["sequence"])
        assert [e["sequence"] for e in stream] == list(range(1, len(stream) + 1))
        assert [e["prev_hash"] for e in stream] == [None] + [e["hash"] for e in stream[:-1]]


def test_p1_p2_p3_events_91_days_old_are_archived_while_p0_and_89_day_old_events_stay(
        api: Api, runtime: Any) -> None:
    for priority in ("P0", "P1", "P2", "P3"):
        with freeze_time(days_ago(91)):
            api.create_task(f"OLD-{priority}", priority=priority)
        with freeze_time(days_ago(89)):
            api.create_task(f"NEW-{priority}", priority=priority)

    with freeze_time(NOW):
        report = run_archive(runtime)

    assert (report.events, len(report.files), report.busy) == (3, 1, False)
    assert codes(api.events()) == {"OLD-P0", "NEW-P0", "NEW-P1", "NEW-P2", "NEW-P3"}
    archived = [e for e in all_events(api) if e["archived_at"]]
    assert codes(archived) == {"OLD-P1", "OLD-P2", "OLD-P3"}
    assert {e["archived_at"] for e in archived} == {iso(NOW)}


def test_the_90_day_boundary_is_strict_an_event_stamped_exactly_at_the_cutoff_stays_hot(
        api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(90)):
        api.create_task("AT-CUTOFF", priority="P2")
    with freeze_time(days_ago(90, microseconds=1)):
        api.create_task("JUST-BEFORE", priority="P2")

    with freeze_time(NOW):
        run_archive(runtime, older_than="90d")

    assert codes(api.events()) == {"AT-CUTOFF"}
    assert codes(all_events(api)) == {"AT-CUTOFF", "JUST-BEFORE"}


def test_an_archive_file_is_gzip_json_lines_of_the_envelopes_its_manifest_describes(
        api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(120)):
        api.create_task("T-A", priority="P1")
        api.create_task("T-B", priority="P2")
        api.update_task("T-A", status="in_progress", progress=10)
        api.update_task("T-B", status="blocked")
    with freeze_time(NOW):
        report = run_archive(runtime, batch_size=4)

    events = {e["id"]: e for e in all_events(api)}
    assert report.events == len(events) == 6 and len(report.files) == 2
    assert files_on_disk(runtime) == sorted(m.path for m in manifests(runtime))
    for manifest in manifests(runtime):
        payload = (Path(runtime.settings.archive_dir) / manifest.path).read_bytes()
        lines = [json.loads(line) for line in gzip.decompress(payload).splitlines()]
        assert hashlib.sha256(payload).hexdigest() == manifest.sha256
        assert (len(lines), lines[0]["id"], lines[-1]["id"]) == (manifest.event_count, manifest.first_id,
                                                                manifest.last_id)
        assert manifest.path == f"{days_ago(120):%Y/%m/%d}/{manifest.first_id}-{manifest.last_id}.jsonl.gz"
        assert [{k: v for k, v in line.items() if k != "causation_depth"} for line in lines] == [
            events[line["id"]] for line in lines]
        last = {f"{e['entity']['type']}:{e['entity']['id']}": e for e in lines}
        assert manifest.stream_heads == {key: {"sequence": e["sequence"], "hash": e["hash"], "event_id": e["event_id"]}
                                         for key, e in last.items()}
    assert_rollups_match(runtime, list(events.values()))


def test_archiving_snapshots_each_affected_stream_at_its_last_archived_event(api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(100)):
        task = api.create_task("T-SNAP", priority="P3")
        api.update_task("T-SNAP", status="in_progress")
    with freeze_time(days_ago(10)):
        api.update_task("T-SNAP", progress=50)
    with freeze_time(NOW):
        run_archive(runtime)

    with runtime.read_uow() as uow:
        [snapshot] = uow.session.scalars(select(Snapshot).where(Snapshot.entity_id == task["id"],
                                                                Snapshot.entity_type == "task"))
        assert (snapshot.sequence, snapshot.state["status"], snapshot.state["progress"]) == (2, "in_progress", 0)
        assert snapshot.as_of == days_ago(100)


def test_include_archived_returns_hot_and_archived_events_in_one_order(api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(100)):
        api.create_task("T-ORDER", priority="P2")
        api.update_task("T-ORDER", status="in_progress")
    with freeze_time(days_ago(5)):
        api.update_task("T-ORDER", status="completed")
        api.update_task("T-ORDER", progress=100)
    with freeze_time(NOW):
        run_archive(runtime)

    both = api.events(path="/events/entity/task/T-ORDER", include_archived="true", limit=2)
    hot = api.events(path="/events/entity/task/T-ORDER")

    assert [e["sequence"] for e in both] == [1, 2, 3, 4]
    assert [e["id"] for e in both] == sorted(e["id"] for e in both)
    assert [e["archived_at"] for e in both] == [iso(NOW), iso(NOW), None, None]
    assert hot == both[2:]
    assert_chains_valid(both)


def test_reconstruction_and_chain_validation_give_the_same_answers_across_the_archive_boundary(
        api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(400)):
        task = api.create_task("T-HIST", priority="P2")
    with freeze_time(days_ago(380)):
        api.update_task("T-HIST", status="in_progress", assignee="agent:coder")
    with freeze_time(days_ago(10)):
        api.update_task("T-HIST", status="completed", progress=100)
    instants = [days_ago(400), days_ago(390), days_ago(380), days_ago(10), NOW]

    def answers(since: int = 0) -> list[dict[str, Any]]:
        return [replay.reconstruct_state("task", task["id"], at, runtime.read_uow()) for at in instants[since:]]

    def chain() -> dict[str, Any]:
        return integrity.validate_event_chain(task["correlation_id"], runtime.read_uow())

    before, valid = answers(), chain()
    with freeze_time(NOW):
        run_archive(runtime)
        assert answers() == before and chain() == valid
        assert run_purge(runtime).events == 3

    assert codes(api.events(include_archived="true")) == {"T-HIST"}
    assert answers(since=2) == before[2:]
    with pytest.raises(NotFound, match="purged under the retention policy"):
        replay.reconstruct_state("task", task["id"], instants[0], runtime.read_uow())
    assert chain()["valid"] and valid["valid"]
    assert before[-1]["status"] == "completed" and before[2]["assignee"] == "agent:coder"


def test_the_cli_dry_run_shows_per_priority_what_would_be_archived_and_what_is_held(
        app: Flask, api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(200)):
        for code, priority in (("D-0", "P0"), ("D-1", "P1"), ("D-1B", "P1"), ("D-3", "P3")):
            api.create_task(code, priority=priority)
    with freeze_time(days_ago(1)):
        api.create_task("D-NEW", priority="P3")

    with freeze_time(NOW):
        result = app.test_cli_runner().invoke(args=["orchestration", "archive-events", "--older-than", "90d",
                                                    "--dry-run"])

    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[2:]}
    assert rows == {"P0": ["0", "1", "(kept", "forever)"], "P1": ["2", "0"], "P2": ["0", "0"], "P3": ["1", "1"]}
    assert iso(days_ago(90)) in result.stdout
    assert files_on_disk(runtime) == [] and not any(e["archived_at"] for e in all_events(api))


def test_the_cli_archives_with_progress_on_stderr_and_a_summary_on_stdout(app: Flask, api: Api, runtime: Any) -> None:
    with freeze_time(days_ago(95)):
        for n in range(5):
            api.create_task(f"C-{n}", priority="P2")

    with freeze_time(NOW):
        result = app.test_cli_runner().invoke(args=["orchestration", "archive-events", "--batch-size", "2"])
        bad = app.test_cli_runner().invoke(args=["orchestration", "archive-events", "--older-than", "ninety"])

    assert result.exit_code == 0, result.output
    assert result.stderr.count("events/s") + result.stderr.count("rate not measurable") == 3
    assert "archived 5 events" in result.stdout and "into 3 files" in result.stdout
    assert Counter(bool(e["archived_at"]) for e in all_events(api)) == {True: 5}
    assert bad.exit_code == 2 and "90d" in bad.output
