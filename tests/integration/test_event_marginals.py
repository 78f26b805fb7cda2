"""Statistics from all-time, month, day and hour marginals: the same answers as a count of the log, far fewer rows.

PostgreSQL keeps ``orchestration_event_marginals`` in step with the hourly
rollups (triggers); statistics without dimension filters read whole days from it.
"""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import literal, select, union_all

from app.domain.event_filter import EventFilter
from app.services import archive, archive_purge, rollup_fold
from app.store import rollups
from app.store.tables import EVENTS_ARCHIVE, ArchiveManifest, Event, EventMarginal
from tests.integration.test_aggregation import RANGES, assert_totals_agree, stats
from tests.integration.test_archive import NOW, days_ago, run_archive, run_purge
from tests.integration.test_event_scopes import DAY1, DAY2, Dataset, at, build_dataset, moment
from tests.integration.test_worker_statements import counting
from tests.support import Api

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

KEYS = ("day", "type", "actor", "entity_type")
DAYS = ["2026-02-27T00:00:00", "2026-03-01T00:00:00", f"{DAY1}T00:00:00", f"{DAY2}T00:00:00",
        "2026-03-04T00:00:00", "2026-04-01T00:00:00", "2026-04-02T00:00:00"]
# Day-aligned, half-aligned and open ranges, besides the aggregation suite's hour edges.
DAY_RANGES = [*RANGES, *((a, b) for a, b in itertools.product([None, *DAYS], [*DAYS, None]) if a is None
                         or b is None or a < b), (DAYS[1], f"{DAY2}T09:10:00"), (f"{DAY1}T09:15:00", DAYS[2])]


@pytest.fixture
def dataset(api: Api, runtime: Any) -> Dataset:
    return build_dataset(api, runtime)


Key = tuple[str, str, str, str, bool]


def marginal_table(runtime: Any) -> dict[Key, int]:
    m = EventMarginal
    with runtime.read_uow() as uow:
        rows = uow.session.execute(select(m.grain, m.start, m.dimension, m.value, m.archived, m.count))
        return {(grain, _start_key(grain, start), dim, value, archived): n
                for grain, start, dim, value, archived, n in rows if n}


def _start_key(grain: str, start: Any) -> str:
    return {"hour": start.strftime("%Y-%m-%dT%H"), "all": "all"}.get(grain) or start.date().isoformat()


def log_by_day(runtime: Any) -> dict[Key, int]:
    """What the marginals must hold once folded: hot events unarchived, the archive table's archived."""
    found: Counter[Key] = Counter()
    with runtime.read_uow() as uow:
        hot = select(Event.emitted_at, Event.type, Event.actor, Event.entity_type, literal(False))
        cold = select(EVENTS_ARCHIVE.c.emitted_at, EVENTS_ARCHIVE.c.type, EVENTS_ARCHIVE.c.actor,
                      EVENTS_ARCHIVE.c.entity_type, literal(True))
        for moment_, type_, actor, entity_type, archived in uow.session.execute(union_all(hot, cold)):
            for dimension, value in (("type", type_), ("actor", actor), ("entity_type", entity_type), ("total", "")):
                found[("day", moment_.date().isoformat(), dimension, value, archived)] += 1
                found[("month", moment_.date().replace(day=1).isoformat(), dimension, value, archived)] += 1
                found[("all", "all", dimension, value, archived)] += 1
                if dimension in ("type", "total"):  # hours by type only (migration 0012)
                    found[("hour", _start_key("hour", moment_), dimension, value, archived)] += 1
    return dict(found)


def assert_breakdowns_equal_the_log(runtime: Any) -> None:
    with runtime.read_uow() as uow:
        for (start, end), archived in itertools.product(DAY_RANGES, (False, True)):
            flt = EventFilter(start=start and moment(start), end=end and moment(end), include_archived=archived)
            naive = {k: Counter[str]() for k in KEYS}
            for combination, n in rollups.raw_counts(uow.session, flt, KEYS).items():
                for key, value in zip(KEYS, combination, strict=True):
                    naive[key][value] += n
            assert rollups.marginals(uow.session, flt, KEYS) == naive, flt
            hourly = ("hour", "type")  # what an hourly timeline counts: from the hour marginals
            assert rollups.counts(uow.session, flt, hourly) == rollups.raw_counts(uow.session, flt, hourly), flt


