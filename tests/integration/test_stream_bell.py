"""The after-commit bell that wakes stream followers: rings for committed events only, across processes via Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import make_transient

from app import create_app
from app.config import Settings
from app.services import tokens
from app.store.bell import PUBLISH_INTERVAL, Bell, note_appended
from app.store.tables import Event
from tests.conftest import make_settings
from tests.integration.automation.workers import RedisServer
from tests.integration.stream_support import wait_for
from tests.support import sqlite_database


@pytest.fixture
def app_with_rings(tmp_path: Path) -> Iterator[tuple[Flask, list[int]]]:
    flask_app = create_app(make_settings(sqlite_database(tmp_path), tmp_path))
    rings: list[int] = []
    flask_app.extensions["orchestration"].bell.add_listener(lambda: rings.append(1))
    yield flask_app, rings
    flask_app.extensions["orchestration"].engine.dispose()


def test_a_commit_that_appended_events_rings_and_nothing_else_does(app_with_rings: tuple[Flask, list[int]]) -> None:
    flask_app, rings = app_with_rings
    rt = flask_app.extensions["orchestration"]
    token = tokens.create_token("user:a", "admin", rt.uow(), rt.clock)  # a commit without events
    client, headers = flask_app.test_client(), {"Authorization": f"Bearer {token}"}
    assert rings == []
    assert client.post("/api/orchestration/tasks", json={"task_code": "B-1", "title": "t"}, headers=headers).status_code == 201
    assert rings == [1]
    assert client.patch("/api/orchestration/tasks/NOPE", json={"progress": 1}, headers=headers).status_code == 404
    with rt.uow() as uow:  # an event flushed, then rolled back
        row = uow.session.get(Event, 1)
        assert row is not None
        uow.session.expunge(row)
        make_transient(row)
        row.id, row.event_id, row.sequence = None, "00000000-0000-4000-8000-000000000000", 99
        uow.session.add(row)
        uow.session.flush()
    assert rings == [1]


def test_events_appended_in_a_savepoint_ring_once_the_outer_transaction_commits(
        app_with_rings: tuple[Flask, list[int]]) -> None:
    """A rule's effects are applied in a savepoint; releasing it makes nothing visible, the COMMIT does."""
    flask_app, rings = app_with_rings
    rt = flask_app.extensions["orchestration"]
    token = tokens.create_token("user:a", "admin", rt.uow(), rt.clock)
    client, headers = flask_app.test_client(), {"Authorization": f"Bearer {token}"}
    assert client.post("/api/orchestration/tasks", json={"task_code": "B-1", "title": "t"}, headers=headers).status_code == 201
    rings.clear()
    with rt.uow() as uow:
        with uow.session.begin_nested():
            note_appended(uow.session)  # what the write tail does when it inserts events
        assert rings == [], "rang at a savepoint's release, before anything was visible"
        with uow.session.begin_nested() as failed:  # a later rule whose savepoint rolls back
            failed.rollback()
        uow.commit()
    assert rings == [1]


@pytest.mark.timeout(60)
def test_redis_carries_the_ring_to_another_process(tmp_path: Path) -> None:
    redis = RedisServer()
    redis.start()
    try:
        heard, done = threading.Event(), threading.Event()
        listener = Bell(redis.url)
        threading.Thread(target=lambda: listener.listen_forever(heard.set, done.is_set), daemon=True).start()
        wait_for(heard.is_set)  # it rings once on subscribing: whatever was missed meanwhile
        heard.clear()
        Bell(redis.url).ring()
        wait_for(heard.is_set)
    finally:
        done.set()
        redis.stop()


def test_a_burst_of_rings_takes_a_few_publishes_and_the_last_ring_is_never_dropped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    bell = Bell("redis://127.0.0.1:1/0")  # never reached: publishing is counted instead
    published: list[float] = []
    monkeypatch.setattr(bell, "_publish", lambda: published.append(time.monotonic()))
    for _ in range(200):  # commits in one process, faster than the publish interval
        bell.ring()
    wait_for(lambda: published)
    time.sleep(PUBLISH_INTERVAL * 3)
    after_burst = len(published)
    assert 1 <= after_burst < 20, "every commit of the burst published its own ring"

    bell.ring()  # a commit after the burst still wakes the followers
    wait_for(lambda: len(published) == after_burst + 1)


def test_the_stream_uses_the_brokers_redis_unless_redis_url_is_set() -> None:
    assert Settings(celery_broker_url="redis://h:1/0").pubsub_redis_url == "redis://h:1/0"
    assert Settings(celery_broker_url="redis://h:1/0", redis_url="redis://o:2/1").pubsub_redis_url == "redis://o:2/1"
    assert Settings().pubsub_redis_url is None
