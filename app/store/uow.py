"""Unit of work: one transaction per use case, rolled back unless committed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import TracebackType

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.store.chain_reads import ChainReads
from app.store.dead_letters import DeadLetters
from app.store.errors import DuplicateRow
from app.store.event_pages import EventPages
from app.store.event_repository import EventRepository
from app.store.event_store import QUEUED
from app.store.observability import DatabaseHealth
from app.store.outbox_rows import OutboxRepository
from app.store.repositories import Streams
from app.store.rule_rows import RuleRepository
from app.store.webhook_rows import WebhookDeliveries

log = logging.getLogger(__name__)

Dispatcher = Callable[[Sequence[int]], None]


class Repositories:
    """The repositories over one database session: what a use case inside a transaction is handed."""

    db: Session
    streams: Streams
    events: EventRepository
    outbox: OutboxRepository
    rules: RuleRepository
    # Health, webhooks, dead letters, chain validation and event pages.
    health: DatabaseHealth
    webhooks: WebhookDeliveries
    dead_letters: DeadLetters
    chains: ChainReads
    event_pages: EventPages
    pending_dispatch: list[int]

    def _bind(self, db: Session) -> None:
        self.db = db
        self.streams = Streams(db)
        self.events = EventRepository(db, self.pending_dispatch)
        self.outbox = OutboxRepository(db)
        self.rules = RuleRepository(db)
        self.health = DatabaseHealth(db)
        self.webhooks = WebhookDeliveries(db)
        self.dead_letters = DeadLetters(db)
        self.chains = ChainReads(db)
        self.event_pages = EventPages(db)


def over(db: Session) -> Repositories:
    """Repositories over a session the caller owns (its commit, its dispatch)."""
    repos = Repositories()
    repos.pending_dispatch = []
    repos._bind(db)
    return repos


class UnitOfWork(Repositories):
    """Owns a database session (``db``) and the repositories over it: ``streams``, ``events``,
    ``outbox``, ``rules``; after a successful commit, hands new outbox ids to the dispatcher.

    The dispatcher is the fast path only: the outbox rows are already
    committed, so a dispatcher failure (broker down) is logged and the sweep
    delivers later.
    """

    def __init__(self, factory: sessionmaker[Session], dispatcher: Dispatcher | None = None,
                 deliverer: Dispatcher | None = None) -> None:
        self._factory = factory
        self._dispatcher = dispatcher
        self._deliverer = deliverer
        self.pending_dispatch: list[int] = []
        # Webhook deliveries committed by this unit of work, handed to their own queue after commit.
        self.pending_deliveries: list[int] = []

    @property
    def session(self) -> Session:
        """The database session under its older name (``db`` is unambiguous beside agent sessions)."""
        return self.db

    def __enter__(self) -> UnitOfWork:
        self.pending_dispatch, self.pending_deliveries = [], []
        self._bind(self._factory())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.streams.release_locks()
        try:
            self.db.rollback()
        finally:
            self.db.close()

    def savepoint(self) -> Savepoint:
        """A nested transaction; rolling it back also forgets the row locks taken inside it."""
        return Savepoint(self)

    def commit(self) -> None:
        """Commit, then publish the new events some rule may match (those given an outbox row)."""
        queued = self.db.info.pop(QUEUED, set())
        self.streams.release_locks()
        try:
            self.db.commit()
        except IntegrityError as exc:
            raise DuplicateRow.of(exc) from exc
        ids = [i for i in dict.fromkeys(self.pending_dispatch) if i in queued]
        self.pending_dispatch.clear()
        if ids and self._dispatcher is not None:
            try:
                self._dispatcher(ids)
            except Exception:  # noqa: BLE001 - the outbox sweep is the guarantee
                log.warning("dispatch after commit failed; the outbox sweep will retry", exc_info=True)
        deliveries, self.pending_deliveries = self.pending_deliveries, []
        if deliveries and self._deliverer is not None:
            try:
                self._deliverer(deliveries)
            except Exception:  # noqa: BLE001 - the delivery sweep is the guarantee
                log.warning("webhook hand-off after commit failed; the delivery sweep will retry", exc_info=True)


class Savepoint:
    """``uow.savepoint()``: commit keeps what was done inside, rollback undoes it (locks and dispatch too)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._nested = uow.db.begin_nested()
        self._dispatch_mark = len(uow.pending_dispatch)

    def commit(self) -> None:
        self._nested.commit()

    def rollback(self) -> None:
        self._nested.rollback()
        self._uow.streams.release_locks()  # a rolled-back savepoint releases the row locks taken after it
        del self._uow.pending_dispatch[self._dispatch_mark:]
