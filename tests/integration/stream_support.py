"""Reading Server-Sent Events from a Flask test client response, message by message."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any


class SseReader:
    """Splits the streamed body into messages; events and ``:`` comments alike."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self._chunks: Iterator[bytes] = iter(response.response)
        self._buffer = ""
        self._messages: list[str] = []

    def next_message(self) -> str:
        while not self._messages:
            chunk = next(self._chunks)
            self._buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
            *done, self._buffer = self._buffer.split("\n\n")
            self._messages.extend(m for m in done if m)
        return self._messages.pop(0)

    def next_event(self) -> dict[str, Any]:
        """The next event message, skipping comments and the retry hint."""
        while True:
            fields = parse(self.next_message())
            if "id" in fields:
                return fields

    def events(self, count: int) -> list[dict[str, Any]]:
        return [self.next_event() for _ in range(count)]

    def next_is_heartbeat(self) -> bool:
        return self.next_message().startswith(": heartbeat")

    def close(self) -> None:
        self.response.close()


def parse(message: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for line in message.split("\n"):
        name, _, value = line.partition(": ")
        if name in ("id", "event", "data", "retry"):
            fields[name] = value
    if "data" in fields:
        fields["envelope"] = json.loads(fields["data"])
        assert "\n" not in fields["data"]
    return fields


def wait_for(predicate: Any, seconds: float = 10.0) -> None:
    """Until ``predicate()`` holds; a bounded wait for another thread's progress, not a timing assertion."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)
