"""The production shape for operations tests: gunicorn (N workers) and a Celery worker on PostgreSQL
and a private Redis, sharing one metrics directory, each logging to a file of its own."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import BIN, ROOT, cli_token, free_port, wait_until_healthy
from tests.integration.automation.workers import Worker, worker_env


@dataclass
class Web:
    """``gunicorn 'app:create_app()'`` with gunicorn.conf.py, as the Procfile runs it."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([str(BIN / "gunicorn"), "app:create_app()"], cwd=ROOT,
                                            env=self.env | {"PORT": str(self.port)}, stdout=out,
                                            stderr=subprocess.STDOUT)
        wait_until_healthy(self.base, self.process, 60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
            self.process.wait(30)


def stack_env(database_url: str, broker_url: str, folder: Path, **extra: str) -> dict[str, str]:
    """One environment for web and worker: same database, broker, broker folder and metrics folder."""
    metrics = folder / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    return worker_env(database_url, broker_url, folder / "broker", ARCHIVE_DIR=str(folder / "archive"),
                      PROMETHEUS_MULTIPROC_DIR=str(metrics), **extra)


@dataclass
class Stack:
    web: Web
    worker: Worker
    token: str

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        response = requests.request(method, f"{self.web.base}/api/orchestration{path}", timeout=30,
                                    headers=headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def stop(self) -> None:
        self.web.stop()
        self.worker.stop()


def start_stack(env: dict[str, str], folder: Path) -> Stack:
    web = Web(env, folder / "web.log")
    web.start()
    worker = Worker("ops", env, folder)
    worker.start()
    return Stack(web, worker, cli_token(env))


def scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels): value}`` of ``GET /metrics`` (no token)."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def pids_with_samples(folder: Path) -> set[str]:
    """The processes that wrote counter files into the multiprocess folder."""
    return {path.stem.rsplit("_", 1)[-1] for path in folder.glob("counter_*.db")}


def env_without_servers() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")}
