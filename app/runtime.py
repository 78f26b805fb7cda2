"""The wiring one process needs: settings, engine, session factories, clock, dispatcher.

Built once by ``create_app`` (web) or the worker's app; services receive the
pieces they need, never this object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from app import metrics
from app.config import Settings
from app.domain.clock import Clock, utc_now
from app.services.rate_limit import RequestLimiter
from app.services.token_cache import TokenVerifier
from app.store.bell import Bell, ring_after_commit
from app.store.database import make_engine, session_factories
from app.store.event_tail import APPENDED_TYPES
from app.store.snapshots import SNAPSHOT_EVERY
from app.store.tables import Event
from app.store.uow import Dispatcher, UnitOfWork


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    writer: sessionmaker[Session]
    reader: sessionmaker[Session]
    clock: Clock = field(default=utc_now)
    dispatcher: Dispatcher | None = None
    deliverer: Dispatcher | None = None
    bell: Bell = field(default_factory=Bell)  # rings after commits that appended events (live stream)
    tokens: TokenVerifier = field(init=False)
    limiter: RequestLimiter = field(init=False)

    def __post_init__(self) -> None:
        """Trusted tokens (dropped on revocation) and per-token rate limits, one set per process."""
        self.tokens = TokenVerifier(self.read_uow, self.uow, self.settings.token_epoch_poll,
                                    self.settings.token_last_used_every)
        self.limiter = RequestLimiter(self.settings)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = make_engine(settings.database_url, echo=settings.sql_echo,
                             prepared_statements=not settings.pgbouncer)
        writer, reader = session_factories(engine)
        writer.configure(info={SNAPSHOT_EVERY: settings.snapshot_every})
        count_committed_events(writer)
        bell = Bell(settings.pubsub_redis_url)
        ring_after_commit(writer, bell)
        return cls(settings=settings, engine=engine, writer=writer, reader=reader, bell=bell)

    def uow(self) -> UnitOfWork:
        """A writing unit of work whose commit nudges the relay."""
        return UnitOfWork(self.writer, self.dispatcher, self.deliverer)

    def read_uow(self) -> UnitOfWork:
        return UnitOfWork(self.reader)

    def dispose_after_fork(self) -> None:
        """Connections must not cross a fork (gunicorn post_fork, Celery worker_process_init)."""
        self.engine.dispose(close=False)


_FLUSHED = "orchestration_flushed_events"
_MARKS = "orchestration_savepoint_marks"  # savepoint -> how many APPENDED_TYPES were listed when it began


def count_committed_events(factory: sessionmaker[Session]) -> None:
    """``orch_events_appended_total`` counts events once committed, wherever they were appended.

    Events flushed in a savepoint that rolled back (a failed rule) leave the
    session, so only those still in it at the commit are counted; events the
    write tail inserted by SQL are listed by type (``APPENDED_TYPES``), and a
    savepoint's rollback drops what it added to that list. SQLAlchemy also
    dispatches after_commit and after_rollback for savepoints: releasing one
    commits nothing, so only the outermost COMMIT counts.
    """

    @event.listens_for(factory, "after_flush")
    def _collect(session: Session, _context: object) -> None:
        session.info.setdefault(_FLUSHED, []).extend(
            row for row in session.new if isinstance(row, Event) and row.archived_at is None)

    @event.listens_for(factory, "after_transaction_create")
    def _mark(session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:
            session.info.setdefault(_MARKS, {})[id(transaction)] = len(session.info.get(APPENDED_TYPES, []))

    @event.listens_for(factory, "after_commit")
    def _count(session: Session) -> None:
        if session.in_nested_transaction():
            return
        rows = session.info.pop(_FLUSHED, [])
        session.info.pop(_MARKS, None)
        metrics.events_appended([row.type for row in rows if row in session] + session.info.pop(APPENDED_TYPES, []))

    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session) -> None:
        savepoint = session.get_nested_transaction()
        if savepoint is not None:  # only what this savepoint appended by SQL; its flushed rows left the session
            mark = session.info.get(_MARKS, {}).pop(id(savepoint), None)
            if mark is not None:
                del session.info.get(APPENDED_TYPES, [])[mark:]
            return
        session.info.pop(_FLUSHED, None)
        session.info.pop(APPENDED_TYPES, None)
        session.info.pop(_MARKS, None)
