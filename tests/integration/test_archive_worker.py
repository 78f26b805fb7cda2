"""The nightly jobs: run by a real ``celery -A workers worker``, they archive and purge as the CLI does."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from freezegun import freeze_time

from app.relay import producer_app
from tests.integration.test_archive import all_events, files_on_disk, manifests
from tests.support import Api

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


@pytest.fixture
def archive_worker(runtime: Any, tmp_path: Path) -> Iterator[Path]:
    """A worker on the app's database, archive folder and (filesystem) broker; yields its log."""
    settings = runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "ORCH_", "ARCHIVE"))}
    env |= {"DATABASE_URL": settings.database_url, "CELERY_BROKER_URL": settings.celery_broker_url,
            "ORCH_BROKER_DIR": settings.broker_dir, "ARCHIVE_DIR": settings.archive_dir, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CELERY), "-A", "workers", "worker", "--pool=solo", "--loglevel=INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"archive-{os.getpid()}@%h"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: process.poll() is not None or " ready." in log.read_text(), "the worker to start")
        assert process.poll() is None, log.read_text()
        yield log
    finally:
        process.terminate()
        process.wait(20)


def test_the_nightly_jobs_run_by_a_real_worker_archive_and_purge_as_the_cli_does(
        app: Flask, api: Api, runtime: Any, archive_worker: Path) -> None:
    with freeze_time(datetime.now(UTC) - timedelta(days=100)):
        for code, priority in (("W-0", "P0"), ("W-1", "P1"), ("W-2", "P2"), ("W-3", "P3")):
            api.create_task(code, priority=priority)
    api.create_task("W-NEW", priority="P2")
    plan = app.test_cli_runner().invoke(args=["orchestration", "archive-events", "--dry-run"]).stdout
    publisher = producer_app(runtime.settings)

    publisher.send_task("archive.run")
    wait_for(lambda: "archive.run" in archive_worker.read_text() and " succeeded in " in archive_worker.read_text(),
             "the archive job")

    archived = sorted(e["entity"]["code"] for e in all_events(api) if e["archived_at"])
    assert archived == ["W-1", "W-2", "W-3"]
    assert [line.split()[:3] for line in plan.splitlines()[2:]] == [
        ["P0", "0", "1"], ["P1", "1", "0"], ["P2", "1", "1"], ["P3", "1", "0"]]
    assert files_on_disk(runtime) == [m.path for m in manifests(runtime)] and len(manifests(runtime)) == 1
    again = app.test_cli_runner().invoke(args=["orchestration", "archive-events"])
    assert "archived 0 events" in again.stdout

    publisher.send_task("archive.purge", kwargs={"older_than": "0d"})
    wait_for(lambda: archive_worker.read_text().count(" succeeded in ") >= 2, "the purge job")

    assert sorted(e["entity"]["code"] for e in all_events(api)) == ["W-0", "W-NEW"]
    assert files_on_disk(runtime) == []


def test_beat_runs_archive_and_purge_nightly_and_the_environment_moves_them(tmp_path: Path) -> None:
    """Read in a fresh interpreter, with the environment beat would see."""
    script = "import celeryconfig as c; print({e['task']: str(e['schedule']) for e in c.beat_schedule.values()})"
    env = os.environ | {"ORCH_PURGE_SCHEDULE": "0 5 * * 0", "ORCH_BROKER_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("ORCH_ARCHIVE_SCHEDULE", None)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            check=True)
    schedule = ast.literal_eval(result.stdout)
    assert schedule["archive.run"] == "<crontab: 30 2 * * * (m/h/dM/MY/d)>"
    assert schedule["archive.purge"] == "<crontab: 0 5 * * 0 (m/h/dM/MY/d)>"
    assert schedule["outbox.sweep"] == "5.0"
