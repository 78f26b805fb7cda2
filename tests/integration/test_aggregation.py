"""Timeline and statistics: exact on a known log, consistent with the list, fresh after writes."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import event

from app.domain.event_filter import EventFilter
from app.services import archive, archive_purge, rollup_fold
from app.store import rollups
from tests.integration.test_event_scopes import DAY1, DAY2, WORKFLOW, Dataset, at, build_dataset, moment
from tests.support import Api

ALL_OF_IT = {"from": "2026-03-01", "to": "2026-03-05"}


@pytest.fixture
def dataset(api: Api, runtime: Any) -> Dataset:
    return build_dataset(api, runtime)


def stats(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get("/events/stats", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def timeline(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get("/events/timeline", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_stats_over_all_time_count_every_event_by_type_actor_entity_type_and_day(api: Api, dataset: Dataset) -> None:
    assert stats(api) == {
        "total": 13,
        "by_type": {
            "custom.deploy": 1, "orchestration.alert.raised": 1, "orchestration.notification.created": 1,
            "orchestration.session.ended": 1, "orchestration.session.started": 2,
            "orchestration.sprint.created": 1, "orchestration.task.blocked": 1, "orchestration.task.created": 3,
            "orchestration.task.priority_changed": 1, "orchestration.task.status_changed": 1,
        },
        "by_actor": {"automation:alert_p0": 1, "automation:notify_blocked": 1, "user:admin": 4, "user:writer": 7},
        "by_actor_kind": {"automation": 2, "user": 11},
        "by_entity_type": {"alert": 1, "notification": 1, "session": 4, "sprint": 1, "task": 6},
        "by_day": {DAY1: 8, DAY2: 5},
    }


def test_stats_count_only_inside_from_to_even_when_the_edges_split_hours(api: Api, dataset: Dataset) -> None:
    inside = stats(api, **{"from": f"{DAY1}T09:30:00Z", "to": f"{DAY2}T08:30:00Z"})
    automation = stats(api, type="orchestration.*", actor="automation:notify_blocked")

    assert inside["total"] == 8
    assert inside["by_day"] == {DAY1: 6, DAY2: 2}
    assert inside["by_entity_type"] == {"alert": 1, "notification": 1, "session": 2, "task": 4}
    assert automation["by_type"] == {"orchestration.notification.created": 1}


def test_timeline_buckets_cover_the_range_and_edge_buckets_count_only_inside_it(api: Api, dataset: Dataset) -> None:
    result = timeline(api, bucket="hour", **{"from": f"{DAY1}T09:30:00Z", "to": f"{DAY1}T11:00:30Z"})

    assert result["buckets"] == [
        {"start": f"{DAY1}T09:00:00.000000+00:00", "count": 1, "by_type": {"orchestration.task.created": 1}},
        {"start": f"{DAY1}T10:00:00.000000+00:00", "count": 4, "by_type": {
            "orchestration.notification.created": 1, "orchestration.session.started": 1,
            "orchestration.task.blocked": 1, "orchestration.task.status_changed": 1}},
        {"start": f"{DAY1}T11:00:00.000000+00:00", "count": 1, "by_type": {"custom.deploy": 1}},
    ]
    assert (result["bucket"], result["from"], result["to"]) == (
        "hour", f"{DAY1}T09:30:00.000000+00:00", f"{DAY1}T11:00:30.000000+00:00")


def test_minute_and_day_buckets_include_the_empty_ones(api: Api, dataset: Dataset) -> None:
    minutes = timeline(api, bucket="minute", **{"from": f"{DAY1}T10:29:00Z", "to": f"{DAY1}T10:32:00Z"})
    days = timeline(api, bucket="day", type="orchestration.task.*",
                    **{"from": "2026-03-01", "to": "2026-03-04T00:00:01Z"})

    assert [(b["start"][11:16], b["count"]) for b in minutes["buckets"]] == [("10:29", 0), ("10:30", 3), ("10:31", 0)]
    assert [(b["start"][:10], b["count"]) for b in days["buckets"]] == [
        ("2026-03-01", 0), (DAY1, 4), (DAY2, 2), ("2026-03-04", 0)]
    assert days["buckets"][1]["by_type"] == {
        "orchestration.task.blocked": 1, "orchestration.task.created": 2, "orchestration.task.status_changed": 1}


def test_a_timeline_without_a_range_shows_the_last_day_up_to_the_bucket_holding_now(api: Api, dataset: Dataset) -> None:
    with at(f"{DAY2}T09:20:00"):
        hours = timeline(api)
        minutes = timeline(api, bucket="minute")

    assert len(hours["buckets"]) == 24
    assert (hours["from"], hours["to"]) == (f"{DAY1}T10:00:00.000000+00:00", f"{DAY2}T10:00:00.000000+00:00")
    assert sum(b["count"] for b in hours["buckets"]) == 10
    assert len(minutes["buckets"]) == 60 and minutes["buckets"][-1]["start"] == f"{DAY2}T09:20:00.000000+00:00"


FILTERS = [
    {},
    {"type": "orchestration.task.*"},
    {"type": "orchestration.*", "actor": "user:writer", "from": f"{DAY1}T10:05:00Z", "to": f"{DAY2}T09:10:00Z"},
    {"type": "orchestration.task.blocked", "actor": "user:writer"},
    {"session_key": "sess-A", "type": "orchestration.task.*"},
    {"entity_type": "task", "entity_code": "T-1"},
    {"entity_type": "notification"},
    {"actor": "user:admin", "from": f"{DAY1}T09:20:00Z", "to": f"{DAY2}T08:00:00.000001Z"},
    {"from": f"{DAY1}T10:30:00.5Z", "to": f"{DAY2}T08:45:00Z"},
    {"actor_kind": "automation"},
    {"actor_kind": "user", "type": "orchestration.task.*", "from": f"{DAY1}T10:05:00Z", "to": f"{DAY2}T09:10:00Z"},
]


def assert_totals_agree(api: Api, filters: dict[str, Any]) -> int:
    """stats.total == sum of each breakdown == the events listed == the timeline's buckets."""
    counted = stats(api, **filters)
    listed = api.events(**filters)
    hourly = timeline(api, bucket="hour", **{**ALL_OF_IT, **filters})
    daily = timeline(api, bucket="day", **{**ALL_OF_IT, **filters})
    breakdowns = [sum(counted[k].values()) for k in ("by_type", "by_actor", "by_entity_type", "by_day",
                                                      "by_actor_kind")]

    assert breakdowns == [counted["total"]] * 5, filters
    assert counted["total"] == len(listed), filters
    assert counted["by_type"] == dict(Counter(e["type"] for e in listed)), filters
    assert sum(b["count"] for b in hourly["buckets"]) == counted["total"], filters
    assert sum(b["count"] for b in daily["buckets"]) == counted["total"], filters
    return int(counted["total"])