def test_marginals_follow_the_rollups_through_fold_archive_purge_and_restore(
        api: Api, runtime: Any, dataset: Dataset, tmp_path: Path) -> None:
    assert marginal_table(runtime) == {}  # no write touches any count
    assert_breakdowns_equal_the_log(runtime)

    rollup_fold.fold(runtime.uow())
    assert marginal_table(runtime) == log_by_day(runtime)
    with at(f"{DAY1}T10:45:00"):  # an old day, above the watermark
        api.create_task("T-4", "S-1")
    assert_breakdowns_equal_the_log(runtime)

    cold = archive.cold_storage(runtime.settings, runtime.engine)
    with at(f"{DAY2}T12:00:00"):
        assert archive.archive_events(archive.ArchiveJob(older_than="1d"), cold, runtime.uow(),
                                      runtime.read_uow(), runtime.clock).events == 9
    assert marginal_table(runtime) == log_by_day(runtime)
    assert_breakdowns_equal_the_log(runtime)

    with runtime.read_uow() as uow:
        [path] = uow.session.scalars(select(ArchiveManifest.path)).all()
    kept = Path(shutil.copy(Path(runtime.settings.archive_dir) / path, tmp_path / "kept.jsonl.gz"))
    with at(f"{DAY2}T12:00:00"):
        archive_purge.purge_archived("0d", False, cold, runtime.uow(), runtime.read_uow(), runtime.clock)
    assert marginal_table(runtime) == log_by_day(runtime)
    assert (assert_totals_agree(api, {}), assert_totals_agree(api, {"include_archived": "true"})) == (5, 5)

    with at(f"{DAY2}T13:00:00"):
        archive_purge.restore_archive(kept, cold, runtime.uow(), runtime.clock)
    assert marginal_table(runtime) == log_by_day(runtime)
    assert (assert_totals_agree(api, {}), assert_totals_agree(api, {"include_archived": "true"})) == (5, 14)
    assert_breakdowns_equal_the_log(runtime)


def test_a_purge_emptying_one_month_and_part_of_another_leaves_the_marginals_equal_to_the_log(
        api: Api, runtime: Any) -> None:
    """The emptied month's marginals go as a range, by the purge itself; the shared month's
    are taken off through the triggers again, in the same transaction."""
    with freeze_time(days_ago(420)):  # 2025-04-07: a month the purge empties
        api.create_task("GONE", priority="P2")
        api.update_task("GONE", status="in_progress")
    with freeze_time(days_ago(395)):  # 2025-05-02: shares its month with LATE
        api.create_task("EARLY", priority="P2")
    with freeze_time(days_ago(300)):
        run_archive(runtime)
    with freeze_time(days_ago(380)):
        api.create_task("LATE", priority="P2")
    with freeze_time(NOW):
        run_archive(runtime)
        assert marginal_table(runtime) == log_by_day(runtime)
        assert run_purge(runtime, older_than="390d").events == 3

    assert marginal_table(runtime) == log_by_day(runtime)
    assert {key[3] for key in marginal_table(runtime) if key[2] == "actor"} == {"user:admin"}  # LATE's
    assert_breakdowns_equal_the_log(runtime)


def test_all_time_stats_read_the_all_time_and_day_marginals_never_the_hourly_rollups(api: Api, runtime: Any, dataset: Dataset) -> None:
    rollup_fold.fold(runtime.uow())
    with counting(runtime.engine) as counted:
        all_time = stats(api)
    whole_days = [s for s in counted.statements if "orchestration_event_" in s]
    with counting(runtime.engine) as counted:
        stats(api, **{"from": f"{DAY1}T09:30:00Z"})
    from_mid_day = [s for s in counted.statements if "orchestration_event_" in s]

    assert all_time["total"] == 13 and all_time["by_day"] == {DAY1: 8, DAY2: 5}
    assert not any("orchestration_event_rollups" in s for s in whole_days)
    assert sum("orchestration_event_marginals" in s for s in whole_days) == 2  # by dimension, by day
    assert sum("orchestration_event_rollups" in s for s in from_mid_day) == 1  # the rest of DAY1 only


def test_an_hourly_timeline_reads_the_hour_marginals_never_the_hourly_rollups(api: Api, runtime: Any,
                                                                              dataset: Dataset) -> None:
    rollup_fold.fold(runtime.uow())
    with counting(runtime.engine) as counted:
        response = api.get("/events/timeline", query_string={
            "bucket": "hour", "from": f"{DAY1}T00:00:00Z", "to": f"{DAY2}T23:00:00Z"})

    assert response.status_code == 200, response.get_json()
    assert sum(b["count"] for b in response.get_json()["buckets"]) == 13
    reads = [s for s in counted.statements if "orchestration_event_" in s]
    assert not any("orchestration_event_rollups" in s for s in reads)
    assert sum("orchestration_event_marginals" in s for s in reads) == 1
