"""Which tokens a process trusts without asking the database, and when it stops trusting them.

Every revocation raises a counter (``token_epoch``) in the transaction that
revokes. Each process re-reads that one row at most every ``poll`` seconds
(0.5 s by default) and trusts only cache entries loaded under the epoch it
last read, so a revoked token stops working on every web and worker process
within about a second, with one tiny query per process per poll instead of
one per request. The database is the only channel: it works on the
zero-service default (SQLite) and cannot disagree with the revocation itself.
Expiry needs no signal: a cached principal carries its ``expires_at``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime

from app.services import tokens
from app.services.tokens import Principal
from app.store import token_rows
from app.store.uow import UnitOfWork

log = logging.getLogger(__name__)

UowFactory = Callable[[], UnitOfWork]


class TokenVerifier:
    """Per-process: digest -> (principal, epoch it was loaded under)."""

    def __init__(self, read_uow: UowFactory, write_uow: UowFactory, poll: float, last_used_every: float) -> None:
        self._read_uow = read_uow
        self._known: dict[str, tuple[Principal, int]] = {}
        self._poll = poll
        self._epoch = -1
        self._polled_at: float | None = None
        self._lock = threading.Lock()
        self.usage = UsageRecorder(write_uow, last_used_every)

    def verify(self, token: str, now: datetime) -> Principal | None:
        """The live principal behind ``token`` at ``now``, or None (unknown, revoked or expired)."""
        wanted = tokens.digest(token)
        epoch = self._current_epoch()
        cached = self._known.get(wanted)
        if cached is not None and cached[1] == epoch:
            principal = cached[0]
        else:
            found = tokens.lookup(token, self._read_uow(), now)
            if found is None:
                self._known.pop(wanted, None)
                return None
            principal, last_used = found
            self._known[wanted] = (principal, epoch)
            self.usage.seen(principal.token_id, last_used)
        if principal.expired(now):
            return None
        self.usage.note(principal.token_id, now)
        return principal

    def invalidate(self) -> None:
        """Forget everything now (this process revoked a token); others follow within ``poll``."""
        with self._lock:
            self._polled_at = None
            self._known.clear()

    def _current_epoch(self) -> int:
        """The epoch as last read; re-read when older than ``poll``, by one thread at a time."""
        if self._fresh():
            return self._epoch
        with self._lock:
            if not self._fresh():
                with self._read_uow() as uow:
                    epoch = token_rows.read_epoch(uow.session)
                if epoch != self._epoch:
                    self._known.clear()
                self._epoch, self._polled_at = epoch, time.monotonic()
            return self._epoch

    def _fresh(self) -> bool:
        """Read less than ``poll`` ago (a clock that jumped back, as under freezegun, counts as stale)."""
        polled = self._polled_at
        return polled is not None and polled <= time.monotonic() < polled + self._poll


class UsageRecorder:
    """``last_used_at``, written at most once per ``every`` seconds per token and process,
    by a background thread: a request never waits for it, and its failure never fails one."""

    def __init__(self, write_uow: UowFactory, every: float) -> None:
        self._write_uow = write_uow
        self._every = every
        self._recorded: dict[int, datetime] = {}
        self._pending: dict[int, datetime] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def seen(self, token_id: int | None, last_used: datetime | None) -> None:
        """What the database already says (another process may have written it recently)."""
        if token_id is not None and last_used is not None:
            self._recorded.setdefault(token_id, last_used)

    def note(self, token_id: int | None, now: datetime) -> None:
        last = self._recorded.get(token_id) if token_id is not None else now
        if token_id is None or (last is not None and (now - last).total_seconds() < self._every):
            return
        with self._lock:
            self._recorded[token_id] = now
            self._pending[token_id] = now
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="token-last-used", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            with self._write_uow() as uow:
                token_rows.stamp_last_used(uow.session, pending)
                uow.commit()
        except Exception:  # noqa: BLE001 - a missed last-use stamp is retried on the next use after `every`
            log.warning("could not record when %d token(s) were last used", len(pending), exc_info=True)

    def _run(self) -> None:
        """Flush until nothing is pending, then end (``note`` starts another when needed)."""
        while True:
            self.flush()
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return
