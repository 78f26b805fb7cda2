"""The visible bound (``event_fence``): how far a reader following ids may go, on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.domain.events import PlannedEvent
from app.services.context import ChangeContext
from app.store import repositories as repo
from app.store.errors import LogNotSettled
from app.store.event_fence import EVENTS_ID_SEQUENCE, INFLIGHT_BASE, visible_bound, wait_settled
from app.store.event_store import append
from tests.support import Api

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _append_progress(session: Any, runtime: Any, code: str, progress: int, actor: str = "user:fence") -> int:
    row = repo.find_task(session, code, lock=True)
    before, row.progress = row.progress, progress
    [event] = append(session, repo.stream_of("task", row),
                     [PlannedEvent("orchestration.task.progress_updated",
                                   {"progress": {"before": before, "after": progress}})],
                     ChangeContext(actor=actor).meta(), runtime.clock())
    return event.id


def test_the_bound_stays_below_a_writer_in_flight_and_passes_it_once_it_commits(api: Api, runtime: Any) -> None:
    api.create_task("T-IN-FLIGHT")
    api.create_task("T-LATER")
    in_flight = runtime.writer()
    early = _append_progress(in_flight, runtime, "T-IN-FLIGHT", 10)
    later = runtime.writer()
    late = _append_progress(later, runtime, "T-LATER", 20, actor="user:other")
    later.commit()
    later.close()

    with runtime.reader() as reader:
        assert visible_bound(reader) < early < late
        with pytest.raises(LogNotSettled):
            wait_settled(reader, late, timeout=0.05)

    in_flight.commit()
    in_flight.close()
    with runtime.reader() as reader:
        assert visible_bound(reader) >= late
        assert wait_settled(reader, late, timeout=0.05) >= late


def test_a_rolled_back_writer_holds_nothing_back(api: Api, runtime: Any) -> None:
    api.create_task("T-UNDONE")
    undone = runtime.writer()
    lost = _append_progress(undone, runtime, "T-UNDONE", 30)
    undone.rollback()
    undone.close()

    with runtime.reader() as reader:
        assert visible_bound(reader) >= lost


def test_writers_in_flight_in_another_database_of_the_cluster_do_not_hold_this_one_back(
        api: Api, runtime: Any) -> None:
    """``pg_locks`` shows every database's locks; only this database's writers count."""
    api.create_task("T-HERE")
    other = create_engine(make_url(str(runtime.engine.url)).set(database="postgres"))
    try:
        with other.connect() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": INFLIGHT_BASE + 1})
            with runtime.reader() as reader:
                last = int(reader.execute(text(f"SELECT last_value FROM {EVENTS_ID_SEQUENCE}")).scalar_one())
                assert visible_bound(reader) == last
            connection.rollback()
    finally:
        other.dispose()


def test_the_events_sequence_hands_out_ids_in_order(runtime: Any) -> None:
    """The fence reads ``last_value`` as "every id drawn so far": true only without a per-session cache."""
    with runtime.reader() as reader:
        cache = reader.execute(text("SELECT cache_size FROM pg_sequences WHERE sequencename = :name"),
                               {"name": EVENTS_ID_SEQUENCE}).scalar_one()
    assert cache == 1
