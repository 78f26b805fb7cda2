"""Fixtures that start the real processes (gunicorn) against a migrated PostgreSQL database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def wait_until_healthy(base: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            if requests.get(f"{base}/api/orchestration/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base} did not become healthy")


@contextmanager
def gunicorn(env: dict[str, str], port: int) -> Iterator[str]:
    """The project's gunicorn (``gunicorn.conf.py``) serving the app with ``env``: its base URL once healthy."""
    process = subprocess.Popen([str(BIN / "gunicorn"), "app:create_app()"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process)
        yield base
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        process.wait(30)


def cli_token(env: dict[str, str], role: str = "admin", actor: str = "user:e2e") -> str:
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "app", "orchestration", "create-token", "--actor", actor, "--role", role],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60,
    )
    from tests.token_watch import remember_token

    return remember_token(result.stdout.strip())


@pytest.fixture
def gunicorn_server(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """(base URL, environment) of a real gunicorn serving the app on PostgreSQL."""
    from sqlalchemy import create_engine

    from tests.support import wipe

    engine = create_engine(pg_url)
    wipe(engine)
    engine.dispose()
    port = free_port()
    env = {**os.environ, "DATABASE_URL": pg_url, "PORT": str(port), "ARCHIVE_DIR": str(tmp_path / "archive"),
           "ORCH_BROKER_DIR": str(tmp_path / "broker"), "ORCH_DISPATCH_AFTER_COMMIT": "0",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    with gunicorn(env, port) as base:
        yield base, env


@pytest.fixture(scope="session")
def sqlite_gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """(base URL, environment) of the zero-config web process: real gunicorn with the project's
    ``gunicorn.conf.py`` on a migrated SQLite file, no broker, no Redis. Shared by the tests of
    the session that use it (they write under codes of their own)."""
    from tests.support import sqlite_database

    tmp_path = tmp_path_factory.mktemp("zero-config")
    port = free_port()
    env = {**os.environ, "DATABASE_URL": sqlite_database(tmp_path), "PORT": str(port),
           "ARCHIVE_DIR": str(tmp_path / "archive"), "ORCH_BROKER_DIR": str(tmp_path / "broker"),
           "ORCH_STREAM_SLOT_DIR": str(tmp_path / "streams"), "ORCH_DISPATCH_AFTER_COMMIT": "0"}
    env.pop("REDIS_URL", None)
    with gunicorn(env, port) as base:
        yield base, env
