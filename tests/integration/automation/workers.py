"""Real processes for the automation tests: a private redis-server and ``celery -A workers worker``.

Never the shared Redis on 6379 (other suites use it), never task_always_eager.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import Engine, func, select

from app.store.tables import OutboxEntry
from tests.processes import end_tree, free_port, wait_for

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
PLUGINS = "tests.integration.automation.plugins"


class RedisServer:
    """A redis-server of our own on a free port, without persistence, that tests may stop and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 10, "redis-server to answer")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


class RabbitVhost:
    """A RabbitMQ virtual host of our own on the shared server (127.0.0.1:5672), deleted afterwards,
    so parallel runs never see each other's queues."""

    def __init__(self) -> None:
        self.name = f"orch-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:5672/{self.name}"

    def start(self) -> None:
        for command in (["add_vhost", self.name], ["set_permissions", "-p", self.name, "guest", ".*", ".*", ".*"]):
            subprocess.run(["rabbitmqctl", "-q", *command], check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.name], capture_output=True, timeout=60)


class Worker:
    """``celery -A workers worker`` in its own process group, so SIGKILL takes its pool children too."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, args: tuple[str, ...] = ()) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = log_dir / f"worker-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def start(self) -> None:
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "celery"), "-A", "workers", "worker", "--loglevel=INFO", "--concurrency=2",
                 "-n", f"{self.name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", *self.args],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self._exited() or " ready." in self.output(), 30, f"worker {self.name} to be ready", 0.1)
        if self._exited():
            raise RuntimeError(f"worker {self.name} exited:\n{self.output()}")

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def output(self) -> str:
        """What the worker logged since its last start."""
        with self.log.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.output()))

    def kill(self) -> None:
        """SIGKILL to the worker and its pool processes (each in a group of its own): no cleanup, no
        acknowledgement, no rollback but the database's."""
        assert self.process is not None
        end_tree(self.process, signal.SIGKILL, grace=0)

    def stop(self) -> None:
        """Ask politely; a worker's own shutdown takes seconds, and a drained one has nothing to lose."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(1)
            except subprocess.TimeoutExpired:
                self.kill()


def worker_env(database_url: str, broker_url: str, broker_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")}
    return env | {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "ORCH_BROKER_DIR": str(broker_dir),
        "ORCH_AUTOMATION_MODULES": PLUGINS,
        "ORCH_AUTOMATION_MAX_RETRIES": "2",
        "ORCH_OUTBOX_SWEEP_AFTER": "0",
        "ORCH_OUTBOX_MAX_DELIVERIES": "3",
        "PYTHONPATH": str(ROOT),
    } | extra


def pending(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(OutboxEntry)).scalar_one())


def drain(engine: Engine, timeout: float = 60) -> None:
    """Wait until every dispatched event has been evaluated.

    A rule's effects get their outbox rows in the transaction that deletes the
    trigger's, so an empty outbox means the worker has nothing left to do.
    """
    wait_for(lambda: pending(engine) == 0, timeout, "the outbox to drain")
