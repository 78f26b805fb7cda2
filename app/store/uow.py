"""Unit of work: one transaction per use case, rolled back unless committed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from app.store.chain_reads import ChainReads
from app.store.dead_letters import DeadLetters
from app.store.event_pages import EventPages
from app.store.event_store import QUEUED
from app.store.observability import DatabaseHealth
from app.store.webhook_rows import WebhookDeliveries

log = logging.getLogger(__name__)

Dispatcher = Callable[[Sequence[int]], None]


class UnitOfWork:
    """Owns a session; after a successful commit, hands new outbox ids to the dispatcher.

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
        self.session: Session

    def __enter__(self) -> UnitOfWork:
        self.session = self._factory()
        self.pending_dispatch, self.pending_deliveries = [], []
        self._bind_edge_repositories(self.session)
        return self

    # Repositories of health, webhooks, dead letters, chain validation and event pages (issue 10):
    # built on each new session, so those use cases never touch SQL.
    health: DatabaseHealth
    webhooks: WebhookDeliveries
    dead_letters: DeadLetters
    chains: ChainReads
    event_pages: EventPages

    def _bind_edge_repositories(self, db: Session) -> None:
        self.health = DatabaseHealth(db)
        self.webhooks = WebhookDeliveries(db)
        self.dead_letters = DeadLetters(db)
        self.chains = ChainReads(db)
        self.event_pages = EventPages(db)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        """Commit, then publish the new events some rule may match (those given an outbox row)."""
        queued = self.session.info.pop(QUEUED, set())
        self.session.commit()
        ids = [i for i in dict.fromkeys(self.pending_dispatch) if i in queued]
        self.pending_dispatch = []
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
