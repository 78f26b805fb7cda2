"""What chain validation reads (``uow.chains``): streams, their rows' heads, and purge records.

A repository over ``streams``, ``snapshots`` and ``archive_rows``, so the
integrity use case asks for streams in domain terms and never holds a session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from app.store import archive_rows, snapshots, streams
from app.store.streams import ChainReach, StreamRow

StreamKey = tuple[str, int]


class ChainReads:
    """The integrity repository of one unit of work."""

    def __init__(self, db: Session) -> None:
        self._db = db

    def owner(self, correlation_id: str) -> StreamRow | None:
        """The stream whose own correlation id this is, with the head its row records."""
        return streams.owner(self._db, correlation_id)

    def reach_of(self, correlation_id: str) -> ChainReach:
        """The streams the correlation chain touches (archived events included) and its loose events."""
        return streams.chain_reach(self._db, correlation_id)

    def stream(self, key: StreamKey, *, max_sequence: int | None = None) -> list[dict[str, Any]]:
        return snapshots.stream_events(self._db, *key, max_sequence=max_sequence)

    def purged_heads(self, key: StreamKey) -> dict[int, str]:
        return archive_rows.purged_heads(self._db, *key)

    def stream_rows(self) -> dict[StreamKey, StreamRow]:
        return streams.all_stream_rows(self._db)

    def every_stream(self) -> Iterator[tuple[StreamKey, list[dict[str, Any]]]]:
        return streams.every_stream(self._db)

    def loose_events(self) -> Iterator[dict[str, Any]]:
        return streams.loose_events(self._db)