@pytest.mark.parametrize("filters", FILTERS, ids=[",".join(f) or "none" for f in FILTERS])
def test_stats_list_and_timeline_agree_under_the_same_filters(api: Api, dataset: Dataset,
                                                             filters: dict[str, Any]) -> None:
    assert assert_totals_agree(api, filters) > 0


def test_counts_stay_exact_after_further_writes_in_open_and_closed_hours(api: Api, dataset: Dataset) -> None:
    before = {i: assert_totals_agree(api, f) for i, f in enumerate(FILTERS[:3])}
    with at(f"{DAY2}T09:10:00"):
        api.update_task("T-1", status="in_progress")
    with at(f"{DAY2}T09:59:59.999999"):
        api.update_task("T-3", progress=50, assignee="agent:coder")
    with at(f"{DAY1}T10:30:00.25"):
        api.create_task("T-4", "S-1")

    after = {i: assert_totals_agree(api, f) for i, f in enumerate(FILTERS[:3])}
    assert [after[i] - before[i] for i in before] == [4, 4, 0]
    assert stats(api, **{"from": f"{DAY2}T09:00:00Z", "to": f"{DAY2}T10:00:00Z"})["total"] == 4


def test_whole_hours_are_read_from_rollups_and_the_log_only_at_partial_edges_and_above_the_watermark(
        api: Api, runtime: Any, dataset: Dataset) -> None:
    """Whole hours come from the rollups plus the events the fold has not reached yet, which are
    read from the log by id (a primary-key range, seconds of writes): never by their time."""
    statements: list[str] = []

    def capture(_c: Any, _cur: Any, statement: str, _p: Any, _ctx: Any, _many: bool) -> None:
        statements.append(statement)

    rollup_fold.fold(runtime.uow())
    event.listen(runtime.engine, "before_cursor_execute", capture)
    try:
        stats(api, **{"from": f"{DAY1}T09:00:00Z", "to": f"{DAY2}T10:00:00Z"})
        aligned = [s for s in statements if "FROM orchestration_events" in s]
        statements.clear()
        stats(api, **{"from": f"{DAY1}T09:30:00Z", "to": f"{DAY2}T09:30:00Z"})
        unaligned = [s for s in statements if "FROM orchestration_events" in s]
    finally:
        event.remove(runtime.engine, "before_cursor_execute", capture)

    assert len(aligned) == 1 and "orchestration_events.id >" in aligned[0]  # only above the watermark
    assert len(unaligned) == 3  # the two partial hours, and above the watermark
    assert sum("orchestration_events.id >" in s for s in unaligned) == 1


