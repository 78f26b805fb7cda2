"""The README's quick start, for real: ``make run`` in a scratch copy with no servers configured.

SQLite and Celery's ``filesystem://`` transport, web + worker + beat started by
honcho from the Procfile; over HTTP, the sprint auto-complete rule applies, and
a dispatch that was missed is delivered by beat's outbox sweep.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.processes import end_tree, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
SERVER_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "ARCHIVE_DIR")


def scratch_copy(target: Path) -> Path:
    """The repository's files (tracked, or new and not ignored), without var/ or the virtualenv."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split("\n")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


class QuickStart:
    """``make run`` as a user types it, reusing this virtualenv instead of installing one."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        env = {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES and not k.startswith("ORCH_")}
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            ["make", "run", f"VENV={VENV}", f"PORT={port}", "-o", f"{VENV}/.installed"],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def token(self) -> str:
        def printed() -> str | None:
            marker = [i for i, line in enumerate(self.lines) if line.startswith("First admin token")]
            return self.lines[marker[0] + 1].strip() if marker and len(self.lines) > marker[0] + 1 else None
        from tests.token_watch import remember_token

        return remember_token(str(wait_for(printed, 60, "the first admin token", 0.1)))

    def stop(self) -> None:
        """Ctrl+C, as in the terminal; then make sure no process of the tree outlives the test.

        honcho starts each Procfile process in a session of its own, so the
        group signal reaches make and honcho only; honcho stops the rest.
        """
        end_tree(self.process, signal.SIGINT, grace=20)


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[tuple[str, str, QuickStart]]:
    port = free_port()
    run = QuickStart(scratch_copy(tmp_path / "checkout"), port)
    try:
        token = run.token()
        yield f"http://127.0.0.1:{port}/api/orchestration", token, run
    finally:
        run.stop()


def _healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.slow
def test_make_run_in_a_scratch_copy_serves_the_api_and_applies_the_sprint_auto_complete_rule(
        quickstart: tuple[str, str, QuickStart]) -> None:
    base, token, run = quickstart
    wait_for(lambda: _healthy(base) or run.process.poll() is not None, 60, "the web process", 0.2)
    assert run.process.poll() is None, "\n".join(run.lines)
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"

    def call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = http.request(method, f"{base}{path}", timeout=10, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()  # type: ignore[no-any-return]

    health = call("GET", "/health")
    assert health["database"]["status"] == "ok" and health["broker"]["transport"] == "filesystem"
    call("POST", "/sprints", json={"sprint_code": "QS-1", "title": "Quick start", "status": "active"})
    for code in ("QS-T1", "QS-T2"):
        call("POST", "/tasks", json={"task_code": code, "title": code, "sprint_code": "QS-1"})
        call("PATCH", f"/tasks/{code}", json={"status": "completed"})

    def completed() -> bool:
        return bool(call("GET", "/sprints/QS-1")["status"] == "completed")

    try:
        wait_for(completed, 60, "the sprint auto-complete rule", 0.25)
    except TimeoutError:
        pytest.fail("\n".join(run.lines[-80:]))
    changes = call("GET", "/events", params={"entity_code": "QS-1", "type": "orchestration.sprint.status_changed"})
    assert [e["actor"] for e in changes["items"]][-1] == "automation:sprint_auto_complete"

    created = call("GET", "/events", params={"entity_code": "QS-1"})["items"][0]
    miss_a_dispatch(run.folder / "var" / "orchestration.db", created["id"])
    wait_for(lambda: call("GET", "/health")["outbox"]["pending"] == 0, 30, "beat's outbox sweep", 0.25)


def miss_a_dispatch(database: Path, event_id: int) -> None:
    """An outbox row as a crash between commit and publish leaves it: only beat's sweep can deliver it."""
    long_ago = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("INSERT INTO orchestration_outbox (event_id, created_at, dispatch_count) VALUES (?, ?, 0)",
                           (event_id, long_ago))
