"""Rollups folded off the write path: counts exact before, between and after folds, archives and purges.

No write touches the rollups (issue 11); a beat job folds settled events into
them and moves a watermark, and readers count the hot events above it. Every
test here reads the counts callers see and checks them against the log itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from app.domain.event_filter import EventFilter
from app.domain.events import PlannedEvent
from app.services import archive, archive_purge, rollup_fold
from app.store import rollup_fold as fold_rows
from app.store import rollups
from app.store.event_store import EventMeta, StreamRef, append
from app.store.tables import Event, EventRollup, Signal
from tests.integration.test_aggregation import FILTERS, RANGES, assert_totals_agree, stats, timeline
from tests.integration.test_event_scopes import DAY1, DAY2, Dataset, at, build_dataset, moment
from tests.support import Api

ALL_OF_IT = {"from": "2026-03-01", "to": "2026-03-05", "bucket": "hour"}


@pytest.fixture
def dataset(api: Api, runtime: Any) -> Dataset:
    return build_dataset(api, runtime)


def rollup_table(runtime: Any) -> dict[bool, int]:
    """What the rollup table itself holds, by ``archived``, with no fold run first."""
    with runtime.read_uow() as uow:
        stmt = select(EventRollup.archived, func.sum(EventRollup.count)).group_by(EventRollup.archived)
        return {bool(archived): int(n) for archived, n in uow.session.execute(stmt) if n}


def watermark(runtime: Any) -> int:
    with runtime.read_uow() as uow:
        return fold_rows.folded_upto(uow.session)


def highest_id(runtime: Any) -> int:
    with runtime.read_uow() as uow:
        return int(uow.session.execute(select(func.coalesce(func.max(Event.id), 0))).scalar_one())


def everything_callers_see(api: Api) -> list[Any]:
    """Stats under every filter of the aggregation suite, and the hourly timeline of the whole log."""
    return [stats(api, **f) for f in FILTERS] + [timeline(api, **ALL_OF_IT)]


def fold_some(runtime: Any, ids: int) -> int:
    """One batch of the fold, ``ids`` wide: leaves the rest of the log above the watermark."""
    with runtime.uow() as uow:
        moved = fold_rows.fold_batch(uow.session, ids)
        uow.commit()
    return moved


def assert_counts_equal_the_log(runtime: Any) -> None:
    """Rollup-backed counts and breakdowns equal a plain grouped count of the log, for any range."""
    with runtime.read_uow() as uow:
        bases = (EventFilter(), EventFilter(type="orchestration.task.*", include_archived=True))
        for (start, end), base in itertools.product(RANGES, bases):
            flt = dataclasses.replace(base, start=start and moment(start), end=end and moment(end))
            raw = rollups.raw_counts(uow.session, flt, ("day", "type", "actor", "entity_type"))
            assert rollups.counts(uow.session, flt, ("hour", "type")) == rollups.raw_counts(
                uow.session, flt, ("hour", "type")), flt
            naive = {k: Counter[str]() for k in ("day", "type", "actor", "entity_type")}
            for combination, n in raw.items():
                for key, value in zip(naive, combination, strict=True):
                    naive[key][value] += n
            assert rollups.marginals(uow.session, flt, tuple(naive)) == naive, flt


def test_writes_leave_the_rollups_alone_and_counts_are_exact_before_any_fold(api: Api, runtime: Any,
                                                                               dataset: Dataset) -> None:
    assert (rollup_table(runtime), watermark(runtime)) == ({}, 0)
    assert stats(api)["total"] == 13 and stats(api)["by_day"] == {DAY1: 8, DAY2: 5}
    assert all(assert_totals_agree(api, f) > 0 for f in FILTERS)
    assert_counts_equal_the_log(runtime)


def test_a_fold_moves_every_settled_event_into_the_rollups_and_changes_no_count(api: Api, runtime: Any,
                                                                                dataset: Dataset) -> None:
    before = everything_callers_see(api)

    rollup_fold.fold(runtime.uow())

    assert (rollup_table(runtime), watermark(runtime)) == ({False: 13}, highest_id(runtime))
    assert everything_callers_see(api) == before
    assert rollup_fold.fold(runtime.uow()) == 0  # caught up: nothing to fold twice


def test_counts_stay_exact_while_folded_and_unfolded_events_share_hours(api: Api, runtime: Any,
                                                                         dataset: Dataset) -> None:
    fold_some(runtime, 6)
    with at(f"{DAY1}T10:30:00.25"):
        api.create_task("T-4", "S-1")
    with at(f"{DAY2}T08:59:59"):
        api.update_task("T-3", progress=50)

    assert watermark(runtime) < highest_id(runtime) and sum(rollup_table(runtime).values()) < 15
    assert stats(api)["total"] == 15
    assert all(assert_totals_agree(api, f) > 0 for f in FILTERS[:4])
    assert_counts_equal_the_log(runtime)


def test_counts_stay_exact_through_fold_archive_and_purge(api: Api, runtime: Any, dataset: Dataset) -> None:
    rollup_fold.fold(runtime.uow())
    with at(f"{DAY1}T10:45:00"):  # an old hour, written after the fold: above the watermark
        api.create_task("T-4", "S-1")
    cold = archive.cold_storage(runtime.settings, runtime.engine)

    with at(f"{DAY2}T12:00:00"):
        report = archive.archive_events(archive.ArchiveJob(older_than="1d"), cold, runtime.uow(),
                                        runtime.read_uow(), runtime.clock)
    assert report.events == 9
    assert (assert_totals_agree(api, {}), assert_totals_agree(api, {"include_archived": "true"})) == (5, 14)
    assert rollup_table(runtime) == {False: 5, True: 9}  # the run folded first
    assert_counts_equal_the_log(runtime)

    with at(f"{DAY2}T12:00:00"):
        archive_purge.purge_archived("0d", False, cold, runtime.uow(), runtime.read_uow(), runtime.clock)
    assert (assert_totals_agree(api, {}), assert_totals_agree(api, {"include_archived": "true"})) == (5, 5)
    assert rollup_table(runtime) == {False: 5}


def test_archiving_rows_the_fold_has_not_reached_keeps_counts_exact(api: Api, runtime: Any, dataset: Dataset,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A row above the watermark has no ``archived=false`` count yet: archiving only gives it its
    ``archived=true`` one, and the fold, which reads the hot table, never counts it again."""
    fold_some(runtime, 3)
    monkeypatch.setattr(archive.rollup_fold, "fold", lambda *_a, **_k: 0)  # a run that finds the fold behind
    cold = archive.cold_storage(runtime.settings, runtime.engine)

    with at(f"{DAY2}T12:00:00"):
        assert archive.archive_events(archive.ArchiveJob(older_than="1d"), cold, runtime.uow(),
                                      runtime.read_uow(), runtime.clock).events == 8
    assert (assert_totals_agree(api, {}), assert_totals_agree(api, {"include_archived": "true"})) == (5, 13)
    assert_counts_equal_the_log(runtime)
    monkeypatch.undo()

    rollup_fold.fold(runtime.uow())
    assert rollup_table(runtime) == {False: 5, True: 8}
    assert (assert_totals_agree(api, {}), assert_totals_agree(api, {"include_archived": "true"})) == (5, 13)