EDGES = [f"{DAY1}T09:15:00", f"{DAY1}T09:59:59.999999", f"{DAY1}T10:30:00.000001", f"{DAY1}T11:00:00",
         f"{DAY2}T08:00:00.5", f"{DAY2}T09:10:00"]
RANGES = [(a, b) for a, b in itertools.product([None, *EDGES], [*EDGES, None]) if a is None or b is None or a < b]


def test_rollup_backed_counts_equal_a_raw_count_for_any_range(api: Api, runtime: Any, dataset: Dataset) -> None:
    uow = runtime.read_uow()
    with uow:
        bases = (EventFilter(), EventFilter(type="orchestration.task.*"), EventFilter(actor_kind="user"))
        for (start, end), base in itertools.product(RANGES, bases):
            flt = dataclasses.replace(base, start=start and moment(start), end=end and moment(end))
            for keys in (("type", "actor", "entity_type"), ("day", "type"), ("hour",)):
                assert rollups.counts(uow.session, flt, keys) == rollups.raw_counts(uow.session, flt, keys), flt


def test_statistics_breakdowns_equal_a_naive_group_by_over_the_log_for_any_range(
        api: Api, runtime: Any, dataset: Dataset) -> None:
    """``rollups.marginals`` (GROUPING SETS over rollups and edges on PostgreSQL) against one plain
    grouped count of the log per breakdown, with and without filters and archived events."""
    uow = runtime.read_uow()
    keys = ("day", "type", "actor", "entity_type")
    with uow:
        bases = (EventFilter(), EventFilter(type="orchestration.task.*", include_archived=True),
                 EventFilter(actor_kind="user"), EventFilter(session_key="sess-A"))
        for (start, end), base in itertools.product(RANGES, bases):
            flt = dataclasses.replace(base, start=start and moment(start), end=end and moment(end))
            naive = {k: Counter[str]() for k in keys}
            for combination, n in rollups.raw_counts(uow.session, flt, keys).items():
                for key, value in zip(keys, combination, strict=True):
                    naive[key][value] += n
            assert rollups.marginals(uow.session, flt, keys) == naive, flt


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/events/stats", {"from": DAY2, "to": DAY1}, "from"),
    ("/events/stats", {"from": "last tuesday"}, "from"),
    ("/events/stats", {"to": "2026-02-30"}, "to"),
    ("/events/stats", {"type": "orchestration.task*"}, "type"),
    ("/events/timeline", {"from": DAY2, "to": DAY1}, "from"),
    ("/events/timeline", {"to": "soon"}, "to"),
    ("/events/timeline", {"bucket": "week"}, "bucket"),
    ("/events/timeline", {"bucket": "minute", "from": "2026-03-01", "to": "2026-03-09"}, "bucket"),
    ("/events/timeline", {"bucket": "hour", "from": "2025-01-01", "to": "2026-03-01"}, "bucket"),
    ("/events/timeline", {"from": "2030-01-01"}, "from"),
    ("/events/timeline", {"include_archived": "maybe"}, "include_archived"),
])
def test_invalid_aggregation_input_is_a_422_naming_the_field(api: Api, path: str, params: dict[str, Any],
                                                            field: str) -> None:
    response = api.get(path, query_string=params)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]


def test_seven_days_of_minutes_is_the_longest_minute_timeline(api: Api) -> None:
    with at(f"{DAY2}T09:20:30"):
        week = timeline(api, bucket="minute", **{"from": "7d"})
    assert len(week["buckets"]) == 7 * 24 * 60 + 1


def test_aggregation_needs_a_token_and_is_open_to_readers(api: Api) -> None:
    assert api.get("/events/stats", role=None).status_code == 401
    assert api.get("/events/timeline", role="reader").status_code == 200
    assert api.get(f"/events/correlation/{WORKFLOW}", role="reader").status_code == 200


def test_counts_stay_exact_through_real_archiving_and_purging(api: Api, runtime: Any, dataset: Dataset) -> None:
    cold = archive.cold_storage(runtime.settings, runtime.engine)
    with at(f"{DAY2}T12:00:00"):
        report = archive.archive_events(archive.ArchiveJob(older_than="1d"), cold, runtime.uow(),
                                        runtime.read_uow(), runtime.clock)
    assert report.events == 8
    hot, everything = assert_totals_agree(api, {}), assert_totals_agree(api, {"include_archived": "true"})
    assert (hot, everything) == (5, 13)
    assert assert_totals_agree(api, {"include_archived": "true", "type": "orchestration.task.*",
                                     "from": f"{DAY1}T09:30:00Z"}) == 5

    with at(f"{DAY2}T12:00:00"):
        archive_purge.purge_archived("0d", False, cold, runtime.uow(), runtime.read_uow(), runtime.clock)
    assert (assert_totals_agree(api, {}), assert_totals_agree(api, {"include_archived": "true"})) == (5, 5)
