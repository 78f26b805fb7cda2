"""Automation fixtures: the app publishes after commit to a real broker, a real worker consumes.

Two stacks, chosen by the ``database_url`` parameter: SQLite with Celery's
``filesystem://`` transport (the quick start) and PostgreSQL with a private
Redis (production), or with RabbitMQ when ``ORCH_TEST_BROKER=rabbitmq`` (a
virtual host made for the run; ``.ci/run`` runs these tests both ways).
Workers start on first use and live for the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.config import Settings
from tests.integration.automation.workers import RabbitVhost, RedisServer, Worker, drain, worker_env
from tests.support import wipe

BROKER = os.environ.get("ORCH_TEST_BROKER", "redis")


@dataclass(frozen=True)
class Stack:
    database_url: str
    broker_url: str
    broker_dir: Path

    @property
    def name(self) -> str:
        if self.database_url.startswith("sqlite"):
            return "sqlite-fs"
        return "pg-rabbitmq" if self.broker_url.startswith("amqp") else "pg-redis"


@pytest.fixture(scope="session")
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def private_rabbitmq() -> Iterator[RabbitVhost]:
    vhost = RabbitVhost()
    vhost.start()
    yield vhost
    vhost.stop()


@pytest.fixture(scope="session")
def automation_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("automation")


@pytest.fixture
def stack(database_url: str, automation_dir: Path, request: pytest.FixtureRequest) -> Stack:
    if database_url.startswith("sqlite"):
        return Stack(database_url, "filesystem://", automation_dir / "broker-fs")
    if BROKER == "rabbitmq":
        rabbit: RabbitVhost = request.getfixturevalue("private_rabbitmq")
        return Stack(database_url, rabbit.url, automation_dir / "broker-rabbitmq")
    redis: RedisServer = request.getfixturevalue("private_redis")
    return Stack(database_url, redis.url, automation_dir / "broker-redis")


def settings_for(stack: Stack, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(database_url=stack.database_url, celery_broker_url=stack.broker_url,
                    broker_dir=str(stack.broker_dir), archive_dir=str(tmp_path / "archive"),
                    dispatch_after_commit=True, **{"rate_limit_writes": 1e6, "rate_limit_reads": 1e6, **overrides})


@pytest.fixture
def app(stack: Stack, tmp_path: Path) -> Iterator[Flask]:
    """The web app with the relay on: every commit publishes ``automation.evaluate``."""
    flask_app = create_app(settings_for(stack, tmp_path))
    runtime = flask_app.extensions["orchestration"]
    wipe(runtime.engine)
    yield flask_app
    runtime.engine.dispose()


@pytest.fixture(scope="session")
def worker_pool() -> Iterator[dict[str, Worker]]:
    pool: dict[str, Worker] = {}
    yield pool
    for worker in pool.values():
        worker.stop()


@pytest.fixture
def worker(stack: Stack, worker_pool: dict[str, Worker], automation_dir: Path, app: Flask) -> Worker:
    """A running ``celery -A workers worker`` for this stack (restarted if a test killed it)."""
    found = worker_pool.get(stack.name)
    if found is None:
        env = worker_env(stack.database_url, stack.broker_url, stack.broker_dir)
        found = worker_pool[stack.name] = Worker(stack.name, env, automation_dir)
    if found.process is None or found.process.poll() is not None:
        found.start()
    return found


@pytest.fixture
def settle(app: Flask, worker: Worker) -> Any:
    """Call to wait until the worker has evaluated everything dispatched so far."""
    engine = app.extensions["orchestration"].engine
    return lambda timeout=60: drain(engine, timeout)
