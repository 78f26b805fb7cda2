"""Following the log for Server-Sent Events: one reader per process, many subscribers.

The hub is the only thing in a process that reads the live tail: after each
wake-up (the after-commit bell, Redis pub/sub from other processes, or a poll)
it reads the new events through the same commit-safe query as
``/events?after=`` and keeps the most recent ones, already serialized, in a
ring. Subscribers take from the ring and filter in memory, so 200 open
streams cost one query per commit, not 200. A subscriber whose position is
older than the ring (a resume from far back, or one that fell behind) pages
through the log itself, with its filters pushed into SQL, until it reaches
what the ring holds: that is what makes a resume exact — no gap, no
duplicate, whatever was committed while the client was away.
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from app.domain.event_filter import EventFilter
from app.domain.subscriptions import Subscription
from app.services import queries
from app.store import stream_access
from app.store.bell import Bell, start_daemon
from app.store.uow import UnitOfWork

log = logging.getLogger(__name__)

PAGE = 500
RING_SIZE = 5000
# With pub/sub waking the hub, polling is only the safety net.
POLL_WITH_PUBSUB = 2.0


@dataclass(frozen=True)
class Item:
    id: int
    envelope: dict[str, Any]
    frame: str


def frame(event: dict[str, Any]) -> str:
    """One SSE message: ``id`` is the global event id, ``data`` one line of JSON."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event['id']}\nevent: {event['type']}\ndata: {data}\n\n"


class Hub:
    """The process's follower of the log tail and its ring of recent events."""

    def __init__(self, read_uow: Callable[[], UnitOfWork], bell: Bell, poll_interval: float) -> None:
        self._read_uow = read_uow
        self._bell = bell
        self._poll = POLL_WITH_PUBSUB if bell.redis_url else poll_interval
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._ids: list[int] = []
        self._items: list[Item] = []
        self.floor = self.cursor = 0  # the ring holds every event with floor < id <= cursor
        self._started = False
        self._stopped = False

    def start(self) -> None:
        """Position at the tail and start following; idempotent, lazy (after any fork)."""
        with self._cond:
            if self._started:
                return
            self.floor = self.cursor = self.tail()
            self._started = True
        self._bell.add_listener(self._wake.set)
        start_daemon(self._follow, "event-stream-hub")
        if self._bell.redis_url:
            start_daemon(lambda: self._bell.listen_forever(self._wake.set, lambda: self._stopped), "event-stream-pubsub")

    def tail(self) -> int:
        with self._read_uow() as uow:
            return stream_access.latest_event_id(uow.session)

    def stop(self) -> None:
        """End the follower (tests; a server process simply exits)."""
        self._stopped = True
        self._wake.set()

    def _follow(self) -> None:
        while not self._stopped:
            self._wake.wait(self._poll)
            self._wake.clear()
            try:
                self._drain()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the follower
                log.warning("event stream hub could not read the log; retrying", exc_info=True)
                time.sleep(1.0)

    def _drain(self) -> None:
        while True:
            items, more = queries.list_events(EventFilter(), self.cursor, PAGE, self._read_uow())
            if items:
                self._extend([Item(e["id"], e, frame(e)) for e in items])
            if not more:
                return

    def _extend(self, items: list[Item]) -> None:
        with self._cond:
            self._ids.extend(i.id for i in items)
            self._items.extend(items)
            self.cursor = items[-1].id
            if len(self._items) > RING_SIZE:
                cut = len(self._items) - RING_SIZE // 2
                self.floor = self._ids[cut - 1]
                del self._ids[:cut], self._items[:cut]
            self._cond.notify_all()

    def after(self, position: int, limit: int = PAGE) -> tuple[list[Item], bool, int]:
        """Ring items after ``position``; whether the ring covers it; the hub's cursor."""
        with self._cond:
            if position < self.floor:
                return [], False, self.cursor
            start = bisect.bisect_right(self._ids, position)
            return self._items[start:start + limit], True, self.cursor

    def wait_beyond(self, position: int, timeout: float) -> None:
        """Until the hub has read past ``position`` or ``timeout`` passes."""
        with self._cond:
            if self.cursor <= position:
                self._cond.wait(timeout)


class Follower:
    """One subscriber's position in the log and how it moves forward."""

    def __init__(self, hub: Hub, subscription: Subscription, position: int,
                 read_uow: Callable[[], UnitOfWork]) -> None:
        self.hub, self.subscription, self.position = hub, subscription, position
        self._read_uow = read_uow

    def next_frames(self) -> list[str]:
        """Frames of matching events after the position (possibly none), moving it forward."""
        items, covered, _hub_cursor = self.hub.after(self.position)
        if covered:
            if items:
                self.position = items[-1].id
            return [i.frame for i in items if self.subscription.matches(i.envelope)]
        return self._from_the_log()

    def _from_the_log(self) -> list[str]:
        seen_by_hub = self.hub.cursor  # read first: every event up to it is visible to the query below
        s = self.subscription
        events, more = queries.list_events(s.log_filter(), self.position, PAGE, self._read_uow())
        if events:
            self.position = events[-1]["id"]
        if not more:
            self.position = max(self.position, seen_by_hub)
        return [frame(e) for e in events if s.matches(e)]

    def frames(self, heartbeat: float, lifetime: float,
               client_gone: Callable[[], bool] = lambda: False) -> Iterator[str]:
        """The SSE body: events as they come, heartbeats between, a clean end after ``lifetime``.

        ``client_gone`` is asked before each wait, so a closed connection ends (and frees
        its slot) within a second instead of at the next write."""
        yield f"retry: 2000\n: connected at event {self.position}\n\n"
        deadline = time.monotonic() + lifetime
        last_write = time.monotonic()
        while True:
            batch = self.next_frames()
            now = time.monotonic()
            if batch:
                yield "".join(batch)
                last_write = now
                continue
            if now >= deadline:
                yield f": lifetime reached; reconnect with Last-Event-ID: {self.position}\n\n"
                return
            if now - last_write >= heartbeat:
                yield ": heartbeat\n\n"
                last_write = now
            if client_gone():
                return
            if self.hub.cursor <= self.position:
                self.hub.wait_beyond(self.position, min(heartbeat - (now - last_write), deadline - now, 1.0))
