"""Real gunicorn (two workers) for the token tests, with an access log naming the worker of each request."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import BIN, ROOT, free_port, wait_until_healthy

ACCESS_FORMAT = "%(p)s %(m)s %(U)s %(s)s"


@dataclass
class Server:
    base: str
    env: dict[str, str]
    access_log: Path
    error_log: Path

    @property
    def api(self) -> str:
        return f"{self.base}/api/orchestration"

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in (self.access_log, self.error_log) if path.exists())

    def served(self) -> list[tuple[str, str, str, int]]:
        """(worker pid, method, path, status) of every request so far."""
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        rows = [line.split(" ") for line in lines]
        return [(r[0], r[1], r[2], int(r[3])) for r in rows if len(r) == 4]


@contextmanager
def gunicorn(database_url: str, tmp_path: Path, **extra_env: str) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "PORT": str(port), "WEB_CONCURRENCY": "2",
           "ARCHIVE_DIR": str(tmp_path / "archive"), "ORCH_BROKER_DIR": str(tmp_path / "broker"),
           "ORCH_DISPATCH_AFTER_COMMIT": "0", **extra_env}
    access_log, error_log = tmp_path / f"access-{port}.log", tmp_path / f"gunicorn-{port}.log"
    errors = error_log.open("wb")
    process = subprocess.Popen([str(BIN / "gunicorn"), "app:create_app()", "--access-logfile", str(access_log),
                                "--access-logformat", ACCESS_FORMAT], cwd=ROOT, env=env,
                               stdout=errors, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, process)
        yield Server(base, env, access_log, error_log)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        errors.close()
