"""The after-commit bell: tell stream followers that the log grew, without carrying events.

The bell only wakes; followers always read the log itself (commit-safe, by
id), so a lost or duplicated ring costs latency, never correctness. It rings
after every commit that inserted events, whichever use case or process made
it: in-process listeners directly, other processes through Redis pub/sub
when Redis is configured (else they poll).

The Redis side is a publisher thread (a greenlet under gevent) per process,
not a PUBLISH inside each commit: the request that committed does not wait on
Redis, and under load one PUBLISH every ``PUBLISH_INTERVAL`` wakes the
followers for all the commits since the last one.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from app.store.tables import Event

log = logging.getLogger(__name__)

CHANNEL = "orchestration:events:committed"
_APPENDED = "orchestration_events_appended"
Listener = Callable[[], None]
# A process publishes at most one ring per interval (seconds): followers wake that much later at worst.
PUBLISH_INTERVAL = 0.02


class Bell:
    """In-process listeners plus, optionally, a Redis channel shared by every process."""

    def __init__(self, redis_url: str | None = None) -> None:
        self.redis_url = redis_url
        self._listeners: list[Listener] = []
        self._redis: Any = None
        self._due = threading.Event()
        self._publisher: threading.Thread | None = None
        self._starting = threading.Lock()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def ring(self) -> None:
        for listener in list(self._listeners):
            listener()
        if self.redis_url:
            self._due.set()
            self._ensure_publisher()

    def flush(self) -> None:
        """Publish a ring still due now (at exit: a short-lived process's last commit)."""
        if self._due.is_set():
            self._due.clear()
            self._publish()

    def _ensure_publisher(self) -> None:
        """Started on the first ring, and again in a forked child (threads do not survive a fork)."""
        if self._publisher is not None and self._publisher.is_alive():
            return
        with self._starting:
            if self._publisher is None:
                atexit.register(self.flush)
            if self._publisher is None or not self._publisher.is_alive():
                self._publisher = start_daemon(self._publish_due, "bell-publisher")

    def _publish_due(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            self._publish()
            time.sleep(PUBLISH_INTERVAL)

    def _publish(self) -> None:
        try:
            if self._redis is None:
                import redis

                self._redis = redis.Redis.from_url(str(self.redis_url), socket_connect_timeout=1, socket_timeout=1)
            self._redis.publish(CHANNEL, b"1")
        except Exception:  # noqa: BLE001 - followers poll too; a write never fails for the bell
            log.warning("could not publish the stream wake-up", exc_info=True)
            self._redis = None

    def listen_forever(self, on_ring: Listener, stopped: Callable[[], bool] = lambda: False) -> None:
        """Call ``on_ring`` for every ring from any process; reconnects after failures."""
        import redis

        while not stopped():
            try:
                client = redis.Redis.from_url(str(self.redis_url), socket_connect_timeout=2, health_check_interval=30)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                on_ring()  # anything committed while we were not subscribed
                for _message in pubsub.listen():
                    on_ring()
            except Exception:  # noqa: BLE001 - Redis restarts must not end the follower
                log.warning("stream wake-up subscription lost; retrying", exc_info=True)
                time.sleep(1.0)


def note_appended(session: Session) -> None:
    """Events went in by raw SQL (the PostgreSQL write tail): ring after this commit too."""
    session.info[_APPENDED] = True


def ring_after_commit(factory: sessionmaker[Session], bell: Bell) -> None:
    """Ring the bell after each commit of a session from ``factory`` that inserted events."""

    @event.listens_for(factory, "after_flush")
    def _note(session: Session, _context: Any) -> None:
        if any(isinstance(obj, Event) for obj in session.new):
            session.info[_APPENDED] = True

    @event.listens_for(factory, "do_orm_execute")
    def _note_bulk(state: Any) -> None:  # events inserted with insert(Event) rather than session.add
        if state.is_insert and getattr(getattr(state.statement, "table", None), "name", None) == Event.__tablename__:
            state.session.info[_APPENDED] = True

    # SQLAlchemy dispatches after_commit and after_rollback for savepoints too. Releasing one (each
    # rule's effects are applied in one) makes nothing visible yet: ring at the outermost COMMIT only,
    # and keep the flag through a savepoint's rollback (a spare ring is harmless, a missed one waits
    # for the stream's poll).
    @event.listens_for(factory, "after_commit")
    def _ring(session: Session) -> None:
        if not session.in_nested_transaction() and session.info.pop(_APPENDED, False):
            bell.ring()

    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session) -> None:
        if not session.in_nested_transaction():
            session.info.pop(_APPENDED, None)


def start_daemon(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread (a greenlet under gevent's monkey-patching)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
