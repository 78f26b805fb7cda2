"""Opaque keyset cursors: the last id of a page, URL-safe and versioned."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from app.domain.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
INT_ID_MAX = 2**31 - 1  # ids of INTEGER columns (entities, rules, runs)
BIGINT_ID_MAX = 2**63 - 1  # ids of BIGINT columns (events)


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


def page_body(items: list[Any], last: int | None) -> dict[str, Any]:
    """``{"items": [...], "next": cursor or null}``, the shape of every list."""
    return {"items": items, "next": encode_cursor(last) if last else None}
