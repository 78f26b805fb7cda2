"""The real processes a fair benchmark needs: gunicorn (service or bare app), Celery worker and beat.

Every process runs with the project's own settings (``gunicorn.conf.py``,
``celeryconfig.py``); only the database, the broker and the port are the
benchmark's. CPU time is read from ``/proc`` so a round can report CPU per
write for the web tier, the worker and the database backends it used.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.integration.automation.workers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")


class Proc:
    """One subprocess in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def pids(self) -> list[int]:
        """The process and its descendants."""
        if self.process is None:
            return []
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            todo.extend(int(c) for c in children)
        return found


def env_for(database_url: str, broker_url: str, state_dir: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")}
    return base | {"DATABASE_URL": database_url, "CELERY_BROKER_URL": broker_url,
                   "ORCH_BROKER_DIR": str(state_dir), "ARCHIVE_DIR": str(state_dir / "archive"),
                   "PYTHONPATH": str(ROOT),
                   # The write path is measured, not the per-token rate limits (50 writes/s by default).
                   "ORCH_RATE_LIMIT_WRITES": "0", "ORCH_RATE_LIMIT_READS": "0"} | extra


def gunicorn(name: str, app: str, env: dict[str, str], log_dir: Path) -> tuple[Proc, int]:
    """gunicorn with the project's gunicorn.conf.py (workers, threads, access log), on a free port."""
    port = free_port()
    proc = Proc(name, [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), app],
                env | {"PORT": str(port), "HOST": "127.0.0.1"}, log_dir).start()
    wait_for(lambda: _answers(port), 60, f"{name} to listen", 0.2)
    return proc, port


def _answers(port: int) -> bool:
    """Any HTTP answer will do (a 404 too): the server is accepting requests."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False


def celery(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    """A Celery worker; ready once its pool processes exist (logging stays at the Procfile's level)."""
    proc = Proc(name, [str(BIN / "celery"), *argv], env, log_dir).start()
    wait_for(lambda: len(proc.pids()) >= 3 or proc.process.poll() is not None,  # type: ignore[union-attr]
             60, f"{name} to be ready", 0.2)
    time.sleep(1.0)
    return proc


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each live pid."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / TICK
    return found


def backend_pids(database_url: str) -> list[int]:
    """PostgreSQL backends connected to this database (the benchmark's own)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND pid <> pg_backend_pid()"))
            return [int(r[0]) for r in rows]
    finally:
        engine.dispose()


class CpuMeter:
    """CPU used by a set of processes (and the database backends) between start() and stop()."""

    def __init__(self, procs: list[Proc], database_url: str) -> None:
        self.procs, self.database_url = procs, database_url

    def _sample(self) -> dict[int, float]:
        pids = [p for proc in self.procs for p in proc.pids()] + backend_pids(self.database_url)
        return cpu_seconds(pids)

    def start(self) -> None:
        self._before = self._sample()
        self._t0 = time.monotonic()

    def stop(self) -> float:
        after = self._sample()
        return sum(v - self._before.get(pid, 0.0) for pid, v in after.items())
