"""How far a reader following the log by id may go without ever skipping a late commit (DESIGN §3).

Ids come from a sequence when a row is inserted but become visible when its
transaction commits, so a writer that took id 5 may commit after one that took
id 6. A reader that returned 6 and moved its cursor past it would never see 5.

Writers used to take one exclusive advisory lock from the events' INSERT to
COMMIT, which made commit order id order but also made every commit, WAL flush
included, wait for the one before it: one fsync at a time, whatever the
concurrency. Instead, each PostgreSQL writer now **registers** in the same
statement that inserts its events, before any of its ids is drawn: a shared,
transaction-level advisory lock whose key is ``INFLIGHT_BASE`` plus the
sequence's ``last_value`` at that moment. Every id the transaction draws
afterwards is greater than its key, and the lock disappears when the
transaction ends (commit or rollback). Writers never wait on each other:
shared locks on distinct keys do not conflict.

A reader then computes the **visible bound**, in a statement of its own before
the read (``visible_bound``): the sequence's ``last_value`` read first, and the
smallest key any transaction still holds in this database (``pg_locks`` shows
every database's; advisory locks of others never conflict with ours). Every id at or below the bound
belongs to a transaction that has ended, so the read that follows (a fresh
snapshot under READ COMMITTED) sees all of those that committed, and a cursor
that never passes the bound never skips one. Events above the bound are
returned by a later read once the writers below them have finished, typically
milliseconds later.

Order matters twice: the writer registers before drawing ids (the fence CTE
feeds the INSERT), and the reader reads ``last_value`` before ``pg_locks`` (the
lateral subquery depends on it). A writer that registers after the reader read
``last_value`` draws only ids above it.

SQLite has one writer at a time (``BEGIN IMMEDIATE``), so id order is commit
order there and there is no bound.
"""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.store.errors import LogNotSettled

# Keys of in-flight registrations: INFLIGHT_BASE + last_value. Far below the project's fixed
# advisory-lock keys (archive_lock, near 7.2e18) and far above any id the log will reach.
INFLIGHT_BASE = 1 << 60
EVENTS_ID_SEQUENCE = "orchestration_events_id_seq"

# The highest id drawn so far: a sequence never called yet (new, or restarted) reports its first
# value, 1, as ``last_value`` with ``is_called`` false; 1 is not drawn, and must not count as settled.
_DRAWN = "last_value - CASE WHEN is_called THEN 0 ELSE 1 END"

# The writer's half, a FROM item for the statement that inserts events (``event_tail.tail_sql``).
REGISTER_SQL = (f"(SELECT pg_advisory_xact_lock_shared({INFLIGHT_BASE} + {_DRAWN}) AS held "
                f"FROM {EVENTS_ID_SEQUENCE})")

_KEY = "((l.classid::bigint << 32) | l.objid::bigint)"
BOUND_SQL = text(f"""
SELECT LEAST(s.last_value, h.first_key - {INFLIGHT_BASE})
FROM (SELECT {_DRAWN} AS last_value FROM {EVENTS_ID_SEQUENCE}) AS s
LEFT JOIN LATERAL (
  SELECT min({_KEY}) AS first_key FROM pg_locks AS l
  WHERE l.locktype = 'advisory' AND l.objsubid = 1
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND {_KEY} BETWEEN {INFLIGHT_BASE} AND {INFLIGHT_BASE} + s.last_value
) AS h ON true
""")


def visible_bound(session: Session) -> int | None:
    """The highest id up to which every event has committed or rolled back; None on SQLite.

    Call it in a statement before the read it bounds, outside any snapshot the
    read would reuse (READ COMMITTED, the sessions' default): the read must see
    every commit that ended before this returned.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    return int(session.execute(BOUND_SQL).scalar_one())


def wait_settled(session: Session, upto_id: int, timeout: float, poll: float = 0.002) -> int | None:
    """The visible bound once it reaches ``upto_id`` (None on SQLite); ``LogNotSettled`` after ``timeout``.

    For the rule worker: a rule judges its trigger as of its place in the log,
    which must be complete below it (an earlier id of another task, still in
    flight, would be missing from the state the rule sees and never judged
    with the trigger). Writers' transactions last milliseconds; the error is
    transient, so the job tries again later.
    """
    deadline = time.monotonic() + timeout
    while True:
        bound = visible_bound(session)
        if bound is None or bound >= upto_id:
            return bound
        if time.monotonic() >= deadline:
            raise LogNotSettled(f"an event before {upto_id} is still in flight after {timeout} s")
        time.sleep(poll)
