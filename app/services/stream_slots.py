"""The per-token cap on open event streams, shared by every process on the host.

Each open stream holds an exclusive ``flock`` on one of ``cap`` slot files
named after the token's hash. The kernel drops the lock when the stream's file
is closed or its process dies, so a crashed worker never leaks a slot and no
counter can drift. Kept apart from rate limiting: it counts connections, not
requests.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from app.domain.subscriptions import TooManyStreams


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def acquire(folder: str, token_hash: str, cap: int) -> int:
    """A held slot (a file descriptor); TooManyStreams when all ``cap`` are taken."""
    base = Path(folder)
    base.mkdir(parents=True, exist_ok=True)
    for index in range(cap):
        fd = _try_lock(base / f"{token_hash[:40]}.{index}")
        if fd is not None:
            return fd
    raise TooManyStreams(f"this token already has {cap} open event streams; close one or retry later")


class Slot:
    """One held slot; ``release`` is idempotent (called on close and when the body ends)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.release()


def hold(folder: str, token_hash: str, cap: int) -> Slot:
    return Slot(acquire(folder, token_hash, cap))


def released_after(slot: Slot, body: Iterator[str]) -> Iterator[str]:
    """The body, giving the slot back however it ends (finished, closed, or collected)."""
    try:
        yield from body
    finally:
        slot.release()
