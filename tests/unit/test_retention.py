"""Retention policy arithmetic: cutoffs, the exact boundary, kept priorities, dry-run tallies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.config import Settings
from app.domain.retention import PriorityTally, RetentionPolicy, newest_is_past, tally

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DEFAULT = RetentionPolicy.from_config()


def test_the_defaults_are_90_days_365_days_and_p0_kept() -> None:
    assert DEFAULT.archive_after == timedelta(days=90)
    assert DEFAULT.delete_after == timedelta(days=365)
    assert DEFAULT.keep_priorities == {"P0"}
    assert DEFAULT.archivable_priorities() == ("P1", "P2", "P3")


@pytest.mark.parametrize(("age", "expected"), [
    (timedelta(days=90), False),                                # exactly at the cutoff: stays hot
    (timedelta(days=90, microseconds=1), True),                 # one microsecond older: archived
    (timedelta(days=91), True),
    (timedelta(days=89, hours=23, minutes=59), False),
])
def test_an_event_is_archivable_only_when_stamped_strictly_before_now_minus_90_days(
        age: timedelta, expected: bool) -> None:
    cutoff = DEFAULT.archive_cutoff(NOW)
    assert cutoff == NOW - timedelta(hours=90 * 24)
    assert DEFAULT.is_archivable("P2", NOW - age, cutoff) is expected


def test_kept_priorities_are_held_whatever_the_age() -> None:
    cutoff = DEFAULT.archive_cutoff(NOW, "0d")
    assert cutoff == NOW
    assert not DEFAULT.is_archivable("P0", NOW - timedelta(days=5000), cutoff)


def test_older_than_overrides_the_configured_age_in_days_or_hours() -> None:
    assert DEFAULT.archive_cutoff(NOW, "12h") == NOW - timedelta(hours=12)
    assert DEFAULT.purge_cutoff(NOW) == NOW - timedelta(days=365)
    assert DEFAULT.purge_cutoff(NOW, "30d") == NOW - timedelta(days=30)


def test_the_policy_comes_from_configured_strings_and_rejects_nonsense() -> None:
    policy = RetentionPolicy.from_config("30d", "48h", ("P0", "P1"))
    assert (policy.archive_after, policy.delete_after) == (timedelta(days=30), timedelta(hours=48))
    assert policy.archivable_priorities() == ("P2", "P3")
    with pytest.raises(ValueError, match="P9"):
        RetentionPolicy.from_config(keep_priorities=("P9",))
    with pytest.raises(ValueError):
        RetentionPolicy.from_config("ninety days")
    with pytest.raises(ValueError):
        DEFAULT.archive_cutoff(NOW, "-1d")


def test_the_dry_run_tally_holds_every_kept_event_and_only_recent_others() -> None:
    counts = {("P0", True): 4, ("P0", False): 1, ("P2", True): 7, ("P2", False): 3, ("P3", False): 2}
    assert tally(DEFAULT, counts) == [
        PriorityTally("P0", archive=0, held=5, kept=True),
        PriorityTally("P1", archive=0, held=0, kept=False),
        PriorityTally("P2", archive=7, held=3, kept=False),
        PriorityTally("P3", archive=0, held=2, kept=False),
    ]


def test_a_file_is_past_retention_only_when_its_newest_event_is() -> None:
    cutoff = DEFAULT.purge_cutoff(NOW)
    old, recent = cutoff - timedelta(days=1), cutoff
    assert newest_is_past([old, old], cutoff)
    assert not newest_is_past([old, recent], cutoff)
    assert not newest_is_past([], cutoff)


def test_retention_and_the_nightly_schedules_come_from_the_environment() -> None:
    settings = Settings.from_env({
        "ORCH_RETENTION_ARCHIVE_AFTER": "30d", "ORCH_RETENTION_DELETE_AFTER": "720h",
        "ORCH_RETENTION_KEEP_PRIORITIES": "P0, P1", "ORCH_ARCHIVE_SCHEDULE": "0 4 * * *",
    })
    policy = RetentionPolicy.from_config(settings.retention_archive_after, settings.retention_delete_after,
                                         settings.retention_keep_priorities)
    assert (policy.archive_after, policy.delete_after) == (timedelta(days=30), timedelta(days=30))
    assert policy.keep_priorities == {"P0", "P1"}
    assert (settings.archive_schedule, settings.purge_schedule) == ("0 4 * * *", Settings().purge_schedule)