def append_without_commit(runtime: Any) -> tuple[Any, Event]:
    """A writer in flight: its event has an id (drawn at insert) and is not committed."""
    session = runtime.writer()
    now = runtime.clock()
    row = Signal(kind="alert", data={}, correlation_id=str(uuid.uuid4()), version=0, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    [event] = append(session, StreamRef("alert", row.id, None, row.correlation_id, "P2", row),
                     [PlannedEvent("orchestration.alert.raised", {"kind": {"before": None, "after": "alert"}})],
                     EventMeta(actor="user:in-flight"), now)
    return session, event


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("first", [True, False], ids=["first-event-of-the-log", "mid-log"])
def test_a_fold_never_passes_a_writer_in_flight_and_its_event_is_counted_once(api: Api, runtime: Any,
                                                                              first: bool) -> None:
    """A writer holds a lower id, uncommitted, while a later one commits: the fold stops below it
    (the visible bound), readers count it from the log once it commits, the next fold folds it.
    As the log's first event it is id 1 of a sequence never called before (``event_fence``)."""
    if not first:
        api.create_task("T-0")
    session, in_flight = append_without_commit(runtime)
    try:
        api.create_task("T-1")
        committed = stats(api)["total"]

        rollup_fold.fold(runtime.uow())
        assert watermark(runtime) < in_flight.id < highest_id(runtime)
        assert stats(api)["total"] == committed == sum(rollup_table(runtime).values()) + 1

        session.commit()
    finally:
        session.close()  # a failed assertion must not leave the next test's wipe waiting on this writer
    assert stats(api)["total"] == committed + 1  # from the log, above the watermark
    rollup_fold.fold(runtime.uow())
    assert watermark(runtime) == highest_id(runtime)
    assert stats(api)["total"] == committed + 1 == rollup_table(runtime)[False]


def test_the_beat_job_is_a_celery_task_that_folds(api: Api, runtime: Any, dataset: Dataset,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import celeryconfig
    from workers import celery_app, jobs

    monkeypatch.setattr(celery_app, "_runtime", runtime)
    schedule = celeryconfig.beat_schedule["rollup-fold"]

    assert jobs.fold() == highest_id(runtime)  # the watermark moved from 0 to the last event
    assert (schedule["task"], schedule["schedule"]) == (jobs.fold.name, 2.0)
    assert rollup_table(runtime) == {False: 13} and stats(api)["total"] == 13
