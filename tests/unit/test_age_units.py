"""One grammar for ages everywhere: s, m, h, d, w (query bounds, ?at=, retention, --older-than)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.retention import RetentionPolicy
from app.domain.timeparse import parse_age, parse_instant

NOW = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("30s", timedelta(seconds=30)), ("1m", timedelta(minutes=1)), ("12h", timedelta(hours=12)),
    ("90d", timedelta(days=90)), ("2w", timedelta(weeks=2)), ("0s", timedelta(0)),
])
def test_every_unit_is_an_age(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected
    assert parse_instant(text, NOW) == NOW - expected


@pytest.mark.parametrize("text", ["1y", "5", "m", "-1d", "1.5h", "1 d", "1" * 20 + "d"])
def test_anything_else_is_refused_with_the_units_named(text: str) -> None:
    with pytest.raises(ValueError, match="30s, 15m, 12h, 90d or 2w"):
        parse_age(text)


def test_retention_settings_take_the_same_units() -> None:
    policy = RetentionPolicy.from_config("2w", "52w")
    assert policy.archive_cutoff(NOW) == NOW - timedelta(weeks=2)
    assert policy.purge_cutoff(NOW, "36h") == NOW - timedelta(hours=36)
