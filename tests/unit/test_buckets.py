"""Bucket arithmetic behind the timeline and the rollup/raw split of a range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.domain import buckets
from app.domain.errors import Invalid


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("moment", "unit", "floor", "ceil"), [
    ("2026-03-02T10:30:15.5", "minute", "2026-03-02T10:30:00", "2026-03-02T10:31:00"),
    ("2026-03-02T10:30:15.5", "hour", "2026-03-02T10:00:00", "2026-03-02T11:00:00"),
    ("2026-03-02T10:30:15.5", "day", "2026-03-02T00:00:00", "2026-03-03T00:00:00"),
    ("2026-03-02T10:00:00", "hour", "2026-03-02T10:00:00", "2026-03-02T10:00:00"),
    ("2026-12-31T23:59:59.999999", "day", "2026-12-31T00:00:00", "2027-01-01T00:00:00"),
])
def test_floor_and_ceil_align_to_utc_bucket_boundaries(moment: str, unit: str, floor: str, ceil: str) -> None:
    assert buckets.floor(t(moment), unit) == t(floor)
    assert buckets.ceil(t(moment), unit) == t(ceil)


def test_buckets_align_in_utc_whatever_the_offset_of_the_input() -> None:
    kolkata = datetime(2026, 3, 2, 16, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert buckets.floor(kolkata, "hour") == t("2026-03-02T10:00:00")
    assert buckets.floor(kolkata, "day") == t("2026-03-02T00:00:00")


def test_every_bucket_that_overlaps_the_range_is_listed_empty_or_not() -> None:
    starts = buckets.bucket_starts(t("2026-03-02T09:30:00"), t("2026-03-02T11:00:30"), "hour")
    assert starts == [t("2026-03-02T09:00:00"), t("2026-03-02T10:00:00"), t("2026-03-02T11:00:00")]
    assert buckets.bucket_starts(t("2026-03-02T10:00:00"), t("2026-03-02T10:00:00"), "hour") == []


@pytest.mark.parametrize(("unit", "expected"), [("minute", "2026-03-02T10:30"), ("hour", "2026-03-02T10"),
                                              ("day", "2026-03-02")])
def test_a_bucket_label_names_the_utc_bucket_holding_the_moment(unit: str, expected: str) -> None:
    kolkata = datetime(2026, 3, 2, 16, 0, 15, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert buckets.label(kolkata, unit) == expected
    assert buckets.label(buckets.floor(kolkata, unit), unit) == expected


@pytest.mark.parametrize(("start", "end", "raw", "whole"), [
    (None, None, [], (None, None)),
    ("2026-03-02T09:30", "2026-03-02T12:15", [("2026-03-02T09:30", "2026-03-02T10:00"),
                                              ("2026-03-02T12:00", "2026-03-02T12:15")],
     ("2026-03-02T10:00", "2026-03-02T12:00")),
    ("2026-03-02T09:00", "2026-03-02T12:00", [], ("2026-03-02T09:00", "2026-03-02T12:00")),
    ("2026-03-02T09:10", "2026-03-02T09:50", [("2026-03-02T09:10", "2026-03-02T09:50")], None),
    ("2026-03-02T09:10", "2026-03-02T10:20", [("2026-03-02T09:10", "2026-03-02T10:20")], None),
    ("2026-03-02T09:10", None, [("2026-03-02T09:10", "2026-03-02T10:00")], ("2026-03-02T10:00", None)),
    (None, "2026-03-02T09:10", [("2026-03-02T09:00", "2026-03-02T09:10")], (None, "2026-03-02T09:00")),
    ("2026-03-02T09:10", "2026-03-02T09:10", [], None),
])
def test_a_range_splits_into_partial_edge_hours_and_whole_hours(start: str | None, end: str | None,
                                                                raw: list[tuple[str, str]],
                                                                whole: tuple[str | None, str | None] | None) -> None:
    def opt(text: str | None) -> datetime | None:
        return t(text) if text else None

    split = buckets.split_hours(opt(start), opt(end))

    assert list(split.raw) == [(t(a), t(b)) for a, b in raw]
    assert split.whole == (None if whole is None else (opt(whole[0]), opt(whole[1])))


def test_a_timeline_window_defaults_to_the_span_ending_with_the_bucket_holding_now() -> None:
    now = t("2026-03-03T09:20:30")
    assert buckets.timeline_window(None, None, "hour", now) == (t("2026-03-02T10:00"), t("2026-03-03T10:00"))
    assert buckets.timeline_window(None, None, "minute", now) == (t("2026-03-03T08:21"), t("2026-03-03T09:21"))
    assert buckets.timeline_window(None, None, "day", now) == (t("2026-02-02T00:00"), t("2026-03-04T00:00"))
    assert buckets.timeline_window(t("2026-03-03T09:00"), None, "hour", now) == (t("2026-03-03T09:00"),
                                                                                  t("2026-03-03T10:00"))


def test_a_timeline_window_refuses_a_reversed_or_too_long_range_naming_the_field() -> None:
    now = t("2026-03-03T09:20:30")
    with pytest.raises(Invalid) as reversed_range:
        buckets.timeline_window(t("2026-03-04"), None, "hour", now)
    with pytest.raises(Invalid) as too_long:
        buckets.timeline_window(t("2026-02-20"), t("2026-03-01"), "minute", now)

    assert reversed_range.value.errors is not None and "from" in reversed_range.value.errors
    assert too_long.value.errors is not None and "bucket" in too_long.value.errors
    assert "7 days" in too_long.value.detail
    assert buckets.timeline_window(t("2026-02-24T09:20:30"), None, "minute", now)[1] == t("2026-03-03T09:21")
