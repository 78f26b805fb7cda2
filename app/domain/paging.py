"""Opaque keyset cursors: the last id of a page, URL-safe and versioned."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from app.domain.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
INT_ID_MAX = 2**31 - 1  # ids of INTEGER columns (entities, rules, runs)
BIGINT_ID_MAX = 2**63 - 1  # ids of BIGINT columns (events)
# Serialized items (compact UTF-8 JSON) one page of events or history may hold: a page
# ends early, with ``next``, rather than exceed it (README "Limits").
PAGE_BYTE_BUDGET = 1024 * 1024


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, largest: int = BIGINT_ID_MAX) -> int:
    """The id a cursor continues after; ``largest`` is the id column's range (INTEGER
    tables pass ``INT_ID_MAX``): this service never issues a cursor beyond it."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, value = raw.partition(":")
        if version != "v1" or not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > largest:
            raise ValueError(raw)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid("the cursor is not one this service issued", {"after": ["invalid cursor"]}) from None


Row = TypeVar("Row")


def trim_page(rows: Sequence[Row], limit: int, last_id: Callable[[Row], int]) -> tuple[list[Row], int | None]:
    """Rows were fetched with ``limit + 1``: the page, and the id to continue after (None at the end)."""
    page = list(rows[:limit])
    return page, (last_id(page[-1]) if len(rows) > limit else None)


def take_within_budget(items: Iterable[Row], limit: int, size_of: Callable[[Row], int],
                       budget: int = PAGE_BYTE_BUDGET) -> tuple[list[Row], bool]:
    """Up to ``limit`` leading items whose sizes add up to at most ``budget``, and whether
    more follow. The first item is always taken, however large, so paging always moves on;
    ``items`` is consumed lazily, so nothing past the first item left out is read."""
    page: list[Row] = []
    used = 0
    for item in items:
        if len(page) == limit:
            return page, True
        size = size_of(item)
        if page and used + size > budget:
            return page, True
        page.append(item)
        used += size
    return page, False


def page_body(items: list[Any], last: int | None) -> dict[str, Any]:
    """``{"items": [...], "next": cursor or null}``, the shape of every list."""
    return {"items": items, "next": encode_cursor(last) if last else None}
